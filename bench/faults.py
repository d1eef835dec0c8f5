"""kill -9 at every point, at bench size (issue 16): `--kills` kills (default 200) as chains of 20
on fresh projects, seeds `--seed`, `--seed`+1, ...; each chain is the CI test's
(tests/faultrun.py: a seeded plan of fault points, every invariant checked after every kill,
the last run must succeed with exactly one version). Prints one line a chain and the totals;
exit 1 on the first broken invariant (the message names the seed and the point).

    .venv/bin/python bench/faults.py                 # 200 kills
    .venv/bin/python bench/faults.py --kills 40 --seed 100
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from faultrun import Zygote, run_chain

CHAIN = 20


def main() -> int:
    """Run the chains; 0 when every invariant held after every kill."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out" / "faults")
    args = parser.parse_args()
    started = time.perf_counter()
    zygote = Zygote()
    kills = passed = 0
    points: set[str] = set()
    try:
        seed = args.seed
        while kills < args.kills:
            folder = args.out / f"seed-{seed}"
            shutil.rmtree(folder, ignore_errors=True)
            try:
                result = run_chain(zygote, folder, seed, min(CHAIN, args.kills - kills))
            except AssertionError as exc:
                print(f"FAILED: {exc}", flush=True)
                return 1
            kills += len(result.kills)
            passed += len(result.passed)
            points |= set(result.kills)
            print(f"seed {seed}: {len(result.kills)} kills, {len(result.passed)} armed points passed "
                  f"unreached, {result.seconds:.0f} s", flush=True)
            shutil.rmtree(folder, ignore_errors=True)
            seed += 1
    finally:
        zygote.close()
    print(f"{kills} kills ({len(points)} distinct points), {passed} passed, every invariant held; "
          f"{time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
