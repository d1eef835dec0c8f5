"""Where a 1,000-row request's server time goes, stage by stage, in one process.

For each model `bench/serve.py` trained (in `bench/out/serve/<model>/`; run that first), on its
first 1,000-row `/invocations` body: parsing (JSON to columns), validation against the schema,
the served scorer, the prediction log's frame and its Parquet write, and, for scale, orjson's
parse alone. Each figure is the fastest of 30 calls (ms), so it reads well on a busy machine;
the end-to-end rows/s against in-process `pipeline.predict` stay `bench/serve.py`'s to measure.

Usage: .venv/bin/python bench/serve_stages.py [MODEL ...]   (default: every trained model)
"""

from __future__ import annotations

import io
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import orjson

OUT = Path(__file__).resolve().parent / "out" / "serve"


def fastest(work: Callable[[], object], calls: int = 30) -> float:
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times) * 1e3


def stages(model_dir: Path) -> dict[str, float | str]:
    from looml.serve import mlflow_scoring
    from looml.serve.model import load_model
    from looml.serve.validation import validate_batch
    from looml.spec import load_spec
    from looml.store import predictions
    from looml.store.connect import local_tracking_uri

    spec = load_spec(model_dir / "looml.yaml")
    body = (model_dir / "bodies" / "invocations-1000.jsonl").read_bytes().split(b"\n")[0]
    model = load_model(local_tracking_uri(spec.tracking.uri, spec.project_dir), spec.registry.model_name)

    def parse() -> dict:
        return mlflow_scoring.parse_invocations(body, "application/json", list(model.features))[0]

    def validate_only() -> float:
        batch = parse()
        start = time.perf_counter()
        validate_batch(batch, model, 10**6)
        return time.perf_counter() - start

    batch = parse()
    validate_batch(batch, model, 10**6)
    prediction = model.predict(batch)
    rows = predictions.RowsToLog(request_id=("r",), timestamp=datetime.now(UTC), model_name=model.name,
                                 model_version=model.version, endpoint=("/invocations",),
                                 features=model.features, batch=batch, prediction=prediction,
                                 classes=model.classes, request_rows=(1000,))
    frame = predictions._frame([rows])
    return {
        "scorer": model.scorer.name if model.scorer is not None else "pipeline",
        "parse": fastest(parse),
        "validate": min(validate_only() for _ in range(30)) * 1e3,
        "score": fastest(lambda: model.predict(batch)),
        "log frame": fastest(lambda: predictions._frame([rows])),
        "log write": fastest(lambda: predictions.write_parquet(frame, io.BytesIO())),
        "orjson alone": fastest(lambda: orjson.loads(body)),
    }


def main() -> None:
    names = sys.argv[1:] or sorted(p.name for p in OUT.iterdir() if (p / "bodies").is_dir())
    for name in names:
        found = stages(OUT / name)
        cells = ", ".join(f"{k} {v:.2f}" for k, v in found.items() if k != "scorer")
        print(f"{name} ({found['scorer']}), ms: {cells}")


if __name__ == "__main__":
    main()
