"""Ingest from files: each format is read, globs and folders become one frame, malformed CSV lines
and wrong encodings are reported by line, and unreadable files get a clear DataError."""

from __future__ import annotations

import datetime as dt
import math
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import polars as pl
import pytest
from sklearn.datasets import load_iris

import looml
from looml.data.sources import fetch
from looml.data.sources.files import detect_format, local_paths, read_files, read_table
from looml.errors import DataError
from looml.spec import FileSource


def iris() -> pl.DataFrame:
    return pl.from_pandas(load_iris(as_frame=True).frame)


def test_csv_detects_iso_dates_and_datetimes(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("day,stamp,n,name\n2024-01-31,2024-01-31T08:30:00,1,a\n"
                    "2024-02-29,2024-02-29T23:59:59,2,b\n")

    frame = read_table(path)

    assert frame.schema["day"] == pl.Date
    assert frame.schema["stamp"].is_temporal() and frame.schema["stamp"] != pl.Date
    assert frame.schema["n"] == pl.Int64
    assert frame.schema["name"] == pl.String
    assert frame["day"].to_list() == [dt.date(2024, 1, 31), dt.date(2024, 2, 29)]


def test_csv_null_markers_are_missing(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("x,y\n1.5,a\nNA,\nNaN,N/A\nnull,b\n")

    frame = read_table(path)

    assert frame["x"].null_count() == 3
    assert frame["y"].null_count() == 2


def test_tsv_is_tab_separated(tmp_path: Path) -> None:
    path = tmp_path / "d.tsv"
    path.write_text("a\tb\n1\tx,y\n")

    assert read_table(path).to_dicts() == [{"a": 1, "b": "x,y"}]


@pytest.mark.parametrize("suffix", [".parquet", ".pq"])
def test_parquet_round_trip(tmp_path: Path, suffix: str) -> None:
    frame = iris()
    path = tmp_path / f"iris{suffix}"
    frame.write_parquet(path)

    assert read_table(path).equals(frame)


@pytest.mark.parametrize("suffix", [".ndjson", ".jsonl"])
def test_ndjson_round_trip(tmp_path: Path, suffix: str) -> None:
    frame = iris()
    path = tmp_path / f"iris{suffix}"
    frame.write_ndjson(path)

    assert read_table(path).equals(frame)


def test_float_nan_is_read_as_missing(tmp_path: Path) -> None:
    # A Parquet NaN must count as missing, like "NaN" in a CSV; otherwise a NaN target
    # reaches the estimator and training fails with "Input y contains NaN".
    path = tmp_path / "d.parquet"
    pl.DataFrame({"x": [1.0, math.nan, 3.0], "y": [math.nan, 2.0, math.nan]}).write_parquet(path)

    frame = read_table(path)

    assert frame["x"].null_count() == 1
    assert frame["y"].null_count() == 2
    assert frame["x"].is_nan().sum() == 0


def test_declared_format_wins_over_the_extension(tmp_path: Path) -> None:
    path = tmp_path / "export.dat"
    path.write_text('{"a": 1}\n{"a": 2}\n')

    assert detect_format(path, "ndjson") == "ndjson"
    assert read_table(path, "ndjson")["a"].to_list() == [1, 2]


def test_unknown_extension(tmp_path: Path) -> None:
    path = tmp_path / "report.docx"
    path.write_bytes(b"PK\x03\x04")

    with pytest.raises(DataError, match=r"data\.source\.format: cannot tell the file format from the "
                                        r"extension \(got '\.docx'\)\n\s+fix: set data\.source\.format to "
                                        r"one of csv, parquet, ndjson, excel"):
        read_table(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"data\.source: data file not found \(got '.*gone\.csv'\)"):
        read_table(tmp_path / "gone.csv")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.touch()

    with pytest.raises(DataError, match=r"the data file is empty"):
        read_table(path)


def test_header_only_csv_says_no_rows(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("a,b,label\n")

    with pytest.raises(DataError, match=r"data\.source: the data file has no rows"):
        read_table(path)


@pytest.mark.parametrize(("name", "content", "fmt"), [
    ("d.parquet", b"this is not parquet", "parquet"),
    ("d.ndjson", b'{"a": 1}\n{"a": \n', "ndjson"),
    ("d.xlsx", b"PK\x03\x04 not a workbook", "excel"),
])
def test_unreadable_file(tmp_path: Path, name: str, content: bytes, fmt: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)

    with pytest.raises(DataError, match=rf"data\.source: cannot read the file as {fmt}: .*\n"
                                        rf"\s+fix: check that the file is valid {fmt}, or set "
                                        r"data\.source\.format") as exc:
        read_table(path)
    assert exc.value.problems[0].value == str(path)


def test_csv_types_hold_when_a_late_row_disagrees_with_the_first_rows(tmp_path: Path) -> None:
    rows = ["amount,kind", *(f"{i},x" for i in range(1000)), "3.5,y", "n/a?,z"]
    path = tmp_path / "late.csv"
    path.write_text("\n".join(rows) + "\n")

    frame = read_table(path)

    assert frame.height == 1002
    assert frame["amount"].to_list()[-2:] == ["3.5", "n/a?"]  # nothing lost or nulled


def read(tmp_path: Path, path: str, **options: object) -> tuple[pl.DataFrame, list[str]]:
    return read_files(FileSource(path=path, **options), tmp_path)


def write_xlsx(path: Path, sheets: dict[str, list[list[object]]]) -> None:
    """A minimal .xlsx (inline strings, no styles): xlsxwriter and openpyxl are not installed."""
    ns = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    kind = "application/vnd.openxmlformats-officedocument.spreadsheetml"

    def cell(ref: str, value: object) -> str:
        if isinstance(value, int | float):
            return f'<c r="{ref}"><v>{value}</v></c>'
        return f'<c r="{ref}" t="inlineStr"><is><t>{escape(str(value))}</t></is></c>'

    with zipfile.ZipFile(path, "w") as book:
        book.writestr("[Content_Types].xml", (
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" '
            'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/xl/workbook.xml" ContentType="{kind}.sheet.main+xml"/>'
            + "".join(f'<Override PartName="/xl/worksheets/sheet{i}.xml" ContentType="{kind}.worksheet+xml"/>'
                      for i in range(1, len(sheets) + 1)) + "</Types>"))
        book.writestr("_rels/.rels", (
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f'<Relationship Id="rId1" Type="{rel}/officeDocument" Target="xl/workbook.xml"/>'
            "</Relationships>"))
        book.writestr("xl/workbook.xml", f'<workbook {ns} xmlns:r="{rel}"><sheets>' + "".join(
            f'<sheet name="{escape(name)}" sheetId="{i}" r:id="rId{i}"/>' for i, name in enumerate(sheets, 1))
            + "</sheets></workbook>")
        book.writestr("xl/_rels/workbook.xml.rels", (
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">' + "".join(
                f'<Relationship Id="rId{i}" Type="{rel}/worksheet" Target="worksheets/sheet{i}.xml"/>'
                for i in range(1, len(sheets) + 1)) + "</Relationships>"))
        for i, rows in enumerate(sheets.values(), 1):
            body = "".join(f'<row r="{r}">' + "".join(cell(f"{chr(65 + c)}{r}", v) for c, v in enumerate(row))
                           + "</row>" for r, row in enumerate(rows, 1))
            book.writestr(f"xl/worksheets/sheet{i}.xml",
                          f"<worksheet {ns}><sheetData>{body}</sheetData></worksheet>")


# --- globs and folders ---------------------------------------------------------------------------

def parquet_parts(folder: Path, parts: int = 3, rows: int = 4) -> pl.DataFrame:
    folder.mkdir(parents=True, exist_ok=True)
    frames = [pl.DataFrame({"x": np.arange(rows) + 10 * i, "label": ["a", "b"] * (rows // 2)})
              for i in range(parts)]
    for i, frame in enumerate(frames):
        frame.write_parquet(folder / f"part-{i}.parquet")
    return pl.concat(frames)


def test_glob_reads_every_match_in_order_and_skips_hidden_and_temp_files(tmp_path: Path) -> None:
    expected = parquet_parts(tmp_path / "data")
    (tmp_path / "data" / ".part-9.parquet").write_bytes(b"hidden")
    (tmp_path / "data" / ".new.abc123.tmp").write_bytes(b"our half-written temp file")
    (tmp_path / "data" / "notes.txt").write_text("not matched by the glob")

    paths = local_paths(FileSource(path="data/*.parquet"), tmp_path)
    frame, notes = read(tmp_path, "data/*.parquet", file_column="source_file")

    assert paths == [tmp_path / "data" / f"part-{i}.parquet" for i in range(3)]
    assert frame.drop("source_file").equals(expected)
    assert frame["source_file"].unique(maintain_order=True).to_list() == [
        f"part-{i}.parquet" for i in range(3)]
    assert notes == []


def test_double_star_glob_takes_in_subfolders_and_names_files_from_the_glob_root(tmp_path: Path) -> None:
    parquet_parts(tmp_path / "data" / "2024", parts=1)
    parquet_parts(tmp_path / "data" / "2025", parts=2)
    parquet_parts(tmp_path / "data" / ".cache", parts=1)

    frame, _ = read(tmp_path, "data/**/*.parquet", file_column="file")

    assert frame["file"].unique(maintain_order=True).to_list() == [
        "2024/part-0.parquet", "2025/part-0.parquet", "2025/part-1.parquet"]


def test_folder_means_its_data_files_not_its_subfolders(tmp_path: Path) -> None:
    folder = tmp_path / "exports"
    pl.DataFrame({"x": [1], "y": ["a"]}).write_csv(folder / "b.csv") if folder.mkdir() is None else None
    pl.DataFrame({"x": [2], "y": ["b"]}).write_csv(folder / "a.csv")
    (folder / "README.md").write_text("# about")
    parquet_parts(folder / "old")

    assert local_paths(FileSource(path="exports"), tmp_path) == [folder / "a.csv", folder / "b.csv"]
    assert read(tmp_path, "exports")[0]["x"].to_list() == [2, 1]
    assert local_paths(FileSource(path="exports/"), tmp_path) == [folder / "a.csv", folder / "b.csv"]


def test_folder_with_a_declared_format_reads_only_files_of_that_format(tmp_path: Path) -> None:
    expected = parquet_parts(tmp_path / "data", parts=2)
    pl.DataFrame({"other": [1]}).write_csv(tmp_path / "data" / "summary.csv")

    assert read(tmp_path, "data", format="parquet")[0].equals(expected)


def test_absolute_glob_and_file_url(tmp_path: Path) -> None:
    expected = parquet_parts(tmp_path / "data", parts=2)

    assert read(Path("/nowhere"), f"{tmp_path}/data/*.parquet")[0].equals(expected)
    assert local_paths(FileSource(path=f"file://{tmp_path}/data/part-0.parquet"), Path("/nowhere")) == [
        tmp_path / "data" / "part-0.parquet"]


def test_urls_have_no_local_paths(tmp_path: Path) -> None:
    assert local_paths(FileSource(path="s3://bucket/data/*.parquet"), tmp_path) is None
    assert local_paths(FileSource(path="https://example.org/data.csv"), tmp_path) is None


def test_glob_matching_nothing_says_what_was_searched(tmp_path: Path) -> None:
    parquet_parts(tmp_path / "data", parts=1)

    with pytest.raises(DataError, match=r"data\.source\.path: no data files found: searched .*data for "
                                        r"'\*\.csv'; it holds part-0\.parquet \(got 'data/\*\.csv'\)\n"
                                        r"\s+fix: check data\.source\.path .*'\*\*/' in a glob"):
        local_paths(FileSource(path="data/*.csv"), tmp_path)
    with pytest.raises(DataError, match=r"searched .*missing for '\*\.csv', which is not an existing folder"):
        read(tmp_path, "missing/*.csv")


def test_folder_without_data_files(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.md").write_text("nothing here")

    with pytest.raises(DataError, match=r"no data files found: searched folder .*empty for files "
                                        r"\(\.csv, .*; not subfolders\); it holds notes\.md .*\n"
                                        r"\s+fix: put data files in the folder, or name them with a glob"):
        read(tmp_path, "empty")


def test_files_with_other_columns_are_all_named(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.csv").write_text("x,y,label\n1,2,a\n")
    (tmp_path / "d" / "b.csv").write_text("label,y,x\n b,3,4\n")  # same columns, other order: fine
    (tmp_path / "d" / "c.csv").write_text("x,label\n5,c\n")
    (tmp_path / "d" / "e.csv").write_text("x,y,label,z\n5,6,e,7\n")

    with pytest.raises(DataError, match=r"2 problems") as exc:
        read(tmp_path, "d/*.csv")
    assert [p.message for p in exc.value.problems] == [
        "c.csv has other columns than a.csv: missing 'y'",
        "e.csv has other columns than a.csv: extra 'z'",
    ]
    assert exc.value.problems[0].value == str(tmp_path / "d" / "c.csv")
    assert exc.value.problems[0].fix.startswith("give every file the same columns")


def test_columns_in_another_order_are_aligned(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("x,label\n1,a\n")
    (tmp_path / "b.csv").write_text("label,x\nb,2\n")

    assert read(tmp_path, "*.csv")[0].to_dicts() == [{"x": 1, "label": "a"}, {"x": 2, "label": "b"}]


def test_int_and_float_versions_of_a_column_are_unified(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("x,n,label\n1,1,a\n")
    (tmp_path / "b.csv").write_text("x,n,label\n2.5,,b\n")  # n has no value in b.csv: no type to speak of

    frame, notes = read(tmp_path, "*.csv")

    assert frame.schema == {"x": pl.Float64, "n": pl.Int64, "label": pl.String}
    assert frame["x"].to_list() == [1.0, 2.5]
    assert notes == []


def test_number_and_text_versions_of_a_column_become_text_with_a_note(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("code,label\n1,a\n")
    (tmp_path / "b.csv").write_text("code,label\nX7,b\n")

    frame, notes = read(tmp_path, "*.csv")

    assert frame["code"].to_list() == ["1", "X7"]
    assert notes == ["column 'code' has different types across files (Int64 in a.csv, String in b.csv); "
                     "it was read as String"]


def test_types_that_cannot_be_combined(tmp_path: Path) -> None:
    pl.DataFrame({"x": [[1, 2]], "label": ["a"]}).write_parquet(tmp_path / "a.parquet")
    pl.DataFrame({"x": [3], "label": ["b"]}).write_parquet(tmp_path / "b.parquet")

    with pytest.raises(DataError, match=r"data\.source\.path: column 'x' has types that cannot be combined: "
                                        r"List\(Int64\) in a\.parquet, Int64 in b\.parquet .*\n\s+fix: give "
                                        r"the column one type in every file"):
        read(tmp_path, "*.parquet")


def test_file_column_must_be_a_new_name(tmp_path: Path) -> None:
    parquet_parts(tmp_path / "data", parts=2)

    with pytest.raises(DataError, match=r"data\.source\.file_column: the files already have a column of "
                                        r"that name \(got 'label'\)\n\s+fix: choose another name"):
        read(tmp_path, "data", file_column="label")


def test_file_column_on_a_single_file_is_its_name(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "d.csv").write_text("x\n1\n2\n")

    assert read(tmp_path, "sub/d.csv", file_column="f")[0]["f"].to_list() == ["d.csv", "d.csv"]


def test_problems_in_several_files_are_reported_together(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("x,y\n1,2\n3\n")
    (tmp_path / "b.csv").write_text("x,y\n")

    with pytest.raises(DataError, match=r"2 problems") as exc:
        read(tmp_path, "*.csv")
    assert [p.message.split(":")[0] for p in exc.value.problems] == [
        "1 line(s) of a.csv do not have the header's 2 fields", "the data file has no rows"]


# --- Excel ---------------------------------------------------------------------------------------

def test_excel_first_sheet_and_sheet_by_name(tmp_path: Path) -> None:
    data = [["n", "label"], *([i, "yes" if i % 2 else "no"] for i in range(6))]
    write_xlsx(tmp_path / "book.xlsx", {"summary": [["a", "b"], [1, "x"], [2.5, "y"]], "Data": data})

    assert read(tmp_path, "book.xlsx")[0].to_dicts() == [{"a": 1.0, "b": "x"}, {"a": 2.5, "b": "y"}]
    frame, _ = read(tmp_path, "book.xlsx", sheet="Data")
    assert frame.schema == {"n": pl.Int64, "label": pl.String}
    assert frame.height == 6


def test_excel_missing_sheet_lists_the_sheets(tmp_path: Path) -> None:
    write_xlsx(tmp_path / "book.xlsx", {"summary": [["a"], [1]], "Data": [["n"], [1]]})

    with pytest.raises(DataError, match=r"data\.source\.sheet: book\.xlsx has no such sheet; its sheets "
                                        r"are 'summary', 'Data' \(got 'data'\)\n\s+fix: set "
                                        r"data\.source\.sheet to one of them; did you mean 'Data'\?"):
        read(tmp_path, "book.xlsx", sheet="data")


def test_excel_empty_sheet(tmp_path: Path) -> None:
    write_xlsx(tmp_path / "book.xlsx", {"empty": []})

    with pytest.raises(DataError, match=r"data\.source: the data file is empty"):
        read(tmp_path, "book.xlsx")


def test_excel_stray_text_in_a_numeric_column_gets_a_note(tmp_path: Path) -> None:
    rows: list[list[object]] = [["age", "label"], *([20 + i % 50, "a"] for i in range(300))]
    rows[150] = ["unknown", "a"]
    write_xlsx(tmp_path / "book.xlsx", {"s": rows})

    frame, notes = read(tmp_path, "book.xlsx")

    assert frame.height == 300 and frame["age"][149] == "unknown"  # not silently nulled
    assert notes == ["column 'age' of book.xlsx was read as text because of 1 value(s) such as 'unknown' "
                     "(row 151); clean them or they become a categorical feature"]


# --- malformed CSV -------------------------------------------------------------------------------

RAGGED = (b'a,b,c\n'
          b'1,"x,y\nstill the field",3\n'   # lines 2-3: a quoted separator and line break
          b'4,5\n'                          # line 4: short
          b'"6","7,""8""",9\n'
          b'\n'                             # line 6: blank
          b'10,11,12,13\n'                  # line 7: long
          b'14,15,16\r\n')


def test_lines_with_the_wrong_number_of_fields_are_reported_by_line(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_bytes(RAGGED)

    with pytest.raises(DataError, match=r"data\.source: 2 line\(s\) of d\.csv do not have the header's 3 "
                                        r"fields: line 4 has 2, line 7 has 4 \(got '.*d\.csv'\)\n"
                                        r"\s+fix: fix those lines, or set data\.source\.skip_bad_lines: true "
                                        r"to skip them") as exc:
        read(tmp_path, "d.csv")
    assert "truncate_ragged_lines" not in str(exc.value)


def test_skip_bad_lines_skips_them_with_a_note(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_bytes(RAGGED)

    frame, notes = read(tmp_path, "d.csv", skip_bad_lines=True)

    assert frame.to_dicts() == [{"a": 1, "b": "x,y\nstill the field", "c": 3},
                                {"a": 6, "b": '7,"8"', "c": 9}, {"a": 14, "b": "15", "c": 16}]
    assert notes == ["skipped 2 line(s) of d.csv that do not have the header's 3 fields: lines 4, 7",
                     "skipped 1 blank line(s) of d.csv: line 6"]


def test_many_bad_lines_show_the_first_few_and_the_count(tmp_path: Path) -> None:
    lines = ["x,y", *(f"{i},{i}" if i % 7 else f"{i}" for i in range(1, 100))]
    (tmp_path / "d.csv").write_text("\n".join(lines) + "\n")

    with pytest.raises(DataError, match=r"14 line\(s\) of d\.csv do not have the header's 2 fields: line 8 "
                                        r"has 1, line 15 has 1, line 22 has 1, line 29 has 1, line 36 has 1 "
                                        r"and 9 more"):
        read(tmp_path, "d.csv")
    frame, notes = read(tmp_path, "d.csv", skip_bad_lines=True)
    assert frame.height == 85
    assert notes == ["skipped 14 line(s) of d.csv that do not have the header's 2 fields: "
                     "lines 8, 15, 22, 29, 36 and 9 more"]


def test_missing_values_in_the_last_column_are_not_bad_lines(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("x,y,label\n1,2,\n3,4,NA\n5,,b\n")
    (tmp_path / "q.csv").write_text('x,y,label\n1,"2, or so",\n3,4,NA\n')

    assert read(tmp_path, "d.csv")[0]["label"].to_list() == [None, None, "b"]
    assert read(tmp_path, "q.csv")[0]["label"].to_list() == [None, None]


def test_short_line_in_an_unquoted_file_is_found(tmp_path: Path) -> None:
    lines = ["x,y,label", *(f"{i},{i},{'a' if i % 2 else ''}" for i in range(1000))]
    lines[500] = "499,499"
    (tmp_path / "d.csv").write_text("\n".join(lines) + "\n")

    with pytest.raises(DataError, match=r"1 line\(s\) of d\.csv do not have the header's 3 fields: "
                                        r"line 501 has 2\b"):
        read(tmp_path, "d.csv")


def test_blank_lines_are_skipped_with_a_note(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("x,label\n1,a\n\n2,b\n\n")
    (tmp_path / "one.csv").write_text("x\n1\n\n3\n")  # one column: a blank line is a missing value

    frame, notes = read(tmp_path, "d.csv")
    assert frame.to_dicts() == [{"x": 1, "label": "a"}, {"x": 2, "label": "b"}]
    assert notes == ["skipped 2 blank line(s) of d.csv: lines 3, 5"]
    assert read(tmp_path, "one.csv")[0]["x"].to_list() == [1, None, 3]


def test_separator_option(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("x;y\n1,5;a\n2;b;c\n")

    with pytest.raises(DataError, match=r"line 3 has 3"):
        read(tmp_path, "d.csv", separator=";")
    frame, _ = read(tmp_path, "d.csv", separator=";", skip_bad_lines=True)
    assert frame.to_dicts() == [{"x": "1,5", "y": "a"}]


# --- encodings -----------------------------------------------------------------------------------

LATIN1 = "name,city,n\nZoë,Köln,1\nRenée,Besançon,2\n"


def test_latin1_read_as_utf8_is_an_error_with_the_position_and_the_fix(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_bytes(LATIN1.encode("latin-1"))

    with pytest.raises(DataError, match=r"data\.source\.encoding: d\.csv is not valid UTF-8 \(byte 0xeb at "
                                        r"offset 14, line 2\) \(got '.*d\.csv'\)\n\s+fix: set "
                                        r"data\.source\.encoding: latin1 \(or cp1252\)"):
        read(tmp_path, "d.csv")


@pytest.mark.parametrize(("encoding", "codec"),
                         [("latin1", "latin-1"), ("cp1252", "cp1252"), ("utf16", "utf-16")])
def test_declared_encoding_reads_the_text(tmp_path: Path, encoding: str, codec: str) -> None:
    text = LATIN1 + ("Œuvre,€uro,3\n" if encoding != "latin1" else "")
    (tmp_path / "d.csv").write_bytes(text.encode(codec))

    frame, _ = read(tmp_path, "d.csv", encoding=encoding)

    assert frame["city"].to_list()[:2] == ["Köln", "Besançon"]
    if encoding != "latin1":
        assert frame.row(2) == ("Œuvre", "€uro", 3)


def test_utf8_lossy_replaces_bad_bytes(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_bytes(LATIN1.encode("latin-1"))

    assert read(tmp_path, "d.csv", encoding="utf8-lossy")[0]["name"].to_list() == ["Zo\ufffd", "Ren\ufffde"]


def test_bytes_that_the_declared_encoding_does_not_have(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_bytes(b"a,b\n1,x\x81y\n")  # 0x81 is unassigned in cp1252

    with pytest.raises(DataError, match=r"data\.source\.encoding: d\.csv is not valid cp1252: byte 0x81 "
                                        r"at offset 7, line 2 \(got 'cp1252'\)\n\s+fix: set "
                                        r"data\.source\.encoding to the file's encoding"):
        read(tmp_path, "d.csv", encoding="cp1252")


# --- types ---------------------------------------------------------------------------------------

def test_stray_text_in_a_numeric_column_is_named_in_a_note(tmp_path: Path) -> None:
    rows = ["age,income,label", *(f"{20 + i % 60},{1000 + i},{'ab'[i % 2]}" for i in range(10_000))]
    rows[5000] = "abc,1000,a"   # data row 5,000 is line 5,001
    rows[7000] = "?,1000,b"
    (tmp_path / "d.csv").write_text("\n".join(rows) + "\n")

    frame, notes = read(tmp_path, "d.csv")

    assert frame.schema["age"] == pl.String and frame.schema["income"] == pl.Int64
    assert notes == ["column 'age' of d.csv was read as text because of 2 value(s) such as 'abc' "
                     "(line 5001), '?' (line 7001); clean them or they become a categorical feature"]


def test_stray_text_in_the_first_rows_is_named_too_and_text_columns_are_not(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text('n,name,label\n1,ann,a\n"2\n",bob,b\nn/a,cy,a\n4,dee,b\n')

    frame, notes = read(tmp_path, "d.csv")

    assert frame.schema["n"] == pl.String
    assert notes == ["column 'n' of d.csv was read as text because of 2 value(s) such as '2\\n' (line 3), "
                     "'n/a' (line 5); clean them or they become a categorical feature"]


# --- unreadable ----------------------------------------------------------------------------------

def test_unreadable_file_permission(tmp_path: Path) -> None:
    path = tmp_path / "secret.csv"
    path.write_text("x,label\n1,a\n")
    path.chmod(0)
    check = textwrap.dedent(f"""
        import pytest
        from pathlib import Path
        from looml.data.sources.files import read_table
        from looml.errors import DataError
        with pytest.raises(DataError, match=r"data\\.source: the data file cannot be read: permission denied "
                                            r"\\(got '.*secret\\.csv'\\)\\n\\s+fix: give this user read "
                                            r"permission \\(chmod u\\+r secret\\.csv\\)"):
            read_table(Path({str(path)!r}))
    """)
    if os.geteuid() != 0:
        exec(check, {})
        return
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv (util-linux) to drop the read-anything capability")
    # root reads anything; drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH for a child that checks it
    out = subprocess.run(["setpriv", "--bounding-set=-dac_override,-dac_read_search", sys.executable,
                          "-c", check], capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr


def test_fetch_reads_a_glob_through_the_dispatcher(tmp_path: Path) -> None:
    expected = parquet_parts(tmp_path / "data")

    fetched = fetch(FileSource(path="data/*.parquet"), tmp_path)

    assert fetched.frame.equals(expected)
    assert fetched.notes == []


# --- the pipeline on a folder --------------------------------------------------------------------

def test_pipeline_on_a_folder_of_parquet_files_caches_until_a_file_is_added(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)

    def part(name: str, rows: int) -> None:
        x1 = rng.normal(size=rows)
        pl.DataFrame({"x1": x1, "x2": rng.normal(size=rows),
                      "label": np.where(x1 + rng.normal(scale=0.5, size=rows) > 0, "yes", "no")}) \
            .write_parquet(tmp_path / "data" / name)

    (tmp_path / "data").mkdir()
    part("2024-01.parquet", 80)
    part("2024-02.parquet", 80)
    spec = tmp_path / "looml.yaml"
    spec.write_text("seed: 3\ndata:\n  source: data\n  target: label\nmodels:\n  candidates: [linear]\n"
                    "registry:\n  model_name: folder\n")

    first = looml.run(spec)
    assert all(s.status == "ran" for s in first.stages)
    second = looml.run(spec)
    assert {s.name: s.status for s in second.stages} == {s.name: "cached" for s in second.stages}

    part("2024-03.parquet", 80)
    third = looml.run(spec)
    status = {s.name: s.status for s in third.stages}
    assert status["ingest"] == status["train"] == "ran"
    assert next(s for s in third.stages if s.name == "ingest").reason == "changed: input source"
