"""Overfitting alerts: an SNS topic with one email subscription per team member, CloudWatch alarms that
publish to it, a dashboard of the runs, and the same resources as a CloudFormation template.

The alarms are plain metric alarms (no metric math), so any CloudWatch evaluator evaluates them:
- `<pipeline>-generalization-gap`: the evaluated gap of a round (FinalGeneralizationGap, from the evaluation
  step) is above MaxGap;
- `<pipeline>-val-loss-rising`: the validation loss rose for `rise_epochs` epochs in a row during training
  (ValLossRiseStreak, from the training script).
Both use the Pipeline dimension only, so one alarm covers every run of the pipeline.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass

from pipelines.errors import RegulaError
from steps.defaults import MAX_GAP, METRICS_NAMESPACE, MODEL_PACKAGE_GROUP

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class AlertsError(RegulaError):
    pass


@dataclass(frozen=True)
class AlertSpec:
    pipeline_name: str = "regula"
    namespace: str = METRICS_NAMESPACE
    max_gap: float = MAX_GAP
    rise_epochs: int = 3
    model_package_group: str = MODEL_PACKAGE_GROUP

    @property
    def topic_name(self) -> str:
        return f"{self.pipeline_name}-overfitting-alerts"

    @property
    def dashboard_name(self) -> str:
        return f"{self.pipeline_name}-overfitting"


def validate_emails(emails: list[str]) -> list[str]:
    if not emails:
        raise AlertsError("give at least one --email")
    bad = [e for e in emails if not EMAIL.match(e)]
    if bad:
        raise AlertsError(f"invalid email address: {', '.join(bad)}")
    return sorted(set(e.strip().lower() for e in emails))


def alarms(spec: AlertSpec, topic_arn) -> list[dict]:
    """PutMetricAlarm requests (also the CloudFormation alarm properties)."""
    dimensions = [{"Name": "Pipeline", "Value": spec.pipeline_name}]
    common = {
        "Namespace": spec.namespace,
        "Dimensions": dimensions,
        "Statistic": "Maximum",
        "Period": 60,
        "EvaluationPeriods": 1,
        "DatapointsToAlarm": 1,
        "TreatMissingData": "notBreaching",
        "ActionsEnabled": True,
        "AlarmActions": [topic_arn],
    }
    return [
        {
            "AlarmName": f"{spec.pipeline_name}-generalization-gap",
            "AlarmDescription": f"A round of pipeline {spec.pipeline_name} overfits: its generalization gap "
            f"(validation loss - training loss) is above {spec.max_gap}.",
            "MetricName": "FinalGeneralizationGap",
            "Threshold": spec.max_gap,
            "ComparisonOperator": "GreaterThanThreshold",
            **common,
        },
        {
            "AlarmName": f"{spec.pipeline_name}-val-loss-rising",
            "AlarmDescription": f"Training in pipeline {spec.pipeline_name} overfits: the validation loss rose "
            f"{spec.rise_epochs} epochs in a row.",
            "MetricName": "ValLossRiseStreak",
            "Threshold": float(spec.rise_epochs),
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            **common,
        },
    ]


def dashboard(spec: AlertSpec, region: str, alarm_arns: list[str]) -> dict:
    def metric_widget(title: str, metrics: list[str], x: int, y: int) -> dict:
        return {
            "type": "metric",
            "x": x,
            "y": y,
            "width": 12,
            "height": 6,
            "properties": {
                "title": title,
                "region": region,
                "view": "timeSeries",
                "stat": "Average",
                "period": 60,
                "metrics": [[spec.namespace, m, "Pipeline", spec.pipeline_name] for m in metrics],
            },
        }

    return {
        "widgets": [
            metric_widget("Loss per epoch", ["TrainingLoss", "ValidationLoss"], 0, 0),
            metric_widget("Generalization gap per epoch", ["GeneralizationGap"], 12, 0),
            metric_widget(
                "Validation quality",
                ["ValidationAccuracy", "ValidationR2", "FinalValidationQuality", "TestQuality"],
                0,
                6,
            ),
            metric_widget(
                "Evaluated gap per round, rising validation loss",
                ["FinalGeneralizationGap", "ValLossRiseStreak"],
                12,
                6,
            ),
            {
                "type": "alarm",
                "x": 0,
                "y": 12,
                "width": 24,
                "height": 3,
                "properties": {"title": "Overfitting alarms", "alarms": alarm_arns},
            },
        ]
    }


def apply(spec: AlertSpec, emails: list[str], sns, cloudwatch, region: str, echo: Callable = print) -> dict:
    """Create or update everything; running it again with the same input changes nothing."""
    emails = validate_emails(emails)
    topic_arn = sns.create_topic(Name=spec.topic_name, Tags=[{"Key": "regula:managed", "Value": "true"}])["TopicArn"]
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
    echo(f"topic {topic_arn}; alarms {', '.join(names)}; dashboard {spec.dashboard_name}")
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
            }
            for a in cloudwatch.describe_alarms(AlarmNames=names)["MetricAlarms"]
        ],
        "dashboard": spec.dashboard_name,
    }


def cloudformation(spec: AlertSpec, emails: list[str]) -> dict:
    """The same resources as `apply`, plus an EventBridge rule that emails approval decisions of the registry."""
    emails = validate_emails(emails)
    topic = {"Ref": "AlertsTopic"}
    resources: dict = {
        "AlertsTopic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": spec.topic_name}},
        "AlertsTopicPolicy": {
            "Type": "AWS::SNS::TopicPolicy",
            "Properties": {
                "Topics": [topic],
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "CloudWatchAlarms",
                            "Effect": "Allow",
                            "Principal": {"Service": "cloudwatch.amazonaws.com"},
                            "Action": "sns:Publish",
                            "Resource": topic,
                        },
                        {
                            "Sid": "ModelApprovalEvents",
                            "Effect": "Allow",
                            "Principal": {"Service": "events.amazonaws.com"},
                            "Action": "sns:Publish",
                            "Resource": topic,
                        },
                    ],
                },
            },
        },
    }
    for index, email in enumerate(emails, start=1):
        resources[f"Member{index}Subscription"] = {
            "Type": "AWS::SNS::Subscription",
            "Properties": {"TopicArn": topic, "Protocol": "email", "Endpoint": email},
        }
    for alarm, logical in zip(alarms(spec, topic), ("GapAlarm", "ValLossRisingAlarm"), strict=True):
        resources[logical] = {"Type": "AWS::CloudWatch::Alarm", "Properties": alarm}
    resources["Dashboard"] = {
        "Type": "AWS::CloudWatch::Dashboard",
        "Properties": {
            "DashboardName": spec.dashboard_name,
            "DashboardBody": {
                "Fn::Sub": json.dumps(
                    dashboard(spec, "${AWS::Region}", ["${GapAlarm.Arn}", "${ValLossRisingAlarm.Arn}"])
                )
            },
        },
    }
    resources["ApprovalDecisionRule"] = {
        "Type": "AWS::Events::Rule",
        "Properties": {
            "Description": f"Approval decisions on {spec.model_package_group} models",
            "EventPattern": {
                "source": ["aws.sagemaker"],
                "detail-type": ["SageMaker Model Package State Change"],
                "detail": {
                    "ModelPackageGroupName": [spec.model_package_group],
                    "ModelApprovalStatus": ["Approved", "Rejected"],
                },
            },
            "Targets": [{"Arn": topic, "Id": "AlertsTopic"}],
        },
    }
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"Regula overfitting alerts for pipeline {spec.pipeline_name}",
        "Resources": resources,
        "Outputs": {"TopicArn": {"Value": topic}},
    }
