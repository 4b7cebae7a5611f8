"""A team's own tables through the whole local pipeline, and the registered model scoring their raw rows."""

from __future__ import annotations

import json
from pathlib import Path

import palmerpenguins
import pandas as pd
import pytest
from helpers import regula, run_folders
from sklearn.datasets import load_diabetes

from pipelines.local.engine.s3 import split_uri
from pipelines.local.run import run_local

pytestmark = pytest.mark.slow  # whole pipelines: the slow tier (pytest --slow)


def run_folder(runs: Path) -> Path:
    (folder,) = run_folders(runs)
    return folder


def test_a_table_with_strings_and_gaps_registers_and_scores_raw_rows(tmp_path, clients):
    penguins = palmerpenguins.load_penguins()
    assert penguins.isna().any().any() and penguins["island"].dtype != float  # the table as it ships
    data = tmp_path / "penguins.csv"
    penguins.to_csv(data, index=False)
    report = run_local(data=data, target="species", runs_dir=tmp_path / "runs", echo=lambda _: None)
    assert report["decision"] == "registered", report["failure_reason"]
    registered = report["rounds"][report["rounds"][-1]["selected_round"] - 1]
    assert registered["problem_type"] == "classification" and registered["quality_metric"] == "balanced_accuracy"
    assert registered["validation_quality"] >= registered["baseline_quality"] + 0.05

    # raw rows, columns in another order, the label left in: scored by the registered artifact's own code
    rows = penguins.sample(frac=1, random_state=1)[list(reversed(penguins.columns))]
    rows.to_csv(tmp_path / "rows.csv", index=False)
    local = regula("predict", "--model", str(run_folder(tmp_path / "runs")), "--data", str(tmp_path / "rows.csv"))
    assert local.returncode == 0, local.stderr
    scored = pd.read_csv(pd.io.common.StringIO(local.stdout))
    assert len(scored) == len(penguins) and {"probability_Adelie", "probability_Gentoo"} <= set(scored.columns)
    assert (scored["prediction"] == scored["species"]).mean() > 0.9

    from_registry = regula("predict", "--model", "latest", "--data", str(tmp_path / "rows.csv"))
    assert from_registry.returncode == 0, from_registry.stderr
    assert from_registry.stdout == local.stdout
    assert "note: version 1 is PendingManualApproval, not Approved" in from_registry.stderr

    # a tampered artifact in the registry's bucket is refused before any of its code runs
    package = clients["sagemaker"].describe_model_package(ModelPackageName=report["model_package_arn"])
    bucket, key = split_uri(package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"])
    clients["s3"].put_object(Bucket=bucket, Key=key, Body=b"not the evaluated model")
    tampered = regula("predict", "--model", report["model_package_arn"], "--data", str(tmp_path / "rows.csv"))
    assert tampered.returncode == 3 and tampered.stdout == ""
    assert "model.tar.gz is not the artifact that was evaluated" in tampered.stderr


def test_bad_rows_to_predict_are_one_clear_error(tmp_path, clients):
    penguins = palmerpenguins.load_penguins()
    penguins.to_csv(tmp_path / "penguins.csv", index=False)
    report = run_local(
        data=tmp_path / "penguins.csv",
        target="species",
        runs_dir=tmp_path / "runs",
        params={"MaxEpochs": "20"},
        echo=lambda _: None,
    )
    assert report["decision"] == "registered", report["failure_reason"]
    bad = penguins.drop(columns=["year"]).head(3).astype(object)
    bad.loc[bad.index[1], "body_mass_g"] = "heavy"
    bad.to_json(tmp_path / "bad.json", orient="records")
    result = regula("predict", "--model", str(run_folder(tmp_path / "runs")), "--data", str(tmp_path / "bad.json"))
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip() == (
        "regula: error: bad.json: 2 problems: (1) missing required column(s): year; "
        "(2) column 'body_mass_g': 1 values are not numbers ('heavy'; rows 2) (rows are numbered from 1)"
    )


def test_a_regression_target_flows_through_the_whole_pipeline(tmp_path, clients):
    frame = load_diabetes(as_frame=True, scaled=False).frame
    frame.to_csv(tmp_path / "diabetes.csv", index=False)
    lines = []
    report = run_local(data=tmp_path / "diabetes.csv", target="target", runs_dir=tmp_path / "runs", echo=lines.append)
    assert any(
        "preprocess: regression, because the target holds whole numbers with 214 distinct values" in line
        for line in lines
    )
    assert report["decision"] == "registered", report["failure_reason"]
    last = report["rounds"][-1]
    assert last["problem_type"] == "regression" and last["quality_metric"] == "r2"
    assert last["test_metrics"]["r2"] > 0.3 and last["baseline_quality"] < 0.02

    # the registered model is the refit on training + validation rows where it was kept, else the round as trained
    refit = report["refit"]
    registered = refit["test_metrics"] if refit and refit["kept"] else last["test_metrics"]
    package = clients["sagemaker"].describe_model_package(ModelPackageName=report["model_package_arn"])
    metadata = package["CustomerMetadataProperties"]
    assert metadata["regula:problem_type"] == "regression" and metadata["regula:quality_metric"] == "r2"
    assert float(metadata["regula:test_quality"]) == pytest.approx(registered["r2"])
    bucket, key = split_uri(package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"])
    evaluation = json.loads(clients["s3"].get_object(Bucket=bucket, Key=key)["Body"].read())
    assert set(evaluation["regression_metrics"]) == {"mse", "rmse", "mae", "r2"}
    assert evaluation["regression_metrics"]["rmse"]["value"] == pytest.approx(registered["rmse"])

    listed = regula("models", "list")
    assert listed.returncode == 0 and "regression" in listed.stdout and " r2 " in listed.stdout

    rows = frame.drop(columns=["target"]).head(20)
    rows.to_csv(tmp_path / "rows.csv", index=False)
    predicted = regula(
        "predict", "--model", "latest", "--data", str(tmp_path / "rows.csv"), "--out", str(tmp_path / "p.json")
    )
    assert predicted.returncode == 0, predicted.stderr
    values = json.loads((tmp_path / "p.json").read_text())["predictions"]
    assert len(values) == 20 and all(25 <= v <= 346 for v in values)  # within the target's range


def test_every_problem_of_a_table_and_its_parameters_is_reported_at_once(tmp_path, clients):
    palmerpenguins.load_penguins().to_csv(tmp_path / "penguins.csv", index=False)
    result = regula(
        "run",
        "--local",
        "--data",
        str(tmp_path / "penguins.csv"),
        "--target",
        "species",
        "--param",
        "ExcludeColumns=island",
        "--param",
        "ProblemType=regression",
        "--param",
        "QualityMetric=roc_auc",
        "--runs-dir",
        str(tmp_path / "runs"),
    )
    assert result.returncode == 1
    (failure,) = [line for line in result.stdout.splitlines() if line.startswith("FAILED at")]
    assert failure.startswith(
        "FAILED at Preprocess: preprocess: 2 problems: (1) regression needs a numeric target; column 'species' holds "
        "344 values that are not numbers (e.g. 'Adelie'); (2) QualityMetric roc_auc is for classification; "
        "regression uses r2 (or auto)"
    ), failure
    assert clients["sagemaker"].list_model_package_groups()["ModelPackageGroupSummaryList"] == []
    # columns the table does not have are refused before anything starts, every one at once (tests/test_preflight.py)
    early = regula(
        "run",
        "--local",
        "--data",
        str(tmp_path / "penguins.csv"),
        "--target",
        "species",
        "--param",
        "ExcludeColumns=island,nope",
        "--param",
        "CategoricalColumns=yaer",
        "--runs-dir",
        str(tmp_path / "r2"),
    )
    assert (early.returncode, early.stderr.strip()) == (
        2,
        "regula: error: ExcludeColumns names 'nope', not a column of penguins.csv; CategoricalColumns names 'yaer', "
        "not a column of penguins.csv (did you mean 'year'?)",
    )
