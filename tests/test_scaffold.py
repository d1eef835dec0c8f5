"""`looml init`'s spec: every section (those it sets, the rest commented at their defaults), the
date parts the data has, the positive class, the target-encoded columns and a skewed target."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import numpy as np
import polars as pl
import yaml

from looml.scaffold import init_spec
from looml.spec import Spec, load_spec


def table(rows: int = 300, *, times: bool = False, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    start = dt.datetime(2023, 1, 1)
    when = [start + dt.timedelta(days=int(d), hours=int(h) if times else 0)
            for d, h in zip(rng.integers(0, 700, rows), rng.integers(0, 24, rows), strict=True)]
    return pl.DataFrame({"x": rng.normal(size=rows), "city": [f"c{i}" for i in rng.integers(0, 120, rows)],
                         "plan": rng.choice(["a", "b", "c"], rows), "when": when,
                         "churned": rng.choice(["stay", "left"], rows),
                         "price": np.exp(rng.normal(3, 1.5, rows)).round(2)})


def written(tmp_path: Path, frame: pl.DataFrame, target: str) -> str:
    data = tmp_path / "t.csv"
    frame.write_csv(data)
    return init_spec(data, target, tmp_path / "looml.yaml", overwrite=True).read_text(encoding="utf-8")


def test_every_section_is_written_or_commented_and_the_comments_are_the_defaults(tmp_path: Path) -> None:
    text = written(tmp_path, table(), "churned")
    sections = set(Spec.model_fields) - {"project_dir"}
    shown = {m for m in re.findall(r"^(?:# )?([a-z_]+):", text, flags=re.MULTILINE)}
    assert sections <= shown
    # uncommenting every commented section gives a spec equal to the one written
    tail = text.split("uncomment a key to change it.\n", 1)[1]
    uncommented = "\n".join(line[2:] for line in tail.splitlines() if re.match(r"# ( |[a-z_]+:)", line))
    (tmp_path / "full.yaml").write_text(text.split("# The sections below")[0] + uncommented, encoding="utf-8")
    assert load_spec(tmp_path / "full.yaml") == load_spec(tmp_path / "looml.yaml").model_copy(
        update={"project_dir": tmp_path})


def test_the_hour_is_a_part_only_when_the_dates_have_times(tmp_path: Path) -> None:
    assert "parts: [year, month, day, dayofweek]}" in written(tmp_path, table(), "churned")
    assert "parts: [year, month, day, dayofweek, hour]}" in written(tmp_path, table(times=True), "churned")


def test_the_positive_class_and_the_target_encoded_columns_are_named(tmp_path: Path) -> None:
    text = written(tmp_path, table(), "churned")
    assert "Positive class (roc_auc, precision, recall, f1): 'stay', the second of the sorted classes" in text
    assert "Target encoded (more than 50 values; the others one-hot): city\n" in text


def test_a_skewed_target_gets_the_target_transform_suggestion(tmp_path: Path) -> None:
    text = written(tmp_path, table(), "price")
    assert re.search(r"The target is skewed \(skewness \d+\.\d\)", text)
    assert "`auto` applies log" in text and "# target_transform: auto" in text
    spec = yaml.safe_load(text.replace("# target_transform: auto", "target_transform: auto"))
    assert spec["preprocessing"]["target_transform"] == "auto"  # uncommented, it sits in its section
    flat = table().with_columns(pl.Series("price", np.random.default_rng(1).normal(50, 5, 300)))
    assert "target_transform: none  # the target is not skewed" in written(tmp_path, flat, "price")


def test_a_dated_table_is_split_by_time_and_init_says_so(tmp_path: Path) -> None:
    import subprocess
    import sys

    corpus = Path(__file__).resolve().parents[2] / "shared" / "corpus"
    data = tmp_path / "email.parquet"
    pl.read_parquet(corpus / "email_spam.parquet").sample(n=400, seed=0).write_parquet(data)
    out = subprocess.run([sys.executable, "-m", "looml", "init", "--data", str(data), "--target", "spam",
                          "--out", str(tmp_path / "looml.yaml")], capture_output=True, text=True, check=True)
    said = " ".join((out.stderr + out.stdout).split())
    assert "split by time on 'time': the holdout is the latest period" in said
    assert load_spec(tmp_path / "looml.yaml").split.by.time == "time"
    two_days = tmp_path / "dunn.parquet"
    pl.read_parquet(corpus / "dunn_run_time.parquet").write_parquet(two_days)
    text = init_spec(two_days, "run_time_minutes", tmp_path / "dunn.yaml").read_text(encoding="utf-8")
    assert "but 'date' has only 2 distinct moments:\n  # by: {time: date}" in text
    assert load_spec(tmp_path / "dunn.yaml").split.by is None
