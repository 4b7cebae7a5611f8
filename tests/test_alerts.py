"""Alerts against a moto server: what emails the team (--email-on), what only shows on the dashboard, and who may
publish. What the emails hold is measured on LocalStack (tests/test_alerts_e2e.py)."""

from __future__ import annotations

import json

import pytest
from helpers import regula, regula_here

from pipelines.alerts import resources as alerts

MEMBERS = ["ana@example.com", "bo@example.org"]
ACCOUNT = "123456789012"  # moto's
RULES = ("regula-approval-decisions", "regula-overfitting-notices", "regula-model-registered")


def apply(clients, emails=MEMBERS, **spec) -> dict:
    return alerts.apply(
        alerts.AlertSpec(**spec),
        emails,
        clients["sns"],
        clients["cloudwatch"],
        clients["events"],
        ACCOUNT,
        "us-east-1",
        echo=lambda _: None,
    )


def test_apply_twice_is_one_topic_one_subscription_per_member_and_alarms_worth_an_email(clients):
    sns, cloudwatch = clients["sns"], clients["cloudwatch"]
    for _ in range(2):
        apply(clients)
    topics = [t["TopicArn"] for t in sns.list_topics()["Topics"]]
    assert len(topics) == 1 and topics[0].endswith(":regula-overfitting-alerts")
    subs = sns.list_subscriptions_by_topic(TopicArn=topics[0])["Subscriptions"]
    assert sorted((s["Protocol"], s["Endpoint"]) for s in subs) == [("email", m) for m in MEMBERS]

    found = {a["AlarmName"]: a for a in cloudwatch.describe_alarms()["MetricAlarms"]}
    assert set(found) == {"regula-run-gave-up", "regula-training-diverged", "regula-overfitting-seen"}
    emailing = {name for name, alarm in found.items() if alarm["AlarmActions"] == [topics[0]]}
    assert emailing == {"regula-run-gave-up", "regula-training-diverged"}
    assert found["regula-overfitting-seen"]["AlarmActions"] == []  # the ladder's normal path: dashboard only
    # the default: a run without a model, diverged training, a model waiting for approval; not overfitting
    states = {name: clients["events"].describe_rule(Name=name)["State"] for name in RULES}
    assert states == {
        "regula-approval-decisions": "ENABLED",
        "regula-overfitting-notices": "DISABLED",
        "regula-model-registered": "ENABLED",
    }
    assert clients["events"].list_targets_by_rule(Rule="regula-overfitting-notices")["Targets"] == []
    registered = json.loads(clients["events"].describe_rule(Name="regula-model-registered")["EventPattern"])
    assert registered["detail"] == {
        "ModelPackageGroupName": ["regula-models"],
        "ModelApprovalStatus": ["PendingManualApproval"],
    }
    gave_up = found["regula-run-gave-up"]
    assert (gave_up["MetricName"], gave_up["Threshold"], gave_up["ComparisonOperator"]) == (
        "RunGaveUp",
        1.0,
        "GreaterThanOrEqualToThreshold",
    )
    assert gave_up["Dimensions"] == [{"Name": "Pipeline", "Value": "regula"}]
    body = json.loads(cloudwatch.get_dashboard(DashboardName="regula-overfitting")["DashboardBody"])
    assert any(w["type"] == "alarm" for w in body["widgets"])

    # a third member joins: one more subscription, the others untouched
    apply(clients, [*MEMBERS, "cy@example.net"])
    assert len(sns.list_subscriptions_by_topic(TopicArn=topics[0])["Subscriptions"]) == 3
    shown = json.loads(regula("alerts", "show", "--json").stdout)
    assert shown["topic_arn"] == topics[0] and len(shown["alarms"]) == 3


def test_only_this_accounts_alarms_and_rule_may_publish(clients):
    topic = apply(clients)["topic_arn"]
    policy = json.loads(clients["sns"].get_topic_attributes(TopicArn=topic)["Attributes"]["Policy"])
    by_service = {s["Principal"]["Service"]: s for s in policy["Statement"]}
    assert set(by_service) == {"cloudwatch.amazonaws.com", "events.amazonaws.com"}
    for statement in by_service.values():
        assert statement["Action"] == "sns:Publish" and statement["Resource"] == topic
        assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": ACCOUNT}
    assert by_service["cloudwatch.amazonaws.com"]["Condition"]["ArnLike"]["aws:SourceArn"] == (
        f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:regula-*"
    )
    rule = clients["events"].describe_rule(Name="regula-approval-decisions")
    assert json.loads(rule["EventPattern"])["detail-type"] == ["SageMaker Model Package State Change"]
    targets = clients["events"].list_targets_by_rule(Rule="regula-approval-decisions")["Targets"]
    assert [t["Arn"] for t in targets] == [topic]
    rule_arns = [clients["events"].describe_rule(Name=name)["Arn"] for name in RULES]
    assert by_service["events.amazonaws.com"]["Condition"]["ArnLike"]["aws:SourceArn"] == rule_arns
    assert rule["Arn"] in rule_arns


def test_a_customer_managed_key_encrypts_the_topic(clients):
    topic = apply(clients, kms_key_id="alias/regula-alerts")["topic_arn"]
    attributes = clients["sns"].get_topic_attributes(TopicArn=topic)["Attributes"]
    assert attributes["KmsMasterKeyId"] == "alias/regula-alerts"


def test_show_says_which_alarms_email(clients):
    apply(clients)
    shown = regula("alerts", "show")
    assert shown.returncode == 0, shown.stderr
    assert "regula-run-gave-up: OK (RunGaveUp >= 1, emails the team)" in shown.stdout
    assert "regula-overfitting-seen: OK (OverfittingSignal >= 1, dashboard only)" in shown.stdout
    assert "overfitting: no email (rule regula-overfitting-notices)" in shown.stdout
    assert "registered: emails the team (rule regula-model-registered)" in shown.stdout


def test_the_seeds_setup_is_one_flag_away_and_show_says_which_events_email(clients):
    applied = regula("alerts", "apply", "--email", MEMBERS[0], "--email-on", "overfitting")
    assert applied.returncode == 0, applied.stderr
    assert "emails on: overfitting" in applied.stdout
    shown = json.loads(regula("alerts", "show", "--json").stdout)
    assert {e["event"]: e["emails"] for e in shown["events"]} == {
        "gave-up": False,
        "diverged": False,
        "overfitting": True,
        "registered": False,
    }
    alarms = {a["AlarmName"]: a for a in clients["cloudwatch"].describe_alarms()["MetricAlarms"]}
    assert all(a["AlarmActions"] == [] for a in alarms.values())  # chosen events only
    events = clients["events"]
    assert events.describe_rule(Name="regula-overfitting-notices")["State"] == "ENABLED"
    pattern = json.loads(events.describe_rule(Name="regula-overfitting-notices")["EventPattern"])
    assert pattern == {
        "source": ["regula"],
        "detail-type": ["Regula Training Overfitting"],
        "detail": {"pipeline": ["regula"]},
    }
    (target,) = events.list_targets_by_rule(Rule="regula-overfitting-notices")["Targets"]
    assert target["Arn"] == shown["topic_arn"]
    paths = target["InputTransformer"]["InputPathsMap"]
    for field in ("pipeline", "execution", "round", "trainingJob", "gap", "maxGap", "validationLossRise", "next"):
        assert paths[field] == f"$.detail.{field}" and f"<{field}>" in target["InputTransformer"]["InputTemplate"]

    # every event again: the alarms email, the rules are enabled, nothing is duplicated
    every = ["--email-on", "gave-up", "--email-on", "diverged", "--email-on", "overfitting", "--email-on", "registered"]
    assert regula("alerts", "apply", "--email", MEMBERS[0], *every).returncode == 0
    shown = json.loads(regula("alerts", "show", "--json").stdout)
    assert all(e["emails"] for e in shown["events"]) and len(shown["subscriptions"]) == 1
    assert len(events.list_targets_by_rule(Rule="regula-overfitting-notices")["Targets"]) == 1

    # back to the default: the overfitting rule is disabled and loses the topic
    assert regula("alerts", "apply", "--email", MEMBERS[0]).returncode == 0
    assert events.describe_rule(Name="regula-overfitting-notices")["State"] == "DISABLED"
    assert events.list_targets_by_rule(Rule="regula-overfitting-notices")["Targets"] == []
    shown = json.loads(regula("alerts", "show", "--json").stdout)
    assert [e["event"] for e in shown["events"] if e["emails"]] == ["gave-up", "diverged", "registered"]


def test_an_unknown_event_is_refused_before_anything_is_created(clients):
    result = regula_here("alerts", "apply", "--email", MEMBERS[0], "--email-on", "overfit")
    assert result.returncode == 2
    assert "argument --email-on: invalid choice: 'overfit'" in result.stderr
    assert clients["sns"].list_topics()["Topics"] == []
    assert clients["cloudwatch"].describe_alarms()["MetricAlarms"] == []


def test_the_template_holds_the_same_rules_and_alarm_actions_as_apply():
    from pipelines.alerts.template import cloudformation

    resources = cloudformation(alerts.AlertSpec(email_on=("overfitting",)), MEMBERS)["Resources"]
    assert resources["OverfittingNoticeRule"]["Properties"]["State"] == "ENABLED"
    assert resources["ModelRegisteredRule"]["Properties"]["State"] == "DISABLED"
    assert "Targets" not in resources["ModelRegisteredRule"]["Properties"]
    (target,) = resources["OverfittingNoticeRule"]["Properties"]["Targets"]
    assert target["Arn"] == {"Ref": "AlertsTopic"} and "<trainingJob>" in target["InputTransformer"]["InputTemplate"]
    assert resources["GaveUpAlarm"]["Properties"]["AlarmActions"] == []


def test_an_unknown_event_in_code_is_refused_with_the_choices():
    with pytest.raises(alerts.AlertsError) as refused:
        alerts.AlertSpec(email_on=("gave-up", "nope"))
    assert str(refused.value) == "--email-on must be one of gave-up, diverged, overfitting, registered, got nope"
