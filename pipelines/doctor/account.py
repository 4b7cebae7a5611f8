"""The checks of `regula doctor` that ask the account: each adds its errors, warnings and what it checked to the
report, and says "not checked" (a warning) for what these credentials may not read. The CI role that `regula iam`
writes may make every call here but the SNS ones.

Light to import: the clients are given.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from pipelines.settings import Settings

DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError", "403"}


def code(error) -> str:
    return getattr(error, "response", {}).get("Error", {}).get("Code", "")


def denied(error) -> bool:
    return code(error) in DENIED


def not_checked_or_error(error, report, subject: str, why_not: str) -> None:
    """A failed call that is not "it does not exist": access denied is a warning (not checked), anything else an
    error."""
    if denied(error):
        report.warnings.append(f"{subject} not checked: {why_not}")
    else:
        report.errors.append(f"{subject}: {error}")


def credentials(client: Callable, report) -> str | None:
    """The account of these credentials, or None with the error reported (then nothing remote is checked)."""
    try:
        account = client("sts").get_caller_identity()["Account"]
    except Exception as error:  # noqa: BLE001 - no credentials, no network: nothing remote can be checked
        from pipelines.aws.errors import explain, kind

        if kind(error) == "network":  # the network or the endpoint, not the credentials: a different fix
            report.errors.append(f"{explain(error)}: nothing in the account was checked")
        else:
            report.errors.append(f"no usable AWS credentials ({error}): nothing in the account was checked")
        return None
    report.checked.append(f"credentials (account {account})")
    return account


def bucket(settings: Settings, s3, report) -> None:
    from pipelines.aws.s3 import bucket_access_error

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


def data(uri: str, s3, report) -> None:
    from pipelines.aws.s3 import bucket_name_error
    from pipelines.local.engine.s3 import split_uri

    try:
        name, key = split_uri(uri)
    except ValueError as error:
        report.errors.append(f"data: {error}")
        return
    invalid = bucket_name_error(name)
    if invalid:
        report.errors.append(f"data {uri}: {invalid}")
        return
    try:
        found = s3.list_objects_v2(Bucket=name, Prefix=key, MaxKeys=1).get("KeyCount", 0)
    except s3.exceptions.ClientError as error:
        if code(error) in ("NoSuchBucket", "404"):
            report.errors.append(f"data {uri}: bucket {name} does not exist")
        else:
            not_checked_or_error(error, report, f"data {uri}", "these credentials may not list it")
        return
    if not found:
        report.errors.append(f"data {uri}: nothing there")
        return
    report.checked.append(f"data {uri}")


def role(arn: str, parts: tuple[str, str], account: str, iam, report) -> None:
    role_account, name = parts
    if role_account != account:
        report.warnings.append(f"role {arn} is in account {role_account}, these credentials in {account}")
    try:
        trust = iam.get_role(RoleName=name)["Role"].get("AssumeRolePolicyDocument", {})
    except iam.exceptions.ClientError as error:
        if code(error) == "NoSuchEntity":
            report.errors.append(f"role {arn} does not exist: create it (`regula iam`)")
        else:
            not_checked_or_error(error, report, f"role {arn}", "these credentials may not call iam:GetRole")
        return
    if isinstance(trust, str):  # some clients return it URL-encoded
        import json
        from urllib.parse import unquote

        trust = json.loads(unquote(trust))
    if "sagemaker.amazonaws.com" not in str(trust):
        report.errors.append(f"role {arn} does not trust sagemaker.amazonaws.com: SageMaker cannot assume it")
        return
    report.checked.append(f"role {name}")


def group(name: str, sagemaker, report) -> None:
    from pipelines.aws.deploy import missing

    try:
        sagemaker.describe_model_package_group(ModelPackageGroupName=name)
    except sagemaker.exceptions.ClientError as error:
        if missing(error):
            report.checked.append(f"model package group {name} (created by the first registration)")
        else:
            not_checked_or_error(error, report, f"model package group {name}", "no sagemaker:DescribeModelPackageGroup")
        return
    report.checked.append(f"model package group {name} exists")


def images(uris: list[str], region: str, ecr, report) -> None:
    """Each image the jobs pull exists: the Regula image is built and pushed once (containers/build)."""
    missing, found = [], 0
    for uri in uris:
        match = re.fullmatch(r"(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/([^:@]+)[:@](.+)", uri)
        if not match or match.group(2) != region:
            continue  # not in this region's ECR: reported offline
        registry, _, repository, tag = match.groups()
        try:
            ecr.describe_images(registryId=registry, repositoryName=repository, imageIds=[{"imageTag": tag}])
            found += 1
        except ecr.exceptions.ClientError as error:
            if code(error) in ("RepositoryNotFoundException", "ImageNotFoundException"):
                missing.append(uri)
            else:
                not_checked_or_error(error, report, f"image {uri}", "ecr:DescribeImages is not allowed")
    for uri in missing:
        report.errors.append(
            f"image {uri} does not exist: build and push it once with `containers/build "
            f"{'gpu' if uri.endswith('-gpu') else 'cpu'} {uri}` (jobs would fail to start)"
        )
    if found == len(uris):
        report.checked.append(f"images in ECR ({found})")


def kms_key(key_id: str, kms, report) -> None:
    """The jobs encrypt S3 outputs and volumes with it: it must exist, be enabled and symmetric."""
    try:
        key = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    except kms.exceptions.ClientError as error:
        if code(error) == "NotFoundException":
            report.errors.append(f"KMS key {key_id} does not exist in this region")
        else:
            not_checked_or_error(error, report, f"KMS key {key_id}", "these credentials may not call kms:DescribeKey")
        return
    if key.get("KeyState") != "Enabled":
        report.errors.append(f"KMS key {key_id} is {key.get('KeyState')}: the jobs cannot encrypt with it")
    elif key.get("KeySpec", "SYMMETRIC_DEFAULT") != "SYMMETRIC_DEFAULT":
        report.errors.append(f"KMS key {key_id} is {key['KeySpec']}: S3 and job volumes encrypt with symmetric keys")
    else:
        report.checked.append(f"KMS key {key_id}")


def network(settings: Settings, ec2, report) -> None:
    """The jobs' subnets and security groups exist, in one VPC."""
    subnets = described(
        "subnets",
        settings.subnets,
        lambda: ec2.describe_subnets(SubnetIds=list(settings.subnets))["Subnets"],
        ec2,
        report,
    )
    groups = described(
        "security groups",
        settings.security_group_ids,
        lambda: ec2.describe_security_groups(GroupIds=list(settings.security_group_ids))["SecurityGroups"],
        ec2,
        report,
    )
    if subnets is None or groups is None:
        return
    vpcs: dict[str, set[str]] = {}
    for item in subnets + groups:
        vpcs.setdefault(item["VpcId"], set()).add(item.get("SubnetId") or item["GroupId"])
    if len(vpcs) > 1:
        spread = "; ".join(f"{vpc}: {', '.join(sorted(ids))}" for vpc, ids in vpcs.items())
        report.errors.append(f"the subnets and security groups are in different VPCs ({spread}): jobs need one VPC")
        return
    (vpc,) = vpcs
    report.checked.append(f"VPC {vpc} ({len(subnets)} subnets, {len(groups)} security groups)")


def described(kind: str, ids, describe: Callable, ec2, report) -> list[dict] | None:
    try:
        return describe()
    except ec2.exceptions.ClientError as error:  # missing, malformed, or not ours to read
        if denied(error):
            report.warnings.append(f"{kind} {', '.join(ids)} not checked: these credentials may not describe them")
        else:
            report.errors.append(f"{kind} {', '.join(ids)}: {error.response['Error'].get('Message') or code(error)}")
        return None


def alerts(settings: Settings, sns, report) -> None:
    from pipelines.alerts.resources import AlertSpec, subscriptions

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
