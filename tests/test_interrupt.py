"""Ctrl-C during `looml run`: the command stops within a few seconds even inside a long model fit,
exits 130, and the next run resumes from the cached stages."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def test_ctrl_c_in_training_stops_promptly_and_the_next_run_resumes(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rows = 30_000
    frame = pl.DataFrame({f"x{i}": rng.normal(size=rows) for i in range(20)}).with_columns(
        label=pl.Series(np.where(rng.normal(size=rows) > 0, "yes", "no")))
    frame.write_parquet(tmp_path / "data.parquet")
    # one forest fit of many deep trees: seconds inside native code, where Python's own SIGINT
    # handler cannot run
    (tmp_path / "looml.yaml").write_text(
        "seed: 1\ndata:\n  source: data.parquet\n  target: label\nsplit:\n  folds: 2\n"
        "models:\n  candidates:\n    - name: random_forest\n      params: {n_estimators: 2000, n_jobs: 1}\n"
        "tuning:\n  method: none\nregistry:\n  model_name: slow\n", encoding="utf-8")
    proc = subprocess.Popen([sys.executable, "-m", "looml", "run", "looml.yaml"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:  # the stage lines; training starts after the split's
        seen.append(line)
        if line.strip().startswith("split"):
            break
    assert proc.poll() is None, "".join(seen)
    time.sleep(1.5)  # inside the forest's fit

    interrupted = time.monotonic()
    proc.send_signal(signal.SIGINT)
    rest = proc.communicate(timeout=60)[0]
    took = time.monotonic() - interrupted

    assert proc.returncode == 130, "".join(seen) + rest
    assert took < 6, f"took {took:.1f} s to stop"
    assert "interrupted" in rest and "Traceback" not in rest
    cache = tmp_path / ".looml" / "cache"
    # the finished stages are committed for the next run to reuse; nothing was registered
    assert all((cache / stage / "latest.json").is_file() for stage in ("ingest", "split")), \
        sorted(p.name for p in cache.iterdir())
    assert not (tmp_path / ".looml" / "mlflow.db").exists()
