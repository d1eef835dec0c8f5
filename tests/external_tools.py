"""Where the programs the integration tests drive are: headless Chromium and PostgreSQL's server.

The tests and scripts/ensure-chromium.sh / ensure-postgres.sh find them the same way, here:

    python3 tests/external_tools.py chromium   # prints the browser's path; exit 1 (and why) if missing
    python3 tests/external_tools.py postgres   # prints the folder holding initdb and pg_ctl

* Chromium: `$LOOML_CHROMIUM` when set (a path; nothing else is tried), else the first of
  `chromium`, `chromium-browser`, `google-chrome` on PATH.
* PostgreSQL: `$LOOML_PG_BIN` when set (a folder; nothing else is tried), else the folder of the
  `initdb` on PATH (links followed), else the newest /usr/lib/postgresql/*/bin (Debian keeps its
  server binaries off PATH).

A test that needs a missing program calls `unavailable(reason)`: it skips, except in CI
(`CI=true`), where it fails, so that a run without the browser or the database cannot pass
by skipping the tests that need them. Standard library only: the scripts run it before the
virtualenv is needed.
"""

from __future__ import annotations

import glob
import os
import shutil
import sys
from pathlib import Path
from typing import NoReturn

__all__ = ["find_chromium", "find_postgres_bin", "in_ci", "missing_chromium", "missing_postgres",
           "unavailable"]

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
POSTGRES_TOOLS = ("initdb", "pg_ctl")


def find_chromium() -> Path | None:
    """The headless-capable browser the tests drive, or None."""
    chosen = os.environ.get("LOOML_CHROMIUM")
    if chosen:
        path = Path(chosen)
        return path if path.is_file() and os.access(path, os.X_OK) else None
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return Path(found)
    return None


def missing_chromium() -> str:
    """Why `find_chromium()` found nothing, and how to get it."""
    chosen = os.environ.get("LOOML_CHROMIUM")
    where = (f"LOOML_CHROMIUM={chosen} is not an executable file" if chosen
             else f"none of {', '.join(BROWSERS)} is on PATH")
    return f"Chromium not found: {where} (scripts/ensure-chromium.sh installs Debian's chromium)"


def find_postgres_bin() -> Path | None:
    """The folder holding PostgreSQL's initdb and pg_ctl, or None."""
    chosen = os.environ.get("LOOML_PG_BIN")
    if chosen:
        return Path(chosen) if _has_tools(Path(chosen)) else None
    initdb = shutil.which("initdb")
    if initdb and _has_tools(Path(initdb).resolve().parent):
        return Path(initdb).resolve().parent
    found = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")
             if _has_tools(Path(p).parent)]
    found.sort(key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    return found[-1] if found else None


def missing_postgres() -> str:
    """Why `find_postgres_bin()` found nothing, and how to get it."""
    chosen = os.environ.get("LOOML_PG_BIN")
    tools = " and ".join(POSTGRES_TOOLS)
    where = (f"LOOML_PG_BIN={chosen} does not hold {tools}" if chosen
             else f"no {tools} on PATH or under /usr/lib/postgresql/*/bin")
    return f"PostgreSQL not found: {where} (scripts/ensure-postgres.sh installs Debian's postgresql)"


def _has_tools(folder: Path) -> bool:
    return all(os.access(folder / tool, os.X_OK) and (folder / tool).is_file() for tool in POSTGRES_TOOLS)


def in_ci() -> bool:
    """Whether this is a CI run (`CI` set to true, as CI services set it)."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def unavailable(reason: str) -> NoReturn:
    """Skip the calling test because `reason`; in CI, fail it instead."""
    import pytest

    if in_ci():
        pytest.fail(f"{reason}; in CI (CI={os.environ['CI']}) a missing tool fails the run instead of "
                    "skipping its tests", pytrace=False)
    pytest.skip(reason)


def main(argv: list[str]) -> int:
    """`external_tools.py chromium|postgres`: print where it is (exit 0) or why not (exit 1)."""
    finders = {"chromium": (find_chromium, missing_chromium),
               "postgres": (find_postgres_bin, missing_postgres)}
    if len(argv) != 1 or argv[0] not in finders:
        print(f"usage: external_tools.py {'|'.join(finders)}", file=sys.stderr)
        return 2
    find, why = finders[argv[0]]
    found = find()
    if found is None:
        print(why(), file=sys.stderr)
        return 1
    print(found)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
