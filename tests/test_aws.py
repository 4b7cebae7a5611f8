"""The AWS side over HTTP against a moto server: upsert/start/status, registry approval, alerts, metrics."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from helpers import regula, regula_here, rendered, run_training

from pipelines.aws.deploy import DeployError, compact, retry, start, status, upsert
from pipelines.models import registry
from pipelines.settings import Settings


@pytest.fixture
def bucket(clients):
    clients["s3"].create_bucket(Bucket="regula-artifacts")
    return "regula-artifacts"


def test_upsert_twice_is_one_pipeline_then_updates_on_change(clients, bucket):
    sagemaker, s3 = clients["sagemaker"], clients["s3"]
    first = upsert(Settings(), s3, sagemaker, tags={"team": "ml"}, echo=lambda _: None)
    second = upsert(Settings(), s3, sagemaker, tags={"team": "ml"}, echo=lambda _: None)
    assert (first["action"], second["action"]) == ("created", "unchanged")
    assert second["code_objects_written"] == 0, "content-addressed code is uploaded once"
    assert [p["PipelineName"] for p in sagemaker.list_pipelines()["PipelineSummaries"]] == ["regula"]

    described = sagemaker.describe_pipeline(PipelineName="regula")
    assert json.loads(described["PipelineDefinition"]) == json.loads(compact(rendered()[0]))
    tags = {t["Key"]: t["Value"] for t in sagemaker.list_tags(ResourceArn=first["pipeline_arn"])["Tags"]}
    assert tags["team"] == "ml" and tags["regula:managed"] == "true"
    train_py = next(k for k in rendered()[1].uploads if k.endswith("/train.py"))
    assert s3.head_object(Bucket=bucket, Key=train_py)["ContentLength"] > 0

    third = upsert(Settings(rounds=2), s3, sagemaker, echo=lambda _: None)
    assert third["action"] == "updated"
    definition = json.loads(sagemaker.describe_pipeline(PipelineName="regula")["PipelineDefinition"])
    assert "TrainRound3" not in json.dumps(definition) and "TrainRound2" in json.dumps(definition)
    assert len(sagemaker.list_pipelines()["PipelineSummaries"]) == 1


def test_upsert_refuses_a_missing_bucket(clients):
    with pytest.raises(DeployError, match="bucket regula-artifacts does not exist"):
        upsert(Settings(), clients["s3"], clients["sagemaker"], echo=lambda _: None)


def test_start_passes_parameters_and_status_lists_it(clients, bucket):
    sagemaker = clients["sagemaker"]
    upsert(Settings(), clients["s3"], sagemaker, echo=lambda _: None)
    result = start(
        Settings(), sagemaker, {"MaxGap": "0.1", "Dropout": "0.2"}, wait=True, poll_seconds=0.1, echo=lambda _: None
    )
    described = sagemaker.describe_pipeline_execution(PipelineExecutionArn=result["execution_arn"])
    assert result["status"] == described["PipelineExecutionStatus"]  # what --wait reports is the service's word
    given = sagemaker.list_pipeline_parameters_for_execution(PipelineExecutionArn=result["execution_arn"])
    values = {p["Name"]: p["Value"] for p in given["PipelineParameters"]}
    assert values["MaxGap"] == "0.1" and values["Dropout"] == "0.2" and values["CodeVersion"] != ""
    rows = status(Settings(), sagemaker)
    assert [r["execution_arn"] for r in rows] == [result["execution_arn"]]
    with pytest.raises(DeployError, match="unknown pipeline parameter"):
        start(Settings(), sagemaker, {"MaxGapp": "1"}, echo=lambda _: None)


def test_start_refuses_an_instance_type_the_rendered_image_cannot_use(clients, bucket):
    """The training image is fixed when the pipeline is rendered, TrainingInstanceType is not: `start` reads the
    device the deployed definition records and refuses a mismatch before starting anything (reading the definition
    is its only call)."""
    sagemaker = clients["sagemaker"]
    upsert(Settings(), clients["s3"], sagemaker, echo=lambda _: None)
    calls = []
    sagemaker.meta.events.register("before-call.sagemaker.*", lambda model, **_: calls.append(model.name))
    with pytest.raises(DeployError) as refused:
        start(Settings(), sagemaker, {"TrainingInstanceType": "ml.g5.xlarge"}, echo=lambda _: None)
    assert "ml.g5.xlarge is a GPU instance" in str(refused.value)
    assert "000000000000.dkr.ecr.us-east-1.amazonaws.com/regula-steps:2.13-cpu is the CPU build" in str(refused.value)
    assert calls == ["DescribePipeline"]
    assert sagemaker.list_pipeline_executions(PipelineName="regula")["PipelineExecutionSummaries"] == []

    result = regula("start", "--param", "TrainingInstanceType=ml.p4d.24xlarge")
    assert result.returncode == 2 and "--training-device gpu" in result.stderr, result.stderr
    assert "ml.p4d.24xlarge is a GPU instance" in result.stderr and "regula-steps:2.13-cpu" in result.stderr

    # rendered for GPU: its default is a GPU type, a CPU type is refused, and a GPU type starts
    upsert(Settings(training_device="gpu"), clients["s3"], sagemaker, echo=lambda _: None)
    with pytest.raises(DeployError, match="ml.m5.xlarge has no GPU, but the training image .*regula-steps:2.13-gpu"):
        start(Settings(), sagemaker, {"TrainingInstanceType": "ml.m5.xlarge"}, echo=lambda _: None)
    assert start(Settings(), sagemaker, echo=lambda _: None)["status"] == "Executing"
    started = start(Settings(), sagemaker, {"TrainingInstanceType": "ml.p5.48xlarge"}, echo=lambda _: None)
    given = sagemaker.list_pipeline_parameters_for_execution(PipelineExecutionArn=started["execution_arn"])
    assert {"Name": "TrainingInstanceType", "Value": "ml.p5.48xlarge"} in given["PipelineParameters"]


def test_start_before_upsert_says_what_to_do(clients):
    result = regula("start", "--param", "MaxGap=0.1")
    assert result.returncode == 4
    assert result.stderr.strip() == "regula: error: pipeline regula does not exist: run `regula upsert` first"


def test_retry_refuses_what_did_not_fail_and_says_so(clients, bucket):
    none = regula("retry")
    assert none.returncode == 4
    assert none.stderr.strip() == "regula: error: pipeline regula does not exist: run `regula upsert` first"
    upsert(Settings(), clients["s3"], clients["sagemaker"], echo=lambda _: None)
    assert regula("retry").stderr.strip() == "regula: error: pipeline regula has no executions"

    arn = start(Settings(), clients["sagemaker"], echo=lambda _: None)["execution_arn"]  # moto: Succeeded at once
    latest = regula("retry", "--wait")
    assert latest.returncode == 3
    assert latest.stderr.strip() == (
        f"regula: error: the latest execution of regula, {arn}, is Succeeded: only a failed execution can be retried "
        "(`regula status` lists the executions; `regula start` starts a new one)"
    )
    named = regula("retry", arn)
    assert named.returncode == 3 and f"error: {arn} is Succeeded: only a failed execution" in named.stderr
    unknown = regula("retry", arn.replace("/execution/", "/execution/x"))
    assert unknown.returncode == 4 and "does not exist" in unknown.stderr


def test_retry_retries_a_failed_execution_and_waits_for_the_retry_not_the_old_failure():
    """moto 5.2.5 has no RetryPipelineExecution (NotImplementedError): the requests are checked against botocore's
    model of the real service with a Stubber, the responses are the service's as documented."""
    from datetime import UTC, datetime

    import botocore.session
    from botocore.stub import ANY, Stubber

    sagemaker = botocore.session.get_session().create_client(
        "sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    arn = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/regula/execution/0abc1def2ghi"
    failed_at, later = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)

    def described(state, modified):
        return {"PipelineExecutionArn": arn, "PipelineExecutionStatus": state, "LastModifiedTime": modified}

    def steps(*states):
        pairs = zip(("Preprocess", "TrainRound1"), states, strict=True)
        return {"PipelineExecutionSteps": [{"StepName": n, "StepStatus": s} for n, s in pairs]}

    lines = []
    with Stubber(sagemaker) as stub:
        latest = {"PipelineName": "regula", "SortBy": "CreationTime", "SortOrder": "Descending", "MaxResults": 1}
        summary = {"PipelineExecutionArn": arn, "PipelineExecutionStatus": "Failed"}
        stub.add_response("list_pipeline_executions", {"PipelineExecutionSummaries": [summary]}, latest)
        stub.add_response("describe_pipeline_execution", described("Failed", failed_at), {"PipelineExecutionArn": arn})
        stub.add_response(
            "retry_pipeline_execution",
            {"PipelineExecutionArn": arn},
            {"PipelineExecutionArn": arn, "ClientRequestToken": ANY},
        )
        listed = {"PipelineExecutionArn": arn, "SortOrder": "Ascending"}
        for state, modified, step_states in [
            ("Failed", failed_at, ("Succeeded", "Failed")),  # not yet the retry's: the old failure
            ("Executing", later, ("Succeeded", "Executing")),
            ("Succeeded", later, ("Succeeded", "Succeeded")),
        ]:
            stub.add_response("describe_pipeline_execution", described(state, modified), {"PipelineExecutionArn": arn})
            stub.add_response("list_pipeline_execution_steps", steps(*step_states), listed)
        result = retry(Settings(), sagemaker, "latest", wait=True, poll_seconds=0, echo=lines.append)
        stub.assert_no_pending_responses()
    assert result == {"execution_arn": arn, "status": "Succeeded"}
    assert lines == [
        f"retrying {arn}",
        "  Preprocess: Succeeded",
        "  TrainRound1: Failed",
        "  TrainRound1: Executing",
        "  TrainRound1: Succeeded",
        "execution Succeeded",
    ]


def register(
    sagemaker, gap: float, status: str = "PendingManualApproval", val_quality: float = 0.91, **extra: str
) -> str:
    group = "regula-models"
    if not sagemaker.list_model_package_groups()["ModelPackageGroupSummaryList"]:
        sagemaker.create_model_package_group(ModelPackageGroupName=group)
    return sagemaker.create_model_package(
        ModelPackageGroupName=group,
        ModelApprovalStatus=status,
        InferenceSpecification={
            "Containers": [{"Image": "123.dkr.ecr.us-east-1.amazonaws.com/x:1", "ModelDataUrl": "s3://b/model.tar.gz"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        CustomerMetadataProperties={
            "regula:accepted": "true",
            "regula:gap": str(gap),
            "regula:max_gap": "0.2",
            "regula:round": "2",
            "regula:quality_metric": "balanced_accuracy",
            "regula:val_quality": str(val_quality),
            "regula:baseline_quality": "0.5",
            "regula:min_lift": "0.05",
            "regula:min_quality": "0",
            **extra,
        },
    )["ModelPackageArn"]


def test_approve_and_reject_change_status_and_the_guard_refuses_a_bad_package(clients):
    sagemaker = clients["sagemaker"]
    good = register(sagemaker, gap=0.15)
    bad = register(sagemaker, gap=0.31)

    rows = registry.list_packages(sagemaker, "regula-models")
    assert [(r["version"], r["gap"], r["round"]) for r in rows] == [(2, 0.31, "2"), (1, 0.15, "2")]

    result = regula("models", "approve", "latest", "--note", "ship it")
    assert result.returncode == 3
    assert "refusing to approve version 2: its generalization gap 0.3100 is above the maximum 0.2" in result.stderr
    assert sagemaker.describe_model_package(ModelPackageName=bad)["ModelApprovalStatus"] == "PendingManualApproval"

    result = regula("models", "approve", "1", "--note", "gap within policy")
    assert result.returncode == 0, result.stderr
    approved = sagemaker.describe_model_package(ModelPackageName=good)
    assert approved["ModelApprovalStatus"] == "Approved" and approved["ApprovalDescription"] == "gap within policy"
    assert regula("models", "approve", "1").stdout.strip() == "version 1 is already Approved"

    assert regula("models", "reject", bad, "--note", "overfits").returncode == 0
    assert sagemaker.describe_model_package(ModelPackageName=bad)["ModelApprovalStatus"] == "Rejected"
    assert regula("models", "approve", bad, "--force").returncode == 2  # rejected: --force needs a --note too
    assert regula("models", "approve", bad, "--force", "--note", "accepted risk").returncode == 0
    assert sagemaker.describe_model_package(ModelPackageName=bad)["ModelApprovalStatus"] == "Approved"

    listed = regula("models", "list")
    assert listed.returncode == 0 and "Approved" in listed.stdout and "0.3100" in listed.stdout


def test_the_guard_holds_a_package_to_the_gap_limit_the_linear_reference_set(clients):
    """A round excused by the linear reference (GapReference=linear) records the gap it was held to; the guard
    approves within it, refuses beyond it, and --max-gap still tightens it."""
    sagemaker = clients["sagemaker"]
    excused = register(sagemaker, gap=0.3, **{"regula:gap_limit": "0.39"})
    beyond = register(sagemaker, gap=0.45, **{"regula:gap_limit": "0.39"})
    result = regula("models", "approve", "2", "--note", "n")
    assert result.returncode == 3
    assert "its generalization gap 0.4500 is above the maximum 0.39" in result.stderr
    result = regula("models", "approve", "1", "--note", "n", "--max-gap", "0.2")
    assert result.returncode == 3 and "its generalization gap 0.3000 is above the maximum 0.2" in result.stderr
    assert regula("models", "approve", "1", "--note", "within the reference's gap").returncode == 0
    assert sagemaker.describe_model_package(ModelPackageName=excused)["ModelApprovalStatus"] == "Approved"
    assert sagemaker.describe_model_package(ModelPackageName=beyond)["ModelApprovalStatus"] == "PendingManualApproval"


def test_the_guard_refuses_a_model_no_better_than_its_baseline_and_one_missing_its_policy(clients):
    sagemaker = clients["sagemaker"]
    trivial = register(sagemaker, gap=0.01, val_quality=0.52)  # baseline 0.5 + lift 0.05 = 0.55 needed
    result = regula("models", "approve", trivial)
    assert result.returncode == 3
    assert "its validation balanced_accuracy 0.5200 is under 0.5500" in result.stderr
    unrecorded = sagemaker.create_model_package(
        ModelPackageGroupName="regula-models",
        ModelApprovalStatus="PendingManualApproval",
        InferenceSpecification={
            "Containers": [{"Image": "123.dkr.ecr.us-east-1.amazonaws.com/x:1", "ModelDataUrl": "s3://b/m.tar.gz"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        CustomerMetadataProperties={"regula:gap": "0.01"},
    )["ModelPackageArn"]
    result = regula("models", "approve", unrecorded)
    assert result.returncode == 3 and "it has no recorded maximum gap, validation quality" in result.stderr
    for arn in (trivial, unrecorded):
        assert sagemaker.describe_model_package(ModelPackageName=arn)["ModelApprovalStatus"] == "PendingManualApproval"


def test_unknown_model_package_is_a_one_line_error(clients):
    register(clients["sagemaker"], gap=0.1)
    result = regula("models", "approve", "arn:aws:sagemaker:us-east-1:123456789012:model-package/regula-models/9")
    assert result.returncode == 4
    assert result.stderr.strip().endswith("not found in group regula-models")
    assert (
        regula("models", "list", "--group", "nope").stderr.strip()
        == "regula: error: model package group nope does not exist"
    )


def test_alerts_refuse_an_invalid_email_before_creating_anything(clients):
    result = regula("alerts", "apply", "--email", "ana@example.com", "--email", "not-an-address")
    assert result.returncode == 2 and result.stderr.strip() == "regula: error: invalid email address: not-an-address"
    assert clients["sns"].list_topics()["Topics"] == []


def test_cloudformation_template_passes_cfn_lint(tmp_path):
    template = tmp_path / "alerts.json"
    result = regula("alerts", "template", "--email", "ana@example.com", "--email", "bo@example.org")
    assert result.returncode == 0
    template.write_text(result.stdout)
    resources = json.loads(result.stdout)["Resources"]
    assert [r for r in resources if r.endswith("Subscription")] == ["Member1Subscription", "Member2Subscription"]
    assert resources["AlertsTopic"]["Properties"]["KmsMasterKeyId"] == {"Ref": "AlertsKey"}
    (publish,) = [
        s for s in resources["AlertsKey"]["Properties"]["KeyPolicy"]["Statement"] if "Service" in s["Principal"]
    ]
    assert set(publish["Principal"]["Service"]) == {"cloudwatch.amazonaws.com", "events.amazonaws.com"}
    assert set(publish["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    statements = resources["AlertsTopicPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert all("aws:SourceAccount" in st["Condition"]["StringEquals"] for st in statements)
    rule = resources["ApprovalDecisionRule"]["Properties"]["EventPattern"]
    assert rule["detail-type"] == ["SageMaker Model Package State Change"]
    lint = subprocess.run(
        [sys.executable, "-c", "import sys; from cfnlint.runner import main; sys.exit(main())", str(template)],
        capture_output=True,
        text=True,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr


def train(splits, model_dir, **env):
    args = ("--pipeline_name", "metrics-test", "--max_epochs", "12")
    return run_training(splits, model_dir, *args, env={"TRAINING_JOB_NAME": "job-1", "REGULA_METRICS": "on", **env})


@pytest.mark.slow
def test_training_metrics_are_readable_back_from_cloudwatch(clients, splits, tmp_path):
    result = train(splits, tmp_path / "model")
    assert result.returncode == 0, result.stderr
    epochs = len(json.loads((tmp_path / "model" / "history.json").read_text()))
    cloudwatch = clients["cloudwatch"]
    names = {m["MetricName"] for m in cloudwatch.list_metrics(Namespace="Regula")["Metrics"]}
    assert {"TrainingLoss", "ValidationLoss", "ValidationAccuracy", "GeneralizationGap", "ValLossRiseStreak"} <= names
    # one series per pipeline (what the alarms watch) and one per training job
    dimension_sets = {
        tuple(sorted(d["Name"] for d in m["Dimensions"]))
        for m in cloudwatch.list_metrics(Namespace="Regula", MetricName="ValidationLoss")["Metrics"]
    }
    assert dimension_sets == {("Pipeline",), ("Pipeline", "TrainingJob")}
    now = time.time()
    stats = cloudwatch.get_metric_statistics(
        Namespace="Regula",
        MetricName="ValidationLoss",
        Dimensions=[{"Name": "Pipeline", "Value": "metrics-test"}, {"Name": "TrainingJob", "Value": "job-1"}],
        StartTime=now - 3600,
        EndTime=now + 60,
        Period=3600,
        Statistics=["SampleCount", "Minimum"],
    )
    assert stats["Datapoints"][0]["SampleCount"] == epochs
    history = json.loads((tmp_path / "model" / "history.json").read_text())
    assert stats["Datapoints"][0]["Minimum"] == pytest.approx(min(h["val_loss"] for h in history))


@pytest.mark.slow
def test_training_with_cloudwatch_down_still_saves_its_model(splits, tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    started = time.monotonic()
    result = train(splits, tmp_path / "model")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "model" / "model.pt").stat().st_size > 0
    assert "dropped" in result.stderr
    assert time.monotonic() - started < 60


def test_status_shows_retried_and_cached_steps(monkeypatch, capsys):
    from pipelines import cli
    from pipelines.aws import deploy

    source = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/regula/execution/old"
    steps = [
        {"StepName": "Preprocess", "StepStatus": "Succeeded", "CacheHitResult": {"SourcePipelineExecutionArn": source}},
        {"StepName": "TrainRound1", "StepStatus": "Succeeded", "AttemptCount": 3},
        {"StepName": "EvaluateRound1", "StepStatus": "Executing", "AttemptCount": 1},
    ]
    row = {"execution_arn": "arn:new", "status": "Executing", "started": "2026", "failure_reason": "", "steps": steps}
    monkeypatch.setattr(deploy, "status", lambda *args, **kwargs: [row])
    assert cli.main(["status", "--region", "us-east-1"]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == [
        f"           Preprocess: Succeeded (cached from {source})",
        "           TrainRound1: Succeeded (attempt 3)",
        "           EvaluateRound1: Executing",
    ]


def test_reject_of_an_approved_package_and_a_forced_approval_need_a_note(clients):
    sagemaker = clients["sagemaker"]
    approved = register(sagemaker, gap=0.15, status="Approved", **{"regula:target": "churned", "regula:data": "c.csv"})
    candidate = register(sagemaker, gap=0.1, **{"regula:accepted": "false", "regula:target": "target"})

    def status(arn):
        return sagemaker.describe_model_package(ModelPackageName=arn)["ModelApprovalStatus"]

    result = regula_here("models", "reject", "1")
    assert (result.returncode, result.stderr.strip()) == (
        2,
        "regula: error: version 1 is Approved: rejecting it un-approves it, and needs a --note saying why",
    )
    assert status(approved) == "Approved"
    assert regula_here("models", "reject", "1", "--note", "leaks the churn date").returncode == 0
    package = sagemaker.describe_model_package(ModelPackageName=approved)
    assert (package["ModelApprovalStatus"], package["ApprovalDescription"]) == ("Rejected", "leaks the churn date")

    result = regula_here("models", "approve", "2", "--force")
    assert (result.returncode, result.stderr.strip()) == (
        2,
        "regula: error: approving version 2 with --force needs a --note saying why (stored as the approval "
        "description)",
    )
    assert status(candidate) == "PendingManualApproval"
    assert regula_here("models", "approve", "2", "--force", "--note", "reviewed by the team").returncode == 0
    assert status(candidate) == "Approved"

    listed = regula_here("models", "list")
    assert listed.returncode == 0, listed.stderr
    header, newest, oldest, *notes = listed.stdout.splitlines()
    assert header.split()[:5] == ["version", "status", "kind", "problem", "target"] and header.endswith("data")
    assert newest.split()[:5] == ["2", "Approved", "candidate", "-", "target"] and newest.endswith("  -")
    assert oldest.split()[:5] == ["1", "Rejected", "accepted", "-", "churned"] and oldest.endswith("  c.csv")
    assert notes[0].startswith("note: this group holds models of 2 targets (churned, target): give each table")
    assert notes[1].startswith("candidate: registered for review when no round was accepted")
