"""Mistakes refused by `regula run --local` before anything is rendered or started: the file's kind, the columns
the run names, parameter names (any case, with the closest name). Each asserts the message, exit code 2, that no
rendering started, no run folder was made and nothing was registered."""

from __future__ import annotations

import gzip
import zipfile

import pytest
from helpers import regula_here

HEADER = "id,plan,monthly_usage,churned\n"
ROWS = "".join(f"{i},{'abc'[i % 3]},{i * 0.5},{'yes' if i % 4 == 0 else 'no'}\n" for i in range(40))


def refused(tmp_path, clients, *args: str) -> str:
    """Run `regula run --local ARGS`; assert it stopped before rendering with exit code 2; its error line."""
    runs = tmp_path / "runs"
    result = regula_here("run", "--local", "--runs-dir", str(runs), *args)
    assert result.returncode == 2, result.stderr
    assert "rendering" not in result.stdout, "refused only after rendering started"
    assert not runs.exists(), "a run folder was made"
    assert clients["sagemaker"].list_model_package_groups()["ModelPackageGroupSummaryList"] == []
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture
def churn(tmp_path):
    path = tmp_path / "churn.csv"
    path.write_text(HEADER + ROWS)
    return path


def test_a_misspelt_target_is_refused_with_the_closest_column(tmp_path, clients, churn):
    line = refused(tmp_path, clients, "--data", str(churn), "--target", "churn")
    assert line == (
        "regula: error: target column 'churn' is not in churn.csv (did you mean 'churned'?); "
        "its columns: id, plan, monthly_usage, churned"
    )
    # a difference of case is a different column, and said so
    line = refused(tmp_path, clients, "--data", str(churn), "--target", "Churned")
    assert "(did you mean 'churned'?)" in line


def test_data_without_target_and_no_default_column_says_pass_target(tmp_path, clients, churn):
    line = refused(tmp_path, clients, "--data", str(churn))
    assert line == (
        "regula: error: no --target given, and churn.csv has no column 'target' (the default): pass --target NAME; "
        "its columns: id, plan, monthly_usage, churned"
    )


def test_parameter_names_are_case_insensitive_and_unknown_ones_get_the_closest(tmp_path, clients, churn):
    line = refused(tmp_path, clients, "--param", "MaxGapp=0.05", "--param", "dropot=0.2")
    assert line.startswith(
        "regula: error: unknown pipeline parameter(s): MaxGapp (did you mean MaxGap?), dropot (did you mean "
        "Dropout?); known: InputDataUri, TargetColumn,"
    )
    # the right name in another case is that parameter: its value is then checked as the parameter's
    line = refused(tmp_path, clients, "--param", "maxgap=-1")
    assert line == "regula: error: MaxGap must be a number in [0, 10], got -1.0"


def test_listed_columns_must_be_in_the_header(tmp_path, clients, churn):
    line = refused(
        tmp_path,
        clients,
        "--data",
        str(churn),
        "--target",
        "churned",
        "--param",
        "ExcludeColumns=idd, plan",
        "--param",
        "categoricalcolumns=Monthly_Usage",
    )
    assert line == (
        "regula: error: ExcludeColumns names 'idd', not a column of churn.csv (did you mean 'id'?); "
        "CategoricalColumns names 'Monthly_Usage', not a column of churn.csv (did you mean 'monthly_usage'?)"
    )


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("sheet.xlsx", "zip", "sheet.xlsx is a ZIP archive (an Excel .xlsx, an OpenDocument sheet or a .zip)"),
        # renamed: the bytes decide, not the name
        ("sheet.csv", "zip", "sheet.csv is a ZIP archive (an Excel .xlsx, an OpenDocument sheet or a .zip)"),
        ("old.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600), "old.xls is an old Excel .xls (OLE) file"),
        ("table.parquet", HEADER.encode(), "table.parquet is not a Parquet file (it does not start with PAR1)"),
        ("table.json", b'[{"a": 1}]', "table.json: Regula reads .csv, .tsv, .txt, .parquet, .pq (or any of them .gz)"),
    ],
)
def test_a_file_that_is_not_a_csv_or_parquet_table_says_save_as(tmp_path, clients, name, content, message):
    path = tmp_path / name
    if content == "zip":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("xl/workbook.xml", "<workbook/>")
    else:
        path.write_bytes(content)
    line = refused(tmp_path, clients, "--data", str(path), "--target", "churned")
    assert line.startswith(f"regula: error: {message}")
    assert "save it as CSV (UTF-8, with a header row) or Parquet" in line


def test_the_header_of_tsv_and_gzip_files_is_read_as_preprocessing_will(tmp_path, clients):
    from pipelines.local.preflight import read_data_file

    tsv = tmp_path / "churn.tsv"
    tsv.write_text((HEADER + ROWS).replace(",", "\t"))
    assert read_data_file(tsv).columns == ["id", "plan", "monthly_usage", "churned"]
    packed = tmp_path / "export.gz"  # a gzip file named without its inner suffix: run as a .csv
    packed.write_bytes(gzip.compress((HEADER + ROWS).replace(",", ";").encode()))
    table = read_data_file(packed)
    assert (table.name, table.kind, table.columns) == ("export.csv", "csv", ["id", "plan", "monthly_usage", "churned"])
    assert table.body == (HEADER + ROWS).replace(",", ";").encode()
    line = refused(tmp_path, clients, "--data", str(packed), "--target", "Plan")
    assert "target column 'Plan' is not in export.csv (did you mean 'plan'?)" in line


def test_preprocessing_reads_a_tsv_file_found_in_its_input_folder(tmp_path):
    from helpers import run_step

    folder = tmp_path / "input"
    folder.mkdir()
    (folder / "churn.tsv").write_text((HEADER + ROWS).replace(",", "\t"))
    result = run_step(
        "preprocess.py", "--input", str(folder), "--output-dir", str(tmp_path / "out"), "--target", "churned"
    )
    assert result.returncode == 0, result.stderr
    assert "read churn.tsv (CSV, delimiter '\\t', utf-8-sig): 40 rows, 4 columns" in result.stdout


@pytest.mark.parametrize("spot", [False, True])
def test_the_parameter_table_checked_before_rendering_is_what_the_definition_declares(spot):
    import json

    from helpers import rendered

    from pipelines.definition.parameter_names import declared
    from pipelines.settings import Settings

    settings = Settings(spot=spot)
    parameters = json.loads(rendered(settings)[0])["Parameters"]
    assert {p["Name"]: (p["Type"], p.get("DefaultValue")) for p in parameters} == declared(settings)
