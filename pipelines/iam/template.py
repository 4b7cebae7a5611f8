"""`regula iam --format cloudformation`: both roles as a CloudFormation template, for the stack's own account.

The region is the one the policies were written for. The template creates the account's GitHub OIDC provider unless
its ARN is passed as the GitHubProviderArn parameter (an account holds one provider per URL).

Light to import.
"""

from __future__ import annotations

import dataclasses

from pipelines.iam.policies import roles
from pipelines.iam.spec import GITHUB_OIDC, STACK_ACCOUNT, Locations, Spec, role_parts

PROVIDER = "PROVIDER"  # stands in for the provider's ARN until the trust policy is rewritten with Fn::If


def substituted(value):
    """Strings naming ${AWS::...} become Fn::Sub, recursively."""
    if isinstance(value, str) and "${AWS::" in value:
        return {"Fn::Sub": value}
    if isinstance(value, dict):
        return {key: substituted(item) for key, item in value.items()}
    if isinstance(value, list):
        return [substituted(item) for item in value]
    return value


def cloudformation(spec: Spec, where: Locations) -> dict:
    _, path, name = role_parts(spec.execution_role_arn)
    role_arn = f"arn:{spec.partition}:iam::{STACK_ACCOUNT}:role{path}{name}"
    spec = dataclasses.replace(spec, account=STACK_ACCOUNT, execution_role_arn=role_arn)
    provider = {"Fn::If": ["CreateGitHubProvider", {"Ref": "GitHubProvider"}, {"Ref": "GitHubProviderArn"}]}
    described = roles(spec, where, provider_arn=PROVIDER)
    resources: dict = {
        "GitHubProvider": {
            "Type": "AWS::IAM::OIDCProvider",
            "Condition": "CreateGitHubProvider",
            "Properties": {"Url": f"https://{GITHUB_OIDC}", "ClientIdList": ["sts.amazonaws.com"]},
        }
    }
    for logical, role in (("ExecutionRole", described["execution"]), ("CIRole", described["ci"])):
        trust = substituted(role["AssumeRolePolicyDocument"])
        for item in trust["Statement"]:
            if item["Principal"].get("Federated") == PROVIDER:
                item["Principal"]["Federated"] = provider
        resources[logical] = {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "RoleName": role["RoleName"],
                "Path": role["Path"],
                "Description": role["Description"],
                "AssumeRolePolicyDocument": trust,
                "Policies": [{"PolicyName": role["PolicyName"], "PolicyDocument": substituted(role["PolicyDocument"])}],
            },
        }
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"Regula roles for pipeline {spec.settings.pipeline_name} in {spec.settings.region}",
        "Parameters": {
            "GitHubProviderArn": {
                "Type": "String",
                "Default": "",
                "Description": f"ARN of this account's {GITHUB_OIDC} OIDC provider; empty: the stack creates it",
            }
        },
        "Conditions": {"CreateGitHubProvider": {"Fn::Equals": [{"Ref": "GitHubProviderArn"}, ""]}},
        "Resources": resources,
        "Outputs": {
            "ExecutionRoleArn": {"Value": {"Fn::GetAtt": ["ExecutionRole", "Arn"]}},
            "CIRoleArn": {"Value": {"Fn::GetAtt": ["CIRole", "Arn"]}},
        },
    }
