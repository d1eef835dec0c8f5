"""SQL ingest benchmark: looml's `fetch_sql` against plain Arrow fetches from the same PostgreSQL table.

A throw-away PostgreSQL server (tests/postgres.py) gets a seeded table of N rows x 20 columns
(15 float8, 5 text categoricals with 3 to 1,000 levels, about 1 % NULLs each), loaded with COPY.
Then, in this one process, each way of reading the whole table into a Polars frame is timed,
best of K, in rotating order:

* adbc        adbc_driver_postgresql.dbapi: execute, cursor.fetch_arrow_table(), pl.from_arrow
* connectorx  cx.read_sql(url, query, return_type="arrow"), pl.from_arrow
* sqlalchemy  pl.read_database(query, engine) with psycopg 3 (SQLAlchemy's driver)
* looml       looml.data.sources.sql.fetch_sql(source) with engine: auto (and each engine forced)
* looml fetch looml.data.sources.fetch(source, ...): the dispatcher (fetch_sql, then NaN -> null)

The result is the ratio of the fastest plain Arrow fetch (adbc or connectorx) to looml's
`fetch_sql` with engine auto, as throughput (target: at least 0.5). Every frame is checked
equal to the plain ADBC frame, so all did the same work.

Usage: .venv/bin/python bench/ingest_sql.py [--rows N] [--repeats K] [--skip-sqlalchemy]
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from looml.data.sources import fetch  # noqa: E402
from looml.data.sources.sql import fetch_sql  # noqa: E402
from looml.spec import SqlSource  # noqa: E402
from postgres import Postgres, running_postgres  # noqa: E402

SEED = 42
TABLE = "bench"
LEVELS = (3, 12, 50, 200, 1000)


def make_frame(rows: int, seed: int) -> pl.DataFrame:
    """15 float columns (normal, log-normal, uniform) and 5 categorical text columns, 1 % missing."""
    rng = np.random.default_rng(seed)
    columns: dict[str, pl.Series] = {}
    for i in range(15):
        values = (rng.normal(size=rows), rng.lognormal(size=rows), rng.uniform(-1e3, 1e3, rows))[i % 3]
        values[rng.random(rows) < 0.01] = np.nan
        columns[f"f{i:02d}"] = pl.Series(values).fill_nan(None)
    for i, levels in enumerate(LEVELS):
        names = np.array([f"level_{k:04d}" for k in range(levels)])
        weights = 1.0 / np.arange(1, levels + 1)
        picked = names[rng.choice(levels, rows, p=weights / weights.sum())].astype(object)
        picked[rng.random(rows) < 0.01] = None
        columns[f"c{i}"] = pl.Series(picked, dtype=pl.String)
    return pl.DataFrame(columns)


def load(pg: Postgres, frame: pl.DataFrame) -> None:
    """CREATE TABLE and COPY the frame in, 100,000 rows at a time; then VACUUM ANALYZE."""
    types = ", ".join(f'"{n}" {"float8" if d == pl.Float64 else "text"}' for n, d in frame.schema.items())
    with pg.connect() as conn:
        conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
        conn.execute(f"CREATE TABLE {TABLE} ({types})")
        with conn.cursor() as cursor, cursor.copy(f"COPY {TABLE} FROM STDIN (FORMAT csv)") as copy:
            for start in range(0, frame.height, 100_000):
                buffer = io.BytesIO()
                frame.slice(start, 100_000).write_csv(buffer, include_header=False)
                copy.write(buffer.getvalue())
        conn.execute(f"VACUUM ANALYZE {TABLE}")


def plain_adbc(url: str, query: str) -> pl.DataFrame:
    import adbc_driver_postgresql.dbapi as adbc

    with adbc.connect(url) as conn, conn.cursor() as cursor:
        cursor.execute(query)
        return pl.from_arrow(cursor.fetch_arrow_table())  # type: ignore[return-value]


def plain_connectorx(url: str, query: str) -> pl.DataFrame:
    import connectorx as cx

    return pl.from_arrow(cx.read_sql(url, query, return_type="arrow"))  # type: ignore[return-value]


def plain_sqlalchemy(url: str, query: str) -> pl.DataFrame:
    import sqlalchemy

    engine = sqlalchemy.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        return pl.read_database(query, engine, infer_schema_length=None)
    finally:
        engine.dispose()


def best_of(ways: dict[str, Callable[[], pl.DataFrame]], repeats: int,
            reference: pl.DataFrame) -> dict[str, float]:
    """The fastest of `repeats` timings of each way, in rotating order; each result checked against
    the reference frame."""
    times: dict[str, list[float]] = {name: [] for name in ways}
    names = list(ways)
    for repeat in range(repeats):
        order = names[repeat % len(names):] + names[:repeat % len(names)]
        for name in order:
            start = time.perf_counter()
            frame = ways[name]()
            times[name].append(time.perf_counter() - start)
            same = frame.equals(reference.cast(frame.schema)) if frame.columns == reference.columns else False
            if not same:
                raise SystemExit(f"{name} returned a different frame:\n{frame.head(3)}\n{reference.head(3)}")
            del frame
            print(f"  {name:<26} {times[name][-1]:7.2f} s", flush=True)
    return {name: min(values) for name, values in times.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-sqlalchemy", action="store_true", help="skip the slow row-by-row paths")
    args = parser.parse_args()
    revision = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=False).stdout.strip()
    print(f"ingest_sql: {args.rows:,} rows x 20 columns, best of {args.repeats}, looml at {revision}, "
          f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    frame = make_frame(args.rows, SEED)
    with running_postgres() as pg:
        start = time.perf_counter()
        load(pg, frame)
        print(f"loaded with COPY in {time.perf_counter() - start:.1f} s")
        url, query = pg.url, f"SELECT * FROM {TABLE}"
        reference = plain_adbc(url, query)  # also warms the server's cache
        assert reference.equals(frame), "the table does not hold the generated rows"

        def looml(engine: str) -> Callable[[], pl.DataFrame]:
            source = SqlSource(kind="sql", url=url, table=TABLE, engine=engine)  # type: ignore[arg-type]
            return lambda: fetch_sql(source, {})[0]

        auto = SqlSource(kind="sql", url=url, table=TABLE)
        ways: dict[str, Callable[[], pl.DataFrame]] = {
            "plain adbc": lambda: plain_adbc(url, query),
            "plain connectorx": lambda: plain_connectorx(url, query),
            "looml fetch_sql (auto)": looml("auto"),
            "looml fetch (dispatcher)": lambda: fetch(auto, ROOT, {}).frame,
            "looml fetch_sql connectorx": looml("connectorx"),
        }
        if not args.skip_sqlalchemy:
            ways["plain sqlalchemy"] = lambda: plain_sqlalchemy(url, query)
            ways["looml fetch_sql sqlalchemy"] = looml("sqlalchemy")
        best = best_of(ways, args.repeats, reference)

    fastest_plain = min(best["plain adbc"], best["plain connectorx"])
    print(f"\n{'way':<28}{'best s':>8}{'rows/s':>14}{'vs fastest plain':>18}")
    for name, seconds in best.items():
        print(f"{name:<28}{seconds:8.2f}{args.rows / seconds:14,.0f}{fastest_plain / seconds:18.2f}")
    ratio = fastest_plain / best["looml fetch_sql (auto)"]
    verdict = "PASS" if ratio >= 0.5 else "FAIL"
    print(f"\nlooml fetch_sql (auto) throughput / fastest plain Arrow fetch: {ratio:.2f} "
          f"(target >= 0.5): {verdict}")
    return 0 if ratio >= 0.5 else 1


if __name__ == "__main__":
    sys.exit(main())
