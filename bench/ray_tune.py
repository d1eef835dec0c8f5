"""Ray tuning benchmark: one fixed-trial search on a 2-node local Ray cluster against the local
process pool on the same cores.

A throw-away Ray cluster (tests/raycluster.py) runs on loopback: a head and one more node, each
a `ray start` with one CPU, so the cluster has the machine's two cores. The same search, with
`tuning.n_jobs: 2`, runs through `executor: local` (two pool workers) and through
`executor: {kind: ray}` (two tasks at a time, one per node), in alternating order, each in a
fresh Python process as `looml run` would be (so each pays its own start: the fork server and
its preloads, or connecting and the Ray workers' first imports). The search is a real table of
the corpus (email_spam, 3,921 rows, its 17 numeric columns), bayesian, no time budget, no
ensemble, three folds, a fixed number of trials.

Printed per side: seconds of `tune()`, trials per second, the best CV roc_auc; then the ratio of
Ray's trials per second to the local pool's (target: at least 0.85) and whether both found the
same best trial (they must: no time budget, so the search is deterministic).

Usage: .venv/bin/python bench/ray_tune.py [--trials N] [--repeats K]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
CORPUS = Path(os.environ.get("LOOML_CORPUS", ROOT.parent / "shared" / "corpus"))
CANDIDATES = ["linear", "decision_tree", {"name": "lightgbm", "params": {"n_estimators": 60}}]


def one_search(executor: str, trials: int) -> dict[str, object]:
    """In this process: the search through `executor` ('local' or a Ray address)."""
    import polars as pl

    from looml.learn.tune import tune
    from looml.spec import Spec

    frame = pl.read_parquet(CORPUS / "email_spam.parquet")
    numeric = [c for c, t in frame.schema.items() if t.is_numeric() and c != "spam"]
    X, y = frame.select(numeric).to_pandas(), frame["spam"].to_numpy()
    spec = Spec.model_validate({
        "seed": 7, "data": {"source": "d.csv", "target": "spam"}, "registry": {"model_name": "m"},
        "split": {"folds": 3}, "models": {"candidates": CANDIDATES},
        "tuning": {"method": "bayesian", "trials": trials, "n_jobs": 2, "ensemble": "none",
                   "executor": "local" if executor == "local" else {"kind": "ray", "address": executor}}})
    began = time.perf_counter()
    result = tune(X, y, dict.fromkeys(numeric, "numeric"), spec, "classification", "roc_auc")
    seconds = time.perf_counter() - began
    return {"seconds": seconds, "trials": len(result.rows), "best": result.best.mean["roc_auc"],
            "best_trial": result.best.trial, "notes": result.notes}


def run_side(executor: str, trials: int, env: dict[str, str]) -> dict[str, object]:
    """The search in a fresh process (with the cluster's `env`: its token); its figures."""
    out = subprocess.run([sys.executable, __file__, "--side", executor, "--trials", str(trials)],
                         capture_output=True, text=True, env={**os.environ, **env}, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--side", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        print(json.dumps(one_search(args.side, args.trials)))
        return 0

    from raycluster import running_cluster

    figures: dict[str, list[dict[str, object]]] = {"local": [], "ray": []}
    with running_cluster(nodes=2, cpus=1) as cluster:
        for repeat in range(args.repeats):
            order = ["local", "ray"] if repeat % 2 == 0 else ["ray", "local"]
            for side in order:
                got = run_side("local" if side == "local" else cluster.address, args.trials, cluster.env)
                figures[side].append(got)
                print(f"{side:5s} run {repeat + 1}: {got['seconds']:.1f} s, {got['trials']} trials, "
                      f"best roc_auc {got['best']:.4f} (trial {got['best_trial']})", flush=True)
        print([n for n in figures["ray"][-1]["notes"] if "Ray tasks" in n])
    rate = {side: statistics.median(r["trials"] / r["seconds"] for r in runs)
            for side, runs in figures.items()}
    ratio = rate["ray"] / rate["local"]
    same = {(r["best"], r["best_trial"]) for runs in figures.values() for r in runs}
    print(f"trials/s: local pool {rate['local']:.2f}, ray 2 nodes {rate['ray']:.2f}; "
          f"ratio {ratio:.2f} (target >= 0.85: {'pass' if ratio >= 0.85 else 'FAIL'})")
    print(f"best CV roc_auc: local {figures['local'][0]['best']:.4f}, ray {figures['ray'][0]['best']:.4f}; "
          f"the same best trial in every run: {len(same) == 1}")
    return 0 if ratio >= 0.85 and len(same) == 1 else 1


if __name__ == "__main__":
    sys.exit(main())
