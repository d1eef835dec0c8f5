"""The install lock: `requirements.lock` pins every package `make demo` and `make test` install.

    python3 scripts/lock.py check     # exit 1 when pyproject.toml and the lock disagree (make lint runs it)
    python3 scripts/lock.py write     # after editing pyproject.toml's dependencies (what `make lock` runs)

`write` installs looml with every extra into a throw-away virtualenv, with no constraint but the
machine's own, and freezes what landed there (pip and setuptools included) under a header holding
the digest of pyproject.toml's dependency lists. `check` fails when that digest is stale, or when a
requirement of pyproject.toml has no pin in the lock or a pin outside its range. Standard library
only (and `packaging` where pip vendors it), so it runs before any virtualenv exists.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"
LOCK = ROOT / "requirements.lock"
_DIGEST = re.compile(r"^# pyproject-dependencies-sha256: ([0-9a-f]{64})$", re.MULTILINE)


def dependency_lists(pyproject: Path = PYPROJECT) -> dict[str, list[str]]:
    """pyproject.toml's requirements: the main list and each extra's."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    return {"dependencies": project.get("dependencies", []),
            **{f"extra {k}": v for k, v in sorted(project.get("optional-dependencies", {}).items())}}


def digest(lists: dict[str, list[str]]) -> str:
    return hashlib.sha256(json.dumps(lists, sort_keys=True).encode()).hexdigest()


def _name(text: str) -> str:
    return re.sub(r"[-_.]+", "-", text).lower()


def pins(lock_text: str) -> dict[str, str]:
    """name -> version of each `name==version` line."""
    found = {}
    for line in lock_text.splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, _, version = line.partition("==")
            found[_name(name.split("[")[0])] = version.strip()
    return found


def problems(pyproject: Path = PYPROJECT, lock: Path = LOCK) -> list[str]:
    """Every way the lock disagrees with pyproject.toml; empty when they agree."""
    if not lock.is_file():
        return [f"{lock.name} is missing"]
    text = lock.read_text(encoding="utf-8")
    lists = dependency_lists(pyproject)
    found = _DIGEST.search(text)
    out = []
    if found is None or found.group(1) != digest(lists):
        out.append("pyproject.toml's dependencies changed since the lock was written")
    try:
        from packaging.requirements import Requirement
    except ImportError:  # pip vendors it
        from pip._vendor.packaging.requirements import Requirement
    pinned = pins(text)
    for where, requirements in lists.items():
        for line in requirements:
            req = Requirement(line)
            version = pinned.get(_name(req.name))
            if version is None:
                out.append(f"{where}: {req.name} has no pin in {lock.name}")
            elif req.specifier and not req.specifier.contains(version, prereleases=True):
                out.append(f"{where}: {req.name}=={version} in {lock.name} is outside {req.specifier}")
    return out


def write() -> None:
    """Resolve every extra into a fresh virtualenv and freeze it into the lock."""
    lists = dependency_lists()
    extras = ",".join(k.removeprefix("extra ") for k in lists if k.startswith("extra "))
    with tempfile.TemporaryDirectory(prefix="looml-lock-") as tmp:
        venv = Path(tmp) / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        python = str(venv / "bin" / "python")
        subprocess.run([python, "-m", "pip", "install", "--quiet", "--upgrade", "pip"], check=True)
        subprocess.run([python, "-m", "pip", "install", "--quiet", f"{ROOT}[{extras}]"], check=True)
        frozen = subprocess.run([python, "-m", "pip", "freeze", "--all", "--exclude", "looml"],
                                check=True, capture_output=True, text=True).stdout
    lines = sorted((ln for ln in frozen.splitlines() if "==" in ln), key=str.lower)
    header = ["# The versions `make demo` and `make test` install (pip constraints). Refresh after",
              "# editing pyproject.toml's dependencies: `make lock`. `make lint` fails when they disagree.",
              f"# python {sys.version_info.major}.{sys.version_info.minor}, {sys.platform}",
              f"# pyproject-dependencies-sha256: {digest(lists)}"]
    tmp_lock = LOCK.with_name(LOCK.name + ".tmp")
    tmp_lock.write_text("\n".join([*header, *lines]) + "\n", encoding="utf-8")
    tmp_lock.replace(LOCK)
    print(f"wrote {LOCK.name}: {len(lines)} pins")


def main(argv: list[str]) -> int:
    if argv[1:] == ["write"]:
        write()
        return 0
    if argv[1:] == ["check"]:
        found = problems()
        for problem in found:
            print(f"{LOCK.name}: {problem}", file=sys.stderr)
        if found:
            print("fix: run `make lock` and commit requirements.lock", file=sys.stderr)
        return 1 if found else 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
