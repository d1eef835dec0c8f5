"""`looml validate` and `looml run` output, through the real console script."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import polars as pl

LOOML = Path(sys.executable).with_name("looml")


def looml(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LOOML), *map(str, args)], capture_output=True, text=True,
                          timeout=300, check=False)


def test_validate_reports_roles_and_trains_nothing(
        make_project: Callable[..., Path], classification_frame: Callable[..., pl.DataFrame]) -> None:
    frame = classification_frame().with_columns(pl.lit("same").alias("constant"))
    spec = make_project(frame)

    out = looml("validate", spec, "--json")

    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["task"] == "classification"
    assert result["features"] == {"x1": "numeric", "x2": "numeric"}
    assert result["dropped"]["constant"].startswith("constant")
    assert not (spec.parent / ".looml" / "cache" / "train").exists()
    assert not (spec.parent / ".looml" / "mlflow.db").exists()


def test_validate_exits_3_with_every_data_problem(
        make_project: Callable[..., Path], classification_frame: Callable[..., pl.DataFrame]) -> None:
    spec = make_project(classification_frame(), target="lable",
                        data_yaml="  drop_columns: [x3]\n")

    out = looml("validate", spec)

    assert out.returncode == 3
    assert "did you mean 'label'" in out.stderr and "data.drop_columns[0]" in out.stderr


def test_validate_stops_where_run_would_stop_before_training(
        make_project: Callable[..., Path], classification_frame: Callable[..., pl.DataFrame]) -> None:
    # The train / holdout skew check runs in `looml run` before training: `validate` runs it too.
    strict = "validation:\n  train_test_skew: {severity: error, threshold: 0.0}\n"
    spec = make_project(classification_frame(rows=1_500), extra=strict)

    checked, ran = looml("validate", spec), looml("run", spec)

    assert checked.returncode == ran.returncode == 3, checked.stderr
    assert "train_test_skew" in checked.stderr and "valid:" not in checked.stdout
    assert not (spec.parent / ".looml" / "mlflow.db").exists()


def test_run_summary_names_the_model_report_and_mlflow_command(
        make_project: Callable[..., Path], classification_frame: Callable[..., pl.DataFrame]) -> None:
    spec = make_project(classification_frame())

    out = looml("run", spec)

    assert out.returncode == 0, out.stderr
    assert "tiny version 1 (alias: champion)" in out.stdout
    assert "report" in out.stdout and ".html" in out.stdout
    assert "mlflow ui --backend-store-uri sqlite:///" in out.stdout
    assert "train" in out.stderr and "first run" in out.stderr
    assert "stays champion" not in out.stdout

    # A second version does not take the alias: the summary says who stays champion and how to promote.
    classification_frame(seed=1).write_csv(spec.parent / "data.csv")
    second = looml("run", spec)
    assert second.returncode == 0, second.stderr
    assert "tiny version 2 " in second.stdout and "(alias: champion)" not in second.stdout
    assert "v1 stays champion" in second.stdout
    assert f"looml models promote 2 --spec {spec}" in " ".join(second.stdout.split())
    promoted = looml("models", "promote", "2", "--spec", spec)
    assert promoted.returncode == 0 and "v1 -> v2" in promoted.stderr


def test_version_prints_the_package_version() -> None:
    from looml import __version__

    result = looml("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"looml {__version__}"


def test_serve_on_a_busy_port_exits_8_before_loading_the_model(
        make_project: Callable[..., Path], classification_frame: Callable[..., pl.DataFrame]) -> None:
    import socket

    spec = make_project(classification_frame())
    assert looml("run", spec).returncode == 0
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        out = looml("serve", spec, "--port", str(port))
    assert out.returncode == 8, out.stderr
    assert "serve.port: cannot listen there" in out.stderr and f"127.0.0.1:{port}" in out.stderr
    assert "--port" in out.stderr and "Traceback" not in out.stderr


def test_init_writes_files_with_the_mode_a_plain_open_gives(
        tmp_path: Path, classification_frame: Callable[..., pl.DataFrame]) -> None:
    import os
    import stat

    classification_frame().write_csv(tmp_path / "t.csv")
    mask = os.umask(0o022)
    try:
        out = subprocess.run([str(LOOML), "init", "--data", "t.csv", "--target", "label"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=120, check=False)
    finally:
        os.umask(mask)
    assert out.returncode == 0, out.stderr
    assert stat.S_IMODE((tmp_path / "looml.yaml").stat().st_mode) == 0o644  # not mkstemp's 0600
