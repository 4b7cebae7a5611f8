"""Alerts worth an email: an SNS topic with one email subscription per team member, CloudWatch alarms on what a
team must act on, a dashboard of the runs, an EventBridge rule for approval decisions, and the same resources as a
CloudFormation template.

A round that overfits is the ladder's normal path, not news: the per-epoch overfitting signal is kept on the
dashboard, without an email. The alarms that email (plain metric alarms, no metric math, so any CloudWatch evaluator
evaluates them; Pipeline dimension only, so one alarm covers every run):
- `<pipeline>-run-gave-up`: a run ended without an accepted model (RunGaveUp, from evaluation: no round passed: a
  round that underfits or collapses, or still overfits in the last round), one email per run that gave up;
- `<pipeline>-training-diverged`: a training loss stopped being a number (TrainingDiverged, from training).
Without an email: `<pipeline>-overfitting-seen` (OverfittingSignal, from training: in the same epoch the gap is
above the execution's MaxGap AND the validation loss has risen 3 epochs in a row). Thresholds are tied to the
pipeline's parameters: the steps compare with the execution's own MaxGap, the alarms with 0 or 1.

The topic's policy lets only this account's alarms and rule publish (aws:SourceAccount, aws:SourceArn); with
--kms-key-id the topic is encrypted with that customer-managed key, whose policy must let cloudwatch.amazonaws.com
and events.amazonaws.com use it (the template, `alerts_template.py`, creates such a key). The dashboard's body is
`alerts_dashboard.py`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass

from pipelines.alerts_dashboard import dashboard
from pipelines.errors import RegulaError
from steps.defaults import METRICS_NAMESPACE, MODEL_PACKAGE_GROUP

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class AlertsError(RegulaError):
    pass


@dataclass(frozen=True)
class AlertSpec:
    pipeline_name: str = "regula"
    namespace: str = METRICS_NAMESPACE
    model_package_group: str = MODEL_PACKAGE_GROUP
    kms_key_id: str | None = None

    @property
    def topic_name(self) -> str:
        return f"{self.pipeline_name}-overfitting-alerts"

    @property
    def dashboard_name(self) -> str:
        return f"{self.pipeline_name}-overfitting"

    @property
    def rule_name(self) -> str:
        return f"{self.pipeline_name}-approval-decisions"


def validate_emails(emails: list[str]) -> list[str]:
    if not emails:
        raise AlertsError("give at least one --email")
    bad = [e for e in emails if not EMAIL.match(e)]
    if bad:
        raise AlertsError(f"invalid email address: {', '.join(bad)}")
    return sorted(set(e.strip().lower() for e in emails))


def alarms(spec: AlertSpec, topic_arn) -> list[dict]:
    """PutMetricAlarm requests (also the CloudFormation alarm properties)."""

    def alarm(name: str, metric: str, description: str, email: bool) -> dict:
        return {
            "AlarmName": f"{spec.pipeline_name}-{name}",
            "AlarmDescription": description,
            "Namespace": spec.namespace,
            "MetricName": metric,
            "Dimensions": [{"Name": "Pipeline", "Value": spec.pipeline_name}],
            "Statistic": "Maximum",
            "Period": 60,
            "EvaluationPeriods": 1,
            "DatapointsToAlarm": 1,
            "Threshold": 1.0,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "TreatMissingData": "notBreaching",
            "ActionsEnabled": email,
            "AlarmActions": [topic_arn] if email else [],
        }

    return [
        alarm(
            "run-gave-up",
            "RunGaveUp",
            f"A run of pipeline {spec.pipeline_name} ended without an accepted model: no round passed (a round "
            "underfit or collapsed, or the last round still overfit). The execution's failure message says why and "
            "what to change.",
            email=True,
        ),
        alarm(
            "training-diverged",
            "TrainingDiverged",
            f"Training in pipeline {spec.pipeline_name} diverged: its loss is no longer a number. Lower L1/L2 or the "
            "LearningRate.",
            email=True,
        ),
        alarm(
            "overfitting-seen",
            "OverfittingSignal",
            f"Training in pipeline {spec.pipeline_name} overfits: the gap is above MaxGap while the validation loss "
            "rises. The ladder retrains with stronger regularization; no email.",
            email=False,
        ),
    ]


def topic_policy(topic_arn, account: str, region: str, spec: AlertSpec) -> dict:
    """Only this account's alarms of this pipeline, and its approval rule, may publish to the topic."""
    alarm_arns = f"arn:aws:cloudwatch:{region}:{account}:alarm:{spec.pipeline_name}-*"
    rule_arn = f"arn:aws:events:{region}:{account}:rule/{spec.rule_name}"
    statements = []
    for sid, service, source in (
        ("CloudWatchAlarms", "cloudwatch.amazonaws.com", alarm_arns),
        ("ModelApprovalEvents", "events.amazonaws.com", rule_arn),
    ):
        statements.append(
            {
                "Sid": sid,
                "Effect": "Allow",
                "Principal": {"Service": service},
                "Action": "sns:Publish",
                "Resource": topic_arn,
                "Condition": {"StringEquals": {"aws:SourceAccount": account}, "ArnLike": {"aws:SourceArn": source}},
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


def approval_rule(spec: AlertSpec) -> dict:
    return {
        "source": ["aws.sagemaker"],
        "detail-type": ["SageMaker Model Package State Change"],
        "detail": {
            "ModelPackageGroupName": [spec.model_package_group],
            "ModelApprovalStatus": ["Approved", "Rejected"],
        },
    }


def apply(
    spec: AlertSpec, emails: list[str], sns, cloudwatch, events, account: str, region: str, echo: Callable = print
) -> dict:
    """Create or update everything; running it again with the same input changes nothing."""
    emails = validate_emails(emails)
    attributes = {"KmsMasterKeyId": spec.kms_key_id} if spec.kms_key_id else {}
    topic_arn = sns.create_topic(
        Name=spec.topic_name, Attributes=attributes, Tags=[{"Key": "regula:managed", "Value": "true"}]
    )["TopicArn"]
    sns.set_topic_attributes(
        TopicArn=topic_arn,
        AttributeName="Policy",
        AttributeValue=json.dumps(topic_policy(topic_arn, account, region, spec)),
    )
    subscribed = {s["Endpoint"].lower() for s in subscriptions(sns, topic_arn) if s["Protocol"] == "email"}
    for email in emails:
        if email in subscribed:
            continue
        sns.subscribe(TopicArn=topic_arn, Protocol="email", Endpoint=email)
        echo(f"subscribed {email} (AWS emails a confirmation link)")
    requests = alarms(spec, topic_arn)
    for alarm in requests:
        cloudwatch.put_metric_alarm(**alarm)
    names = [a["AlarmName"] for a in requests]
    alarm_arns = [a["AlarmArn"] for a in cloudwatch.describe_alarms(AlarmNames=names)["MetricAlarms"]]
    cloudwatch.put_dashboard(
        DashboardName=spec.dashboard_name, DashboardBody=json.dumps(dashboard(spec, region, alarm_arns))
    )
    events.put_rule(
        Name=spec.rule_name,
        EventPattern=json.dumps(approval_rule(spec)),
        Description=f"Approval decisions on {spec.model_package_group} models",
        State="ENABLED",
    )
    events.put_targets(Rule=spec.rule_name, Targets=[{"Id": "AlertsTopic", "Arn": topic_arn}])
    echo(f"topic {topic_arn}; alarms {', '.join(names)}; dashboard {spec.dashboard_name}; rule {spec.rule_name}")
    return {"topic_arn": topic_arn, "alarms": names, "dashboard": spec.dashboard_name, "emails": emails}


def subscriptions(sns, topic_arn: str) -> list[dict]:
    pages = sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic_arn)
    return [sub for page in pages for sub in page["Subscriptions"]]


def show(spec: AlertSpec, sns, cloudwatch) -> dict:
    topics = [t["TopicArn"] for t in sns.list_topics()["Topics"] if t["TopicArn"].endswith(f":{spec.topic_name}")]
    if not topics:
        raise AlertsError(f"no alerts set up for pipeline {spec.pipeline_name}: run `regula alerts apply --email ...`")
    names = [a["AlarmName"] for a in alarms(spec, topics[0])]
    return {
        "topic_arn": topics[0],
        "subscriptions": [
            {"email": s["Endpoint"], "confirmed": not s["SubscriptionArn"].startswith("Pending")}
            for s in subscriptions(sns, topics[0])
        ],
        "alarms": [
            {
                "name": a["AlarmName"],
                "state": a["StateValue"],
                "metric": a["MetricName"],
                "threshold": a["Threshold"],
                "actions": a["AlarmActions"],
                "emails": bool(a["AlarmActions"]),
            }
            for a in cloudwatch.describe_alarms(AlarmNames=names)["MetricAlarms"]
        ],
        "dashboard": spec.dashboard_name,
    }
