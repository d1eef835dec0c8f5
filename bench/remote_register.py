"""Team-mode benchmark: the `register` stage of `looml run` against a remote MLflow server
(PostgreSQL backend store, S3 artifacts on moto, all on loopback: tests/teamserver.py) against
the embedded SQLite default, on the same corpus table and spec.

Each repeat runs `looml run --json` twice, in rotating order, each in a fresh project folder (so
every run trains and registers: nothing is cached, and the SQLite side creates its store as a
new user's first run does). The remote side's model name is fresh per repeat, so each repeat
registers a first version on both sides. The figure is the median register seconds of each
side and their difference (target: remote at most 2 s slower), and the same leaving out the
first repeat (a freshly started server's first registration pays its own lazy imports).
Loopback hides network latency: each registration makes dozens of HTTP calls (params, metrics,
artifacts, trials as child runs, the model's files), each a round trip on a real network.

Usage: .venv/bin/python bench/remote_register.py [--table NAME] [--repeats K]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from teamserver import TeamServer, running_team_server  # noqa: E402

CORPUS = Path("/work/shared/corpus")
LOOML = Path(sys.executable).with_name("looml")


def one_run(folder: Path, table: Path, target: str, tracking: str, model: str,
            env: dict[str, str]) -> dict[str, float]:
    """`looml run --json` in a fresh folder; the seconds of each stage."""
    folder.mkdir(parents=True)
    pl.read_parquet(table).write_parquet(folder / "data.parquet")
    tracking_line = f"tracking: {{uri: '{tracking}'}}\n" if tracking else ""
    (folder / "looml.yaml").write_text(
        f"seed: 3\ndata: {{source: data.parquet, target: {target}}}\nmodels: {{candidates: [linear]}}\n"
        f"tuning: {{trials: 2}}\nregistry: {{model_name: {model}}}\n{tracking_line}", encoding="utf-8")
    done = subprocess.run([str(LOOML), "run", "looml.yaml", "--json"], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        said = done.stdout[-3000:] + done.stderr[-3000:]
        raise RuntimeError(f"looml run failed ({done.returncode}):\n{said}")
    return {s["name"]: s["seconds"] for s in json.loads(done.stdout)["stages"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table", default="biomass_heating_value")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    meta = json.loads((CORPUS / "datasets.json").read_text())[args.table]
    table = CORPUS / f"{args.table}.parquet"
    times: dict[str, list[float]] = {"sqlite": [], "remote": []}
    with tempfile.TemporaryDirectory(prefix="looml-bench-team-") as tmp, running_team_server() as team:
        env = TeamServer.client_env(team)
        for repeat in range(args.repeats):
            order = ["sqlite", "remote"] if repeat % 2 == 0 else ["remote", "sqlite"]
            for side in order:
                tracking = team.url if side == "remote" else ""
                stages = one_run(Path(tmp) / f"{side}-{repeat}", table, meta["target"], tracking,
                                 f"bench{repeat}", env)
                times[side].append(stages["register"])
                print(f"repeat {repeat} {side:6s} register {stages['register']:.2f} s", flush=True)
    sqlite, remote = (statistics.median(times[k]) for k in ("sqlite", "remote"))
    print(f"table {args.table} ({meta['rows']} rows), {args.repeats} repeats")
    print(f"register median: sqlite {sqlite:.2f} s, remote {remote:.2f} s, "
          f"remote - sqlite {remote - sqlite:+.2f} s (target <= +2 s)")
    if args.repeats > 1:  # the server's first registration pays its own lazy imports once
        warm = statistics.median(times["remote"][1:]) - statistics.median(times["sqlite"][1:])
        print(f"after the server's first registration: remote - sqlite {warm:+.2f} s")


if __name__ == "__main__":
    main()
