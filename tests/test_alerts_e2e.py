"""End to end: a run that gives up emails every team member once; a run that registers after an overfitting round
emails nobody.

The pipeline runs as everywhere in these tests (S3, the registry and EventBridge in moto), with CloudWatch and SNS
served by LocalStack, which evaluates the alarms Regula created and delivers their SNS action as email (read back
from LocalStack's SES outbox).
"""

from __future__ import annotations

import json
import os
import time
import urllib.request

import boto3
import pytest
from localstack_server import LocalStack, ensure_venv

from pipelines import alerts
from pipelines.local import run_local
from pipelines.settings import Settings

pytestmark = pytest.mark.slow  # LocalStack and two whole pipelines: the slow tier (pytest --slow)

MEMBERS = ["ana@example.com", "bo@example.org", "cy@example.net"]


@pytest.fixture(scope="module")
def localstack(tmp_path_factory):
    venv = ensure_venv()
    if venv is None:
        if os.environ.get("CI"):
            pytest.fail("CI needs Python >= 3.12 for LocalStack, the alarm evaluator")
        pytest.skip("no Python >= 3.12 for LocalStack")
    server = LocalStack(venv, tmp_path_factory.mktemp("localstack"))
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def emails_for(localstack, alarm_name: str) -> list[tuple[str, dict]]:
    outbox = json.loads(urllib.request.urlopen(f"{localstack.endpoint}/_aws/ses", timeout=5).read())
    found = []
    for message in outbox["messages"]:
        try:
            body = json.loads(message["Body"]["text_part"])
        except (KeyError, TypeError, json.JSONDecodeError):
            continue
        if body.get("AlarmName") == alarm_name and body.get("NewStateValue") == "ALARM":
            found += [(address, body) for address in message["Destination"]["ToAddresses"]]
    return found


def test_a_run_that_gives_up_emails_every_member_once_and_a_run_that_registers_emails_nobody(
    localstack, aws, tmp_path, monkeypatch
):
    session = boto3.Session(region_name="us-east-1")
    cloudwatch = session.client("cloudwatch", endpoint_url=localstack.endpoint)
    sns = session.client("sns", endpoint_url=localstack.endpoint)
    account = session.client("sts", endpoint_url=localstack.endpoint).get_caller_identity()["Account"]
    alerts.apply(
        alerts.AlertSpec(),
        MEMBERS,
        sns,
        cloudwatch,
        session.client("events"),
        account,
        "us-east-1",
        echo=lambda _: None,
    )
    shown = alerts.show(alerts.AlertSpec(), sns, cloudwatch)
    assert sorted(s["email"] for s in shown["subscriptions"]) == sorted(MEMBERS)

    # the steps' metrics go to LocalStack; S3 and the registry stay on moto
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDWATCH", localstack.endpoint)
    # MaxGap 0.05: the demo data overfits round 1 (its overfitting signal goes out), then a stronger round registers
    registered = run_local(Settings(), runs_dir=tmp_path / "runs", params={"MaxGap": "0.05"}, echo=lambda _: None)
    assert registered["decision"] == "registered" and registered["rounds"][0]["decision"] == "overfit"
    # what the gave-up alarm evaluates: every datum of that run is 0, below its threshold of 1
    series = cloudwatch.get_metric_statistics(
        Namespace="Regula",
        MetricName="RunGaveUp",
        Dimensions=[{"Name": "Pipeline", "Value": "regula"}],
        StartTime=time.time() - 3600,
        EndTime=time.time() + 60,
        Period=60,
        Statistics=["Maximum", "SampleCount"],
    )["Datapoints"]
    assert series and max(p["Maximum"] for p in series) == 0.0

    gave_up = run_local(
        Settings(rounds=2), runs_dir=tmp_path / "runs", params={"MaxGap": "0.0001"}, echo=lambda _: None
    )
    assert gave_up["failed_step"] == "StillOverfitting"

    deadline = time.monotonic() + 180  # the alarms' period is 60 s
    while time.monotonic() < deadline:
        alarm = cloudwatch.describe_alarms(AlarmNames=["regula-run-gave-up"])["MetricAlarms"][0]
        if alarm["StateValue"] == "ALARM":
            break
        time.sleep(2)
    assert alarm["StateValue"] == "ALARM"
    while time.monotonic() < deadline and {a for a, _ in emails_for(localstack, "regula-run-gave-up")} != set(MEMBERS):
        time.sleep(1)
    time.sleep(5)  # anything else on its way arrives too
    sent = emails_for(localstack, "regula-run-gave-up")
    assert sorted(address for address, _ in sent) == sorted(MEMBERS), "one email per member"
    assert sent[0][1]["Trigger"]["MetricName"] == "RunGaveUp"
    # the per-epoch overfitting signal is on the dashboard only: whatever its state, it emailed nobody
    assert emails_for(localstack, "regula-overfitting-seen") == []
