"""A seeded corruption generator over the corpus tables: small CSV (and Parquet) files broken the
ways real exports break. `case(i, seed)` is deterministic, so a failing case reproduces by number.

Each case is a few columns and a few dozen rows of one corpus table (the target kept), written as
CSV and then corrupted by one of `CORRUPTIONS` (and sometimes a second): small, so that hundreds
run in-process in seconds. `WIDE` and `HUGE_FIELD` are the two costly ones; the test runs them
once each at full size.
"""

from __future__ import annotations

import io
import json
import os
import random
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import polars as pl

CORPUS = Path(os.environ.get("LOOML_CORPUS", Path(__file__).resolve().parents[3] / "shared" / "corpus"))
FEATURES = 4
ROWS = 30
WIDE = 10_000
HUGE_FIELD = 10 * 2**20


@dataclass(frozen=True)
class Case:
    """One corrupted file: what was done to which table, its bytes, and the spec's target."""

    number: int
    table: str
    corruptions: tuple[str, ...]
    target: str
    data: bytes
    file_name: str = "data.csv"

    def write(self, folder: Path, extra: str = "") -> Path:
        """The file and a tiny spec (linear only, one trial, two folds) in `folder`; the spec's path."""
        (folder / self.file_name).write_bytes(self.data)
        spec = folder / "looml.yaml"
        spec.write_text(
            f"data:\n  source: {self.file_name}\n  target: {json.dumps(self.target)}\n"
            "split: {folds: 2}\nmodels: {candidates: [linear]}\ntuning: {trials: 1}\n"
            f"registry: {{model_name: hostile}}\n{extra}", encoding="utf-8")
        return spec

    def __str__(self) -> str:
        return f"case {self.number}: {self.table} with {' + '.join(self.corruptions)}"


def clear(project: Path) -> None:
    """Remove the last test's data files and inferred schema from a shared project folder (each
    test is a new table's layout)."""
    (project / "looml.schema.yaml").unlink(missing_ok=True)
    for old in project.glob("data.*"):
        old.unlink()


@cache
def tables() -> dict[str, dict]:
    """The corpus's metadata by table name (empty without a corpus)."""
    path = CORPUS / "datasets.json"
    return json.loads(path.read_text()) if path.exists() else {}


@cache
def _table(name: str) -> pl.DataFrame:
    return pl.read_parquet(CORPUS / f"{name}.parquet")


def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\n")


def _rows(rng: random.Random, lines: list[bytes]) -> list[int]:
    """Indexes of the data lines (not the header, not the empty piece after the last newline)."""
    return [i for i in range(1, len(lines)) if lines[i]]


def _truncated_last_line(rng: random.Random, data: bytes, _: pl.DataFrame) -> bytes:
    body = data.rstrip(b"\n")
    last = body.rfind(b"\n")
    return body[: last + 1 + rng.randrange(max(len(body) - last - 1, 1))]


def _nul_bytes(rng: random.Random, data: bytes, _: pl.DataFrame) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        out.insert(rng.randrange(len(out)), 0)
    return bytes(out)


def _huge_field(rng: random.Random, data: bytes, frame: pl.DataFrame, size: int = HUGE_FIELD) -> bytes:
    lines = _lines(data)
    i = rng.choice(_rows(rng, lines))
    fields = lines[i].split(b",")
    fields[rng.randrange(len(fields))] = b"x" * size
    lines[i] = b",".join(fields)
    return b"\n".join(lines)


def _wide(rng: random.Random, data: bytes, frame: pl.DataFrame, columns: int = WIDE) -> bytes:
    extra = pl.DataFrame({f"w{i}": [rng.random() for _ in range(frame.height)] for i in range(columns)})
    return _csv(pl.concat([frame, extra], how="horizontal"))


def _one_row(rng: random.Random, data: bytes, _: pl.DataFrame) -> bytes:
    lines = _lines(data)
    return lines[0] + b"\n" + lines[rng.choice(_rows(rng, lines))] + b"\n"


def _all_null_columns(rng: random.Random, data: bytes, frame: pl.DataFrame) -> bytes:
    names = rng.sample(frame.columns, rng.randint(1, len(frame.columns)))
    return _csv(frame.with_columns(pl.lit(None).alias(n) for n in names))


def _bom(rng: random.Random, data: bytes, _: pl.DataFrame) -> bytes:
    return rng.choice([b"\xef\xbb\xbf", b"\xff\xfe", b"\xef\xbb\xbf\xef\xbb\xbf"]) + data


def _mixed_line_endings(rng: random.Random, data: bytes, _: pl.DataFrame) -> bytes:
    return b"".join(line + rng.choice([b"\n", b"\r\n", b"\r", b"\n\r"]) for line in data.split(b"\n") if line)


def _duplicate_header(rng: random.Random, data: bytes, frame: pl.DataFrame) -> bytes:
    lines = _lines(data)
    header = lines[0].split(b",")
    i, j = rng.sample(range(len(header)), 2)
    header[i] = header[j]
    lines[0] = b",".join(header)
    return b"\n".join(lines)


def _header_only(rng: random.Random, data: bytes, _: pl.DataFrame) -> bytes:
    return _lines(data)[0] + rng.choice([b"\n", b""])


def _non_utf8(rng: random.Random, data: bytes, _: pl.DataFrame) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        at = rng.randrange(len(out))
        out[at:at] = rng.choice([b"\xe9", b"\xff\xfe", b"\x80", b"caf\xe9", b"\xc3"])
    return bytes(out)


def _thousands(rng: random.Random, data: bytes, frame: pl.DataFrame) -> bytes:
    numeric = [c for c, t in frame.schema.items() if t.is_numeric()]
    if not numeric:
        return data
    def fmt(v: object) -> str | None:
        return None if v is None else f"{float(v) * 1000:,.{rng.choice([0, 2])}f}"
    return _csv(frame.with_columns(pl.col(c).map_elements(fmt, return_dtype=pl.String)
                                   for c in rng.sample(numeric, rng.randint(1, len(numeric)))))


def _inf_nan(rng: random.Random, data: bytes, frame: pl.DataFrame) -> bytes:
    words = ["inf", "-inf", "nan", "NaN", "Infinity", "-Infinity", "+inf", "INF", "1e400", "-1e400"]
    cast = frame.with_columns(pl.all().cast(pl.String))
    names = rng.sample(cast.columns, rng.randint(1, len(cast.columns)))
    return _csv(cast.with_columns(
        pl.when(pl.int_range(pl.len()) % rng.randint(1, 4) == 0).then(pl.lit(rng.choice(words)))
        .otherwise(pl.col(n)).alias(n) for n in names))


def _truncated_parquet(rng: random.Random, data: bytes, frame: pl.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.write_parquet(buf)
    whole = buf.getvalue()
    return whole[: rng.randrange(len(whole))]


def _csv(frame: pl.DataFrame) -> bytes:
    return frame.write_csv().encode()


CORRUPTIONS = {
    "truncated_last_line": _truncated_last_line, "nul_bytes": _nul_bytes, "huge_field": _huge_field,
    "wide": _wide, "one_row": _one_row, "all_null_columns": _all_null_columns, "bom": _bom,
    "mixed_line_endings": _mixed_line_endings, "duplicate_header": _duplicate_header,
    "header_only": _header_only, "non_utf8": _non_utf8, "thousands_separators": _thousands,
    "inf_nan_strings": _inf_nan, "truncated_parquet": _truncated_parquet,
}
# Cheap enough to combine with another in one file; the rest stand alone.
_SECOND = ["nul_bytes", "bom", "mixed_line_endings", "duplicate_header", "non_utf8", "truncated_last_line"]
COSTLY = ("wide", "huge_field")


CASES_SEED = 16


def case(number: int, seed: int = CASES_SEED, *, small: bool = True) -> Case:
    """Case `number` of the sequence for `seed`. `small` makes the costly corruptions small
    (30 columns, a 100 kB field) so that many cases fit a test run; the full sizes are for
    the cases the test runs once."""
    rng = random.Random(seed * 1_000_003 + number)
    names = sorted(tables())
    table = names[number % len(names)]
    meta = tables()[table]
    full = _table(table)
    features = [c for c in full.columns if c != meta["target"]]
    chosen = [*rng.sample(features, min(FEATURES, len(features))), meta["target"]]
    frame = full.select(chosen).sample(min(ROWS, full.height), seed=rng.randrange(2**31))
    kinds = list(CORRUPTIONS)
    first = kinds[(number // len(names) + number) % len(kinds)]
    done = [first]
    if first == "wide" and small:
        data = _wide(rng, _csv(frame), frame, columns=30)
    elif first == "huge_field" and small:
        data = _huge_field(rng, _csv(frame), frame, size=100_000)
    else:
        data = CORRUPTIONS[first](rng, _csv(frame), frame)
    if first not in ("truncated_parquet", *COSTLY) and rng.random() < 0.3:
        second = rng.choice([k for k in _SECOND if k != first])
        data = CORRUPTIONS[second](rng, data, frame)
        done.append(second)
    file_name = "data.parquet" if first == "truncated_parquet" else "data.csv"
    return Case(number, table, tuple(done), meta["target"], data, file_name)
