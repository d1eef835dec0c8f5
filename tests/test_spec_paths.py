"""File paths in the spec stay in the project folder unless the spec names an absolute path."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from looml.errors import SpecError
from looml.scaffold import init_spec
from looml.spec import load_spec, parse_spec

REST = "  target: y\nregistry: {model_name: m}\n"


@pytest.mark.parametrize("path", ["../../etc/passwd", "data/../../x.csv", "../*.csv", "file://../x.csv",
                                  "{kind: file, path: ../x.parquet}"])
def test_a_relative_path_out_of_the_project_is_refused(path: str) -> None:
    with pytest.raises(SpecError, match=r"data\.source\.path \(line 2\): a relative path that leads outside "
                                        r"the project folder \(the folder of looml\.yaml\).*\n    fix: move "
                                        r"the file into the project folder, or give its absolute path"):
        parse_spec(f"data:\n  source: {path}\n{REST}", Path("/tmp/project"))


def test_the_schema_file_cannot_leave_the_project_either() -> None:
    with pytest.raises(SpecError, match=r"validation\.schema_file \(line 5\): a relative path that leads "
                                        r"outside the project folder \(the folder of looml\.yaml\) "
                                        r"\(got '\.\./\.\./s\.yaml'\)"):
        parse_spec(f"data:\n  source: d.csv\n{REST}validation: {{schema_file: ../../s.yaml}}\n", Path("."))


@pytest.mark.parametrize("path", ["/etc/hosts", "~/data.csv", "a/../b.csv", "./d.csv", "s3://bucket/../x.csv",
                                  "https://example.com/../x.csv"])
def test_absolute_inside_and_remote_paths_load(path: str) -> None:
    assert parse_spec(f"data:\n  source: {path}\n{REST}", Path("/tmp/project")).data.source.path == path


def test_init_names_data_outside_the_project_by_its_absolute_path(tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    pl.DataFrame({"x": [float(i % 7) for i in range(40)], "y": ["a", "b"] * 20}).write_csv(data)
    (tmp_path / "project").mkdir()

    spec = load_spec(init_spec(data, "y", tmp_path / "project" / "looml.yaml"))

    assert spec.data.source.path == str(data.resolve())
