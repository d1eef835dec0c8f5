"""Drift statistics on seeded synthetic frames: no alarm on fresh samples of the same data, an
alarm on each kind of shift, and the per-column settings."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import polars as pl
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from looml.errors import DataError, SpecError
from looml.monitor.drift import detect
from looml.monitor.reference import GRID, Reference, summarise
from looml.spec import DriftSpec

KINDS = {"x0": "numeric", "x1": "numeric", "x2": "numeric", "gamma": "numeric", "level": "numeric",
         "tenure": "numeric", "plan": "categorical", "city": "categorical", "note": "text"}


def frame(rows: int, seed: int, *, shift: float = 0.0, scale: float = 1.0,
          mix: tuple[float, ...] = (0.5, 0.3, 0.2), missing: float = 0.0, new: float = 0.0) -> pl.DataFrame:
    """Nine features: normals (x0 shifted by `shift`, x1 scaled by `scale`, x2 with `missing`
    gaps), a skewed gamma, a 5-level integer, a 72-level integer, a 3-level and a Zipf-tailed
    city category (`new` of its rows replaced by unseen cities), and a short text."""
    rng, changes = np.random.default_rng(seed), np.random.default_rng(seed + 1)  # changes leave the rest
    x2 = np.where(changes.random(rows) < missing, np.nan, rng.normal(size=rows))
    city = rng.zipf(1.6, rows).clip(1, 3000).astype(str)
    if new:
        unseen = np.char.add("new-", changes.integers(0, 50, rows).astype(str))
        city = np.where(changes.random(rows) < new, unseen, city)
    return pl.DataFrame({
        "x0": rng.normal(0.0, 1.0, rows) + shift, "x1": rng.normal(0.0, 1.0, rows) * scale, "x2": x2,
        "gamma": rng.gamma(2.0, 30.0, rows), "level": rng.integers(1, 6, rows),
        "tenure": rng.integers(0, 72, rows),
        "plan": changes.choice(["basic", "pro", "team"], rows, p=list(mix)), "city": city,
        "note": rng.choice(["ok", "call me", "late again"], rows),
    }).with_columns(pl.col("x2").fill_nan(None))


@pytest.fixture(scope="module")
def reference() -> Reference:
    return summarise(frame(100_000, seed=1), KINDS)


@pytest.mark.parametrize("rows", [1_000, 100_000])
def test_fresh_samples_of_the_same_data_do_not_drift(reference: Reference, rows: int) -> None:
    flagged = []
    for seed in range(10, 16):
        report = detect(reference, frame(rows, seed=seed), DriftSpec())
        assert not report.dataset_drift and report.prediction_drift is None
        flagged += report.drifted

    # Bonferroni over nine columns: about one false column in twenty reports at most.
    assert len(flagged) <= 1, flagged


@pytest.mark.parametrize("rows", [1_000, 100_000])
@pytest.mark.parametrize(("change", "column", "signal"), [
    ({"shift": 0.5}, "x0", "distribution"),
    ({"scale": 1.6}, "x1", "distribution"),
    ({"mix": (0.3, 0.3, 0.4)}, "plan", "distribution"),
    ({"missing": 0.2}, "x2", "missing_rate"),
    ({"new": 0.15}, "city", "new_categories"),
])
def test_each_kind_of_shift_is_found_in_its_column_only(reference: Reference, rows: int, change: dict,
                                                         column: str, signal: str) -> None:
    report = detect(reference, frame(rows, seed=8, **change), DriftSpec())

    assert report.drifted == [column]
    assert signal in next(c for c in report.columns if c.column == column).signals


def test_the_method_follows_the_sample_size_and_the_column_type(reference: Reference) -> None:
    def methods(rows: int) -> dict[str, tuple[str, str]]:
        report = detect(reference, frame(rows, 3), DriftSpec())
        return {c.column: (c.treated_as, c.method) for c in report.columns}

    small, large = methods(500), methods(5_000)

    assert small["x0"] == ("continuous", "ks") and large["x0"] == ("continuous", "wasserstein")
    # a 5-level integer is compared value by value; a 72-level one as numbers
    assert small["level"] == ("discrete", "chisquare") and large["level"] == ("discrete", "jensenshannon")
    assert large["tenure"] == ("continuous", "wasserstein")
    assert small["plan"] == ("categorical", "chisquare") and large["city"] == ("categorical", "jensenshannon")
    assert large["note"] == ("discrete", "jensenshannon")  # a text's length: 2, 7 or 10 characters


def test_ks_and_wasserstein_from_the_summary_match_scipy_on_the_rows() -> None:
    rng = np.random.default_rng(0)
    ref_rows, cur_rows = rng.gamma(2.0, 3.0, 50_000), rng.gamma(2.2, 3.0, 2_000)
    summary = summarise(pl.DataFrame({"x": ref_rows}), {"x": "numeric"})
    spec = DriftSpec(numeric={"method": "wasserstein"})

    column = detect(summary, pl.DataFrame({"x": cur_rows}), spec).columns[0]

    assert GRID < len(summary.columns["x"].edges) <= GRID + 9
    assert column.stats["ks"] == pytest.approx(stats.ks_2samp(ref_rows, cur_rows).statistic, abs=2e-3)
    expected = stats.wasserstein_distance(ref_rows, cur_rows) / ref_rows.std()
    assert column.statistic == pytest.approx(expected, rel=0.01)


def test_ks_on_small_integer_samples_matches_scipy_exactly() -> None:
    rng = np.random.default_rng(1)
    ref_rows, cur_rows = rng.integers(0, 40, 800), rng.integers(3, 40, 300)
    summary = summarise(pl.DataFrame({"x": ref_rows}), {"x": "numeric"})

    column = detect(summary, pl.DataFrame({"x": cur_rows}), DriftSpec(min_rows=10)).columns[0]

    assert column.method == "ks"
    assert column.statistic == pytest.approx(stats.ks_2samp(ref_rows, cur_rows).statistic, abs=1e-12)
    assert column.p_value == pytest.approx(stats.ks_2samp(ref_rows, cur_rows, method="asymp").pvalue, rel=0.1)


def counts(**values: int) -> list[str]:
    """A column holding each value its given number of times (`v3=5`: five '3's)."""
    return [value.removeprefix("v") for value, n in values.items() for _ in range(n)]


# Reference and current rows, and the cells they make (reference counts, current counts): each
# reference category or value, then the rest (categories or values training never saw, and
# those expected fewer than 5 times, pooled); a rest empty on both sides is dropped.
BUCKET_CASES = {
    "an empty cell and an unseen category": (
        counts(a=50, b=30, c=20), counts(a=20, c=60, d=20), ["a", "b", "c", "(other)"],
        [[50, 30, 20, 0], [20, 0, 60, 20]]),
    "one side with no rest, two cells (one degree of freedom)": (
        counts(a=60, b=40), counts(a=100), ["a", "b"], [[60, 40], [100, 0]]),
    "a rare category pooled with the rest": (
        counts(a=60, b=38, z=2), counts(a=50, b=50), ["a", "b", "(other)"], [[60, 38, 2], [50, 50, 0]]),
    "integers, a value above the range": (
        counts(v1=30, v2=30, v3=20, v4=10, v5=10), counts(v1=10, v2=10, v3=20, v4=25, v5=25, v7=10),
        ["1", "2", "3", "4", "5", "other"], [[30, 30, 20, 10, 10, 0], [10, 10, 20, 25, 25, 10]]),
}


@pytest.mark.parametrize("case", list(BUCKET_CASES))
def test_chisquare_and_jensen_shannon_match_scipy_on_the_cells(case: str) -> None:
    reference_rows, current_rows, labels, cells = BUCKET_CASES[case]
    kind = "numeric" if case.startswith("integers") else "categorical"
    as_column = (lambda v: [int(x) for x in v]) if kind == "numeric" else list
    summary = summarise(pl.DataFrame({"x": as_column(reference_rows)}), {"x": kind})

    column = detect(summary, pl.DataFrame({"x": as_column(current_rows)}), DriftSpec()).columns[0]

    table = np.array(cells, dtype=float)
    assert column.treated_as == ("discrete" if kind == "numeric" else "categorical")
    shares = table / table.sum(axis=1, keepdims=True)
    assert column.bins["labels"] == labels
    assert np.allclose([column.bins["reference"], column.bins["current"]], shares, atol=1e-6)
    # scipy's test without Yates' correction, which it applies to one degree of freedom only
    chi2 = stats.chi2_contingency(table, correction=False)
    assert column.stats["chisquare"] == pytest.approx(chi2.statistic, rel=1e-9)
    assert column.stats["chisquare_p_value"] == pytest.approx(chi2.pvalue, rel=1e-6)
    assert column.stats["jensenshannon"] == pytest.approx(jensenshannon(shares[0], shares[1]), rel=1e-9)


def test_psi_by_hand_with_empty_cells_floored_at_one_in_ten_thousand() -> None:
    summary = summarise(pl.DataFrame({"x": counts(a=50, b=30, c=20)}), {"x": "categorical"})

    column = detect(summary, pl.DataFrame({"x": counts(a=20, c=60, d=20)}), DriftSpec()).columns[0]

    # sum of (current - reference) x ln(current / reference) over the shares: a .5 -> .2, b .3 -> 0
    # (read as .0001), c .2 -> .6, the rest 0 (.0001) -> .2 (the unseen d)
    by_hand = (0.3 * math.log(2.5) + 0.2999 * math.log(3000) + 0.4 * math.log(3)
               + 0.1999 * math.log(2000))
    assert column.stats["psi"] == pytest.approx(by_hand, rel=1e-12)
    assert column.stats["psi"] == pytest.approx(4.634862, abs=1e-6)
    same = detect(summary, pl.DataFrame({"x": counts(a=100, b=60, c=40)}), DriftSpec()).columns[0]
    assert same.stats["psi"] == same.stats["jensenshannon"] == same.stats["chisquare"] == 0.0
    assert same.stats["chisquare_p_value"] == 1.0


def test_a_high_cardinality_column_is_judged_on_its_top_values() -> None:
    rng = np.random.default_rng(2)
    ids = rng.integers(0, 20_000, 50_000).astype(str)
    summary = summarise(pl.DataFrame({"sku": ids}), {"sku": "categorical"})

    column = detect(summary, pl.DataFrame({"sku": rng.integers(0, 20_000, 5_000).astype(str)}),
                    DriftSpec()).columns[0]

    assert len(summary.columns["sku"].counts) == 100  # over 10,000 categories: the top 100 kept
    assert len(column.bins["labels"]) <= 21
    assert column.new_category_share is None and "not measured" in column.note
    assert not column.drifted


def test_per_column_settings_override_the_type_defaults(reference: Reference) -> None:
    spec = DriftSpec.model_validate({"columns": {"x0": {"method": "psi", "threshold": 0.05},
                                                 "x1": {"skip": True}, "tenure": {"kind": "discrete"}}})

    report = detect(reference, frame(5_000, 3, shift=0.3), spec)
    by_name = {c.column: c for c in report.columns}

    assert by_name["x0"].method == "psi" and by_name["x0"].threshold == 0.05 and by_name["x0"].drifted
    assert "x1" not in by_name and any("x1: skipped" in n for n in report.notes)
    assert by_name["tenure"].treated_as == "discrete"


def test_unknown_or_misfit_column_settings_are_spec_errors_with_a_hint(reference: Reference) -> None:
    spec = DriftSpec.model_validate({"columns": {"tenur": {"skip": True}, "plan": {"method": "ks"}}})

    with pytest.raises(SpecError, match=r"(?s)monitor\.drift\.columns\.tenur.*did you mean 'tenure'.*"
                                        r"columns\.plan\.method: ks compares numbers"):
        detect(reference, frame(200, 3), spec)


def test_spec_refuses_a_threshold_for_auto_and_distances_for_categories() -> None:
    with pytest.raises(ValueError, match="'auto' switches between a p-value and a distance"):
        DriftSpec.model_validate({"numeric": {"threshold": 0.2}})
    with pytest.raises(ValueError, match="ks and wasserstein compare numbers"):
        DriftSpec.model_validate({"categorical": {"method": "wasserstein"}})
    with pytest.raises(ValueError, match="must be below 1"):
        DriftSpec.model_validate({"numeric": {"method": "ks", "threshold": 5}})


def test_a_missing_feature_is_a_data_error_naming_it(reference: Reference) -> None:
    with pytest.raises(DataError, match=r"column 'plan': a feature of the model is missing"):
        detect(reference, frame(500, 3).drop("plan"), DriftSpec())


def test_too_few_rows_are_reported_not_judged(reference: Reference) -> None:
    report = detect(reference, frame(50, 3, shift=3.0), DriftSpec())

    assert not report.judged and not report.dataset_drift and report.drifted == []
    assert "fewer than monitor.drift.min_rows (100)" in report.notes[0]


def test_importance_weighting_decides_dataset_drift() -> None:
    train = frame(20_000, 1)
    weights = {"x0": 0.9, **{k: 0.1 / 8 for k in KINDS if k != "x0"}}
    weighted = summarise(train, KINDS, importance=weights)
    current = frame(5_000, 2, shift=1.0, scale=2.0)

    plain = detect(weighted, current, DriftSpec(drift_share=0.5))
    by_importance = detect(weighted, current, DriftSpec(drift_share=0.5, weight_by_importance=True))

    assert plain.drifted == ["x0", "x1"] and not plain.dataset_drift
    assert by_importance.weighted and by_importance.dataset_drift
    assert by_importance.share == pytest.approx(0.9 + 0.1 / 8)


def test_prediction_drift_is_reported_apart_from_the_features() -> None:
    rng = np.random.default_rng(3)
    outputs = pl.DataFrame({"prediction": rng.choice(["no", "yes"], 2_000, p=[0.7, 0.3]),
                            "proba_yes": rng.beta(2, 5, 2_000)})
    summary = summarise(pl.DataFrame({"x": rng.normal(size=5_000)}), {"x": "numeric"}, predictions=outputs)
    current = pl.DataFrame({"x": rng.normal(size=3_000),
                            "prediction": rng.choice(["no", "yes"], 3_000, p=[0.4, 0.6]),
                            "proba_yes": rng.beta(5, 2, 3_000)})

    report = detect(summary, current, DriftSpec())

    assert report.drifted == [] and not report.dataset_drift
    assert report.prediction_drift is True
    assert {p.column for p in report.predictions if p.drifted} == {"prediction", "proba_yes"}


def test_the_reference_round_trips_through_json_and_stays_small(reference: Reference) -> None:
    text = reference.to_json()

    assert Reference.from_dict(json.loads(text)) == reference
    assert len(text) < 250_000
    assert all(len(c.edges) <= GRID + 9 for c in reference.columns.values())


def test_the_report_lists_every_statistic_in_json(reference: Reference) -> None:
    report = detect(reference, frame(2_000, 4, shift=1.0), DriftSpec())

    data = json.loads(report.to_json(model="m version 1"))

    assert data["model"] == "m version 1" and data["drifted"] == ["x0"]
    x0 = next(c for c in data["columns"] if c["column"] == "x0")
    assert set(x0["stats"]) == {"ks", "ks_p_value", "wasserstein", "chisquare", "chisquare_p_value",
                                "jensenshannon", "psi"}
    assert x0["method"] == "wasserstein" and x0["threshold"] == 0.1 and x0["drifted"]


def test_dates_are_left_out_unless_asked_for() -> None:
    rng = np.random.default_rng(4)
    start = np.datetime64("2024-01-01")
    train = pl.DataFrame({"joined": start + rng.integers(0, 365, 5_000).astype("timedelta64[D]")})
    later = pl.DataFrame({"joined": start + rng.integers(300, 665, 2_000).astype("timedelta64[D]")})
    summary = summarise(train, {"joined": "datetime"})

    default = detect(summary, later, DriftSpec())
    checked = detect(summary, later, DriftSpec(datetime=True))

    assert default.columns == [] and "a date column, not checked" in default.notes[0]
    assert checked.drifted == ["joined"] and checked.columns[0].method == "wasserstein"


def test_permutation_importance_matches_scikit_learns_on_a_known_model() -> None:
    from sklearn.inspection import permutation_importance
    from sklearn.linear_model import LinearRegression, LogisticRegression

    from looml.monitor.reference import _permutation_importance

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(600, 4)), columns=["strong", "weak", "none", "also_none"])
    signal = 3 * X["strong"] + X["weak"]
    for model, y in ((LinearRegression(), (signal + rng.normal(size=600)).to_numpy()),
                     (LogisticRegression(), np.where(signal + rng.normal(size=600) > 0, "a", "b"))):
        model.fit(X, y)
        ours = _permutation_importance(model, X, y, seed=1)
        theirs = permutation_importance(model, X, y, n_repeats=3, random_state=1).importances_mean
        assert list(ours) == list(X.columns)
        assert max(ours, key=ours.get) == "strong" and ours["weak"] > max(ours["none"], ours["also_none"])
        shares = np.clip(theirs, 0, None) / np.clip(theirs, 0, None).sum()
        assert np.allclose(list(ours.values()), shares, atol=0.05)
