"""`regula alerts template`: the resources `regula alerts apply` creates, as a CloudFormation template, with a
customer-managed KMS key for the topic unless one is given."""

from __future__ import annotations

import json

from pipelines.alerts.dashboard import dashboard
from pipelines.alerts.resources import AlertSpec, alarms, rules, topic_policy, validate_emails


def key_policy() -> dict:
    """A customer-managed key CloudWatch alarms and EventBridge can publish to an encrypted topic with (with the
    AWS-managed SNS key they deliver nothing, silently)."""
    account = {"Fn::Sub": "${AWS::AccountId}"}
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AccountAdministers",
                "Effect": "Allow",
                "Principal": {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}},
                "Action": "kms:*",
                "Resource": "*",
            },
            {
                "Sid": "AlarmsAndRulesPublish",
                "Effect": "Allow",
                "Principal": {"Service": ["cloudwatch.amazonaws.com", "events.amazonaws.com"]},
                "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:SourceAccount": account}},
            },
        ],
    }


def cloudformation(spec: AlertSpec, emails: list[str]) -> dict:
    """The same resources as `apply`; the topic encrypted with `spec.kms_key_id`, or with a key the template creates."""
    emails = validate_emails(emails)
    topic = {"Ref": "AlertsTopic"}
    policy = topic_policy(topic, "${AWS::AccountId}", "${AWS::Region}", spec)
    for statement in policy["Statement"]:  # the account and region are the stack's
        condition = statement["Condition"]
        condition["StringEquals"]["aws:SourceAccount"] = {"Fn::Sub": "${AWS::AccountId}"}
        source = condition["ArnLike"]["aws:SourceArn"]
        subs = [{"Fn::Sub": arn} for arn in (source if isinstance(source, list) else [source])]
        condition["ArnLike"]["aws:SourceArn"] = subs if isinstance(source, list) else subs[0]
    resources: dict = {}
    if spec.kms_key_id is None:
        resources["AlertsKey"] = {
            "Type": "AWS::KMS::Key",
            "Properties": {"Description": f"{spec.topic_name} encryption", "KeyPolicy": key_policy()},
        }
    resources["AlertsTopic"] = {
        "Type": "AWS::SNS::Topic",
        "Properties": {"TopicName": spec.topic_name, "KmsMasterKeyId": spec.kms_key_id or {"Ref": "AlertsKey"}},
    }
    resources["AlertsTopicPolicy"] = {
        "Type": "AWS::SNS::TopicPolicy",
        "Properties": {"Topics": [topic], "PolicyDocument": policy},
    }
    for index, email in enumerate(emails, start=1):
        resources[f"Member{index}Subscription"] = {
            "Type": "AWS::SNS::Subscription",
            "Properties": {"TopicArn": topic, "Protocol": "email", "Endpoint": email},
        }
    logical_names = ("GaveUpAlarm", "DivergedAlarm", "OverfittingSeenAlarm")
    for alarm, logical in zip(alarms(spec, topic), logical_names, strict=True):
        resources[logical] = {"Type": "AWS::CloudWatch::Alarm", "Properties": alarm}
    resources["Dashboard"] = {
        "Type": "AWS::CloudWatch::Dashboard",
        "Properties": {
            "DashboardName": spec.dashboard_name,
            "DashboardBody": {
                "Fn::Sub": json.dumps(dashboard(spec, "${AWS::Region}", [f"${{{n}.Arn}}" for n in logical_names]))
            },
        },
    }
    rule_logical_names = ("ApprovalDecisionRule", "OverfittingNoticeRule", "ModelRegisteredRule")
    for rule, logical in zip(rules(spec, topic), rule_logical_names, strict=True):
        target = rule.pop("Target")  # as apply: a rule not chosen is disabled and has no target
        targets = {"Targets": [target]} if rule["State"] == "ENABLED" else {}
        resources[logical] = {"Type": "AWS::Events::Rule", "Properties": {**rule, **targets}}
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"Regula alerts for pipeline {spec.pipeline_name}",
        "Resources": resources,
        "Outputs": {"TopicArn": {"Value": topic}},
    }
