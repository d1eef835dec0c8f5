"""The spec edge: defaults, and every user-facing SpecError with its location and line."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from looml.cli import app
from looml.errors import SpecError
from looml.learn.zoo import check_models as check_params
from looml.spec import Spec, load_spec, spec_json_schema

MINIMAL = """\
data:
  source: data.csv
  target: label
registry:
  model_name: churn
"""


def write(folder: Path, text: str, name: str = "looml.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems(exc: pytest.ExceptionInfo[SpecError]) -> list[tuple[str, int | None]]:
    return [(p.loc, p.line) for p in exc.value.problems]


def test_minimal_spec_loads_with_defaults(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, MINIMAL))

    assert spec.seed == 42
    assert spec.data.task == "auto" and spec.data.source.format == "auto"
    assert spec.data.id_columns == [] and spec.data.drop_columns == []
    assert (spec.split.test_size, spec.split.folds) == (0.2, 5)
    assert [c.name for c in spec.models.candidates] == [
        "lightgbm", "linear", "catboost", "xgboost", "mlp", "extra_trees", "random_forest",
        "hist_gradient_boosting"]
    assert spec.evaluation.primary_metric == "auto"
    assert spec.evaluation.gate.min == {} and spec.evaluation.gate.max == {}
    assert spec.tracking.uri == "sqlite:///.looml/mlflow.db"
    assert spec.project_dir == tmp_path.resolve()
    assert spec.resolve("data.csv") == tmp_path.resolve() / "data.csv"


def test_candidate_names_become_objects_with_empty_params(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, MINIMAL + """\
models:
  candidates: [linear, {name: lightgbm, params: {n_estimators: 50}}]
"""))

    assert [(c.name, c.params) for c in spec.models.candidates] == [
        ("linear", {}), ("lightgbm", {"n_estimators": 50})]


def test_spec_hash_ignores_the_folder_but_not_the_content(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = load_spec(write(tmp_path / "a", MINIMAL))
    b = load_spec(write(tmp_path / "b", MINIMAL))
    c = load_spec(write(tmp_path, MINIMAL + "seed: 7\n"))

    assert a.project_dir != b.project_dir
    assert a.spec_hash == b.spec_hash
    assert a.spec_hash != c.spec_hash


def test_spec_hash_ignores_how_the_model_is_served_and_watched(tmp_path: Path) -> None:
    base = load_spec(write(tmp_path, MINIMAL))
    extra = ("serve: {port: 9000}\nloop: {interval: 2h}\nalerts: {cooldown: 1h}\n"
             "monitor: {drift: {drift_share: 0.3}}\n")
    operational = load_spec(write(tmp_path, MINIMAL + extra))
    assert base.spec_hash == operational.spec_hash

def test_missing_spec_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"nope\.yaml: spec file not found") as exc:
        load_spec(tmp_path / "nope.yaml")
    assert "looml init --data FILE --target COL" in exc.value.problems[0].fix


def test_empty_spec_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="the spec file is empty"):
        load_spec(write(tmp_path, ""))


def test_spec_that_is_not_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"expected a YAML mapping of sections .*\(got 'list'\)"):
        load_spec(write(tmp_path, "- data\n- registry\n"))


def test_malformed_yaml_reports_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        data:
          source: data.csv
           target: label
        registry:
          model_name: churn
        """)
    with pytest.raises(SpecError, match=r"\(line 3\): malformed YAML: mapping values are not "
                                        r"allowed here") as exc:
        load_spec(path)
    assert exc.value.problems[0].line == 3
    assert exc.value.problems[0].fix == "check indentation and quoting near that line"


def test_malformed_yaml_names_where_the_unclosed_bracket_starts(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "models:\n  candidates: [linear, lightgbm\n")
    with pytest.raises(SpecError, match=r"while parsing a flow sequence that starts on line 7"):
        load_spec(path)


def test_unknown_key_suggests_the_close_one(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        data:
          source: data.csv
          traget: label
        registry:
          model_name: churn
        """)
    with pytest.raises(SpecError, match=r"data\.traget \(line 3\): unknown key\n"
                                        r"\s+fix: did you mean 'target'\?") as exc:
        load_spec(path)
    # The real key is then missing too: both are reported, together.
    assert problems(exc) == [("data.target", 1), ("data.traget", 3)]
    assert exc.value.problems[0].fix == "add `target:` under `data:`"


def test_unknown_top_level_section(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"evalution \(line 6\): unknown key\n"
                                        r"\s+fix: did you mean 'evaluation'\?"):
        load_spec(write(tmp_path, MINIMAL + "evalution:\n  primary_metric: f1\n"))


def test_unknown_key_with_nothing_close_lists_the_allowed_keys(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"fix: allowed keys here: seed, data, validation, "
                                        r"split, preprocessing, features, models, tuning, evaluation, "
                                        r"registry, tracking, serve"):
        load_spec(write(tmp_path, MINIMAL + "owner: me\n"))


def test_unknown_key_inside_a_candidate(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "models:\n  candidates:\n    - name: lightgbm\n"
                                     "      parms: {n_estimators: 10}\n")
    with pytest.raises(SpecError, match=r"models\.candidates\.0\.parms \(line 9\): unknown key\n"
                                        r"\s+fix: did you mean 'params'\?"):
        load_spec(path)


def test_misspelt_literal_suggests_the_close_value(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace("  target: label\n",
                                           "  target: label\n  task: clasification\n"))
    with pytest.raises(SpecError, match=r"data\.task \(line 4\): expected one of 'auto', "
                                        r"'classification' or 'regression' "
                                        r"\(got 'clasification'\)\n"
                                        r"\s+fix: did you mean 'classification'\?$"):
        load_spec(path)


def test_unknown_literal_lists_the_choices(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace("  target: label\n", "  target: label\n  format: xls\n"))
    with pytest.raises(SpecError, match=r"data\.format .*unknown key"):
        load_spec(path)
    path = write(tmp_path, MINIMAL.replace("  source: data.csv\n",
                                           "  source: {path: data.csv, format: xls}\n"))
    with pytest.raises(SpecError, match=r"data\.source\.format \(line 2\): .*\(got 'xls'\)\n"
                                        r"\s+fix: use one of auto, csv, parquet, ndjson, excel$"):
        load_spec(path)


def test_unknown_model_name(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"models\.candidates\.1\.name \(line 7\): unknown model "
                                        r"\(got 'xgbost'\)\n\s+fix: did you mean 'xgboost'\?"):
        load_spec(write(tmp_path, MINIMAL + "models:\n  candidates: [linear, xgbost]\n"))


def test_every_problem_is_reported_at_once_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        seed: -1
        data:
          source: data.csv
          target: label
          task: regresion
        split:
          folds: 1
          test_size: 1.5
        registry:
          model_name: "has spaces"
        """)
    with pytest.raises(SpecError, match=r"^invalid spec: 5 problems\n") as exc:
        load_spec(path)

    assert problems(exc) == [("seed", 1), ("data.task", 5), ("split.test_size", 8),
                             ("split.folds", 7), ("registry.model_name", 10)]
    text = str(exc.value)
    assert "seed (line 1): Input should be greater than or equal to 0 (got -1)" in text
    assert "did you mean 'regression'?" in text
    assert "split.folds (line 7): Input should be greater than or equal to 2 (got 1)" in text
    assert "split.test_size (line 8): Input should be less than 1 (got 1.5)" in text
    assert "registry.model_name (line 10): String should match pattern" in text
    assert "use letters, digits, '_', '.' and '-' only" in text


def test_required_sections_missing(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"2 problems") as exc:
        load_spec(write(tmp_path, "seed: 1\n"))
    assert [(p.loc, p.fix) for p in exc.value.problems] == [
        ("data", "add `data:` at the top level"), ("registry", "add `registry:` at the top level")]


def test_duplicate_yaml_key_is_not_silently_dropped(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "seed: 1\nseed: 2\n")
    with pytest.raises(SpecError, match=r"seed \(line 7\): duplicate key \(first on line 6\)"):
        load_spec(path)


def test_project_dir_is_not_a_spec_key(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"project_dir: not a spec key; it is set by looml"):
        load_spec(write(tmp_path, MINIMAL + "project_dir: /elsewhere\n"))


def test_unknown_metrics_are_reported_where_they_are(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + """\
evaluation:
  primary_metric: roc_aux
  gate:
    min: {acuracy: 0.8}
    max: {latency: 3}
""")
    with pytest.raises(SpecError, match=r"3 problems") as exc:
        load_spec(path)

    assert problems(exc) == [("evaluation.primary_metric", 7), ("evaluation.gate.min.acuracy", 9),
                             ("evaluation.gate.max.latency", 10)]
    fixes = [p.fix for p in exc.value.problems]
    assert fixes[:2] == ["did you mean 'roc_auc'?", "did you mean 'accuracy'?"]
    assert fixes[2].startswith("known metrics: classification: roc_auc, accuracy")
    assert "unknown metric (got 'roc_aux')" in str(exc.value)


def test_metric_of_the_other_task(tmp_path: Path) -> None:
    regression = MINIMAL.replace("  target: label\n", "  target: label\n  task: regression\n")
    path = write(tmp_path, regression + "evaluation:\n  gate:\n    min: {roc_auc: 0.7}\n")
    with pytest.raises(SpecError, match=r"evaluation\.gate\.min\.roc_auc \(line 9\): not a "
                                        r"regression metric, and data\.task is 'regression' "
                                        r"\(got 'roc_auc'\)\n\s+fix: use one of rmse, mae, r2"):
        load_spec(path)


def test_metrics_of_both_tasks(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "evaluation:\n  primary_metric: f1\n"
                                     "  gate: {max: {rmse: 2}}\n")
    with pytest.raises(SpecError, match=r"evaluation \(line 6\): mixes classification and "
                                        r"regression metrics: primary_metric: f1, gate.max.rmse"):
        load_spec(path)


def test_duplicate_candidates(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "models:\n  candidates:\n    - linear\n    - lightgbm\n"
                                     "    - linear\n")
    with pytest.raises(SpecError, match=r"models\.candidates\.2 \(line 10\): this candidate is "
                                        r"listed more than once \(first at models\.candidates\.0\) "
                                        r"\(got 'linear'\)"):
        load_spec(path)


def test_no_candidates(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"models\.candidates \(line 7\): List should have at least "
                                        r"1 item"):
        load_spec(write(tmp_path, MINIMAL + "models:\n  candidates: []\n"))


def test_misspelt_candidate_param(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, MINIMAL + """\
models:
  candidates:
    - linear
    - {name: lightgbm, params: {n_estimator: 10, learning_rate: 0.1}}
"""))
    with pytest.raises(SpecError, match=r"models\.candidates\[1\]\.params\.n_estimator: not a "
                                        r"parameter of LGBMClassifier\n"
                                        r"\s+fix: did you mean 'n_estimators'\?") as exc:
        check_params(spec.models)
    assert len(exc.value.problems) == 1


def test_param_of_one_task_only_passes_the_spec_check(tmp_path: Path) -> None:
    # `C` is a LogisticRegression parameter, not a Ridge one: valid for the classification case.
    spec = load_spec(write(tmp_path, MINIMAL + "models:\n  candidates: [{name: linear, "
                                               "params: {C: 0.5}}]\n"))
    check_params(spec.models)  # does not raise

    bad = load_spec(write(tmp_path, MINIMAL + "models:\n  candidates: [{name: linear, "
                                              "params: {C: 0.5, max_itr: 9}}]\n"))
    with pytest.raises(SpecError, match=r"params\.max_itr: not a parameter"):
        check_params(bad.models)


def test_schema_command_prints_the_sections_and_no_project_dir() -> None:
    result = CliRunner().invoke(app, ["schema"])

    assert result.exit_code == 0, result.output
    schema = json.loads(result.stdout)
    assert schema["title"] == "looml.yaml"
    assert set(schema["properties"]) == {"seed", "data", "validation", "split", "preprocessing",
                                         "features", "models", "tuning", "evaluation", "registry", "tracking",
                                         "serve", "monitor", "alerts", "loop"}
    assert "project_dir" not in result.stdout
    assert set(schema["required"]) == {"data", "registry"}
    assert schema == spec_json_schema()
    assert schema["$defs"]["DataSpec"]["additionalProperties"] is False


def test_spec_models_refuse_unknown_fields_from_python_too() -> None:
    with pytest.raises(ValueError, match="Extra inputs are not permitted"):
        Spec.model_validate({"data": {"source": "d.csv", "target": "y"},
                             "registry": {"model_name": "m"}, "sede": 1})


def test_a_check_given_only_a_threshold_keeps_its_default_severity(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, MINIMAL + "validation:\n  duplicate_rows: {threshold: 0.2}\n"
                                               "  out_of_range: warning\n"))

    assert (spec.validation.duplicate_rows.severity, spec.validation.duplicate_rows.threshold) == (
        "warning", 0.2)
    assert (spec.validation.out_of_range.severity, spec.validation.out_of_range.threshold) == (
        "warning", 0.001)


def test_a_bare_off_which_yaml_reads_as_false_turns_a_check_off(tmp_path: Path) -> None:
    checks = ("validation:\n  train_test_skew: off\n  id_like: {severity: off, threshold: 0}\n"
              "  duplicate_rows: no\n")
    spec = load_spec(write(tmp_path, MINIMAL + checks))
    assert spec.validation.train_test_skew.severity == "off"
    assert spec.validation.train_test_skew.threshold == 0.1
    assert spec.validation.id_like.severity == spec.validation.duplicate_rows.severity == "off"
