"""The gate on fairness measures, and the checks of what the evaluation section names: in the
spec alone (unknown measures, a fairness gate without sensitive columns) and against the data."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from looml.errors import SpecError
from looml.learn.fairness import fairness
from looml.learn.gate import check_analysis_columns, check_gate, check_metrics_fit_task
from looml.spec import EvaluationSpec, GateSpec


def _fair() -> dict:
    rng = np.random.default_rng(0)
    sex = rng.choice(["F", "M"], 600)
    pred = np.where(sex == "F", rng.random(600) < 0.2, rng.random(600) < 0.5)
    classes = np.array(["no", "yes"])
    return fairness("classification", classes, classes[rng.integers(0, 2, 600)], classes[pred.astype(int)],
                    {"sex": sex}, min_rows=30)


def test_a_fairness_gate_names_the_groups_and_the_gap() -> None:
    fair = _fair()
    value = fair["disparities"]["sex"]["demographic_parity_difference"]["value"]
    [failure] = check_gate({}, GateSpec(max={"demographic_parity_difference": 0.1}), fair)
    assert failure.loc == "evaluation.gate.max.demographic_parity_difference"
    assert f"= {value:.4g} across 'sex', above the maximum 0.1" in failure.message
    assert "for 'M' vs" in failure.message and "for 'F'" in failure.message
    assert check_gate({}, GateSpec(max={"demographic_parity_difference": 0.9}), fair) == []
    [low] = check_gate({}, GateSpec(min={"demographic_parity_ratio": 0.8}), fair)
    assert "below the minimum 0.8" in low.message


def test_a_fairness_gate_that_cannot_be_judged_fails() -> None:
    fair = _fair()
    fair["disparities"]["sex"] = {}  # fewer than two groups with enough rows
    [failure] = check_gate({}, GateSpec(max={"equalized_odds_difference": 0.2}), fair)
    assert "cannot be measured across 'sex'" in failure.message


def test_the_spec_alone_rejects_bad_fairness_settings_all_at_once() -> None:
    with pytest.raises(ValidationError) as caught:
        EvaluationSpec(gate={"max": {"demographic_parity_diference": 0.1, "equalized_odds_difference": 0.2}},
                       slices=["a", "a"])
    found = {".".join(map(str, e["loc"])): (e["msg"], e["ctx"]["fix"]) for e in caught.value.errors()}
    assert found["gate.max.demographic_parity_diference"] == ("unknown metric",
                                                              "did you mean 'demographic_parity_difference'?")
    assert found["gate.max.equalized_odds_difference"][0] == ("a gate on a fairness measure needs "
                                                              "evaluation.sensitive_columns")
    assert found["slices.1"][0].startswith("listed more than once")
    with pytest.raises(ValidationError, match=r"needs evaluation\.analysis: true"):
        EvaluationSpec(sensitive_columns=["sex"], analysis=False, gate={"max": {"accuracy_difference": 0.1}})
    with pytest.raises(ValidationError, match="a fairness measure cannot rank the candidates"):
        EvaluationSpec(primary_metric="demographic_parity_ratio")


def test_columns_and_measures_are_checked_against_the_data() -> None:
    spec = EvaluationSpec(sensitive_columns=["sx", "label"], slices=["regoin"],
                          gate={"max": {"mae_difference": 1.0}})
    problems = check_analysis_columns(spec, ["sex", "region", "label"], "label")
    assert [p.loc for p in problems] == ["evaluation.sensitive_columns[0]", "evaluation.sensitive_columns[1]",
                                         "evaluation.slices[0]"]
    assert problems[0].fix == "did you mean 'sex'?" and problems[2].fix == "did you mean 'region'?"
    assert "the target cannot be analysed" in problems[1].message
    with pytest.raises(SpecError, match="not a fairness measure of a binary task"):
        check_metrics_fit_task(spec, "classification", 2)
    check_metrics_fit_task(spec, "regression")
    multi = EvaluationSpec(sensitive_columns=["sex"], gate={"max": {"demographic_parity_difference": 0.1}})
    with pytest.raises(SpecError, match="use one of: accuracy_difference"):
        check_metrics_fit_task(multi, "classification", 3)
