"""RetryPolicies in local runs: which failures are retried, after how long, how often; the report counts attempts."""

from __future__ import annotations

import errno
import json
import subprocess

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from pipelines.local.engine import faults, retries
from pipelines.local.engine.runner import LocalRunner
from pipelines.local.run import run_local
from pipelines.settings import Settings

JOB_POLICY = {
    "ExceptionType": ["SageMaker.JOB_INTERNAL_ERROR", "SageMaker.CAPACITY_ERROR", "SageMaker.RESOURCE_LIMIT"],
    "IntervalSeconds": 60,
    "BackoffRate": 2.0,
    "MaxAttempts": 4,
}
CALL_POLICY = {"ExceptionType": ["Step.SERVICE_FAULT", "Step.THROTTLING"], "IntervalSeconds": 5, "MaxAttempts": 5}


def job(name: str, code: str) -> dict:
    return {
        "Name": name,
        "Type": "Processing",
        "Arguments": {"AppSpecification": {"ContainerEntrypoint": ["python3", "-c", code]}},
        "RetryPolicies": [JOB_POLICY, CALL_POLICY],
    }


def run_definition(tmp_path, steps: list[dict], plan: dict | None = None):
    lines, waits = [], []
    runner = LocalRunner(
        {"Parameters": [], "Steps": steps},
        tmp_path / "run",
        s3=None,
        sagemaker=None,
        region="us-east-1",
        echo=lines.append,
        faults=plan or {},
        retry_scale=1,
        sleep=waits.append,
    )
    return runner.run("p"), lines, waits


def client_error(code: str, status: int) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op")


def test_failures_are_typed_conservatively():
    assert retries.classify(client_error("SlowDown", 503)) == retries.THROTTLING
    assert retries.classify(client_error("ThrottlingException", 400)) == retries.THROTTLING
    assert retries.classify(client_error("InternalError", 500)) == retries.SERVICE_FAULT
    assert retries.classify(EndpointConnectionError(endpoint_url="http://x")) == retries.SERVICE_FAULT
    assert retries.classify(client_error("AccessDenied", 403)) is None
    assert retries.classify(client_error("NoSuchKey", 404)) is None
    assert retries.classify(OSError(errno.EAGAIN, "not from Popen")) is None  # only a process that cannot start
    assert retries.classify(ValueError("x")) is None
    try:  # boto3's upload errors wrap the ClientError: the cause decides
        try:
            raise client_error("SlowDown", 503)
        except ClientError as inner:
            raise RuntimeError("Failed to upload") from inner
    except RuntimeError as wrapped:
        assert retries.classify(wrapped) == retries.THROTTLING


def test_the_waits_follow_interval_and_backoff_and_max_attempts_counts_retries():
    retrier = retries.Retrier.for_step({"RetryPolicies": [JOB_POLICY, CALL_POLICY]})
    waits = [retrier.next(retries.CAPACITY_ERROR) for _ in range(5)]
    assert waits == [(60, 5), (120, 5), (240, 5), (480, 5), None]
    assert retrier.next(retries.THROTTLING) == (5, 6)  # each policy counts its own retries
    assert retrier.next(None) is None
    now = [0.0]
    timed = retries.Retrier.for_step(
        {"RetryPolicies": [{"ExceptionType": [retries.SERVICE_FAULT], "ExpireAfterMin": 1}]}, clock=lambda: now[0]
    )
    assert timed.next(retries.SERVICE_FAULT) == (1.0, None)  # SageMaker's defaults: 1 s, backoff 2
    now[0] = 61
    assert timed.next(retries.SERVICE_FAULT) is None


def test_the_fault_plan_refuses_what_it_cannot_mean():
    definition = {"Steps": [job("Prep", "pass"), {"Name": "Stop", "Type": "Fail", "Arguments": {}}]}
    assert faults.fault_plan("Prep:CAPACITY_ERROR:2, Prep:Step.THROTTLING", definition) == {
        "Prep": [retries.CAPACITY_ERROR, retries.CAPACITY_ERROR, retries.THROTTLING]
    }
    with pytest.raises(ValueError, match="no step 'Train'"):
        faults.fault_plan("Train:CAPACITY_ERROR:1", definition)
    with pytest.raises(ValueError, match="unknown failure type 'OOM'"):
        faults.fault_plan("Prep:OOM:1", definition)
    with pytest.raises(ValueError, match="Stop is a Fail step"):
        faults.fault_plan("Stop:THROTTLING", definition)
    with pytest.raises(ValueError, match="REGULA_LOCAL_RETRY_SCALE"):
        faults.scale_from("-1")


def test_injected_capacity_errors_are_retried_with_backoff_and_the_job_runs_once(tmp_path):
    ok = "print('ran', flush=True)"
    execution, lines, waits = run_definition(tmp_path, [job("Prep", ok)], {"Prep": [retries.CAPACITY_ERROR] * 2})
    assert execution.status == "Succeeded"
    assert waits == [60, 120]
    assert "-> Prep attempt 2 of 5 after a capacity error (waiting 60 s)" in lines
    assert "-> Prep attempt 3 of 5 after a capacity error (waiting 120 s)" in lines
    [record] = execution.steps
    assert record.attempts == 3 and len(record.failed_attempts) == 2
    assert record.failed_attempts[0].startswith("SageMaker.CAPACITY_ERROR: a capacity error, injected by")
    assert (tmp_path / "run" / "logs" / "Prep.log").read_text() == "ran\n"


def test_a_script_error_is_never_retried(tmp_path):
    crash = "import sys; print('ERROR bad table', flush=True); sys.exit(2)"
    execution, _, waits = run_definition(tmp_path, [job("Prep", crash)])
    assert (execution.status, waits, execution.steps[0].attempts) == ("Failed", [], 1)
    assert execution.failure_reason.startswith("bad table (exit code 2, log: ")


def test_a_type_no_policy_lists_fails_at_once(tmp_path):
    step = {**job("Prep", "pass"), "RetryPolicies": [CALL_POLICY]}
    execution, _, waits = run_definition(tmp_path, [step], {"Prep": [retries.CAPACITY_ERROR]})
    assert (execution.status, waits) == ("Failed", [])
    assert execution.failure_reason.endswith("before the job started (not retried)")


def test_a_process_the_os_cannot_start_for_its_process_limit_is_a_resource_limit(tmp_path, monkeypatch):
    real = subprocess._fork_exec
    calls = []

    def refuse_once(*args):
        calls.append(1)
        if len(calls) == 1:
            raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")
        return real(*args)

    monkeypatch.setattr(subprocess, "_fork_exec", refuse_once)
    execution, lines, waits = run_definition(tmp_path, [job("Prep", "print('ran')")])
    assert execution.status == "Succeeded" and waits == [60]
    assert "-> Prep attempt 2 of 5 after a resource limit (waiting 60 s)" in lines
    assert execution.steps[0].failed_attempts[0].startswith("SageMaker.RESOURCE_LIMIT: [Errno 11]")


@pytest.mark.slow
def test_a_transient_capacity_error_in_training_is_retried_and_the_run_succeeds(tmp_path, clients, monkeypatch):
    monkeypatch.setenv(faults.FAULTS_ENV, "TrainRound1:CAPACITY_ERROR:1")
    monkeypatch.setenv(faults.SCALE_ENV, "0")
    lines = []
    report = run_local(Settings(), runs_dir=tmp_path / "runs", echo=lines.append, params={"MaxGap": "5"})
    assert report["status"] == "Succeeded" and report["decision"] == "registered"
    assert "-> TrainRound1 attempt 2 of 5 after a capacity error (waiting 60 s, scaled to 0 s)" in lines
    steps = {s["name"]: s for s in report["steps"]}
    assert steps["TrainRound1"]["attempts"] == 2 and len(steps["TrainRound1"]["failed_attempts"]) == 1
    assert steps["Preprocess"]["attempts"] == 1 and "failed_attempts" not in steps["Preprocess"]
    [run_dir] = (tmp_path / "runs").glob("2*")
    assert json.loads((run_dir / "report.json").read_text())["steps"] == report["steps"]


def test_more_failures_than_max_attempts_fail_the_run_naming_step_and_attempts(tmp_path, clients, monkeypatch):
    monkeypatch.setenv(faults.FAULTS_ENV, "Preprocess:CAPACITY_ERROR:9")
    monkeypatch.setenv(faults.SCALE_ENV, "0")
    lines = []
    report = run_local(Settings(), runs_dir=tmp_path / "runs", echo=lines.append)
    assert report["status"] == "Failed" and report["failed_step"] == "Preprocess"
    assert report["failure_reason"] == (
        "SageMaker.CAPACITY_ERROR: a capacity error, injected by REGULA_LOCAL_FAULTS before the job started "
        "(gave up after 5 attempts)"
    )
    [step] = report["steps"]
    assert step["attempts"] == 5 and len(step["failed_attempts"]) == 4
    assert [line for line in lines if " attempt " in line and line.startswith("->")][-1] == (
        "-> Preprocess attempt 5 of 5 after a capacity error (waiting 480 s, scaled to 0 s)"
    )
    assert f"FAILED at Preprocess: {report['failure_reason']}" in lines
