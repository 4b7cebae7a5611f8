"""`regula doctor`'s work: is this account ready for `regula upsert` and `regula start`? Every problem at once, in a
`Report` (pipelines/cli/doctor.py prints it, one line each).

Errors: a bucket name S3 refuses, a bucket that is missing, not readable or in another region, a malformed or missing
role ARN (or one SageMaker may not assume), a region without the PyTorch images in the SDK's tables or an --image-uri
in another region, a data URI with nothing behind it, a KMS key that is missing, disabled, asymmetric or in another
region, subnets or security groups that are missing or in different VPCs, no credentials. Warnings: what could not be
checked with these credentials, alerts not set up or email subscriptions still waiting for their confirmation click,
--network-isolation (the steps' metrics cannot reach CloudWatch). `checked`: what was found in order.

The checks that need no account are here; those that ask the account are in account.py.

Light to import: boto3 and the SDK (the image tables) are imported when the checks run.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from pipelines.settings import Settings
from steps.defaults import METRICS_NAMESPACE, MODEL_PACKAGE_GROUP

GROUP_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
ECR_REGION = re.compile(r"^\d{12}\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com")


@dataclass(frozen=True)
class Options:
    """What to check beyond the settings: the registry group, and the tables the executions will read."""

    model_package_group: str = MODEL_PACKAGE_GROUP
    data_uris: tuple[str, ...] = ()


@dataclass
class Report:
    """What the checks found: errors (the account is not ready), warnings, and what was checked and is fine."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)  # the rendered images, checked in ECR when there is an account


def run(settings: Settings, options: Options) -> Report:
    """Every check, with these credentials' boto3 clients for the settings' region."""
    import boto3

    session = boto3.Session(region_name=settings.region)
    return check(settings, session.client, options.model_package_group, list(options.data_uris))


def check(
    settings: Settings,
    client: Callable,
    model_package_group: str = MODEL_PACKAGE_GROUP,
    data_uris: list[str] | None = None,
) -> Report:
    """`client(service)` gives a boto3 client for the settings' region."""
    from pipelines.aws.s3 import bucket_name_error
    from pipelines.doctor import account

    report = Report()
    bucket_name = bucket_name_error(settings.bucket)
    if bucket_name:
        report.errors.append(bucket_name)
    role = offline_role(settings.role_arn, report)
    group_ok = bool(GROUP_NAME.match(model_package_group))
    if not group_ok:
        report.errors.append(f"model package group name {model_package_group!r} is invalid (letters, digits, hyphens)")
    region(settings.region, report)
    images(settings, report)
    key_ok = offline_key(settings, report)
    if settings.network_isolation:
        report.warnings.append(
            "--network-isolation: the jobs cannot reach CloudWatch, so the steps' metrics (namespace "
            f"{METRICS_NAMESPACE}) and the overfitting alarms on them get no data"
        )
    identity = account.credentials(client, report)
    if identity is None:
        return report
    if not bucket_name:
        account.bucket(settings, client("s3"), report)
    for uri in data_uris or []:
        account.data(uri, client("s3"), report)
    if role:
        account.role(settings.role_arn, role, identity, client("iam"), report)
    if group_ok:
        account.group(model_package_group, client("sagemaker"), report)
    if report.images:
        account.images(report.images, settings.region, client("ecr"), report)
    if settings.kms_key_id and key_ok:
        account.kms_key(settings.kms_key_id, client("kms"), report)
    if settings.subnets:
        account.network(settings, client("ec2"), report)
    account.alerts(settings, client("sns"), report)
    return report


def offline_role(arn: str, report: Report) -> tuple[str, str] | None:
    """(account, role name) of a well-formed role ARN, else None with the error reported."""
    from pipelines.iam.spec import PLACEHOLDER_ACCOUNT, ROLE_ARN

    match = ROLE_ARN.match(arn)
    if not match or match.group(2) == "${AWS::AccountId}":
        report.errors.append(f"role ARN {arn!r} is malformed: arn:aws:iam::<12-digit account>:role/<path/>name")
        return None
    if match.group(2) == PLACEHOLDER_ACCOUNT:
        report.errors.append(f"role ARN {arn} is the placeholder: pass --role-arn (`regula iam` writes the role)")
        return None
    return match.group(2), match.group(4)


def offline_key(settings: Settings, report: Report) -> bool:
    """False, with the error reported, when --kms-key-id is an ARN in another region than the jobs'."""
    key = settings.kms_key_id or ""
    region = key.split(":")[3] if key.startswith("arn:") and key.count(":") >= 5 else settings.region
    if region != settings.region:
        report.errors.append(
            f"KMS key {key} is in {region}: SageMaker jobs in {settings.region} encrypt with keys of their region"
        )
        return False
    return True


def region(name: str, report: Report) -> None:
    import boto3

    session = boto3.Session()
    known = {r for p in session.get_available_partitions() for r in session.get_available_regions("sagemaker", p)}
    if name not in known:
        report.errors.append(f"region {name} has no SageMaker endpoint in botocore's tables: a typo? (pass --region)")


def images(settings: Settings, report: Report) -> None:
    from pipelines.definition import sdk

    with sdk.quiet_import():
        from pipelines.definition.jobs import inference_image, processing_image, training_image
    found = []
    for image in (processing_image, training_image, inference_image):
        try:
            found.append(image(settings))
        except ValueError:  # the role ARN, reported by offline_role: the default image is in its account
            return
    if settings.image_uri:
        match = ECR_REGION.match(settings.image_uri)
        if not match:
            report.errors.append(f"--image-uri {settings.image_uri} is not an ECR image URI")
        elif match.group(1) != settings.region:
            report.errors.append(
                f"--image-uri {settings.image_uri} is in {match.group(1)}: SageMaker jobs in {settings.region} pull "
                "images from their own region"
            )
    report.images = sorted(set(found))
