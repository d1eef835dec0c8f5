"""The Ray executor's setup, without a cluster: the spec key, Ray missing, and addresses where no
cluster answers (each a clear error, never a hang). Apart from tests/executors/test_ray.py, whose
cluster `auto` would find: Ray's `auto` looks for a GCS among this machine's processes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from looml.errors import SpecError
from looml.executors.ray import connect
from looml.spec import load_spec
from raycluster import ENV, free_port


def test_an_unreachable_address_is_a_clear_error_not_a_hang() -> None:
    port = free_port()
    began = time.monotonic()
    with pytest.raises(SpecError, match=rf"tuning\.executor\.address: no Ray cluster answers there "
                                        rf".*\(got '127\.0\.0\.1:{port}'\)\n\s+fix: start one \(ray start "
                                        r"--head"):
        connect(f"127.0.0.1:{port}")
    assert time.monotonic() - began < 10


def test_an_unknown_cluster_for_auto_is_the_same_clear_error() -> None:
    if any("gcs_server" in " ".join(p.info["cmdline"] or []) for p in psutil.process_iter(["cmdline"])):
        pytest.skip("a Ray cluster runs on this machine: auto would connect to it")
    # a fresh process, as `looml run` is, without a cluster address in its environment
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    script = ("from looml.executors.ray import connect\n"
              "try:\n    connect('auto')\nexcept Exception as e:\n    print(e)")
    said = subprocess.run([sys.executable, "-c", script], env={**env, **ENV}, capture_output=True, text=True,
                          timeout=60).stdout
    assert re.search(r"tuning\.executor\.address: Ray could not connect: .*\(got 'auto'\)\n\s+fix: start a "
                     r"cluster \(ray start --head\)", said), said


def test_without_ray_installed_kind_ray_names_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` finds when Ray is not installed
    with pytest.raises(SpecError, match=r"tuning\.executor\.kind: Ray is not installed \(got 'ray'\)\n"
                                        r"\s+fix: pip install 'looml\[ray\]'"):
        connect("auto")


SPEC = """\
data: {source: data.csv, target: label}
registry: {model_name: churn}
tuning:
  executor: %s
"""


@pytest.mark.parametrize(("written", "kind", "address"), [
    ("local", "local", "auto"), ("{kind: local}", "local", "auto"), ("ray", "ray", "auto"),
    ("{kind: ray, address: 'ray://head.example:10001'}", "ray", "ray://head.example:10001"),
    ("{kind: ray, address: '10.0.0.5:6379'}", "ray", "10.0.0.5:6379"),
])
def test_the_executor_is_a_kind_alone_or_with_an_address(tmp_path: Path, written: str, kind: str,
                                                          address: str) -> None:
    (tmp_path / "looml.yaml").write_text(SPEC % written, encoding="utf-8")
    executor = load_spec(tmp_path / "looml.yaml").tuning.executor
    assert (executor.kind, executor.resolved_address) == (kind, address)


@pytest.mark.parametrize(("written", "message"), [
    ("{kind: local, address: auto}", r"tuning\.executor\.address \(line 4\): an address is for kind: ray "
                                     r"\(got 'auto'\)\n\s+fix: remove it, or set kind: ray"),
    ("{kind: ray, address: 'http://head:8265'}", r"tuning\.executor\.address \(line 4\): not a Ray "
                                                 r"address \(got 'http://head:8265'\)\n\s+fix: use auto"),
    ("dask", r"tuning\.executor\.kind \(line 4\): .*'local' or 'ray'"),
])
def test_a_wrong_executor_is_a_spec_error_at_its_line(tmp_path: Path, written: str, message: str) -> None:
    (tmp_path / "looml.yaml").write_text(SPEC % written, encoding="utf-8")
    with pytest.raises(SpecError, match=message):
        load_spec(tmp_path / "looml.yaml")


def test_predict_names_an_unknown_executor_before_any_work(tmp_path: Path) -> None:
    from looml.batch import predict

    (tmp_path / "looml.yaml").write_text(SPEC % "local", encoding="utf-8")
    with pytest.raises(SpecError, match=r"--executor: unknown executor \(got 'rey'\)\n\s+fix: did you mean "
                                        r"'ray'\?"):
        predict(tmp_path / "looml.yaml", None, tmp_path / "out.parquet", executor="rey")
    assert list(tmp_path.iterdir()) == [tmp_path / "looml.yaml"]
