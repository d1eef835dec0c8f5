"""Shared helpers: small seeded frames, tiny looml projects written to tmp_path, and the browser."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from external_tools import find_chromium, missing_chromium, unavailable


@pytest.fixture(scope="session", autouse=True)
def _own_user_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The suite keeps looml's per-user cache (and what it remembers) to itself, for the session."""
    before = os.environ.get("LOOML_CACHE_DIR")
    os.environ["LOOML_CACHE_DIR"] = str(tmp_path_factory.mktemp("user-cache"))
    yield
    if before is None:
        os.environ.pop("LOOML_CACHE_DIR", None)
    else:
        os.environ["LOOML_CACHE_DIR"] = before


def _classification_frame(rows: int = 120, seed: int = 0, signal: float = 1.0) -> pl.DataFrame:
    """Two numeric features and a 'yes'/'no' label; `signal=0` makes the label pure noise."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=rows)
    label = signal * x1 + rng.normal(size=rows) > 0
    return pl.DataFrame({"x1": x1, "x2": rng.normal(size=rows),
                         "label": np.where(label, "yes", "no")})


@pytest.fixture
def classification_frame() -> Callable[..., pl.DataFrame]:
    """Factory for a small seeded binary classification frame (see `_classification_frame`)."""
    return _classification_frame


@pytest.fixture
def make_project(tmp_path: Path) -> Callable[..., Path]:
    """Factory: write `frame` (or raw bytes) as the data file and a tiny spec; return the spec.

    The spec trains only the linear candidate, so a run that gets that far stays fast.
    `data_yaml` is appended under `data:` and `extra` at the top level.
    """

    def make(frame: pl.DataFrame | bytes | None, target: str = "label", *,
             data_file: str = "data.csv", data_yaml: str = "", extra: str = "") -> Path:
        if isinstance(frame, pl.DataFrame):
            frame.write_csv(tmp_path / data_file)
        elif isinstance(frame, bytes):
            (tmp_path / data_file).write_bytes(frame)
        spec = tmp_path / "looml.yaml"
        spec.write_text(
            "seed: 3\n"
            "data:\n"
            f"  source: {data_file}\n"
            f"  target: {target}\n"
            f"{data_yaml}"
            "models:\n"
            "  candidates: [linear]\n"
            "registry:\n"
            "  model_name: tiny\n"
            f"{extra}",
            encoding="utf-8",
        )
        return spec

    return make


@pytest.fixture
def chromium() -> str:
    """The headless Chromium the browser tests drive (found as tests/external_tools.py says).

    Skips when there is none; in CI (CI=true) fails instead.
    """
    found = find_chromium()
    if found is None:
        unavailable(missing_chromium())
    return str(found)
