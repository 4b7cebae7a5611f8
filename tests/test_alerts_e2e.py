"""End to end: a local pipeline run whose first round overfits emails every team member.

The pipeline runs as everywhere in these tests (S3 and the registry in moto), with CloudWatch and SNS
served by LocalStack, which evaluates the alarm Regula created and delivers its SNS action as email
(read back from LocalStack's SES outbox).
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
from steps.defaults import MAX_GAP

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


def test_an_overfitting_round_emails_every_team_member(localstack, aws, tmp_path, monkeypatch):
    cloudwatch_sns = boto3.Session(region_name="us-east-1")
    cloudwatch = cloudwatch_sns.client("cloudwatch", endpoint_url=localstack.endpoint)
    sns = cloudwatch_sns.client("sns", endpoint_url=localstack.endpoint)
    alerts.apply(alerts.AlertSpec(max_gap=MAX_GAP), MEMBERS, sns, cloudwatch, "us-east-1", echo=lambda _: None)

    # the steps' metrics go to LocalStack; S3 and the registry stay on moto
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDWATCH", localstack.endpoint)
    report = run_local(Settings(), runs_dir=tmp_path / "runs", echo=lambda _: None)
    assert report["rounds"][0]["decision"] == "overfit"
    assert report["rounds"][0]["generalization_gap"] > MAX_GAP

    deadline = time.monotonic() + 180  # the alarm's period is 60 s
    while time.monotonic() < deadline:
        alarm = cloudwatch.describe_alarms(AlarmNames=["regula-generalization-gap"])["MetricAlarms"][0]
        if alarm["StateValue"] == "ALARM":
            break
        time.sleep(2)
    assert alarm["StateValue"] == "ALARM"

    emailed = {}
    while time.monotonic() < deadline and set(emailed) != set(MEMBERS):
        outbox = json.loads(urllib.request.urlopen(f"{localstack.endpoint}/_aws/ses", timeout=5).read())
        for message in outbox["messages"]:
            body = json.loads(message["Body"]["text_part"])
            if body.get("AlarmName") == "regula-generalization-gap" and body.get("NewStateValue") == "ALARM":
                for address in message["Destination"]["ToAddresses"]:
                    emailed[address] = body
        time.sleep(1)
    assert set(emailed) == set(MEMBERS)
    trigger = emailed[MEMBERS[0]]["Trigger"]
    assert (trigger["MetricName"], trigger["Threshold"]) == ("FinalGeneralizationGap", MAX_GAP)
