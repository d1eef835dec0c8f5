"""The HTML report: sections, escaping, offline-ness, and that a browser can draw it."""

from __future__ import annotations

import copy
import datetime as dt
import html as html_lib
import json
import math
import re
import subprocess
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

import looml
from external_tools import find_chromium
from looml.data.profile import profile
from looml.report import render_report

SVG_NS = "http://www.w3.org/2000/svg"
CHROMIUM = str(find_chromium() or "chromium")  # the `chromium` fixture skips (fails in CI) without one


def _roc(positive: np.ndarray, score: np.ndarray) -> dict[str, list[float]]:
    order = np.argsort(-score)
    hits = positive[order]
    tpr = np.concatenate([[0.0], np.cumsum(hits) / hits.sum()])
    fpr = np.concatenate([[0.0], np.cumsum(~hits) / (~hits).sum()])
    return {"fpr": fpr.tolist(), "tpr": tpr.tolist()}


SCRIPT = '<script>alert("pwned")</script>'


@cache
def _profile() -> dict[str, Any]:
    """A real profile of a small seeded frame whose column names need escaping."""
    rng = np.random.default_rng(11)
    rows = 300
    x = rng.normal(size=rows)
    frame = pl.DataFrame({
        "<b>x</b>": x,
        "city": rng.choice(["Oslo", "Lima", "Pune"], rows),
        "row_id": np.arange(rows),
        SCRIPT: 2 * x + rng.normal(size=rows),
        'a&b "q"': rng.choice(["u", "v"], rows),
        "seen": [dt.datetime(2024, 1, 1) + dt.timedelta(days=int(d)) for d in rng.integers(0, 400, rows)],
        "flag": rng.random(rows) < 0.3,
        "y": np.where(x + rng.normal(size=rows) > 0, "yes", "no"),
    })
    return profile(frame, target="y", seed=1).to_dict()


def _base(task: str, primary: str, metrics: tuple[str, ...]) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    mean = {m: round(float(rng.uniform(0.5, 1.0)), 6) for m in metrics}
    std = {m: round(float(rng.uniform(0.0, 0.05)), 6) for m in metrics}
    columns = [
        {"name": "<b>x</b>", "dtype": "Float64", "kind": "float", "role": "numeric",
         "missing": 3, "missing_rate": 3 / 569, "n_unique": 560, "min": -3.2, "max": 4.1,
         "mean": 0.013, "std": 1.02},
        {"name": "city", "dtype": "String", "kind": "string", "role": "categorical",
         "missing": 0, "missing_rate": 0.0, "n_unique": 12, "min": None, "max": None,
         "mean": None, "std": None},
        {"name": "row_id", "dtype": "Int64", "kind": "int", "role": "dropped", "missing": 0,
         "missing_rate": 0.0, "n_unique": 569, "min": 0.0, "max": 568.0, "mean": 284.0,
         "std": 164.4},
        {"name": "y", "dtype": "String", "kind": "string", "role": "target", "missing": 0,
         "missing_rate": 0.0, "n_unique": 2, "min": None, "max": None, "mean": None,
         "std": None},
    ]
    return {
        "title": "churn",
        "created": "2026-11-22T23:59:00Z",
        "looml_version": "0.1.0",
        "spec_hash": "ab12ef34cd56ab12ef34cd56ab12ef34",
        "data_digest": "cd34ab12ef56cd34ab12ef56cd34ab12",
        "task": task,
        "task_reason": "the target is str",
        "target": "y",
        "data": {"rows": 569, "columns": columns,
                 "dropped": {"row_id": "unique per row (an identifier)"},
                 "warnings": ["column 'city' has a rare level"]},
        "profile": copy.deepcopy(_profile()),
        "split": {"train_rows": 455, "test_rows": 114, "folds": 5},
        "primary_metric": primary,
        "leaderboard": [
            {"name": "lightgbm", "mean": mean, "std": std, "fit_seconds": 1.2, "error": ""},
            {"name": "random_forest", "mean": {**mean, primary: float("nan")},
             "std": {m: None for m in metrics}, "fit_seconds": 3.456, "error": ""},
            {"name": "linear", "mean": {}, "std": {}, "fit_seconds": 0.1,
             "error": "ValueError: Input contains NaN"},
        ],
        "best": "lightgbm",
        "test_metrics": {**{m: 0.9 for m in metrics}, metrics[-1]: float("nan")},
        "gate": {"passed": True, "failures": []},
        "stages": [
            {"name": "ingest", "status": "ran", "reason": "first run", "seconds": 0.12},
            {"name": "profile", "status": "cached", "reason": "unchanged", "seconds": 0.0},
        ],
    }


def _classification(n_classes: int) -> dict[str, Any]:
    metrics = ("roc_auc", "accuracy", "precision", "recall", "f1", "log_loss")
    ctx = _base("classification", "roc_auc", metrics)
    rng = np.random.default_rng(n_classes)
    labels = [str(k) for k in range(n_classes)]
    actual = rng.integers(0, n_classes, 300)
    proba = rng.normal(0.0, 1.0, (300, n_classes)) + 1.5 * np.eye(n_classes)[actual]
    predicted = proba.argmax(axis=1)
    confusion = np.zeros((n_classes, n_classes), dtype=int)
    np.add.at(confusion, (actual, predicted), 1)
    curves = range(1, 2) if n_classes == 2 else range(n_classes)
    roc = {labels[k]: _roc(actual == k, proba[:, k]) for k in curves}
    ctx["plots"] = {"labels": labels, "confusion": confusion.tolist(), "roc": roc}
    return ctx


def _regression() -> dict[str, Any]:
    ctx = _base("regression", "rmse", ("rmse", "mae", "r2"))
    rng = np.random.default_rng(7)
    actual = rng.normal(100.0, 15.0, 2500)
    predicted = actual + rng.normal(0.0, 5.0, 2500)
    ctx["plots"] = {"actual": actual.tolist(), "predicted": predicted.tolist()}
    ctx["gate"] = {"passed": False, "failures": ["rmse 5.1 > 5.0"]}
    return ctx


CONTEXTS = {
    "binary": lambda: _classification(2),
    "multiclass": lambda: _classification(3),
    "regression": _regression,
}


@pytest.fixture(params=sorted(CONTEXTS))
def case(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any], str]:
    ctx = CONTEXTS[request.param]()
    return request.param, ctx, render_report(ctx)


def test_page_has_every_section(case: tuple[str, dict[str, Any], str]) -> None:
    _, _, page = case
    assert page.lstrip().startswith("<!DOCTYPE html>")
    for heading in ("Data summary", "Data profile", "Leaderboard", "Test metrics on the holdout", "Gate",
                    "Plots", "Pipeline stages", "Dropped columns", "Warnings"):
        assert f">{heading}<" in page, heading
    for name in ("lightgbm", "random_forest", "linear", "ingest", "profile", "churn"):
        assert name in page
    assert "ValueError: Input contains NaN" in page
    assert "ab12ef34cd56" in page and "cd34ab12ef56" in page
    assert "unique per row (an identifier)" in page


def test_metric_values_are_formatted(case: tuple[str, dict[str, Any], str]) -> None:
    _, ctx, page = case
    best = ctx["leaderboard"][0]
    primary = ctx["primary_metric"]
    assert f">{best['mean'][primary]:.4g} <span class=\"sd\">± {best['std'][primary]:.4g}<" in page
    assert ">0.9<" in page  # a test metric
    assert 'class="num primary"' in page


def test_nan_and_none_render_as_a_dash(case: tuple[str, dict[str, Any], str]) -> None:
    _, ctx, page = case
    row = page[page.index("random_forest"):]
    row = row[: row.index("</tr>")]
    assert 'class="num primary">—<' in row  # NaN CV mean of the primary metric
    assert "±" not in row  # std None: the mean stands alone
    last = list(ctx["test_metrics"])[-1]
    tested = page[page.index('id="test"'):]
    assert re.search(rf">{last}</td><td class=\"num[^\"]*\">—<", tested)
    assert ">nan<" not in page.lower() and "nan ±" not in page.lower()
    assert ">None<" not in page


def _section(page: str, section: str) -> str:
    start = page.index(f'<section id="{section}">')
    return page[start: page.index("</section>", start)]


def test_one_svg_per_plot(case: tuple[str, dict[str, Any], str]) -> None:
    kind, _, whole = case
    page = _section(whole, "plots")
    assert page.count("<svg") == 2
    assert page.count("</svg>") == 2
    if kind == "regression":
        assert "Predicted vs actual" in page and "Residuals" in page
        assert page.count("<circle") == 2 * 1000  # thinned from 2500 points
    else:
        assert "ROC curve" in page and "Confusion matrix" in page
        assert ">actual<" in page and ">predicted<" in page
        assert page.count("<polyline") == 1 + (1 if kind == "binary" else 3)


def test_page_is_self_contained(case: tuple[str, dict[str, Any], str]) -> None:
    _, _, page = case
    assert not re.search(r"https?://", page.replace(SVG_NS, ""))
    assert "<script src" not in page.lower()
    assert "<link" not in page.lower() and "@import" not in page and "@font-face" not in page
    assert "<style>" in page


def test_user_text_is_escaped(case: tuple[str, dict[str, Any], str]) -> None:
    _, _, page = case
    assert "<b>x</b>" not in page
    assert "&lt;b&gt;x&lt;/b&gt;" in page


def test_class_labels_in_svg_are_escaped() -> None:
    ctx = _classification(2)
    ctx["plots"]["labels"] = ["<no>", "a&b"]
    ctx["plots"]["roc"] = {"a&b": ctx["plots"]["roc"]["1"]}
    page = render_report(ctx)
    assert "<no>" not in page and "&lt;no&gt;" in page
    assert "a&amp;b" in page


def test_confusion_matrix_scales_to_thirty_classes() -> None:
    page = render_report(_classification(30))
    assert _section(page, "plots").count("<svg") == 2
    svg = page[page.index("Confusion matrix</figcaption>"):]
    assert svg[: svg.index("</svg>")].count("<rect") == 30 * 30
    assert len(page) < 600_000


def test_svg_coordinates_are_short() -> None:
    page = render_report(_regression())
    numbers = re.findall(r'c[xy]="([-\d.]+)"', page)
    assert numbers and all(len(n.partition(".")[2]) <= 1 for n in numbers)
    assert all(math.isfinite(float(n)) for n in numbers)


# What Chromium drew, measured in the page after layout and written into the DOM for
# --dump-dom: each section's box and rendered text, per chart its box and how many marks of
# each kind (points, lines, cells) have a non-empty bounding box, and every script error or
# resource that failed to load (caught from the first line of <head>).
_WATCH = """<script>
window.failures = [];
addEventListener("error", (e) => failures.push(e.message || `${e.target.tagName} did not load`),
                 true);
</script>"""
_MEASURE = """<script>
addEventListener("load", () => {
  const size = (e) => { const r = e.getBoundingClientRect(); return [r.width, r.height]; };
  const drawn = (m) => { const b = m.getBBox(); return b.width > 0 || b.height > 0; };
  const out = {width: document.documentElement.scrollWidth, sections: {}, charts: [],
               failures: window.failures};
  for (const s of document.querySelectorAll("section[id]")) {
    out.sections[s.id] = {size: size(s), text: s.innerText};
  }
  for (const svg of document.querySelectorAll("svg")) {
    const marks = {};
    for (const m of svg.querySelectorAll("circle, rect, polyline, path, line")) {
      if (drawn(m)) marks[m.tagName] = (marks[m.tagName] ?? 0) + 1;
    }
    out.charts.push({section: svg.closest("section")?.id ?? "",
                     caption: svg.closest("figure")?.querySelector("figcaption")?.innerText ?? "",
                     size: size(svg), marks});
  }
  const pre = document.createElement("pre");
  pre.id = "drawn";
  pre.textContent = JSON.stringify(out);
  document.body.append(pre);
});
</script>"""


def _drawn(page: str, tmp_path: Path) -> tuple[dict[str, Any], list[str]]:
    """What headless Chromium laid out for `page`, and the console messages it logged."""
    html = tmp_path / "report.html"
    page = page.replace("<head>", "<head>" + _WATCH, 1).replace("</body>", _MEASURE + "</body>")
    html.write_text(page, encoding="utf-8")
    done = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr",
         "--v=0", "--window-size=1200,2400", "--dump-dom", html.as_uri()],
        check=False, capture_output=True, text=True, timeout=60,
    )
    found = re.search(r'<pre id="drawn">(.*?)</pre>', done.stdout, re.DOTALL)
    assert found, f"chromium ran no measuring script (exit {done.returncode}): {done.stderr[-2000:]}"
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    return json.loads(html_lib.unescape(found.group(1))), console


def _real_run(kind: str, make_project: Callable[..., Path]) -> str:
    """The report page of a small real `looml run` of a `kind` task."""
    rng = np.random.default_rng(5)
    rows = 150
    x1, x2 = rng.normal(size=rows), rng.normal(size=rows)
    if kind == "regression":
        label: Any = 3 * x1 - x2 + rng.normal(size=rows)
    else:
        levels = np.array(["no", "yes"] if kind == "binary" else ["a", "b", "c"])
        label = levels[np.digitize(x1 + 0.5 * rng.normal(size=rows), [0.0] if kind == "binary"
                                   else [-0.5, 0.5])]
    frame = pl.DataFrame({"x1": x1, "x2": x2, "colour": rng.choice(["red", "blue"], rows),
                          "group": rng.choice(["g1", "g2"], rows), "label": label})
    # `group` is analysed, not learnt from; the slices are a feature and a numeric one.
    analysis = "evaluation: {sensitive_columns: [group], slices: [colour, x2], min_slice_rows: 5}\n"
    result = looml.run(make_project(frame, extra=analysis))
    return Path(result.report_path).read_text(encoding="utf-8")


PLOTS = {
    # kind: {the caption of each chart in the Plots section: (its data marks, how many)}
    "binary": {"ROC curve": ("polyline", 2), "Confusion matrix": ("rect", 4),  # + chance line
               "Precision-recall": ("polyline", 2), "Cumulative gain": ("polyline", 2),
               "Calibration": ("circle", 3)},
    "multiclass": {"ROC curve": ("polyline", 4), "Confusion matrix": ("rect", 9)},
    "regression": {"Predicted vs actual": ("circle", 30), "Residuals": ("circle", 30),
                   "Residual distribution": ("rect", 5)},
}


@pytest.mark.usefixtures("chromium")
@pytest.mark.parametrize("kind", sorted(PLOTS))
def test_chromium_draws_the_report_of_a_real_run(
    kind: str, make_project: Callable[..., Path], tmp_path: Path,
) -> None:
    drawn, console = _drawn(_real_run(kind, make_project), tmp_path)

    assert console == [] and drawn["failures"] == []
    assert drawn["width"] <= 1200  # nothing pushes the page wider than the window
    sections = drawn["sections"]
    assert list(sections) == ["data", "profile", "leaderboard", "test", "fairness", "slices", "plots",
                              "explanations", "card", "stages"]
    assert "Permutation importance" in sections["explanations"]["text"]
    for name, section in sections.items():
        assert min(section["size"]) > 0, name
    assert "linear" in sections["leaderboard"]["text"]
    primary = "rmse" if kind == "regression" else "roc_auc"
    assert primary in sections["test"]["text"] and "95% interval" in sections["test"]["text"]
    # multiclass: precision, recall and f1 of each class
    assert ("Per class" in sections["test"]["text"]) == (kind == "multiclass")
    fairness = sections["fairness"]["text"]
    assert "g1" in fairness and "g2" in fairness
    assert ("mae_difference" if kind == "regression" else "accuracy_difference") in fairness
    assert ("demographic_parity_difference" in fairness) == (kind == "binary")
    assert "colour" in sections["slices"]["text"] and "x2" in sections["slices"]["text"]
    card = sections["card"]["text"]
    assert "# Model card: tiny" in card and "## Fairness" in card and "## How to reproduce" in card
    for column in ("x1", "x2", "colour"):
        assert column in sections["profile"]["text"], column
    assert "ingest" in sections["stages"]["text"] and "evaluate" in sections["stages"]["text"]

    for chart in drawn["charts"]:  # every chart on the page, the profile's included
        assert min(chart["size"]) > 10, chart
    plots = {c["caption"]: c for c in drawn["charts"] if c["section"] == "plots"}
    assert set(plots) == set(PLOTS[kind])
    for caption, (mark, count) in PLOTS[kind].items():
        assert plots[caption]["marks"].get(mark, 0) >= count, plots[caption]
    bars = [c for c in drawn["charts"] if c["section"] == "profile" and c["marks"].get("rect", 0) > 1]
    assert len(bars) >= 3  # x1, x2 and colour each draw their distribution as bars


# --- the data profile section --------------------------------------------------------------


def test_profile_section_draws_each_column_and_the_matrices() -> None:
    page = _section(render_report(_classification(2)), "profile")

    assert len(re.findall(r'aria-label="[^"]*bins from', page)) == 3  # a histogram per number column
    assert len(re.findall(r'aria-label="[^"]*most frequent values', page)) == 4  # bars per category
    for caption in ("Pearson correlation", "Spearman rank correlation",
                    "Cramér&#39;s V (categorical association)", "Mutual information with the target"):
        assert caption in page, caption
    assert "Duplicate rows (equal to an earlier row): 0." in page
    assert "2024-01-" in page and "median 2024-" in page  # the datetime's range
    assert "p5 " in page and "p50 " in page and "p95 " in page
    assert "on 300 sampled rows" in page
    assert ">None<" not in page and "nan" not in page.lower().replace("nans", "")


def test_column_names_are_escaped_in_the_profile() -> None:
    page = render_report(_classification(2))

    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;" in page
    assert "a&amp;b &#34;q&#34;" in page and 'a&b "q"' not in page
    assert "<b>x</b>" not in page


def test_a_run_without_a_profile_still_renders() -> None:
    ctx = _classification(2)
    ctx.pop("profile")
    assert "No detailed profile for this run" in render_report(ctx)

    old = copy.deepcopy(_profile())
    old = {"rows": old["rows"], "columns": [
        {k: c[k] for k in ("name", "dtype", "kind", "missing", "n_unique", "integral", "min", "max",
                           "mean", "std", "top_values")} for c in old["columns"]]}
    ctx["profile"] = old  # cached before the profile had distributions and associations
    page = _section(render_report(ctx), "profile")

    assert "city" in page and "<svg" in page  # top values still draw as bars
    assert "bins from" not in page and "Pearson" not in page and ">None<" not in page


def test_wide_tables_are_capped_and_say_what_was_left_out() -> None:
    rng = np.random.default_rng(12)
    frame = pl.DataFrame({f"n{i:03d}": rng.normal(size=40) for i in range(130)})
    ctx = _classification(2)
    ctx["profile"] = profile(frame).to_dict()

    whole = render_report(ctx)
    page = _section(whole, "profile")

    assert len(re.findall(r'aria-label="[^"]*bins from', page)) == 100
    assert "30 more column(s) not shown" in page and "<code>n129</code>" in page
    pearson = page[page.index("Pearson correlation"):page.index("Spearman")]
    assert pearson.count("<rect") == 30 * 30 + 9  # the matrix and its legend
    assert "Not shown (100)" in pearson  # 20 past the drawing cap, 80 past the profile's
    assert len(whole) < 1_000_000


def _page_requests(page: str, tmp_path: Path) -> list[str]:
    """The URLs headless Chromium fetched for `page`, from its NetLog.

    Chromium itself talks to Google (update checks, time, accounts) whatever the flags; those
    requests have no initiating document ("not an origin"), the page's own have one.
    """
    tmp_path.mkdir()
    html, netlog = tmp_path / "report.html", tmp_path / "net.json"
    html.write_text(page, encoding="utf-8")
    subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", f"--log-net-log={netlog}",
         "--virtual-time-budget=3000", f"--screenshot={tmp_path / 'shot.png'}",
         "--window-size=1200,3000", html.as_uri()],
        check=False, capture_output=True, timeout=60,
    )
    log = json.loads(netlog.read_text(encoding="utf-8"))
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    starts = [e.get("params", {}) for e in log["events"] if e["type"] == start]
    return [p["url"] for p in starts if p.get("initiator", "not an origin") != "not an origin"]


@pytest.mark.usefixtures("chromium")
def test_the_page_makes_no_request_but_its_own(tmp_path: Path) -> None:
    page = render_report(_classification(3))
    leaky = page.replace("</body>", '<img src="http://example.invalid/pixel.png"></body>')

    seen = _page_requests(page, tmp_path / "clean")
    control = _page_requests(leaky, tmp_path / "leaky")

    assert (tmp_path / "clean" / "shot.png").exists(), "chromium drew nothing"
    assert seen == []
    assert control == ["http://example.invalid/pixel.png"]  # the check does see a page's request
