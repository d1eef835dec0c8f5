"""The soak's 30-second version (issue 16, load): `looml serve --workers 2` under mixed load over
every protocol, 1 % malformed, the champion swapped every 10 s; `tests/soakrun.py` says what
is checked. The 10-minute one, with the timing and memory checks, is `bench/soak.py`."""

from __future__ import annotations

from pathlib import Path

import pytest

from soakrun import CORPUS, TABLE, run_soak, soak_project


def test_thirty_seconds_of_mixed_load_and_two_swaps_lose_nothing(tmp_path: Path) -> None:
    if not (CORPUS / f"{TABLE}.parquet").is_file():
        pytest.fail(f"no corpus table {TABLE} at {CORPUS} (set LOOML_CORPUS to its folder)")
    spec = soak_project(tmp_path / "soak")
    result = run_soak(spec, seconds=30, swap_every=10, concurrency=8, seed=1)
    print(result.summary())  # shown when it fails
    assert len(result.swaps) == 2 and result.summary()["malformed"] > 0
    assert result.problems(steady=False) == []
