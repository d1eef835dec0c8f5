"""A 10-minute soak of `looml serve --workers 2` (issue 16, load): the CI test's harness
(tests/soakrun.py) at bench size, with the timing and memory checks on.

Closed-loop clients send a seeded mix over every protocol (mostly one row, 3 % 1,000 rows, 1 %
malformed) while the champion moves between two versions every `--swap-every` seconds. Passes
when: no 5xx, no failed request, every malformed request a 4xx, both versions answered, every
served row in the prediction log exactly once, the last window's one-row p99 within 1.5x the
first's, and the workers' memory grew under 5 % after the warm-up. Writes bench/out/soak/result.json.

    .venv/bin/python bench/soak.py                       # 600 s, a swap every 120 s
    .venv/bin/python bench/soak.py --seconds 120 --swap-every 30
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from soakrun import run_soak, soak_project  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--swap-every", type=float, default=120)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "soak")
    args = parser.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    spec = soak_project(args.out / "project")
    result = run_soak(spec, seconds=args.seconds, swap_every=args.swap_every, concurrency=args.concurrency,
                      seed=args.seed, windows=max(2, round(args.seconds / 60)))
    problems = result.problems(steady=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                            check=False).stdout.strip()
    report = {"commit": commit, **result.summary(), "swaps_at": [round(t, 1) for t, _ in result.swaps],
              "problems": problems}
    (args.out / "result.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(json.dumps(report, indent=2))
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
