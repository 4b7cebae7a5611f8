"""End to end: a run that gives up emails every team member once; a run that registers after an overfitting round
emails nobody by default; with `--email-on overfitting` (the seed's setup) the overfitting round emails every member
exactly once, with its pipeline, execution, round, training job, gap and MaxGap, rising epochs and what comes next.

The pipeline runs as everywhere in these tests (S3 and the registry in moto), with CloudWatch, SNS and EventBridge
served by LocalStack, which evaluates the alarms Regula created and delivers their SNS action as email, and routes the
training jobs' overfitting notices through the input transformer of Regula's rule to the topic (emails read back
from LocalStack's SES outbox).
"""

from __future__ import annotations

import json
import os
import time
import urllib.request

import boto3
import pytest
from helpers import run_folders
from localstack_server import LocalStack, ensure_venv

from pipelines.alerts import resources as alerts
from pipelines.local.layout import job_log, job_root
from pipelines.local.run import run_local
from pipelines.settings import Settings

# The demo at this MaxGap, the gate alone (GapReference=none): round 1 overfits (gap 0.095 - its standard error 0.019
# is above it) and round 2, at level 10, passes (0.086 - 0.015): an overfitting round, then a registered one. With the
# linear reference on, round 1's gap is within a linear model's and round 1 registers (docs/ladder.md).
MAX_GAP = "0.073"
GATE = {"MaxGap": MAX_GAP, "GapReference": "none"}

pytestmark = pytest.mark.slow  # LocalStack and three whole pipelines: the slow tier (pytest --slow)

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


@pytest.fixture
def on_localstack(localstack, aws, monkeypatch):
    """Clients of LocalStack's CloudWatch, SNS and EventBridge; the steps' metrics and notices go there too, S3 and
    the registry stay on moto."""
    session = boto3.Session(region_name="us-east-1")
    clients = {name: session.client(name, endpoint_url=localstack.endpoint) for name in ("cloudwatch", "sns", "events")}
    clients["account"] = session.client("sts", endpoint_url=localstack.endpoint).get_caller_identity()["Account"]
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDWATCH", localstack.endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL_EVENTBRIDGE", localstack.endpoint)  # the service id, not "events"
    return clients


def apply(clients, spec: alerts.AlertSpec) -> None:
    sns, cloudwatch, events = clients["sns"], clients["cloudwatch"], clients["events"]
    alerts.apply(spec, MEMBERS, sns, cloudwatch, events, clients["account"], "us-east-1", echo=lambda _: None)


def outbox(localstack) -> list[tuple[str, dict]]:
    """(address, body) of every email LocalStack has sent whose body is JSON, as alarms' and notices' are."""
    found = []
    for message in json.loads(urllib.request.urlopen(f"{localstack.endpoint}/_aws/ses", timeout=5).read())["messages"]:
        try:
            body = json.loads(message["Body"]["text_part"])
        except (KeyError, TypeError, json.JSONDecodeError):
            continue
        found += [(address, body) for address in message["Destination"]["ToAddresses"]]
    return found


def emails_for(localstack, alarm_name: str) -> list[tuple[str, dict]]:
    return [
        (address, body)
        for address, body in outbox(localstack)
        if isinstance(body, dict) and body.get("AlarmName") == alarm_name and body.get("NewStateValue") == "ALARM"
    ]


def notices_for(localstack, pipeline: str) -> list[tuple[str, dict]]:
    return [(a, b) for a, b in outbox(localstack) if isinstance(b, dict) and "Alert" in b and b["Pipeline"] == pipeline]


def notices_sent(run_dir, rounds: int) -> dict[int, int]:
    """Per round, how many notices the training job says it put on EventBridge."""
    return {r: job_log(run_dir, f"TrainRound{r}").read_text().count("(notice sent)") for r in range(1, rounds + 1)}


def test_a_run_that_gives_up_emails_every_member_once_and_a_run_that_registers_emails_nobody(
    localstack, on_localstack, tmp_path
):
    cloudwatch = on_localstack["cloudwatch"]
    apply(on_localstack, alerts.AlertSpec())  # the default: no email on overfitting
    shown = alerts.show(alerts.AlertSpec(), on_localstack["sns"], cloudwatch, on_localstack["events"])
    assert sorted(s["email"] for s in shown["subscriptions"]) == sorted(MEMBERS)
    assert {e["event"] for e in shown["events"] if e["emails"]} == {"gave-up", "diverged", "registered"}

    # MAX_GAP: the demo data overfits round 1 (its overfitting signal goes out), then a stronger round registers
    registered = run_local(Settings(), runs_dir=tmp_path / "runs", params=GATE, echo=lambda _: None)
    assert registered["decision"] == "registered" and registered["rounds"][0]["decision"] == "overfit"
    # the overfitting round's job did put its notice on EventBridge: the disabled rule emailed it to nobody
    assert notices_sent(run_folders(tmp_path / "runs")[-1], 1) == {1: 1}
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

    # MaxGap alone: the linear reference would excuse a gap as large as a linear model's (about 0.07 on the demo)
    strict = {"MaxGap": "0.0001", "GapReference": "none"}
    gave_up = run_local(Settings(rounds=2), runs_dir=tmp_path / "runs", params=strict, echo=lambda _: None)
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
    body = sent[0][1]
    print("gave-up email body:", json.dumps(body, indent=2))  # docs/alerts.md quotes it (pytest -s)
    # what an alarm's email can say: its own name, description and dimensions, the same for every run
    assert body["Trigger"]["MetricName"] == "RunGaveUp"
    assert body["Trigger"]["Dimensions"] == [{"value": "regula", "name": "Pipeline"}]
    assert gave_up["execution_id"] not in json.dumps(body)
    # the per-epoch overfitting signal is on the dashboard only, and without --email-on overfitting no notice emails
    assert emails_for(localstack, "regula-overfitting-seen") == []
    assert notices_for(localstack, "regula") == []


def test_with_email_on_overfitting_the_overfitting_round_emails_every_member_once_with_its_context(
    localstack, on_localstack, tmp_path
):
    settings = Settings(pipeline_name="regula-seed")  # its own alarms, rules and emails on the shared LocalStack
    spec = alerts.AlertSpec(pipeline_name="regula-seed", email_on=("overfitting",))
    apply(on_localstack, spec)
    shown = alerts.show(spec, on_localstack["sns"], on_localstack["cloudwatch"], on_localstack["events"])
    assert [e["event"] for e in shown["events"] if e["emails"]] == ["overfitting"]

    report = run_local(settings, runs_dir=tmp_path / "runs", params=GATE, echo=lambda _: None)
    assert report["decision"] == "registered" and report["rounds"][0]["decision"] == "overfit"
    run_dir = run_folders(tmp_path / "runs")[-1]
    sent = notices_sent(run_dir, len(report["rounds"]))
    assert sent[1] == 1  # one notice per job, not one per epoch

    deadline = time.monotonic() + 60  # no alarm period in between: EventBridge delivers at once
    while time.monotonic() < deadline and len(notices_for(localstack, "regula-seed")) < len(MEMBERS) * sum(
        sent.values()
    ):
        time.sleep(1)
    time.sleep(3)  # anything else on its way arrives too
    emails = notices_for(localstack, "regula-seed")
    first_round = [(address, body) for address, body in emails if body["Round"] == 1]
    assert sorted(address for address, _ in first_round) == sorted(MEMBERS), "one email per member for the round"
    assert len(emails) == len(MEMBERS) * sum(sent.values())  # and one per member for every other job that sent one

    body = first_round[0][1]
    print("overfitting email body:", json.dumps(body, indent=2))  # docs/alerts.md quotes it (pytest -s)
    history = json.loads((job_root(run_dir, "TrainRound1") / "opt/ml/model/history.json").read_text())
    first = next(r for r in history if r["gap"] > float(MAX_GAP) or r["val_loss_rise_streak"] >= 3)
    assert body["Pipeline"] == "regula-seed" and body["Execution"] == report["execution_id"]
    assert body["TrainingJob"].startswith("regula-seed-TrainRound1-") and body["TrainingJob"].endswith(
        report["execution_id"]
    )
    assert (body["Round"], body["Rounds"], body["Epoch"], body["MaxGap"]) == (1, 3, first["epoch"], float(MAX_GAP))
    assert body["Gap"] == pytest.approx(first["gap"], abs=1e-6)
    assert body["ValidationLossRose"] == f"{first['val_loss_rise_streak']} epochs in a row (the condition: 3)"
    assert "round 2 of 3 retrains with stronger regularization" in body["Next"]
    assert "validation loss up 3 epochs in a row OR gap above MaxGap" == body["Condition"]
    assert body["Alert"].startswith("Training overfits in pipeline regula-seed, round 1 of 3")
