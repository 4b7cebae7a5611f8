"""Alerts worth an email: an SNS topic with one email subscription per team member, CloudWatch alarms and
EventBridge rules for the events a team chose (`--email-on`), a dashboard of the runs, and the same resources as a
CloudFormation template. docs/alerts.md says why the default is what it is, and what each email holds.

The events (EVENTS), each emailing the topic when chosen:
- `gave-up`: alarm `<pipeline>-run-gave-up`: a run ended without an accepted model (RunGaveUp, from evaluation: no
  round passed: a round that underfits or collapses, or still overfits in the last round), one email per run;
- `diverged`: alarm `<pipeline>-training-diverged`: a training loss stopped being a number (TrainingDiverged);
- `overfitting`: rule `<pipeline>-overfitting-notices`: the training job's one notice per episode (steps/overfitting.py:
  validation loss up 3 epochs in a row OR gap above the execution's MaxGap), put on EventBridge by the job itself and
  turned into the email by an input transformer, with the pipeline, execution, round, job, gap and MaxGap, rising
  epochs and what the ladder does next. An alarm cannot carry that: its notification holds its own name,
  description, dimensions and the datapoint, the same for every run (docs/alerts.md has the bodies measured);
- `registered`: rule `<pipeline>-model-registered`: a model package is waiting for approval.
Always, without a choice: `<pipeline>-approval-decisions` emails approval decisions; `<pipeline>-overfitting-seen`
(OverfittingSignal, the same condition per epoch) is on the dashboard only. The alarms are plain metric alarms (no
metric math, so any CloudWatch evaluator evaluates them) on the Pipeline dimension only, so one alarm covers every run;
the steps compare with the execution's own MaxGap, the alarms with 0 or 1. An event not chosen keeps its alarm or
rule, without actions, or disabled and without the topic as its target, so `show` says what it would do.

The topic's policy lets only this account's alarms and rules publish (aws:SourceAccount, aws:SourceArn); with
--kms-key-id the topic is encrypted with that customer-managed key, whose policy must let cloudwatch.amazonaws.com
and events.amazonaws.com use it (the template, `template.py`, creates such a key). The dashboard's body is
`dashboard.py`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass

from pipelines.alerts.dashboard import dashboard
from pipelines.errors import NotFound, RegulaError
from steps import overfitting
from steps.defaults import METRICS_NAMESPACE, MODEL_PACKAGE_GROUP

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
EVENTS = ("gave-up", "diverged", "overfitting", "registered")
# What a team must act on (docs/alerts.md): a run without a model, training that blew up, a model waiting for a
# person's approval. Not overfitting: on the demo it held in every training job (benchmarks/results/
# overfitting_condition.json), and the ladder answers it.
DEFAULT_EMAIL_ON = ("gave-up", "diverged", "registered")


class AlertsError(RegulaError):
    pass


class AlertsNotSetUp(AlertsError, NotFound):
    """`regula alerts show` for a pipeline without alerts."""


@dataclass(frozen=True)
class AlertSpec:
    pipeline_name: str = "regula"
    namespace: str = METRICS_NAMESPACE
    model_package_group: str = MODEL_PACKAGE_GROUP
    kms_key_id: str | None = None
    email_on: tuple[str, ...] = DEFAULT_EMAIL_ON

    def __post_init__(self):
        unknown = sorted(set(self.email_on) - set(EVENTS))
        if unknown:
            raise AlertsError(f"--email-on must be one of {', '.join(EVENTS)}, got {', '.join(unknown)}")

    @property
    def topic_name(self) -> str:
        return f"{self.pipeline_name}-overfitting-alerts"

    @property
    def dashboard_name(self) -> str:
        return f"{self.pipeline_name}-overfitting"

    @property
    def rule_name(self) -> str:
        return f"{self.pipeline_name}-approval-decisions"

    @property
    def overfitting_rule_name(self) -> str:
        return f"{self.pipeline_name}-overfitting-notices"

    @property
    def registered_rule_name(self) -> str:
        return f"{self.pipeline_name}-model-registered"

    def emails(self, event: str) -> bool:
        return event in self.email_on


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
            email=spec.emails("gave-up"),
        ),
        alarm(
            "training-diverged",
            "TrainingDiverged",
            f"Training in pipeline {spec.pipeline_name} diverged: its loss is no longer a number. Lower L1/L2 or the "
            "LearningRate.",
            email=spec.emails("diverged"),
        ),
        alarm(
            "overfitting-seen",
            "OverfittingSignal",
            f"Training in pipeline {spec.pipeline_name} overfits: the validation loss rose "
            f"{overfitting.RISE_EPOCHS} epochs in a row, or the gap is above the execution's MaxGap. The ladder "
            "retrains with stronger regularization. Dashboard only: the email (--email-on overfitting) is the "
            f"training job's notice, through rule {spec.overfitting_rule_name}.",
            email=False,
        ),
    ]


def rule_names(spec: AlertSpec) -> list[str]:
    return [spec.rule_name, spec.overfitting_rule_name, spec.registered_rule_name]


def topic_policy(topic_arn, account: str, region: str, spec: AlertSpec) -> dict:
    """Only this account's alarms of this pipeline, and its rules, may publish to the topic."""
    alarm_arns = f"arn:aws:cloudwatch:{region}:{account}:alarm:{spec.pipeline_name}-*"
    rule_arn = [f"arn:aws:events:{region}:{account}:rule/{name}" for name in rule_names(spec)]
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


def registered_rule(spec: AlertSpec) -> dict:
    """A new model package waiting for a person's approval (its state change on creation)."""
    pattern = approval_rule(spec)
    pattern["detail"]["ModelApprovalStatus"] = ["PendingManualApproval"]
    return pattern


def overfitting_rule(spec: AlertSpec) -> dict:
    """The training jobs' notices of this pipeline (steps/overfitting.py)."""
    return {
        "source": [overfitting.SOURCE],
        "detail-type": [overfitting.DETAIL_TYPE],
        "detail": {"pipeline": [spec.pipeline_name]},
    }


# The email of an overfitting notice: the event's detail, picked and ordered. A JSON template, not a text one: an
# EventBridge text template is delivered by LocalStack as a quoted JSON string with its line breaks escaped, a JSON
# object arrives as the same JSON on both (docs/alerts.md: the measured body).
NOTICE_FIELDS = {
    "Alert": "summary",
    "Pipeline": "pipeline",
    "Execution": "execution",
    "Round": "round",
    "Rounds": "rounds",
    "TrainingJob": "trainingJob",
    "Epoch": "epoch",
    "Gap": "gap",
    "MaxGap": "maxGap",
    "ValidationLossRose": "validationLossRise",  # text: LocalStack renders a 0 as "" (an AWS rule gives 0)
    "Condition": "condition",
    "Next": "next",
}


def notice_transformer() -> dict:
    paths = {field: f"$.detail.{field}" for field in NOTICE_FIELDS.values()}
    template = "{" + ", ".join(f'"{key}": <{field}>' for key, field in NOTICE_FIELDS.items()) + "}"
    return {"InputPathsMap": paths, "InputTemplate": template}


def rules(spec: AlertSpec, topic_arn) -> list[dict]:
    """PutRule requests with each rule's target (also the CloudFormation rule properties)."""
    target = {"Id": "AlertsTopic", "Arn": topic_arn}
    return [
        {
            "Name": spec.rule_name,
            "Description": f"Approval decisions on {spec.model_package_group} models",
            "EventPattern": approval_rule(spec),
            "State": "ENABLED",
            "Target": target,
        },
        {
            "Name": spec.overfitting_rule_name,
            "Description": f"Overfitting notices of pipeline {spec.pipeline_name}'s training jobs, one per job",
            "EventPattern": overfitting_rule(spec),
            "State": "ENABLED" if spec.emails("overfitting") else "DISABLED",
            "Target": {**target, "InputTransformer": notice_transformer()},
        },
        {
            "Name": spec.registered_rule_name,
            "Description": f"{spec.model_package_group} models waiting for approval",
            "EventPattern": registered_rule(spec),
            "State": "ENABLED" if spec.emails("registered") else "DISABLED",
            "Target": target,
        },
    ]


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
    for rule in rules(spec, topic_arn):
        events.put_rule(
            Name=rule["Name"],
            EventPattern=json.dumps(rule["EventPattern"]),
            Description=rule["Description"],
            State=rule["State"],
        )
        if rule["State"] == "ENABLED":
            events.put_targets(Rule=rule["Name"], Targets=[rule["Target"]])
        else:  # disabled AND without the topic: LocalStack delivers through a disabled rule (docs/alerts.md)
            ids = [t["Id"] for t in events.list_targets_by_rule(Rule=rule["Name"])["Targets"]]
            if rule["Target"]["Id"] in ids:
                events.remove_targets(Rule=rule["Name"], Ids=[rule["Target"]["Id"]])
    chosen = [e for e in EVENTS if spec.emails(e)]
    echo(
        f"topic {topic_arn}; alarms {', '.join(names)}; dashboard {spec.dashboard_name}; rules "
        f"{', '.join(rule_names(spec))}; emails on: {', '.join(chosen) or 'nothing'}"
    )
    return {
        "topic_arn": topic_arn,
        "alarms": names,
        "rules": rule_names(spec),
        "dashboard": spec.dashboard_name,
        "emails": emails,
        "email_on": chosen,
    }


def subscriptions(sns, topic_arn: str) -> list[dict]:
    pages = sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic_arn)
    return [sub for page in pages for sub in page["Subscriptions"]]


def show(spec: AlertSpec, sns, cloudwatch, events) -> dict:
    topics = [t["TopicArn"] for t in sns.list_topics()["Topics"] if t["TopicArn"].endswith(f":{spec.topic_name}")]
    if not topics:
        raise AlertsNotSetUp(
            f"no alerts set up for pipeline {spec.pipeline_name}: run `regula alerts apply --email ...`"
        )
    names = [a["AlarmName"] for a in alarms(spec, topics[0])]
    found = {a["AlarmName"]: a for a in cloudwatch.describe_alarms(AlarmNames=names)["MetricAlarms"]}
    rule_states = {}
    for name in rule_names(spec):
        try:
            rule = events.describe_rule(Name=name)
        except events.exceptions.ResourceNotFoundException:
            continue
        targets = events.list_targets_by_rule(Rule=name)["Targets"]
        rule_states[name] = rule["State"] == "ENABLED" and any(t["Arn"] == topics[0] for t in targets)

    def alarm_emails(name: str) -> bool:
        return name in found and topics[0] in found[name]["AlarmActions"] and found[name]["ActionsEnabled"]

    via = {
        "gave-up": ("alarm", f"{spec.pipeline_name}-run-gave-up", alarm_emails),
        "diverged": ("alarm", f"{spec.pipeline_name}-training-diverged", alarm_emails),
        "overfitting": ("rule", spec.overfitting_rule_name, lambda n: rule_states.get(n, False)),
        "registered": ("rule", spec.registered_rule_name, lambda n: rule_states.get(n, False)),
    }
    return {
        "events": [
            {"event": event, "emails": emails(name), "via": f"{kind} {name}"}
            for event, (kind, name, emails) in via.items()
        ],
        "approval_decisions_email": rule_states.get(spec.rule_name, False),
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
            for a in found.values()
        ],
        "dashboard": spec.dashboard_name,
    }
