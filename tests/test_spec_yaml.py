"""Reading looml.yaml's text (src/looml/spec/_yaml.py): the YAML that would hang or crash a parser
ends in a SpecError naming the file, quickly."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from looml.errors import SpecError
from looml.spec import load_spec, parse_spec

MINIMAL = "data:\n  source: data.csv\n  target: label\nregistry:\n  model_name: churn\n"
LAUGHS = "a0: &a0 [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 9))


@pytest.mark.parametrize(("text", "message"), [
    (LAUGHS + MINIMAL, r"looml\.yaml \(line \d+\): malformed YAML: expands to more than 100,000 values"),
    ("a: &a [*a]\n" + MINIMAL, r"\(line 1\): malformed YAML: an alias refers to the list or mapping that "
                               r"contains it"),
    ("a: &a {b: [1, {c: *a}]}\n" + MINIMAL, r"an alias refers to the list or mapping that contains it"),
    ("data: " + "[" * 60 + "]" * 60 + "\n", r"\(line 1\): malformed YAML: nested more than 50 levels deep"),
    ("data: " + "[" * 5000 + "]" * 5000 + "\n", r"malformed YAML: brackets or indentation nested too deeply"),
    ("data: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n", r"nested too deeply to read"),
    (MINIMAL + "seed: " + "9" * 5000 + "\n", r"malformed YAML: a value cannot be read: Exceeds the limit"),
    (MINIMAL + "seed: !!timestamp x\n", r"malformed YAML: a value cannot be read"),  # AttributeError
    (MINIMAL + "monitor: 2001-13-45\n", r"a value cannot be read: month must be in 1\.\.12.*\n.*fix: quote "
                                        r"the value"),
])
def test_hostile_yaml_is_a_spec_error_naming_the_file(text: str, message: str) -> None:
    start = time.perf_counter()
    with pytest.raises(SpecError, match=message) as exc:
        parse_spec(text, Path("."), name="looml.yaml")
    assert exc.value.problems[0].loc == "looml.yaml"
    assert time.perf_counter() - start < 2  # PyYAML took 7 s to recurse into 2,000 brackets


def test_aliases_that_stay_small_still_load(tmp_path: Path) -> None:
    (tmp_path / "looml.yaml").write_text(
        "data: {source: data.csv, target: y, id_columns: &ids [a, b], drop_columns: *ids}\n"
        "registry: {model_name: m}\n", encoding="utf-8")

    spec = load_spec(tmp_path / "looml.yaml")

    assert spec.data.id_columns == spec.data.drop_columns == ["a", "b"]


def test_a_malformed_spec_keeps_pyyamls_wording_and_line(tmp_path: Path) -> None:
    (tmp_path / "looml.yaml").write_text("data:\n  source: a.csv\n  target: y: z\n", encoding="utf-8")

    with pytest.raises(SpecError, match=r"looml\.yaml \(line 3\): malformed YAML: mapping values are not "
                                        r"allowed here"):
        load_spec(tmp_path / "looml.yaml")
