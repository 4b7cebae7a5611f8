"""Real pipeline executions: the rendered definition run by the local runner against a moto server."""

from __future__ import annotations

import io
import itertools
import json
import os
import re
import tarfile

import pytest
from helpers import regula, run_folders

from pipelines.local.console import closing_lines
from pipelines.local.engine.s3 import split_uri
from pipelines.local.report import loss_figure, round_evaluations
from pipelines.local.run import run_local
from pipelines.models.predict import from_run_folder
from pipelines.settings import Settings
from steps.defaults import MAX_GAP


def run(tmp_path, **kwargs):
    lines = []
    report = run_local(Settings(), runs_dir=tmp_path / "runs", echo=lines.append, **kwargs)
    return report, "\n".join(lines)


def model_packages(sagemaker):
    groups = sagemaker.list_model_package_groups()["ModelPackageGroupSummaryList"]
    return [
        p
        for g in groups
        for p in sagemaker.list_model_packages(ModelPackageGroupName=g["ModelPackageGroupName"])[
            "ModelPackageSummaryList"
        ]
    ]


@pytest.mark.slow
def test_a_strict_max_gap_retrains_with_gap_driven_steps_and_never_registers_a_worse_round(tmp_path, clients):
    """MaxGap 0.05 on the demo: round 1 overfits, the ladder steps up by the measured gaps; a round that closes the
    gap only by validating worse than an earlier one beyond the noise is never registered (steps/evaluate.select):
    either an accepted round is registered, or the run fails naming the best round by validation. MaxGap alone
    (GapReference=none): on the demo a linear model's gap is near 0.07, and the reference would excuse a round
    within its noise (tests/test_quality.py holds that rule)."""
    report, output = run(tmp_path, params={"MaxGap": "0.05", "GapReference": "none"})
    rounds = report["rounds"]
    assert len(rounds) >= 2, "the demo data overfits a MaxGap of 0.05"
    assert rounds[0]["decision"] == "overfit"
    assert rounds[0]["generalization_gap"] - rounds[0]["gap_standard_error"] > 0.05
    for weaker, stronger in itertools.pairwise(rounds):
        if weaker["decision"] == "overfit":
            assert stronger["regularization"]["level"] > weaker["regularization"]["level"]
            assert stronger["regularization"]["dropout"] > weaker["regularization"]["dropout"]
            assert "level x" in stronger["regularization"]["reason"]  # the step and why, in the model and the report
    best = max(rounds, key=lambda r: r["validation_quality"])
    if report["status"] == "Failed":
        assert f"the best round was round {best['round']} " in report["failure_reason"]
        assert clients["sagemaker"].list_model_package_groups()["ModelPackageGroupSummaryList"] == []
        return
    assert report["decision"] == "registered" and rounds[-1]["decision"] == "register"
    last = rounds[-1]
    assert last["generalization_gap"] - last["gap_standard_error"] <= 0.05

    package = clients["sagemaker"].describe_model_package(ModelPackageName=report["model_package_arn"])
    assert package["ModelApprovalStatus"] == "PendingManualApproval"
    metadata = package["CustomerMetadataProperties"]
    assert metadata["regula:round"] == str(rounds[-1]["round"])
    assert float(metadata["regula:gap"]) == pytest.approx(rounds[-1]["generalization_gap"])
    container = package["InferenceSpecification"]["Containers"][0]
    bucket, key = split_uri(container["ModelDataUrl"])
    assert clients["s3"].head_object(Bucket=bucket, Key=key)["ContentLength"] > 0
    bucket, key = split_uri(package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"])
    evaluation = json.loads(clients["s3"].get_object(Bucket=bucket, Key=key)["Body"].read())
    assert evaluation["round"] == rounds[-1]["round"]

    (run_dir,) = run_folders(tmp_path / "runs")
    assert json.loads((run_dir / "report.json").read_text())["model_package_arn"] == report["model_package_arn"]
    assert (run_dir / "losses.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "-> TrainRound2 (Training)" in output and "registered arn:aws:sagemaker" in output


def test_model_within_threshold_registers_in_round_one(tmp_path, clients):
    report, _ = run(tmp_path, params={"MaxGap": "5"})
    assert report["decision"] == "registered"
    assert [r["round"] for r in report["rounds"]] == [1]
    assert [s["name"] for s in report["steps"]][-2:] == ["RegisterRound1", "AcceptedRound1"]
    assert len(model_packages(clients["sagemaker"])) == 1

    # the approval flow picks up what the local run registered
    approve = regula("models", "approve", "latest", "--note", "ok", timeout=120)
    assert approve.returncode == 0, approve.stderr
    package = clients["sagemaker"].describe_model_package(ModelPackageName=report["model_package_arn"])
    assert package["ModelApprovalStatus"] == "Approved"


def test_the_demo_registers_its_first_accepted_round(tmp_path, clients):
    """The bundled demo at its defaults registers a model, and the one the ladder's rules pick: rounds go on only after
    an overfit round (stronger next) or a collapsed one (the next between the last overfitting level and it), and
    the first accepted round is registered; it is far better than chance on the test rows. Loose on purpose: which
    rounds this one split takes is not pinned (that would invite tuning the product to it); the rules themselves are
    tested on constructed evaluations in tests/test_quality.py."""
    report, output = run(tmp_path)
    assert report["status"] == "Succeeded" and report["decision"] == "registered"
    rounds = report["rounds"]
    assert all(r["decision"] in ("overfit", "collapsed") for r in rounds[:-1]), rounds
    assert rounds[-1]["decision"] == "register"
    for before, after in itertools.pairwise(rounds):
        level, next_level = before["regularization"]["level"], after["regularization"]["level"]
        if before["decision"] == "overfit":
            assert next_level > level, rounds
        else:  # collapsed: below it, above the last overfitting round's level
            overfit = [r["regularization"]["level"] for r in rounds[: before["round"]] if r["decision"] == "overfit"]
            assert max(overfit, default=0.0) < next_level < level, rounds
    best = rounds[-1]
    assert best["generalization_gap"] - best["gap_standard_error"] <= MAX_GAP
    assert best["selected_round"] == best["round"]

    package = clients["sagemaker"].describe_model_package(ModelPackageName=report["model_package_arn"])
    metadata = package["CustomerMetadataProperties"]
    assert (metadata["regula:round"], metadata["regula:accepted"]) == (str(best["round"]), "true")
    assert (metadata["regula:target"], metadata["regula:data"]) == ("target", "digits.csv")  # models list shows them
    # Refit=yes (the default): the registered model is the round retrained on the training and validation rows
    refit = report["refit"]
    assert refit["trained"] and refit["kept"] and metadata["regula:refit"] == "true", refit
    assert f"RefitRound{best['round']}" in package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    assert float(metadata["regula:test_quality"]) == refit["test"] and refit["round_test"] == best["test_quality"]
    split = json.loads(next((tmp_path / "runs").glob("*/jobs/Preprocess/opt/ml/processing/output/train/schema.json"))
                       .read_text())["rows"]  # fmt: skip
    assert refit["rows"] == split["train"] + split["validation"]
    assert refit["epochs"] == best["best_epoch"]
    assert refit["test_metrics"]["accuracy"] >= 0.8  # ten classes: chance is 0.1
    assert best["test_metrics"]["accuracy"] >= 0.8
    assert f"registered: round {best['round']}: {report['model_package_arn']}" in output.splitlines()
    assert any(
        line.startswith("refit: round ") and "the registered model is the refit" in line for line in output.splitlines()
    )
    # `regula predict --model <run folder>` scores with the registered artifact, the one the registry holds
    archive, sha256 = from_run_folder(run_folders(tmp_path / "runs")[0])
    assert archive.parent.name == f"RefitRound{best['round']}" and sha256 == metadata["regula:artifact_sha256"]

    # the console tells the story: a line per round, the conditions as what happens next, lists folded, next steps
    lines = output.splitlines()
    for r in rounds:  # a line per round: regularization, gap ± its error against MaxGap, validation, decision
        gap, se = r["generalization_gap"], r["gap_standard_error"]
        [line] = [line for line in lines if line.startswith(f"round {r['round']}: dropout ")]
        assert f"| gap {gap:.3f} ± {se:.3f} " in line and "MaxGap 0.1 | validation balanced_accuracy " in line
        assert f"{r['validation_quality']:.3f} vs baseline 0.100 | {r['decision']}" in line
    if len(rounds) > 1:
        assert f"=> round 1 {rounds[0]['decision']}: trying a stronger round" in lines
    # a round whose training sent the overfitting notice says so after its round line, with its decision; the job's
    # own "Training overfits ... (notice sent)" line is held back (an accepted round must not read as overfitting)
    assert not [line for line in lines if "Training overfits" in line]
    run_dir = run_folders(tmp_path / "runs")[0]
    for r in rounds:
        sent = "(notice sent)" in (run_dir / "logs" / f"TrainRound{r['round']}.log").read_text()
        [at] = [i for i, line in enumerate(lines) if line.startswith(f"round {r['round']}: dropout ")]
        said = lines[at + 1].startswith("   overfitting notice sent during training (epoch ")
        assert said == sent, lines[at : at + 2]
        if said and r["decision"] == "register":
            assert "the round is still accepted, within MaxGap" in lines[at + 1]
    assert not [line for line in lines if line.startswith("?") or "evaluate: round" in line]
    assert (
        "   | preprocess: numeric: pixel_0_1, pixel_0_2, pixel_0_3, pixel_0_4, pixel_0_5, pixel_0_6, pixel_0_7, "
        "pixel_1_0, ... (53 more; -v shows all)" in lines
    )
    assert f"  regula predict --model {run_dir} --data NEW.csv   # score rows with the registered round" in lines
    # the plot: a legend per round, the averaged weights' epochs and the baseline marked, the registered round
    # framed, and a panel drawing the decision rule (each gap with its standard error, MaxGap)
    evaluations = round_evaluations(run_dir)
    figure = loss_figure(evaluations)
    *round_axes, gap_axis = figure.axes
    for axis, evaluation in zip(round_axes, evaluations, strict=True):
        legend = [t.get_text() for t in axis.get_legend().get_texts()]
        assert f"best epoch {evaluation['best_epoch']} (kept)" in legend and "baseline validation loss" in legend
        averaged = any(h["averaged"] for h in evaluation["history"])
        assert ("epochs scored with the averaged weights" in legend) == averaged
        assert ("REGISTERED" in axis.get_title()) == (evaluation["round"] == best["round"])
    assert [t.get_text() for t in gap_axis.get_legend().get_texts()][0] == "MaxGap 0.1"
    assert [tuple(line.get_ydata()) for line in gap_axis.get_lines() if line.get_linestyle() == "--"] == [(0.1, 0.1)]
    bars = [p for p in gap_axis.patches if p.get_height() > 0]
    assert [round(b.get_height(), 6) for b in bars] == [round(r["generalization_gap"], 6) for r in report["rounds"]]
    assert [b.get_linewidth() for b in bars].index(2.5) == best["round"] - 1

    endpoint = os.environ["AWS_ENDPOINT_URL"]  # the tests' moto server: it outlives the run, and is named
    assert f"registry: {endpoint}, group regula-models: `regula models list` shows the package" in lines
    embedded = closing_lines(report, run_dir, endpoint=None)  # an embedded server ends with the run: said so
    assert any(
        line.startswith("registry: the embedded moto server, gone now that the run has ended") for line in embedded
    )


@pytest.mark.slow
def test_two_training_instances_train_as_one_torch_distributed_job(tmp_path, clients):
    report, output = run(tmp_path, params={"MaxGap": "5", "TrainingInstanceCount": "2"})
    assert report["decision"] == "registered"
    assert "processes=2" in output
    logs = run_folders(tmp_path / "runs")[0] / "logs"
    rank1 = (logs / "TrainRound1.rank1.log").read_text()
    assert "Traceback" not in rank1 and "epoch 1:" not in rank1, "only rank 0 reports"


@pytest.mark.slow
def test_last_round_still_overfitting_fails_with_the_gap(tmp_path, clients):
    report, output = run(tmp_path, params={"MaxGap": "0.0001", "MaxEpochs": "15"})
    # the reason is printed once, in the summary; each round says how far above MaxGap it is
    assert output.count(report["failure_reason"]) == 1
    assert output.count("=> round 1 overfit: trying a stronger round") == 1
    # how far above MaxGap, or, where the linear reference was fitted, why its gap did not excuse the round's
    beside = r"above MaxGap(; the linear reference finds no signal| and the linear reference's [\d.]+$)"
    far = rf"^round 3: .* \| overfit: ([\d.]+ standard errors above MaxGap$|{beside}|within the linear reference's)"
    assert re.search(far, output, re.MULTILINE)
    assert report["status"] == "Failed" and report["failed_step"] == "StillOverfitting"
    assert len(report["rounds"]) == 3
    last = report["rounds"][-1]
    assert [r["decision"] for r in report["rounds"]] == ["overfit"] * 3
    assert report["failure_reason"] == (
        "The model still overfits after 3 rounds of stronger regularization: "
        f"{last['reason']}. Raise RegularizationGrowth, add data, use a smaller model (HiddenLayers), or, where this "
        "gap is acceptable (on small tables it is noisy), raise MaxGap."
    )
    assert f"generalization gap {last['generalization_gap']:.4f} (standard error " in last["reason"]
    best = max(report["rounds"], key=lambda r: r["validation_quality"])
    assert f"the best round was round {best['round']} (validation balanced_accuracy" in last["reason"]
    assert model_packages(clients["sagemaker"]) == []


@pytest.mark.slow
def test_when_no_round_is_accepted_the_best_candidate_can_be_registered_for_review(tmp_path, clients):
    report, _ = run(tmp_path, params={"MaxGap": "0.0001", "MaxEpochs": "15", "RegisterBestCandidate": "yes"})
    assert report["status"] == "Failed" and report["failed_step"] == "CandidateRound3"
    assert report["decision"] == "candidate registered"
    best = max(report["rounds"], key=lambda r: r["validation_quality"])
    assert report["failure_reason"].startswith("No round was accepted: ")
    assert f"registering the best round for review, not accepted: round {best['round']} " in report["failure_reason"]

    [summary] = model_packages(clients["sagemaker"])
    package = clients["sagemaker"].describe_model_package(ModelPackageName=summary["ModelPackageArn"])
    metadata = package["CustomerMetadataProperties"]
    assert (metadata["regula:accepted"], metadata["regula:decision"]) == ("false", "candidate")
    assert metadata["regula:round"] == str(best["round"])
    assert float(metadata["regula:val_quality"]) == pytest.approx(best["validation_quality"])
    # the best round's model (refit on training + validation rows where the refit was kept) and its report, not
    # the last round's
    model_url = package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    if report["refit"] and report["refit"]["kept"]:
        assert f"RefitRound{len(report['rounds'])}" in model_url
        bucket, key = split_uri(model_url)
        with tarfile.open(fileobj=io.BytesIO(clients["s3"].get_object(Bucket=bucket, Key=key)["Body"].read())) as tar:
            config = json.load(tar.extractfile("config.json"))
        assert config["refit"]["trained"] and config["refit"]["of_round"] == best["round"]
    else:
        assert f"TrainRound{best['round']}" in model_url
    bucket, key = split_uri(package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"])
    statistics = json.loads(clients["s3"].get_object(Bucket=bucket, Key=key)["Body"].read())
    assert statistics["selected"]["round"] == best["round"]  # the report names the registered round
    refused = regula("models", "approve", "latest")
    assert refused.returncode == 3 and "the pipeline did not accept it" in refused.stderr


@pytest.mark.slow
def test_underfitting_model_is_not_registered_nor_retrained(tmp_path, clients):
    report, _ = run(tmp_path, params={"MaxGap": "5", "MinQuality": "0.9999", "MaxEpochs": "15"})
    assert report["status"] == "Failed" and report["failed_step"] == "UnderfitRound1"
    assert len(report["rounds"]) == 1 and report["rounds"][0]["decision"] == "underfit"
    assert report["failure_reason"] == f"Round 1 is not good enough: {report['rounds'][0]['reason']}"
    assert "< 0.9999" in report["failure_reason"] and "MinQuality 0.9999" in report["failure_reason"]
    assert model_packages(clients["sagemaker"]) == []


def test_a_crashing_step_fails_the_execution_and_nothing_downstream_runs(tmp_path):
    from pipelines.local.engine.runner import LocalRunner

    crash = "import sys; print('ERROR the job fell over', flush=True); sys.exit(3)"
    definition = {
        "Parameters": [],
        "Steps": [
            {
                "Name": "Crash",
                "Type": "Processing",
                "Arguments": {"AppSpecification": {"ContainerEntrypoint": ["python3", "-c", crash]}},
            },
            {"Name": "After", "Type": "Fail", "DependsOn": ["Crash"], "Arguments": {"ErrorMessage": "not reached"}},
        ],
    }
    runner = LocalRunner(definition, tmp_path / "run", s3=None, sagemaker=None, region="us-east-1", echo=lambda _: 0)
    execution = runner.run("p")
    assert (execution.status, execution.failed_step) == ("Failed", "Crash")
    assert execution.failure_reason.startswith("the job fell over (exit code 3, log: ")
    assert [s.name for s in execution.steps] == ["Crash"]


@pytest.mark.slow
def test_bad_csv_gives_one_line_error_and_no_model(tmp_path, clients):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,label\n" + "1,2,0\n4,5,0\n" * 5)
    result = regula(
        "run", "--local", "--data", str(bad), "--target", "label", "--runs-dir", str(tmp_path / "runs"), timeout=300
    )
    assert result.returncode == 1
    failures = [line for line in result.stdout.splitlines() if line.startswith("FAILED at")]
    assert len(failures) == 1
    assert re.fullmatch(
        r"FAILED at Preprocess: preprocess: target column 'label' has a single class \(0\); need at least 2 "
        r"\(exit code 2, log: \S+/logs/Preprocess\.log\)",
        failures[0],
    ), failures[0]
    assert result.stdout.count("has a single class") == 1, "the reason is printed once"
    assert "Traceback" not in result.stdout + result.stderr
    assert "TrainRound1" not in result.stdout
    assert model_packages(clients["sagemaker"]) == []


@pytest.mark.slow
def test_the_pipeline_follows_the_decision_its_evaluation_reports(tmp_path, clients):
    """Both thresholds broken at once: the evaluation says overfit, so the pipeline retrains, and fails with that."""
    lines = []
    report = run_local(
        Settings(rounds=2),
        runs_dir=tmp_path / "runs",
        echo=lines.append,
        params={"MaxGap": "0.0001", "MinQuality": "0.9999", "MaxEpochs": "5"},
    )
    decisions = [r["decision"] for r in report["rounds"]]
    assert decisions == ["overfit", "overfit"]
    assert report["failed_step"] == "StillOverfitting" and report["rounds"][-1]["reason"] in report["failure_reason"]
    printed = [line for line in lines if re.match(r"round \d: dropout ", line)]  # one line per round
    assert len(printed) == 2 and all(line.split(" | ")[-1].startswith("overfit: ") for line in printed)
    assert model_packages(clients["sagemaker"]) == []


def test_the_demo_data_is_scikit_learns_digits_byte_for_byte():
    from sklearn.datasets import load_digits

    from pipelines.local.run import demo_dataset_csv

    assert demo_dataset_csv() == load_digits(as_frame=True).frame.to_csv(index=False, lineterminator="\n").encode()
