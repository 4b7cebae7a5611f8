"""`regula iam`: the policies cover every call Regula makes and nothing more, match AWS's service reference, pass
cfn-lint as a template, and, against a moto server enforcing IAM, scope S3 as intended.

What moto checks and what it cannot (moto 5.2, `moto/iam/access_control.py`): with `/moto-api/reset-auth` it
authenticates every request and evaluates the caller's identity policies by Action for every service, and by Resource
only for S3 (bucket and object ARNs); for every other service the resource is "*", Condition blocks are not evaluated
outside trust policies, and the action is named by the signing name (CloudWatch's PutMetricData is checked as
`monitoring:PutMetricData`, which no real policy grants). So the S3 scoping of both roles is shown live below, and
the rest (SageMaker ARNs, the CloudWatch namespace, iam:PassedToService, s3:prefix) is checked on the documents,
against the service reference that cfn-lint ships (actions, their resource types, ARN formats).
"""

from __future__ import annotations

import ast
import copy
import json
import os
import re
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import boto3
import botocore.session
import cfnlint
import pytest
import requests
from botocore import xform_name
from helpers import REGION, REPO, regula

from pipelines.aws.deploy import definition_key
from pipelines.definition.render import render
from pipelines.iam import calls as iam_calls
from pipelines.iam.policies import roles
from pipelines.iam.spec import IamError, Spec, kms_key, locations, strings
from pipelines.settings import Settings

ACCOUNT = "123456789012"  # moto's
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/RegulaSageMakerExecution"
S3_ACTIONS = {"list_objects_v2": "s3:ListBucket", "head_bucket": "s3:ListBucket", "download_file": "s3:GetObject"}
CLIENT_NAMES = {"s3": "s3", "s3_client": "s3", "sagemaker": "sagemaker", "iam": "iam", "sns": "sns", "kms": "kms"}
CLIENT_NAMES |= {"ec2": "ec2"}
KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
# everything that adds statements: a KMS key, a VPC, a data table
FULL = Settings(kms_key_id=KEY_ID, subnets=("subnet-0a", "subnet-0b"), security_group_ids=("sg-01",))


@pytest.fixture(scope="module")
def rendered():
    text, session = render(Settings())
    return json.loads(text), session


def described_for(settings: Settings, definition: dict, code_prefix: str, **options) -> dict:
    spec = Spec(settings=settings, account=ACCOUNT, execution_role_arn=ROLE_ARN, github_repo="octo/app", **options)
    return roles(spec, locations(definition, settings, code_prefix, definition_key(settings)))


@pytest.fixture(scope="module")
def described(rendered):
    definition, session = rendered
    return described_for(Settings(), definition, session.code_prefix)


@pytest.fixture(scope="module")
def described_full():
    """Rendered with a KMS key and a VPC, and a data table outside the bucket."""
    text, session = render(FULL)
    return described_for(FULL, json.loads(text), session.code_prefix, data_uris=("s3://regula-data/tables/",))


def matches(pattern: str, value: str) -> bool:
    """IAM's wildcard match: * any run of characters, ? one."""
    return re.fullmatch(re.escape(pattern).replace(r"\*", ".*").replace(r"\?", "."), value) is not None


def listed(value) -> list:
    return value if isinstance(value, list) else [value]


def allowed(policy: dict, action: str, resource: str | None = None) -> list[dict]:
    """The statements allowing `action` (on `resource`, when given); conditions are left to the caller."""
    return [
        s
        for s in policy["Statement"]
        if any(matches(a, action) for a in listed(s["Action"]))
        and (resource is None or any(matches(r, resource) for r in listed(s["Resource"])))
    ]


def client_calls(path: str) -> set[tuple[str, str]]:
    """(client, method) of every call on a boto3 client variable in `path`; a paginator counts as the call it
    pages."""
    tree = ast.parse((REPO / path).read_text())
    names = CLIENT_NAMES
    found = set()
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        receiver = node.func.value
        if not (isinstance(receiver, ast.Name) and receiver.id in names):
            continue
        method = node.func.attr
        if method == "get_paginator":
            method = node.args[0].value
        found.add((names[receiver.id], method))
    return found


def test_every_s3_and_sagemaker_call_in_the_ci_modules_is_listed():
    for path in iam_calls.SCANNED:
        listed_calls = {(c.client, c.method) for c in iam_calls.CALLS if c.module == path}
        assert client_calls(path) == listed_calls, path


def test_each_call_is_named_by_the_action_aws_authorizes_it_with():
    session = botocore.session.get_session()
    for call in iam_calls.CALLS:
        if call.method in S3_ACTIONS:
            assert call.action == S3_ACTIONS[call.method], call
            continue
        model = session.get_service_model(call.client)
        operations = {xform_name(op): op for op in model.operation_names}
        prefix = model.signing_name if call.client != "s3" else "s3"
        assert call.action == f"{prefix}:{operations[call.method]}", call


def granted(policy: dict) -> set[str]:
    return {a for s in policy["Statement"] for a in listed(s["Action"])}


def test_the_ci_role_allows_every_call_and_nothing_else(described, described_full):
    """Calls made only with a setting (`when`) are allowed only when the policies are written for it."""
    unconditional = {c.action for c in iam_calls.CALLS if not c.when}
    for policy, expected in (
        (described["ci"]["PolicyDocument"], unconditional),
        (described_full["ci"]["PolicyDocument"], {c.action for c in iam_calls.CALLS} | set(iam_calls.CI_KMS_EXTRAS)),
    ):
        for action in iam_calls.DOCTOR_ONLY:
            assert not allowed(policy, action), action
        assert granted(policy) == expected - iam_calls.DOCTOR_ONLY | set(iam_calls.CI_EXTRAS)


def test_the_execution_role_allows_what_each_reason_names(described, described_full):
    assert granted(described["execution"]["PolicyDocument"]) == set(iam_calls.EXECUTION_ACTIONS)
    assert granted(described_full["execution"]["PolicyDocument"]) == (
        set(iam_calls.EXECUTION_ACTIONS) | set(iam_calls.EXECUTION_KMS_ACTIONS) | set(iam_calls.EXECUTION_VPC_ACTIONS)
    )


# Granted on "*" on purpose, limited by a condition instead: newer service references list a resource type for them
# (cfn-lint 1.58: cloudwatch:PutMetricData on "dataset"), which is optional in IAM.
SCOPED_BY_CONDITION = {"cloudwatch:PutMetricData"}


def service_reference() -> dict:
    return json.loads((Path(cfnlint.__file__).parent / "data/AdditionalSpecs/Policies.json").read_text())


def arn_format(template: str) -> re.Pattern:
    pattern = template.replace("${Partition}", "aws").replace("${Region}", REGION).replace("${Account}", r"\d{12}")
    return re.compile(re.sub(r"\$\{[^}]+\}", "[^:]+", pattern))


@pytest.mark.parametrize("role", ["execution", "ci"])
@pytest.mark.parametrize("written_for", ["described", "described_full"])
def test_actions_and_resources_match_the_service_authorization_reference(request, written_for, role):
    """Every action exists; an action without resource types is granted on "*"; every other action has a resource
    of one of its types in its statement, and every resource serves one of the statement's actions."""
    reference = service_reference()
    for statement in request.getfixturevalue(written_for)[role]["PolicyDocument"]["Statement"]:
        resources = listed(statement["Resource"])
        used = set()
        for action in listed(statement["Action"]):
            service, name = action.split(":")
            spec = reference[service]["Actions"][name.lower()]  # KeyError: no such action
            types = spec.get("Resources", [])
            if not types:
                assert resources == ["*"], (statement["Sid"], action)
                continue
            if resources == ["*"] and action in SCOPED_BY_CONDITION:
                assert statement.get("Condition"), (statement["Sid"], action)
                continue
            formats = [arn_format(f) for t in types for f in reference[service]["Resources"][t]["ARNFormats"]]
            fitting = {r for r in resources if any(f.fullmatch(r) for f in formats)}
            assert fitting, (statement["Sid"], action, resources)
            used |= fitting
        assert resources == ["*"] or used == set(resources), statement["Sid"]


def test_jobs_read_and_write_exactly_where_the_definition_says(rendered, described):
    definition, session = rendered
    execution = described["execution"]["PolicyDocument"]
    ci = described["ci"]["PolicyDocument"]

    def can(policy, action, uri):
        bucket, _, key = uri[len("s3://") :].partition("/")
        return bool(allowed(policy, action, f"arn:aws:s3:::{bucket}/{key}"))

    named = [t for t in strings(definition) if t.startswith("s3://")]
    assert named, "the definition names S3 locations"
    for uri in named:  # a file is readable, and so is what a folder holds
        last = uri.rstrip("/").rsplit("/", 1)[-1]
        assert can(execution, "s3:GetObject", uri if "." in last else f"{uri.rstrip('/')}/part-0.parquet"), uri
    outputs = [
        "s3://regula-artifacts/regula/runs/exec-1/train/train.parquet",
        "s3://regula-artifacts/regula/runs/exec-1/evaluation-round2/evaluation.json",
        "s3://regula-artifacts/regula/checkpoints/round2/checkpoint.pt",
        "s3://regula-artifacts/regula/runs/exec-1/train-round7/pipelines-x-TrainRound7-y/output/model.tar.gz",
    ]
    for uri in outputs:
        assert can(execution, "s3:PutObject", uri) and can(execution, "s3:GetObject", uri), uri
    code = [f"s3://regula-artifacts/{key}" for key in session.uploads]
    for uri in code:  # the jobs run the code; only upsert writes it
        assert can(execution, "s3:GetObject", uri) and not can(execution, "s3:PutObject", uri), uri
        assert all(can(ci, action, uri) for action in ("s3:GetObject", "s3:PutObject", "s3:DeleteObject")), uri
    assert can(ci, "s3:GetObject", outputs[-1]) and not can(ci, "s3:PutObject", outputs[-1])  # regula predict
    for uri in outputs[:-1]:  # CI never writes a run's outputs, and reads only the model artifacts
        assert not can(ci, "s3:PutObject", uri) and not can(ci, "s3:GetObject", uri), uri
    for uri in ("s3://regula-artifacts/regula/demo/digits.csv", "s3://regula-artifacts/regula/definitions/regula.json"):
        assert can(execution, "s3:GetObject", uri) and not can(execution, "s3:PutObject", uri), uri
    for uri in ("s3://regula-artifacts/elsewhere/x", "s3://other-bucket/regula/code/x.py"):
        assert not can(execution, "s3:GetObject", uri) and not can(ci, "s3:GetObject", uri)

    # S3Prefix inputs list their prefix: every input location (code, data, outputs; not the bare roots that output
    # locations are joined from) is a listing the condition lets through
    (listing,) = allowed(execution, "s3:ListBucket", "arn:aws:s3:::regula-artifacts")
    patterns = listing["Condition"]["StringLike"]["s3:prefix"]
    keys = [uri[len("s3://regula-artifacts/") :] for uri in [*named, *outputs]]
    for key in (key for key in keys if "/" in key):
        assert any(matches(p, key) for p in patterns), key
    assert not any(matches(p, "") for p in patterns), "the whole bucket is not listable"


def test_conditions_moto_cannot_evaluate(described):
    execution = described["execution"]["PolicyDocument"]
    ci = described["ci"]["PolicyDocument"]
    (metrics,) = allowed(execution, "cloudwatch:PutMetricData")
    assert metrics["Condition"] == {
        "StringEquals": {
            "cloudwatch:namespace": ["/aws/sagemaker/ProcessingJobs", "/aws/sagemaker/TrainingJobs", "Regula"]
        }
    }
    for policy in (execution, ci):
        (passing,) = allowed(policy, "iam:PassRole")
        assert passing["Resource"] == ROLE_ARN
        assert passing["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    (logs,) = allowed(execution, "logs:PutLogEvents")
    assert logs["Resource"] == f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/sagemaker/*"
    trust = described["ci"]["AssumeRolePolicyDocument"]["Statement"][0]
    assert trust["Principal"] == {
        "Federated": f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"
    }
    assert trust["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"] == (
        "repo:octo/app:environment:sagemaker"
    )
    for role in described.values():  # IAM's limit on a role's inline policies
        assert len(json.dumps(role["PolicyDocument"], separators=(",", ":"))) < 10_240


def test_namespaces_groups_and_pipeline_names_are_the_ones_given(rendered):
    definition, session = rendered
    settings = Settings(pipeline_name="Churn")
    described = described_for(
        settings, definition, session.code_prefix, namespaces=("Regula", "TeamA"), model_package_group="ChurnModels"
    )
    (metrics,) = allowed(described["execution"]["PolicyDocument"], "cloudwatch:PutMetricData")
    assert {"Regula", "TeamA"} <= set(metrics["Condition"]["StringEquals"]["cloudwatch:namespace"])
    ci = described["ci"]["PolicyDocument"]
    for name in ("Churn", "churn"):  # SageMaker ARNs spell names in lowercase: both are allowed
        assert allowed(ci, "sagemaker:StartPipelineExecution", f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/{name}")
    assert allowed(
        ci, "sagemaker:UpdateModelPackage", f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/churnmodels/3"
    )
    assert not allowed(ci, "sagemaker:UpdateModelPackage", f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/x/3")


def test_a_kms_key_and_a_vpc_add_what_sagemaker_needs_for_them(described_full):
    execution = described_full["execution"]["PolicyDocument"]
    ci = described_full["ci"]["PolicyDocument"]
    key = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{KEY_ID}"
    for action in ("kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"):
        assert allowed(execution, action, key), action
    (grants,) = allowed(execution, "kms:CreateGrant", key)
    assert grants["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}
    assert allowed(ci, "kms:Decrypt", key) and not allowed(ci, "kms:Encrypt")
    assert not allowed(execution, "kms:Decrypt", key.replace(KEY_ID, "another"))

    ec2 = f"arn:aws:ec2:{REGION}:{ACCOUNT}"
    (create,) = allowed(execution, "ec2:CreateNetworkInterface")
    assert sorted(create["Resource"]) == [
        f"{ec2}:network-interface/*",
        f"{ec2}:security-group/sg-01",
        f"{ec2}:subnet/subnet-0a",
        f"{ec2}:subnet/subnet-0b",
    ]
    for action in ("ec2:DeleteNetworkInterface", "ec2:CreateNetworkInterfacePermission"):
        assert allowed(execution, action, f"{ec2}:network-interface/eni-1"), action
    assert allowed(execution, "ec2:DescribeDhcpOptions", "*")
    assert allowed(ci, "ec2:DescribeSubnets", "*") and not allowed(ci, "ec2:CreateNetworkInterface")

    assert allowed(execution, "s3:GetObject", "arn:aws:s3:::regula-data/tables/train.csv")
    assert not allowed(execution, "s3:PutObject", "arn:aws:s3:::regula-data/tables/train.csv")
    for role in described_full.values():  # IAM's limit on a role's inline policies
        assert len(json.dumps(role["PolicyDocument"], separators=(",", ":"))) < 10_240


@pytest.mark.parametrize(
    ("key", "resource", "condition"),
    [
        (KEY_ID, f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{KEY_ID}", {}),
        (f"arn:aws:kms:eu-west-1:210987654321:key/{KEY_ID}", f"arn:aws:kms:eu-west-1:210987654321:key/{KEY_ID}", {}),
        ("alias/regula", f"arn:aws:kms:{REGION}:{ACCOUNT}:key/*", {"kms:ResourceAliases": "alias/regula"}),
        (
            "arn:aws:kms:eu-west-1:210987654321:alias/regula",
            "arn:aws:kms:eu-west-1:210987654321:key/*",
            {"kms:ResourceAliases": "alias/regula"},
        ),
    ],
)
def test_every_form_of_kms_key_id_names_the_key(key, resource, condition):
    """IAM authorizes KMS actions on the key, never on an alias: an alias is a condition on the account's keys."""
    spec = Spec(settings=Settings(kms_key_id=key), account=ACCOUNT, execution_role_arn=ROLE_ARN)
    named, aliased = kms_key(spec)
    assert named == resource
    assert aliased == ({"ForAnyValue:StringEquals": condition} if condition else {})


def test_a_malformed_kms_key_arn_is_refused():
    spec = Spec(settings=Settings(kms_key_id="arn:aws:s3:::bucket"), account=ACCOUNT, execution_role_arn=ROLE_ARN)
    with pytest.raises(IamError, match="not a KMS key or alias ARN"):
        kms_key(spec)


def test_a_definition_that_leaves_the_layout_is_refused(rendered):
    """The policies grant a layout; a definition writing elsewhere fails `regula iam`, not a job in the account."""
    definition, session = rendered
    changed = copy.deepcopy(definition)
    train = next(step for step in changed["Steps"] if step["Type"] == "Training")
    train["Arguments"]["CheckpointConfig"]["S3Uri"] = "s3://regula-artifacts/regula/code/checkpoints"
    train["Arguments"]["OutputDataConfig"]["S3OutputPath"] = "s3://regula-artifacts/models"
    with pytest.raises(IamError) as raised:
        locations(changed, Settings(), session.code_prefix, definition_key(Settings()))
    assert str(raised.value) == (
        "the definition leaves the layout the policies are written for: "
        "s3://regula-artifacts/models is outside s3://regula-artifacts/regula/; "
        "output s3://regula-artifacts/models is not under s3://regula-artifacts/regula/runs/ or "
        "s3://regula-artifacts/regula/checkpoints/; "
        "output s3://regula-artifacts/regula/code/checkpoints is not under s3://regula-artifacts/regula/runs/ or "
        "s3://regula-artifacts/regula/checkpoints/; "
        "training output s3://regula-artifacts/models is not s3://regula-artifacts/regula/runs/*/train-round*"
    )


@pytest.mark.slow
def test_cloudformation_template_passes_cfn_lint(tmp_path):
    vpc = ("--subnet", "subnet-0a", "--security-group", "sg-01")
    options = ("--github-repo", "octo/app", "--role-arn", ROLE_ARN, "--kms-key-id", "alias/regula", *vpc)
    result = regula("iam", "--format", "cloudformation", *options)
    assert result.returncode == 0, result.stderr
    template = json.loads(result.stdout)
    resources = template["Resources"]
    assert {r["Type"] for r in resources.values()} == {"AWS::IAM::Role", "AWS::IAM::OIDCProvider"}
    execution = resources["ExecutionRole"]["Properties"]
    assert execution["RoleName"] == "RegulaSageMakerExecution"
    passing = [s for s in execution["Policies"][0]["PolicyDocument"]["Statement"] if s["Action"] == ["iam:PassRole"]]
    assert passing[0]["Resource"] == {"Fn::Sub": "arn:aws:iam::${AWS::AccountId}:role/RegulaSageMakerExecution"}
    (interfaces,) = [
        s for s in execution["Policies"][0]["PolicyDocument"]["Statement"] if s["Sid"] == "JobNetworkInterfaces"
    ]
    assert {"Fn::Sub": f"arn:aws:ec2:{REGION}:${{AWS::AccountId}}:subnet/subnet-0a"} in interfaces["Resource"]
    trust = resources["CIRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]
    assert trust["Principal"]["Federated"]["Fn::If"][0] == "CreateGitHubProvider"
    (tmp_path / "roles.json").write_text(result.stdout)
    lint = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from cfnlint.runner import main; sys.exit(main())",
            str(tmp_path / "roles.json"),
        ],
        capture_output=True,
        text=True,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_without_an_account_or_a_repository_it_says_what_to_pass(tmp_path):
    bare = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    bare |= {
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    result = regula("iam", "--github-repo", "octo/app", env=bare, timeout=60)
    assert result.returncode == 2
    assert result.stderr.startswith("regula: error: pass --account: could not ask STS"), result.stderr
    result = regula("iam", "--account", ACCOUNT, env=bare, timeout=60)
    assert result.returncode == 2 and "pass --github-repo OWNER/NAME" in result.stderr
    result = regula("iam", "--account", "123", "--github-repo", "octo/app", env=bare, timeout=60)
    assert result.returncode == 2 and "12-digit account id" in result.stderr


@contextmanager
def enforced_iam(endpoint: str):
    """moto checks every request against the caller's policies until the block ends (process-wide setting)."""
    requests.post(f"{endpoint}/moto-api/reset-auth", data=b"0", timeout=10)
    try:
        yield
    finally:
        requests.post(f"{endpoint}/moto-api/reset-auth", data=b"inf", timeout=10)


def denied(call) -> bool:
    try:
        call()
    except Exception as error:  # noqa: BLE001 - botocore ClientError
        if getattr(error, "response", {}).get("Error", {}).get("Code") in ("AccessDenied", "403"):
            return True
        raise
    return False


@pytest.mark.slow
def test_roles_made_from_the_printed_policies_are_scoped_in_s3_by_moto(aws):
    result = regula(
        "iam", "--github-repo", "octo/app", "--data-uri", "s3://regula-data/tables/train.csv",
        "--data-uri", "s3://regula-data/archive/",  # the images an image manifest names outside InputDataUri
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    described = json.loads(result.stdout)
    assert described["execution"]["Arn"] == ROLE_ARN  # the account came from STS (moto's)

    admin = boto3.Session(region_name=REGION)
    s3 = admin.client("s3")
    for bucket in ("regula-artifacts", "regula-data"):
        s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket="regula-artifacts", Key="regula/code/abc/train.py", Body=b"print(1)")
    s3.put_object(Bucket="regula-data", Key="tables/train.csv", Body=b"a,target\n1,0\n")
    s3.put_object(Bucket="regula-artifacts", Key="elsewhere/secret.txt", Body=b"no")
    s3.put_object(Bucket="regula-data", Key="archive/cats/1.png", Body=b"png")
    s3.put_object(Bucket="regula-data", Key="private/1.png", Body=b"png")
    iam_client = admin.client("iam")
    with pytest.raises(iam_client.exceptions.MalformedPolicyDocumentException):  # moto does validate documents
        iam_client.create_policy(PolicyName="bad", PolicyDocument=json.dumps({"Statement": [{"Effect": "Allow"}]}))
    credentials = {}
    for name, role in described.items():
        iam_client.create_role(
            RoleName=role["RoleName"],
            Path=role["Path"],
            AssumeRolePolicyDocument=json.dumps(role["AssumeRolePolicyDocument"]),
        )
        iam_client.put_role_policy(
            RoleName=role["RoleName"], PolicyName=role["PolicyName"], PolicyDocument=json.dumps(role["PolicyDocument"])
        )
        given = admin.client("sts").assume_role(RoleArn=role["Arn"], RoleSessionName="test")["Credentials"]
        credentials[name] = boto3.Session(
            region_name=REGION,
            aws_access_key_id=given["AccessKeyId"],
            aws_secret_access_key=given["SecretAccessKey"],
            aws_session_token=given["SessionToken"],
        )

    job = credentials["execution"].client("s3")
    ci = credentials["ci"].client("s3")
    model = "regula/runs/e1/train-round1/pipelines-x-TrainRound1-y/output/model.tar.gz"
    with enforced_iam(aws.endpoint):
        # the jobs: read code and data, write their outputs, nothing else
        assert job.get_object(Bucket="regula-artifacts", Key="regula/code/abc/train.py")["Body"].read() == b"print(1)"
        assert job.get_object(Bucket="regula-data", Key="tables/train.csv")["ContentLength"] > 0
        job.put_object(Bucket="regula-artifacts", Key="regula/runs/e1/train/train.parquet", Body=b"x")
        job.put_object(Bucket="regula-artifacts", Key=model, Body=b"model")
        job.put_object(Bucket="regula-artifacts", Key="regula/checkpoints/round1/checkpoint.pt", Body=b"state")
        assert job.list_objects_v2(Bucket="regula-artifacts", Prefix="regula/runs/e1/")["KeyCount"] == 2
        assert denied(lambda: job.put_object(Bucket="regula-artifacts", Key="regula/code/abc/train.py", Body=b"evil"))
        assert denied(lambda: job.put_object(Bucket="regula-artifacts", Key="outside/x", Body=b"x"))
        assert denied(lambda: job.get_object(Bucket="regula-artifacts", Key="elsewhere/secret.txt"))
        assert denied(lambda: job.put_object(Bucket="regula-data", Key="tables/train.csv", Body=b"x"))
        # Preprocess fetches a manifest's images under the prefixes given with --data-uri (steps/image_fetch.py)
        assert job.get_object(Bucket="regula-data", Key="archive/cats/1.png")["Body"].read() == b"png"
        assert denied(lambda: job.get_object(Bucket="regula-data", Key="private/1.png"))
        # CI: writes and prunes the step code, reads model artifacts, never writes a run's outputs
        ci.put_object(Bucket="regula-artifacts", Key="regula/code/def/train.py", Body=b"print(2)")
        ci.delete_object(Bucket="regula-artifacts", Key="regula/code/def/train.py")
        assert ci.get_object(Bucket="regula-artifacts", Key=model)["Body"].read() == b"model"
        assert ci.list_objects_v2(Bucket="regula-artifacts", Prefix="regula/code/")["KeyCount"] == 1
        assert denied(lambda: ci.put_object(Bucket="regula-artifacts", Key=model, Body=b"swapped"))
        assert denied(lambda: ci.put_object(Bucket="regula-artifacts", Key="regula/runs/e1/x", Body=b"x"))
        assert denied(lambda: ci.get_object(Bucket="regula-artifacts", Key="regula/runs/e1/train/train.parquet"))
        assert denied(lambda: ci.get_object(Bucket="regula-data", Key="tables/train.csv"))
