"""Bad input through the whole local pipeline: one line naming the problem, non-zero exit, nothing registered,
nothing half-written."""

from __future__ import annotations

import pytest
from helpers import BAD_INPUTS, regula, regula_here

from pipelines.local.preflight import DataFileError
from pipelines.local.run import run_local

REFUSED_BEFORE_STARTING = {
    "empty file": "data file data.csv is empty",
    "missing target": "target column 'label' is not in data.csv; its columns: a, b",
}


def s3_keys(s3, prefix: str) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket="regula-artifacts", Prefix=prefix).get("Contents", [])]


@pytest.mark.slow
@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_table_fails_the_run_at_preprocess_and_writes_nothing(case, tmp_path, clients):
    content, message = BAD_INPUTS[case]
    data = tmp_path / "data.csv"
    data.write_text(content)
    if case in REFUSED_BEFORE_STARTING:  # the header says it: refused before anything is rendered or uploaded
        with pytest.raises(DataFileError) as refused:
            run_local(data=data, target="label", runs_dir=tmp_path / "runs", echo=lambda _: None)
        assert str(refused.value) == REFUSED_BEFORE_STARTING[case]
        assert not (tmp_path / "runs").exists() and clients["s3"].list_buckets()["Buckets"] == []
        return
    report = run_local(data=data, target="label", runs_dir=tmp_path / "runs", echo=lambda _: None)
    assert report["status"] == "Failed" and report["failed_step"] == "Preprocess"
    assert message in report["failure_reason"] and "\n" not in report["failure_reason"]
    assert [s["name"] for s in report["steps"]] == ["Preprocess"]
    assert s3_keys(clients["s3"], "regula/runs/") == [], "no split was uploaded"
    assert clients["sagemaker"].list_model_package_groups()["ModelPackageGroupSummaryList"] == []


@pytest.mark.slow
def test_cli_reports_each_problem_in_one_line(tmp_path, aws):
    missing = regula("run", "--local", "--data", str(tmp_path / "nope.csv"))
    assert (missing.returncode, missing.stderr.strip()) == (
        4,
        f"regula: error: data file or folder {tmp_path / 'nope.csv'} does not exist",
    )

    unknown = regula("run", "--local", "--param", "MaxGapp=0.1", "--runs-dir", str(tmp_path))
    assert unknown.returncode == 2
    assert unknown.stderr.strip().startswith(
        "regula: error: unknown pipeline parameter(s): MaxGapp (did you mean MaxGap?); known: InputDataUri"
    )

    typed = regula("run", "--local", "--param", "MaxGap=small", "--runs-dir", str(tmp_path))
    assert typed.returncode == 2
    assert typed.stderr.strip() == "regula: error: pipeline parameter MaxGap must be Float, got 'small'"

    malformed = regula("run", "--local", "--param", "MaxGap")
    assert malformed.returncode == 2
    assert malformed.stderr.strip() == "regula: error: --param takes KEY=VALUE, got 'MaxGap'"


def test_negative_l1_is_refused_before_anything_starts(tmp_path, clients):
    result = regula_here("run", "--local", "--param", "L1=-0.001", "--runs-dir", str(tmp_path / "runs"))
    assert (result.returncode, result.stderr.strip()) == (2, "regula: error: L1 must be a number >= 0, got -0.001")
    assert not (tmp_path / "runs").exists()
    assert clients["sagemaker"].list_model_package_groups()["ModelPackageGroupSummaryList"] == []
