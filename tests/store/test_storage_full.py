"""A full disk under the project (issue 16, disk): `looml run` with a file-size limit
(RLIMIT_FSIZE, what a full disk looks like to a writer: EFBIG instead of ENOSPC) that stops it at
the snapshot, at the tracking store and later. Each time: exit 9 and an error that names what
could not be written and the fix, no traceback; then, with room again, the run completes with one
model version and no temporary file left."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl

LOOML = Path(sys.executable).with_name("looml")


def looml_run(folder: Path, limit: int | None) -> subprocess.CompletedProcess[str]:
    def limited() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    # Output through pipes, which the limit does not cover.
    return subprocess.run([str(LOOML), "run", "looml.yaml"], cwd=folder, capture_output=True, text=True,
                          timeout=300, check=False, env=os.environ.copy(),
                          preexec_fn=limited if limit is not None else None)


def test_a_full_disk_at_any_stage_is_a_clear_error_and_the_run_resumes(
        make_project: Callable[..., Path]) -> None:
    rng = np.random.default_rng(0)
    frame = pl.DataFrame({"x": rng.normal(size=300), "c": rng.choice(["a", "b", "c"], 300),
                          "label": rng.choice(["yes", "no"], 300)})
    spec = make_project(frame, extra="split: {folds: 2}\n")
    folder = spec.parent
    for limit, where in ((3_000, "artifacts"), (30_000, "mlflow.db"), (1_000_000, "mlflow.db")):
        failed = looml_run(folder, limit)
        assert failed.returncode == 9, (limit, failed.stdout[-2000:], failed.stderr[-3000:])
        assert "Traceback" not in failed.stderr, failed.stderr
        assert "cannot write here" in failed.stderr and where in failed.stderr, failed.stderr
        assert "free space on the disk" in failed.stderr
    done = looml_run(folder, None)
    assert done.returncode == 0, done.stderr[-3000:]
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{folder / '.looml' / 'mlflow.db'}")
    assert [str(v.version) for v in client.search_model_versions("name = 'tiny'")] == ["1"]
    assert list((folder / ".looml").rglob("*.tmp")) == []
