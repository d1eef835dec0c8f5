"""The artifact store's temporary names: a killed writer's are swept, a live writer's kept."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from looml.store.artifacts import ArtifactStore, atomic_write, sweep_temp


def _dead_pid() -> int:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    return int(gone.stdout)


def test_sweep_removes_a_dead_writers_temporaries_and_keeps_the_rest(tmp_path: Path) -> None:
    dead, live = _dead_pid(), os.getpid()
    (tmp_path / "ab").mkdir()
    doomed = [tmp_path / f".new.{dead}.k2j4_x9q.tmp", tmp_path / "ab" / f".latest.json.{dead}.12345678.tmp",
              tmp_path / f".mlflow-{dead}-0badc0de.db.tmp"]
    kept = [tmp_path / f".new.{live}.a1b2c3d4.tmp", tmp_path / f".mlflow-{live}-0badc0de.db.tmp",
            tmp_path / ".report.html.tmp", tmp_path / "ab" / "notes.txt"]
    for path in [*doomed, *kept]:
        path.write_bytes(b"half")

    removed = sweep_temp(tmp_path)

    assert sorted(removed) == sorted(doomed)
    assert all(p.exists() for p in kept)
    assert sweep_temp(tmp_path / "absent") == []


def test_the_temporary_names_carry_the_writers_pid(tmp_path: Path) -> None:
    seen: list[str] = []
    atomic_write(tmp_path / "x.json", lambda tmp: seen.append(tmp.name) or tmp.write_text("{}"))
    ArtifactStore(tmp_path / "store").put_file(lambda tmp: seen.append(tmp.name) or tmp.write_bytes(b"1"))

    assert [n.split(".")[-3] for n in seen] == [str(os.getpid())] * 2
    assert not list(tmp_path.rglob("*.tmp"))
