"""`regula doctor` against a moto server: a ready account is "ok", a broken one gets every problem at once; and the
bucket naming rules it shares with `regula upsert`."""

from __future__ import annotations

import json

import boto3
import pytest
from helpers import REGION, regula, regula_here

from pipelines.aws.s3 import bucket_name_problems
from pipelines.doctor import check as doctor
from pipelines.settings import Settings

ACCOUNT = "123456789012"  # moto's
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/RegulaSageMakerExecution"


def trust(service: str) -> str:
    statement = {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/regula-steps:2.13-cpu"


def ready(session, region: str = REGION) -> None:
    """What `regula iam`, `containers/build` and `regula alerts apply` leave behind: a bucket, the role, the image,
    the topic with a subscriber."""
    ecr = session.client("ecr", region_name=region)
    ecr.create_repository(repositoryName="regula-steps")
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json", "layers": []}
    ecr.put_image(repositoryName="regula-steps", imageManifest=json.dumps(manifest), imageTag="2.13-cpu")
    s3 = session.client("s3", region_name=region)
    config = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    s3.create_bucket(Bucket="regula-artifacts", **config)
    s3.put_object(Bucket="regula-artifacts", Key="data/train.csv", Body=b"a,target\n1,0\n")
    session.client("iam").create_role(
        RoleName="RegulaSageMakerExecution", AssumeRolePolicyDocument=trust("sagemaker.amazonaws.com")
    )
    sns = session.client("sns")
    topic = sns.create_topic(Name="regula-overfitting-alerts")["TopicArn"]
    for email in ("ana@example.com", "bo@example.org"):
        sns.subscribe(TopicArn=topic, Protocol="email", Endpoint=email)


@pytest.mark.slow
def test_an_image_that_was_never_pushed_is_reported_with_how_to_build_it(aws):
    session = boto3.Session(region_name=REGION)
    session.client("s3").create_bucket(Bucket="regula-artifacts")
    result = regula("doctor", "--role-arn", ROLE_ARN)
    image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/regula-steps:2.13-cpu"
    assert result.returncode == 1
    assert f"error: image {image} does not exist: build and push it once with `containers/build cpu {image}`" in (
        result.stdout
    )


def test_a_ready_account_is_ok(aws):
    session = boto3.Session(region_name=REGION)
    ready(session)
    session.client("sagemaker").create_model_package_group(ModelPackageGroupName="regula-models")
    result = regula("doctor", "--role-arn", ROLE_ARN, "--data-uri", "s3://regula-artifacts/data/train.csv")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        "ok: credentials (account 123456789012); bucket regula-artifacts in us-east-1; "
        "data s3://regula-artifacts/data/train.csv; role RegulaSageMakerExecution; model package group regula-models "
        "exists; images in ECR (1); alerts topic regula-overfitting-alerts (2 confirmed)"
    ]


def test_every_problem_is_reported_at_once(aws):
    result = regula(
        "doctor",
        "--bucket",
        "b",
        "--role-arn",
        "arn:aws:iam::123:role/x",
        "--data-uri",
        "s3://regula-missing-data/train.csv",
    )
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "error: bucket name 'b' is invalid: it has 1 character (3 to 63)",
        "error: role ARN 'arn:aws:iam::123:role/x' is malformed: arn:aws:iam::<12-digit account>:role/<path/>name",
        "error: data s3://regula-missing-data/train.csv: bucket regula-missing-data does not exist",
        "warning: no alerts topic regula-overfitting-alerts: nobody is emailed when a run gives up "
        "(`regula alerts apply --email`)",
        "3 problems to fix before `regula upsert`",
    ]


def test_wrong_region_untrusting_role_missing_bucket_and_pending_emails(aws):
    session = boto3.Session(region_name=REGION)
    ready(session, region="eu-west-1")
    session.client("iam").create_role(RoleName="Lambda", AssumeRolePolicyDocument=trust("lambda.amazonaws.com"))
    sns = session.client("sns")

    def bo_has_not_clicked(parsed, **_):  # moto confirms email subscriptions at once; AWS waits for the click
        for sub in parsed.get("Subscriptions", []):
            if sub["Endpoint"] == "bo@example.org":
                sub["SubscriptionArn"] = "PendingConfirmation"

    sns.meta.events.register("after-call.sns.ListSubscriptionsByTopic", bo_has_not_clicked)
    clients = {"sns": sns}

    def client(name):
        return clients.get(name) or session.client(name)

    report = doctor.check(Settings(role_arn=f"arn:aws:iam::{ACCOUNT}:role/Lambda"), client, "regula-models")
    assert report.errors == [
        "bucket regula-artifacts is in eu-west-1, the pipeline in us-east-1: SageMaker jobs need the bucket in their "
        "region (pass --region or another --bucket)",
        f"role arn:aws:iam::{ACCOUNT}:role/Lambda does not trust sagemaker.amazonaws.com: SageMaker cannot assume it",
        f"image {IMAGE} does not exist: build and push it once with `containers/build cpu {IMAGE}` (jobs would fail "
        "to start)",  # pushed to eu-west-1's registry only
    ]
    assert report.warnings == [
        "alerts: 1 email subscription(s) pending confirmation, nothing reaches them until each clicks the link AWS "
        "sent: bo@example.org"
    ]
    assert "model package group regula-models (created by the first registration)" in report.checked

    report = doctor.check(Settings(bucket="regula-nowhere", role_arn=ROLE_ARN.replace("Regula", "Gone")), client)
    assert report.errors == [
        "bucket regula-nowhere does not exist: create it (aws s3 mb s3://regula-nowhere) or pass --bucket",
        f"role arn:aws:iam::{ACCOUNT}:role/GoneSageMakerExecution does not exist: create it (`regula iam`)",
        f"image {IMAGE} does not exist: build and push it once with `containers/build cpu {IMAGE}` (jobs would fail "
        "to start)",
    ]


def test_a_ready_kms_key_and_vpc_are_named_in_the_ok_line(aws):
    session = boto3.Session(region_name=REGION)
    ready(session)
    key = session.client("kms").create_key()["KeyMetadata"]["KeyId"]
    ec2 = session.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(VpcId=vpc, GroupName="jobs", Description="jobs")["GroupId"]
    settings = Settings(role_arn=ROLE_ARN, kms_key_id=key, subnets=(subnet,), security_group_ids=(group,))
    report = doctor.check(settings, session.client)
    assert report.errors == [] and report.warnings == []
    assert f"KMS key {key}" in report.checked
    assert f"VPC {vpc} (1 subnets, 1 security groups)" in report.checked


def test_kms_key_and_vpc_problems_are_reported_with_the_rest(aws):
    session = boto3.Session(region_name=REGION)
    ready(session)
    kms = session.client("kms")
    disabled = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.disable_key(KeyId=disabled)
    signing = kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    ec2 = session.client("ec2")
    vpcs = [ec2.create_vpc(CidrBlock=f"10.{i}.0.0/16")["Vpc"]["VpcId"] for i in (1, 2)]
    subnet = ec2.create_subnet(VpcId=vpcs[0], CidrBlock="10.1.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(VpcId=vpcs[1], GroupName="jobs", Description="jobs")["GroupId"]

    def problems(**settings) -> list[str]:
        report = doctor.check(Settings(role_arn=ROLE_ARN, **settings), session.client)
        return report.errors

    assert problems(kms_key_id=disabled) == [f"KMS key {disabled} is Disabled: the jobs cannot encrypt with it"]
    assert problems(kms_key_id=signing) == [
        f"KMS key {signing} is RSA_2048: S3 and job volumes encrypt with symmetric keys"
    ]
    assert problems(kms_key_id="alias/nowhere") == ["KMS key alias/nowhere does not exist in this region"]
    elsewhere = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/{disabled}"
    assert problems(kms_key_id=elsewhere) == [
        f"KMS key {elsewhere} is in eu-west-1: SageMaker jobs in us-east-1 encrypt with keys of their region"
    ]
    assert problems(subnets=(subnet,), security_group_ids=(group,)) == [
        f"the subnets and security groups are in different VPCs ({vpcs[0]}: {subnet}; {vpcs[1]}: {group}): jobs "
        "need one VPC"
    ]
    missing = problems(subnets=("subnet-0123456789abcdef0",), security_group_ids=("sg-0123456789abcdef0",))
    assert [problem.split(":")[0] for problem in missing] == [
        "subnets subnet-0123456789abcdef0",
        "security groups sg-0123456789abcdef0",
    ]


def test_network_isolation_warns_that_metrics_cannot_reach_cloudwatch(aws):
    session = boto3.Session(region_name=REGION)
    ready(session)
    report = doctor.check(Settings(role_arn=ROLE_ARN, network_isolation=True), session.client)
    assert report.errors == []
    assert report.warnings == [
        "--network-isolation: the jobs cannot reach CloudWatch, so the steps' metrics (namespace Regula) and the "
        "overfitting alarms on them get no data"
    ]


def test_the_placeholder_role_and_an_unknown_region_are_errors_without_credentials(monkeypatch, tmp_path):
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    session = boto3.Session(region_name="xx-nowhere-1")
    report = doctor.check(Settings(region="xx-nowhere-1"), session.client)
    assert report.errors[0].startswith(
        "role ARN arn:aws:iam::000000000000:role/RegulaSageMakerExecution is the placeholder: pass --role-arn"
    )
    assert (
        "region xx-nowhere-1 has no SageMaker endpoint in botocore's tables: a typo? (pass --region)" in report.errors
    )
    assert report.errors[-1].startswith("no usable AWS credentials")


def test_upsert_says_an_invalid_bucket_name_is_invalid(aws):
    result = regula("upsert", "--bucket", "b", "--role-arn", ROLE_ARN)
    assert result.returncode == 2
    assert result.stderr.strip() == "regula: error: bucket name 'b' is invalid: it has 1 character (3 to 63)"


@pytest.mark.parametrize("name", ["regula-artifacts", "my.bucket.1", "abc", "a" * 63, "1-2-3"])
def test_valid_bucket_names(name):
    assert bucket_name_problems(name) == []


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("ab", "it has 2 characters (3 to 63)"),
        ("a" * 64, "it has 64 characters (3 to 63)"),
        ("My-Bucket", "it holds 'B' 'M': only lowercase letters, digits, dots and hyphens are allowed"),
        ("my_bucket", "it holds '_': only lowercase letters, digits, dots and hyphens are allowed"),
        ("-bucket", "it must begin and end with a letter or a digit"),
        ("bucket.", "it must begin and end with a letter or a digit"),
        ("my..bucket", "it has two dots in a row"),
        ("192.168.5.4", "it is formatted as an IP address"),
        ("xn--bucket", "it starts with 'xn--', reserved by AWS"),
        ("sthree-bucket", "it starts with 'sthree-', reserved by AWS"),
        ("bucket-s3alias", "it ends with '-s3alias', reserved by AWS"),
        ("bucket--ol-s3", "it ends with '--ol-s3', reserved by AWS"),
    ],
)
def test_invalid_bucket_names(name, problem):
    assert bucket_name_problems(name) == [problem]


def test_a_dead_endpoint_is_named_as_the_cause_not_the_credentials(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    report = doctor.check(Settings(role_arn=ROLE_ARN), boto3.Session(region_name=REGION).client)
    assert report.errors[-1].startswith(
        "cannot reach http://127.0.0.1:9, the endpoint AWS_ENDPOINT_URL names: is that server running? (unset "
        "AWS_ENDPOINT_URL to use AWS itself) ["
    )
    assert report.errors[-1].endswith("]: nothing in the account was checked")
    assert not any("credentials" in e for e in report.errors)
    listed = regula_here("models", "list")
    assert listed.returncode == 6
    assert listed.stderr.startswith("regula: error: cannot reach http://127.0.0.1:9, the endpoint AWS_ENDPOINT_URL")


def test_executions_against_moto_say_that_nothing_runs_there(aws):
    assert regula_here("upsert", "--role-arn", ROLE_ARN).returncode == 2  # no bucket yet: still one line, no note
    boto3.Session(region_name=REGION).client("s3").create_bucket(Bucket="regula-artifacts")
    note = (
        f"note: the endpoint {aws.endpoint} is not AWS: SageMaker executions do not run there (moto records an "
        "execution and marks it Succeeded at once, running no step); `regula run --local` runs the pipeline on this "
        "machine"
    )
    upserted = regula_here("upsert", "--role-arn", ROLE_ARN)
    assert upserted.returncode == 0, upserted.stderr
    assert upserted.stderr.splitlines()[-1] == note
    started = regula_here("start", "--role-arn", ROLE_ARN, "--wait", "--poll-seconds", "0.01")
    assert started.returncode == 0, started.stderr
    assert started.stderr.splitlines()[-1] == note
    assert note not in started.stdout, "beside the output, not in it"
