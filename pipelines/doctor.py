"""`regula doctor`: is this account ready for `regula upsert` and `regula start`? Every problem at once, one line each.

Errors (the exit status is 1 when there is one): a bucket name S3 refuses, a bucket that is missing, not readable or
in another region, a malformed or missing role ARN (or one SageMaker may not assume), a region without the PyTorch
images in the SDK's tables, a data URI with nothing behind it, no credentials. Warnings (printed, exit 0): what could
not be checked with these credentials, alerts not set up or email subscriptions still waiting for their
confirmation click. When there is no error, the last line says "ok" and what was checked.

Light to import: boto3 and the SDK (the image tables) are imported when the command runs.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from pipelines.settings import Settings
from steps.defaults import MODEL_PACKAGE_GROUP

NAME = "doctor"
HELP = "check the account is ready (bucket, region, role, images, registry, alerts): every problem at once"

GROUP_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError", "403"}


@dataclass
class Report:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        lines = [f"error: {e}" for e in self.errors] + [f"warning: {w}" for w in self.warnings]
        if self.errors:
            lines.append(
                f"{len(self.errors)} problem{'s' if len(self.errors) > 1 else ''} to fix before `regula upsert`"
            )
        else:
            lines.append(f"ok: {'; '.join(self.checked)}")
        return lines


def code(error) -> str:
    return getattr(error, "response", {}).get("Error", {}).get("Code", "")


def denied(error) -> bool:
    return code(error) in DENIED


def check(
    settings: Settings,
    client: Callable,
    model_package_group: str = MODEL_PACKAGE_GROUP,
    data_uris: list[str] | None = None,
) -> Report:
    """`client(service)` gives a boto3 client for the settings' region."""
    from pipelines.s3 import bucket_name_error

    report = Report()
    bucket_ok = not _offline_bucket(settings, report, bucket_name_error)
    role = _offline_role(settings.role_arn, report)
    if not GROUP_NAME.match(model_package_group):
        report.errors.append(f"model package group name {model_package_group!r} is invalid (letters, digits, hyphens)")
    _images(settings, report)
    account = _credentials(client, report)
    if account is None:
        return report
    if bucket_ok:
        _bucket(settings, client("s3"), report)
    for uri in data_uris or []:
        _data(uri, client("s3"), report, bucket_name_error)
    if role:
        _role(settings.role_arn, role, account, client("iam"), report)
    if GROUP_NAME.match(model_package_group):
        _group(model_package_group, client("sagemaker"), report)
    _alerts(settings, client("sns"), report)
    return report


def _offline_bucket(settings: Settings, report: Report, bucket_name_error) -> bool:
    invalid = bucket_name_error(settings.bucket)
    if invalid:
        report.errors.append(invalid)
    return bool(invalid)


def _offline_role(arn: str, report: Report) -> tuple[str, str] | None:
    """(account, role name) of a well-formed role ARN, else None with the error reported."""
    from pipelines.iam import PLACEHOLDER_ACCOUNT, ROLE_ARN

    match = ROLE_ARN.match(arn)
    if not match or match.group(2) == "${AWS::AccountId}":
        report.errors.append(f"role ARN {arn!r} is malformed: arn:aws:iam::<12-digit account>:role/<path/>name")
        return None
    if match.group(2) == PLACEHOLDER_ACCOUNT:
        report.errors.append(f"role ARN {arn} is the placeholder: pass --role-arn (`regula iam` writes the role)")
        return None
    return match.group(2), match.group(4)


def _images(settings: Settings, report: Report) -> None:
    from pipelines import sdk

    with sdk.quiet_import():
        from pipelines.definition import inference_image, training_image
    found = []
    for scope, image in (("training", training_image), ("inference", inference_image)):
        try:
            found.append(image(settings))
        except ValueError as error:
            report.errors.append(
                f"no PyTorch {settings.pytorch_version} {scope} image for region {settings.region} in the SDK's "
                f"tables: {error}"
            )
    if settings.image_uri:
        match = re.match(r"^\d{12}\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com", settings.image_uri)
        if not match:
            report.errors.append(f"--image-uri {settings.image_uri} is not an ECR image URI")
        elif match.group(1) != settings.region:
            report.errors.append(
                f"--image-uri {settings.image_uri} is in {match.group(1)}: SageMaker jobs in {settings.region} pull "
                "images from their own region"
            )
    if len(found) == 2:
        report.checked.append(f"images for {settings.region}")


def _credentials(client: Callable, report: Report) -> str | None:
    try:
        account = client("sts").get_caller_identity()["Account"]
    except Exception as error:  # noqa: BLE001 - no credentials, no network: nothing remote can be checked
        report.errors.append(f"no usable AWS credentials ({error}): nothing in the account was checked")
        return None
    report.checked.append(f"credentials (account {account})")
    return account


def _bucket(settings: Settings, s3, report: Report) -> None:
    from pipelines.s3 import bucket_access_error

    problem = bucket_access_error(s3, settings.bucket, settings.prefix)
    if problem:
        report.errors.append(problem)
        return
    try:
        location = s3.get_bucket_location(Bucket=settings.bucket).get("LocationConstraint")
    except s3.exceptions.ClientError as error:
        report.warnings.append(f"region of bucket {settings.bucket} not checked: {error}")
        report.checked.append(f"bucket {settings.bucket}")
        return
    region = {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}.get(location, location)
    if region != settings.region:
        report.errors.append(
            f"bucket {settings.bucket} is in {region}, the pipeline in {settings.region}: SageMaker jobs need the "
            "bucket in their region (pass --region or another --bucket)"
        )
        return
    report.checked.append(f"bucket {settings.bucket} in {region}")


def _data(uri: str, s3, report: Report, bucket_name_error) -> None:
    from pipelines.s3 import split_uri

    try:
        bucket, key = split_uri(uri)
    except ValueError as error:
        report.errors.append(f"data: {error}")
        return
    invalid = bucket_name_error(bucket)
    if invalid:
        report.errors.append(f"data {uri}: {invalid}")
        return
    try:
        found = s3.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1).get("KeyCount", 0)
    except s3.exceptions.ClientError as error:
        if code(error) in ("NoSuchBucket", "404"):
            report.errors.append(f"data {uri}: bucket {bucket} does not exist")
        elif denied(error):
            report.warnings.append(f"data {uri} not checked: these credentials may not list it")
        else:
            report.errors.append(f"data {uri}: {error}")
        return
    if not found:
        report.errors.append(f"data {uri}: nothing there")
        return
    report.checked.append(f"data {uri}")


def _role(arn: str, role: tuple[str, str], account: str, iam, report: Report) -> None:
    role_account, name = role
    if role_account != account:
        report.warnings.append(f"role {arn} is in account {role_account}, these credentials in {account}")
    try:
        trust = iam.get_role(RoleName=name)["Role"].get("AssumeRolePolicyDocument", {})
    except iam.exceptions.ClientError as error:
        if code(error) == "NoSuchEntity":
            report.errors.append(f"role {arn} does not exist: create it (`regula iam`)")
        elif denied(error):
            report.warnings.append(f"role {arn} not checked: these credentials may not call iam:GetRole")
        else:
            report.errors.append(f"role {arn}: {error}")
        return
    if isinstance(trust, str):  # some clients return it URL-encoded
        import json
        from urllib.parse import unquote

        trust = json.loads(unquote(trust))
    if "sagemaker.amazonaws.com" not in str(trust):
        report.errors.append(f"role {arn} does not trust sagemaker.amazonaws.com: SageMaker cannot assume it")
        return
    report.checked.append(f"role {name}")


def _group(group: str, sagemaker, report: Report) -> None:
    from pipelines.deploy import missing

    try:
        sagemaker.describe_model_package_group(ModelPackageGroupName=group)
    except sagemaker.exceptions.ClientError as error:
        if missing(error):
            report.checked.append(f"model package group {group} (created by the first registration)")
        elif denied(error):
            report.warnings.append(f"model package group {group} not checked: no sagemaker:DescribeModelPackageGroup")
        else:
            report.errors.append(f"model package group {group}: {error}")
        return
    report.checked.append(f"model package group {group} exists")


def _alerts(settings: Settings, sns, report: Report) -> None:
    from pipelines.alerts import AlertSpec, subscriptions

    spec = AlertSpec(pipeline_name=settings.pipeline_name)
    try:
        pages = sns.get_paginator("list_topics").paginate()
        topics = [
            t["TopicArn"] for page in pages for t in page["Topics"] if t["TopicArn"].endswith(f":{spec.topic_name}")
        ]
        subs = subscriptions(sns, topics[0]) if topics else []
    except sns.exceptions.ClientError as error:
        report.warnings.append(f"alerts not checked: {error}")
        return
    if not topics:
        report.warnings.append(
            f"no alerts topic {spec.topic_name}: nobody is emailed when a run gives up (`regula alerts apply --email`)"
        )
        return
    emails = [s for s in subs if s["Protocol"] == "email"]
    pending = sorted(s["Endpoint"] for s in emails if s["SubscriptionArn"].startswith("Pending"))
    if pending:
        report.warnings.append(
            f"alerts: {len(pending)} email subscription(s) pending confirmation, nothing reaches them until each "
            f"clicks the link AWS sent: {', '.join(pending)}"
        )
    if not emails:
        report.warnings.append(f"alerts topic {spec.topic_name} has no email subscription")
    report.checked.append(f"alerts topic {spec.topic_name} ({len(emails) - len(pending)} confirmed)")


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model-package-group",
        default=MODEL_PACKAGE_GROUP,
        help=f"registry group (ModelPackageGroupName; default: {MODEL_PACKAGE_GROUP})",
    )
    parser.add_argument("--data-uri", action="append", help="s3:// table the executions will read, repeatable")


def command(settings: Settings, args: argparse.Namespace) -> int:
    import boto3

    session = boto3.Session(region_name=settings.region)
    report = check(settings, session.client, args.model_package_group, args.data_uri)
    print("\n".join(report.lines()))
    return 1 if report.errors else 0
