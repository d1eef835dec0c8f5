"""Bad input through the real `looml` command: exit code, message, no traceback, nothing registered.

Exit codes (cli.py): 0 ok, 2 spec, 3 data, 4 gate.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from looml.cli import app
from looml.spec import load_spec

LOOML = Path(sys.executable).with_name("looml")  # the console script of this environment


def looml(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run the installed `looml` script, as a user would."""
    return subprocess.run([str(LOOML), *map(str, args)], capture_output=True, text=True,
                          timeout=300, check=False)


def assert_user_error(out: subprocess.CompletedProcess[str], code: int, *needles: str) -> str:
    """The exit code, every needle in the message, and no traceback; returns the text."""
    text = out.stdout + out.stderr
    assert out.returncode == code, text
    assert "Traceback" not in text, text
    for needle in needles:
        assert needle in text, f"{needle!r} not in:\n{text}"
    return text


def assert_nothing_registered(project: Path) -> None:
    """No model version exists in the project's embedded registry."""
    db = project / ".looml" / "mlflow.db"
    if not db.exists():
        return
    import mlflow  # slow to import: only when there is a database to look in

    assert mlflow.MlflowClient(f"sqlite:///{db}").search_model_versions() == []


@pytest.fixture(scope="module", autouse=True)
def _script_exists() -> None:
    assert LOOML.is_file(), f"the looml console script is not installed at {LOOML}"


def test_missing_spec_file(tmp_path: Path) -> None:
    out = looml("run", tmp_path / "looml.yaml")

    assert_user_error(out, 2, "invalid spec: 1 problem", "spec file not found",
                      "looml init --data FILE --target COL")


def test_missing_data_file(make_project: Callable[..., Path]) -> None:
    spec = make_project(None, data_file="nothere.csv")

    out = looml("run", spec)

    assert_user_error(out, 3, "invalid data: 1 problem", "data.source: data file not found",
                      "nothere.csv", "fix: check data.source in looml.yaml")
    assert_nothing_registered(spec.parent)


def test_malformed_yaml(tmp_path: Path) -> None:
    spec = tmp_path / "looml.yaml"
    spec.write_text("data:\n  source: data.csv\n   target: label\nregistry: {model_name: m}\n")

    out = looml("run", spec)

    assert_user_error(out, 2, "(line 3): malformed YAML: mapping values are not allowed here")
    assert not (tmp_path / ".looml").exists()


def test_unknown_key(make_project: Callable[..., Path],
                     classification_frame: Callable[..., pl.DataFrame]) -> None:
    spec = make_project(classification_frame(), extra="evalutaion:\n  primary_metric: f1\n")

    out = looml("run", spec)

    assert_user_error(out, 2, "evalutaion (line 9): unknown key", "did you mean 'evaluation'?")
    assert_nothing_registered(spec.parent)


def test_misspelt_candidate_param(make_project: Callable[..., Path],
                                  classification_frame: Callable[..., pl.DataFrame]) -> None:
    spec = make_project(classification_frame())
    spec.write_text(spec.read_text().replace(
        "[linear]", "[{name: linear, params: {max_iters: 10}}]"))

    out = looml("run", spec)

    assert_user_error(out, 2, "models.candidates[0].params.max_iters: not a parameter",
                      "did you mean 'max_iter'?")
    assert_nothing_registered(spec.parent)


def test_misspelt_target_column(make_project: Callable[..., Path],
                                classification_frame: Callable[..., pl.DataFrame]) -> None:
    spec = make_project(classification_frame(), target="lable")

    out = looml("run", spec)

    assert_user_error(out, 3, "data.target: no such column in the data (got 'lable')",
                      "fix: did you mean 'label'?")
    assert_nothing_registered(spec.parent)


@pytest.mark.parametrize(("content", "message"), [
    (b"", "the data file is empty"),
    (b"x1,x2,label\n", "the data file has no rows"),
])
def test_empty_data(make_project: Callable[..., Path], content: bytes, message: str) -> None:
    spec = make_project(content)

    out = looml("run", spec)

    assert_user_error(out, 3, f"data.source: {message}", "data.csv")
    assert_nothing_registered(spec.parent)


def test_single_class_target(make_project: Callable[..., Path],
                             classification_frame: Callable[..., pl.DataFrame]) -> None:
    frame = classification_frame().with_columns(label=pl.lit("yes"))
    spec = make_project(frame)

    out = looml("run", spec)

    assert_user_error(out, 3, "classification needs at least two classes; the target has only "
                              "'yes'")
    assert_nothing_registered(spec.parent)


def test_string_target_for_regression(make_project: Callable[..., Path],
                                      classification_frame: Callable[..., pl.DataFrame]) -> None:
    spec = make_project(classification_frame(), data_yaml="  task: regression\n")

    out = looml("run", spec)

    assert_user_error(out, 3, "a regression target must be numeric, but 'label' is String",
                      "set data.task: classification")
    assert_nothing_registered(spec.parent)


def test_target_all_null(make_project: Callable[..., Path],
                         classification_frame: Callable[..., pl.DataFrame]) -> None:
    frame = classification_frame().with_columns(label=pl.lit(None, dtype=pl.String))
    spec = make_project(frame)

    out = looml("run", spec)

    assert_user_error(out, 3, "the target column has no values (all null)")
    assert_nothing_registered(spec.parent)


def test_fewer_rows_than_folds(make_project: Callable[..., Path]) -> None:
    frame = pl.DataFrame({"x": [0.1, 0.5, 0.2, 0.9, 0.4], "y": [1.5, 2.5, 3.1, 4.2, 0.3]})
    spec = make_project(frame, target="y")

    out = looml("run", spec)

    assert_user_error(out, 3, "split.folds: only 4 training rows (of 5 with a target) for 5 "
                              "cross-validation folds", "lower split.folds")
    assert_nothing_registered(spec.parent)


def test_every_data_problem_at_once(make_project: Callable[..., Path],
                                    classification_frame: Callable[..., pl.DataFrame]) -> None:
    spec = make_project(classification_frame(), target="lable",
                        data_yaml="  id_columns: [row_id]\n  drop_columns: [x3]\n")

    out = looml("run", spec)

    text = assert_user_error(out, 3, "invalid data: 3 problems", "data.id_columns[0]",
                             "data.drop_columns[0]", "did you mean 'label'?")
    assert text.count("no such column in the data") == 3


def test_gate_that_cannot_pass(make_project: Callable[..., Path],
                               classification_frame: Callable[..., pl.DataFrame]) -> None:
    spec = make_project(classification_frame(rows=150, signal=0.0),
                        extra="evaluation:\n  gate:\n    min: {roc_auc: 0.999}\n")

    out = looml("run", spec)

    text = assert_user_error(out, 4, "evaluation gate failed: 1 problem",
                             "evaluation.gate.min.roc_auc: roc_auc = ", "below the minimum 0.999",
                             "nothing was registered; see the report at")
    report = Path(text.split("see the report at ")[1].split()[0])
    assert report.is_file()
    assert_nothing_registered(spec.parent)


def test_json_output_on_a_data_error(make_project: Callable[..., Path],
                                     classification_frame: Callable[..., pl.DataFrame]) -> None:
    spec = make_project(classification_frame(), target="lable", data_yaml="  drop_columns: [x9]\n")

    out = looml("run", "--json", spec)

    assert out.returncode == 3, out.stderr
    assert "Traceback" not in out.stderr
    body = json.loads(out.stdout)
    assert body["error"] == "data"
    assert body["count"] == 2
    assert body["problems"] == [
        {"loc": "data.drop_columns[0]", "line": None, "msg": "no such column in the data",
         "value": "x9", "fix": "the columns are: x1, x2, label"},
        {"loc": "data.target", "line": None, "msg": "no such column in the data",
         "value": "lable", "fix": "did you mean 'label'?"},
    ]


def test_json_output_on_a_spec_error(tmp_path: Path) -> None:
    spec = tmp_path / "looml.yaml"
    spec.write_text("data: {source: d.csv, target: y, task: regresion}\n"
                    "registry: {model_name: m}\n")

    result = CliRunner().invoke(app, ["run", "--json", str(spec)])

    assert result.exit_code == 2, result.output
    body = json.loads(result.stdout)
    assert body["error"] == "spec"
    assert body["problems"] == [{"loc": "data.task", "line": 1,
                                 "msg": "expected one of 'auto', 'classification' or 'regression'",
                                 "value": "regresion", "fix": "did you mean 'regression'?"}]


def test_value_is_visible_in_the_terminal_message(
        make_project: Callable[..., Path],
        classification_frame: Callable[..., pl.DataFrame]) -> None:
    # In process, so rich renders the message exactly as the terminal would.
    spec = make_project(classification_frame(), data_yaml="  drop_columns: [colour]\n")

    result = CliRunner().invoke(app, ["run", str(spec)])

    assert result.exit_code == 3, result.output
    assert "data.drop_columns[0]: no such column in the data (got 'colour')" in result.output
    assert "Traceback" not in result.output


def test_init_names_the_option_that_is_wrong(tmp_path: Path,
                                             classification_frame: Callable[..., pl.DataFrame]
                                             ) -> None:
    data = tmp_path / "churn.csv"
    classification_frame().write_csv(data)

    wrong_target = looml("init", "--data", data, "--target", "lable", "--out", tmp_path / "a.yaml")
    wrong_data = looml("init", "--data", tmp_path / "nope.csv", "--target", "label",
                       "--out", tmp_path / "b.yaml")

    assert_user_error(wrong_target, 3, "--target: no such column in the data (got 'lable')",
                      "did you mean 'label'?")
    assert_user_error(wrong_data, 3, "--data: data file not found", "check the path given to --data")
    assert not (tmp_path / "a.yaml").exists() and not (tmp_path / "b.yaml").exists()


def test_init_writes_a_valid_spec_and_refuses_to_overwrite_it(
        tmp_path: Path, classification_frame: Callable[..., pl.DataFrame]) -> None:
    data = tmp_path / "churn.csv"
    classification_frame().with_row_index("row").write_csv(data)
    spec = tmp_path / "looml.yaml"

    first = looml("init", "--data", data, "--target", "label", "--out", spec)
    again = looml("init", "--data", data, "--target", "label", "--out", spec)

    assert first.returncode == 0, first.stderr
    loaded = load_spec(spec)
    assert (loaded.data.source.path, loaded.data.task) == ("churn.csv", "classification")
    assert loaded.data.id_columns == ["row"]
    assert loaded.registry.model_name == "churn"
    assert_user_error(again, 2, "a spec already exists here", "pass --force to overwrite it")


def test_brackets_in_a_value_are_printed(
        make_project: Callable[..., Path],
        classification_frame: Callable[..., pl.DataFrame]) -> None:
    spec = make_project(classification_frame(), data_yaml="  drop_columns: ['weight[kg]']\n")

    result = CliRunner().invoke(app, ["run", str(spec)])

    assert result.exit_code == 3, result.output
    assert "(got 'weight[kg]')" in result.output



def test_metric_of_the_other_inferred_task_is_a_spec_error_and_registers_nothing(
        make_project: Callable[..., Path], classification_frame: Callable[..., pl.DataFrame]) -> None:
    spec = make_project(classification_frame(), extra="evaluation: {primary_metric: rmse}\n")

    out = looml("run", spec)

    assert_user_error(out, 2, "evaluation.primary_metric", "not a classification metric")
    assert_nothing_registered(spec.parent)
