"""The holdout analysis's share of a `looml run`: the same run with and without it, side by side.

For each corpus table, fresh projects run `looml run --json` in their own process, alternating
`evaluation.analysis: true` (intervals, fairness over the table's sensitive columns, slices, the
explanations) and `false` (holdout metrics only); both keep the sensitive columns out of the
features, so the model is the same. Prints per table the median wall of each side and their
ratio, and the median seconds of the stages the analysis adds work to (evaluate, explain,
report, register) on each side, with their difference as a share of the run without analysis:
on a shared machine the walls of two runs differ by more than the analysis costs, the stage
times do not. Target (issue 14): at most 1.15x.

    .venv/bin/python bench/analysis.py --repeats 3
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"
# table: (target, sensitive columns, slice columns)
TABLES = {
    "rossi_rearrest": ("arrest", ["race", "age"], ["fin", "prio"]),
    "employee_attrition": ("Attrition", ["Gender", "Age"], ["Department", "MonthlyIncome"]),
    "police_force_injury": ("subject_injury", ["race", "sex"], ["age", "precinct"]),
}


_STAGES = ("evaluate", "explain", "report", "register")  # the stages the analysis adds work to


def _run(folder: Path, table: str, analysis: bool, candidates: str) -> dict:
    target, sensitive, slices = TABLES[table]
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    shutil.copyfile(CORPUS / f"{table}.parquet", folder / "data.parquet")
    (folder / "looml.yaml").write_text(
        f"seed: 7\ndata: {{source: data.parquet, target: {target}}}\n"
        f"models: {{candidates: [{candidates}]}}\n"
        f"evaluation:\n  analysis: {str(analysis).lower()}\n"
        f"  sensitive_columns: [{', '.join(sensitive)}]\n  slices: [{', '.join(slices)}]\n"
        "registry: {model_name: m}\n", encoding="utf-8")
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "looml", "run", "looml.yaml", "--json"], cwd=folder,
                          capture_output=True, text=True, check=False, timeout=1800)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{table} (analysis {analysis}) failed: {done.stderr[-2000:]}")
    stages = {s["name"]: s["seconds"] for s in json.loads(done.stdout)["stages"]}
    return {"wall": wall, **{name: stages.get(name, 0.0) for name in _STAGES}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--tables", nargs="*", default=list(TABLES))
    parser.add_argument("--candidates", default="linear, lightgbm")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "analysis")
    args = parser.parse_args()
    worst = 0.0
    print(f"{'table':22} {'wall on':>8} {'wall off':>8} {'ratio':>6} {'evaluate on/off':>16} "
          f"{'explain on/off':>15} {'report on/off':>14} {'register on/off':>16} {'added':>6}")
    for table in args.tables:
        runs: dict[bool, list[dict]] = {True: [], False: []}
        for i in range(args.repeats):
            for analysis in ((True, False) if i % 2 == 0 else (False, True)):  # alternate who goes first
                runs[analysis].append(_run(args.out / f"{table}-{analysis}-{i}", table, analysis,
                                           args.candidates))
        med = {a: {k: statistics.median(r[k] for r in runs[a]) for k in ("wall", *_STAGES)} for a in runs}
        ratio = med[True]["wall"] / med[False]["wall"]
        added = sum(med[True][s] - med[False][s] for s in _STAGES) / med[False]["wall"]
        worst = max(worst, added)
        cells = " ".join(f"{med[True][s]:7.2f} / {med[False][s]:5.2f}" for s in _STAGES)
        print(f"{table:22} {med[True]['wall']:8.1f} {med[False]['wall']:8.1f} {ratio:6.2f} {cells} "
              f"{added:6.1%}", flush=True)
    return 0 if worst <= 0.15 else 1


if __name__ == "__main__":
    raise SystemExit(main())
