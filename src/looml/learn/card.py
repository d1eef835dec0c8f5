"""The model card: what a registered model is, how well and how fairly it does, where it is weak,
and how to make it again, as Markdown (logged with the model version, shown in the report).

Built from what the run already has (the profile, validation's decisions, the evaluation and
the drift reference's permutation importance): nothing is recomputed here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["CARD_ARTIFACT", "CardFacts", "model_card"]

CARD_ARTIFACT = "model_card.md"
HEAVY_MISSING = 0.2  # a column missing in at least this share of rows is a known limitation
FEW_ROWS = 30  # a class with fewer rows than this is a known limitation
TOP_FEATURES = 10


@dataclass(frozen=True)
class CardFacts:
    """Everything the card states, gathered by the pipeline from the run's stages."""

    model_name: str
    task: str
    target: str
    best_model: str
    primary_metric: str
    data_digest: str
    spec_hash: str
    rows: int
    train_rows: int
    test_rows: int
    features: dict[str, str]  # column -> kind
    profile: dict[str, Any]  # Profile.to_dict()
    classes: dict[str, int]  # class -> rows (classification)
    evaluation: dict[str, Any]  # Evaluation.to_dict()
    importance: dict[str, float] | None = None  # feature -> share; None when not computed
    gate_failures: list[str] = field(default_factory=list)
    spec_file: str = "looml.yaml"
    decision: dict[str, Any] | None = None  # the calibration and threshold learned (learn.decision)


def model_card(facts: CardFacts) -> str:
    """The card as Markdown."""
    ev = facts.evaluation
    parts = [f"# Model card: {facts.model_name}", "",
             f"A {_task(facts)} model predicting `{facts.target}` ({facts.best_model}, chosen by "
             f"{facts.primary_metric} in cross-validation).", ""]
    parts += ["## Data", "", f"- snapshot digest: `{facts.data_digest}`",
              f"- rows: {facts.rows} ({facts.train_rows} training, {facts.test_rows} holdout)",
              f"- features: {len(facts.features)} ({_kinds(facts.features)})"]
    parts += [f"- period: {p}" for p in _periods(facts.profile)]
    parts += ["", *_metrics(ev, facts.primary_metric), "", *_slices(ev.get("slices")), "",
              *_fairness(ev.get("fairness")), "", *_calibration(ev, facts.decision),
              *_features(facts.importance), "",
              *_limitations(facts), "", "## How to reproduce", "",
              f"- spec hash: `{facts.spec_hash}`", "- command, on the same data snapshot:", "",
              f"      looml run {facts.spec_file} --snapshot {facts.data_digest[:12]}", ""]
    if facts.gate_failures:
        parts[4:4] = ["**The evaluation gate failed; this model was not registered:**", "",
                      *[f"- {f}" for f in facts.gate_failures], ""]
    return "\n".join(parts)


def _task(facts: CardFacts) -> str:
    if facts.task == "regression":
        return "regression"
    n = len(facts.classes)
    return "binary classification" if n <= 2 else f"{n}-class classification"


def _kinds(features: dict[str, str]) -> str:
    counts: dict[str, int] = {}
    for kind in features.values():
        counts[kind] = counts.get(kind, 0) + 1
    return ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))


def _periods(profile: dict[str, Any]) -> list[str]:
    return [f"`{c['name']}` from {c['earliest']} to {c['latest']}" for c in profile.get("columns", [])
            if c.get("kind") == "datetime" and c.get("earliest")]


def _num(value: Any) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _metrics(ev: dict[str, Any], primary: str) -> list[str]:
    confidence = ev.get("confidence")
    bounds = ev.get("intervals") or {}
    head = f"## Holdout metrics ({ev.get('rows', 0)} rows" + (
        f", {confidence:.0%} bootstrap intervals)" if confidence else ")")
    lines = [head, "", "| metric | value | interval |", "| --- | --- | --- |"]
    for name, value in ev.get("metrics", {}).items():
        low, high = bounds.get(name, [None, None])
        span = f"[{_num(low)}, {_num(high)}]" if low is not None or high is not None else ""
        mark = " (primary)" if name == primary else ""
        lines.append(f"| {name}{mark} | {_num(value)} | {span} |")
    return lines


def _slices(sliced: dict[str, Any] | None) -> list[str]:
    lines = ["## Slices", ""]
    if not sliced:
        return [*lines, "No slices were asked for (`evaluation.slices`)."]
    worst = sliced.get("worst") or []
    metric = sliced["primary_metric"]
    if not worst:
        return [*lines, f"No slice of at least {sliced['min_rows']} rows is worse than the whole on "
                        f"{metric}."]
    lines += [f"Worst slices by {metric} (whole holdout: {_num(sliced['overall'])}):", "",
              "| column | slice | rows | value | interval | drop |", "| --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {w['column']} | {w['slice']} | {w['rows']} | {_num(w['value'])} | "
              f"[{_num(w['low'])}, {_num(w['high'])}] | {_num(w['drop'])} |" for w in worst]
    return lines


def _fairness(fair: dict[str, Any] | None) -> list[str]:
    lines = ["## Fairness", ""]
    if not fair:
        return [*lines, "No sensitive columns were named (`evaluation.sensitive_columns`)."]
    if fair.get("positive") is not None:
        lines += [f"Positive class: `{fair['positive']}`; groups of fewer than {fair['min_rows']} rows are "
                  "left out of the disparities.", ""]
    lines += ["| column | measure | value | between |", "| --- | --- | --- | --- |"]
    for column, measures in fair.get("disparities", {}).items():
        if not measures:
            lines.append(f"| {column} | (fewer than two groups with enough rows) | | |")
        for name, found in measures.items():
            lines.append(f"| {column} | {name} | {_num(found.get('value'))} | {found.get('detail', '')} |")
    return lines


def _calibration(ev: dict[str, Any], decision: dict[str, Any] | None) -> list[str]:
    """A binary model's Brier score and worst reliability bin on the holdout, and the calibration
    and threshold it learned; nothing for a model with neither."""
    reliability = (ev.get("plots") or {}).get("calibration")
    if not reliability and not decision:
        return []
    lines = ["## Calibration and decision", ""]
    if reliability:
        lines.append(f"- Brier score on the holdout: {_num(reliability['brier'])}")
        bins = list(zip(reliability["predicted"], reliability["observed"], reliability["count"], strict=True))
        if bins:
            predicted, observed, rows = max(bins, key=lambda b: abs(b[1] - b[0]))
            lines.append(f"- reliability: the largest gap between the predicted and the observed rate is "
                         f"{abs(observed - predicted):.3f} (predicted {predicted:.3f}, observed "
                         f"{observed:.3f}, {rows} holdout rows)")
    if decision:
        lines.append(f"- calibration: {decision['calibration']} ({decision['calibration_asked']} asked)")
    else:
        lines.append("- calibration: none (evaluation.calibration)")
    if decision and decision.get("threshold") is not None:
        lines.append(f"- decision threshold: {decision['threshold']:.4g} on the probability of "
                     f"`{decision['positive_class']}`, chosen for {decision['objective']} on out-of-fold "
                     "predictions")
    else:
        lines.append("- decision: the most probable class")
    return [*lines, ""]


def _features(importance: dict[str, float] | None) -> list[str]:
    lines = ["## Top features (permutation importance on the holdout)", ""]
    if not importance:
        return [*lines, "Not computed for this model."]
    top = sorted(((n, s) for n, s in importance.items() if s > 0), key=lambda kv: -kv[1])[:TOP_FEATURES]
    if not top:
        return [*lines, "No feature changes the holdout score when shuffled."]
    return [*lines, *[f"{i}. `{name}`: {share:.1%}" for i, (name, share) in enumerate(top, 1)]]


def _limitations(facts: CardFacts) -> list[str]:
    lines = ["## Known limitations", ""]
    rows = facts.profile.get("rows") or facts.rows
    for col in facts.profile.get("columns", []):
        share = col.get("missing", 0) / rows if rows else 0.0
        if share >= HEAVY_MISSING and col["name"] in facts.features:
            lines.append(f"- `{col['name']}` is missing in {share:.0%} of the rows (imputed)")
    for name, count in sorted(facts.classes.items(), key=lambda kv: kv[1]):
        if count < FEW_ROWS:
            lines.append(f"- class `{name}` has only {count} rows: its metrics are noisy")
    fair = facts.evaluation.get("fairness") or {}
    for column, groups in fair.get("columns", {}).items():
        small = [g["group"] for g in groups if g.get("small")]
        if small:
            lines.append(f"- groups of `{column}` too small to judge: {', '.join(small)}")
    if len(lines) == 2:
        lines.append("- none found (no heavy missingness, no class with few rows)")
    return lines
