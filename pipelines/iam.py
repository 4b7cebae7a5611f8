"""`regula iam`: least-privilege IAM policies for the two roles Regula needs on a real account.

- The SageMaker **execution role** (trusted by sagemaker.amazonaws.com). The pipeline runs as this role: it creates
  the Processing and Training jobs and registers the model; the jobs run as it too: they read and write S3, pull
  their image, write logs and send metrics.
- The **CI role** (trusted by GitHub Actions through OIDC, as in .github/workflows/regula.yml): what `regula upsert`,
  `start`, `status`, `models`, `predict` and `doctor` call.

What Regula's own code calls is data here (`CALLS`): tests/test_iam.py parses the modules with `ast` and fails when a
boto3 call on an S3 or SageMaker client is missing from it, or when the CI policy allows an action that no call and no
documented extra (`CI_EXTRAS`) needs. What SageMaker does as the execution role is not in Regula's code: each action
of that policy carries its reason (`EXECUTION_ACTIONS`).

The S3 locations and images are read from the rendered definition, not assumed: the jobs touch exactly the URIs it
holds. Training output goes to `s3://<bucket>/<pipeline>-train-round<k>/` (the SDK's default, from the step's
base_job_name), outside the prefix: the policies name those folders.

Light to import: rendering (the SDK) happens only when the command runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
from dataclasses import dataclass

from pipelines.errors import RegulaError
from pipelines.settings import Settings
from steps.defaults import METRICS_NAMESPACE, MODEL_PACKAGE_GROUP

NAME = "iam"
HELP = "least-privilege IAM policies for the SageMaker execution role and the CI role (JSON or CloudFormation)"

DEFAULT_EXECUTION_ROLE = Settings().role_arn.rsplit("/", 1)[-1]  # RegulaSageMakerExecution
DEFAULT_CI_ROLE = "RegulaDeploy"  # the workflow's REGULA_DEPLOY_ROLE_ARN
GITHUB_OIDC = "token.actions.githubusercontent.com"
GITHUB_ENVIRONMENT = "sagemaker"  # the deploy job's environment in .github/workflows/regula.yml
PLACEHOLDER_ACCOUNT = "000000000000"  # Settings' default role ARN: renders pipeline.json, names no real account
# SageMaker publishes the metric definitions' values and the instance metrics with the execution role
SAGEMAKER_NAMESPACES = ("/aws/sagemaker/TrainingJobs", "/aws/sagemaker/ProcessingJobs")
STACK_ACCOUNT = "${AWS::AccountId}"
ROLE_ARN = re.compile(
    r"^arn:(aws|aws-cn|aws-us-gov):iam::(\d{12}|\$\{AWS::AccountId\}):role/((?:[\w+=,.@-]+/)*)([\w+=,.@-]{1,64})$"
)
ECR_IMAGE = re.compile(r"^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/([^:@]+)[:@].+$")


class IamError(RegulaError):
    pass


@dataclass(frozen=True)
class Call:
    """One boto3 call Regula makes with the CI role's credentials, and the IAM action it needs."""

    module: str
    client: str  # boto3 service name
    method: str  # boto3 method, or the paginator's name
    action: str


# Every S3 and SageMaker call in the modules the CI role runs (tests/test_iam.py checks the list against the code).
CALLS = (
    Call("pipelines/deploy.py", "sagemaker", "describe_pipeline", "sagemaker:DescribePipeline"),
    Call("pipelines/deploy.py", "sagemaker", "create_pipeline", "sagemaker:CreatePipeline"),
    Call("pipelines/deploy.py", "sagemaker", "update_pipeline", "sagemaker:UpdatePipeline"),
    Call("pipelines/deploy.py", "sagemaker", "add_tags", "sagemaker:AddTags"),
    Call("pipelines/deploy.py", "sagemaker", "start_pipeline_execution", "sagemaker:StartPipelineExecution"),
    Call("pipelines/deploy.py", "sagemaker", "describe_pipeline_execution", "sagemaker:DescribePipelineExecution"),
    Call("pipelines/deploy.py", "sagemaker", "list_pipeline_execution_steps", "sagemaker:ListPipelineExecutionSteps"),
    Call("pipelines/deploy.py", "sagemaker", "list_pipeline_executions", "sagemaker:ListPipelineExecutions"),
    Call("pipelines/deploy.py", "s3", "put_object", "s3:PutObject"),  # a definition over 100 kB goes through S3
    Call("pipelines/s3.py", "s3", "list_objects_v2", "s3:ListBucket"),  # bucket_access_error, under the prefix
    Call("pipelines/session.py", "s3", "list_objects_v2", "s3:ListBucket"),  # push_uploads: the code folders
    Call("pipelines/session.py", "s3", "delete_object", "s3:DeleteObject"),
    Call("pipelines/session.py", "s3", "get_object", "s3:GetObject"),
    Call("pipelines/session.py", "s3", "put_object", "s3:PutObject"),
    Call("pipelines/registry.py", "sagemaker", "describe_model_package_group", "sagemaker:DescribeModelPackageGroup"),
    Call("pipelines/registry.py", "sagemaker", "list_model_packages", "sagemaker:ListModelPackages"),
    Call("pipelines/registry.py", "sagemaker", "describe_model_package", "sagemaker:DescribeModelPackage"),
    Call("pipelines/registry.py", "sagemaker", "update_model_package", "sagemaker:UpdateModelPackage"),
    Call("pipelines/predict.py", "sagemaker", "describe_model_package", "sagemaker:DescribeModelPackage"),
    Call("pipelines/predict.py", "s3", "download_file", "s3:GetObject"),  # the model artifact
    Call("pipelines/doctor_account.py", "s3", "get_bucket_location", "s3:GetBucketLocation"),
    Call("pipelines/doctor_account.py", "s3", "list_objects_v2", "s3:ListBucket"),  # --data-uri (CI: artifacts only)
    Call(
        "pipelines/doctor_account.py",
        "sagemaker",
        "describe_model_package_group",
        "sagemaker:DescribeModelPackageGroup",
    ),
    Call("pipelines/doctor_account.py", "iam", "get_role", "iam:GetRole"),
    Call("pipelines/doctor_account.py", "sns", "list_topics", "sns:ListTopics"),
    Call("pipelines/alerts.py", "sns", "list_subscriptions_by_topic", "sns:ListSubscriptionsByTopic"),  # doctor
)
# The modules whose calls tests/test_iam.py matches against CALLS, and their functions that only ever run against the
# local moto server (`regula run --local`).
SCANNED = (
    "pipelines/cli_shared.py",
    "pipelines/commands_models.py",
    "pipelines/commands_sagemaker.py",
    "pipelines/deploy.py",
    "pipelines/doctor.py",
    "pipelines/doctor_account.py",
    "pipelines/predict.py",
    "pipelines/registry.py",
    "pipelines/s3.py",
    "pipelines/session.py",
)
LOCAL_ONLY = {"pipelines/s3.py": ("download_prefix", "upload_dir", "ensure_bucket")}
# Allowed to the CI role though no Regula command calls them.
CI_EXTRAS = {
    "sagemaker:RetryPipelineExecution": "retry a failed execution from CI (aws sagemaker retry-pipeline-execution)",
    "sagemaker:StopPipelineExecution": "stop a running execution from CI (aws sagemaker stop-pipeline-execution)",
    "iam:PassRole": "CreatePipeline and UpdatePipeline pass the execution role to SageMaker",
}
# Calls `regula doctor` makes that the CI role is not given: doctor says "not checked" for them.
DOCTOR_ONLY = {"sns:ListTopics", "sns:ListSubscriptionsByTopic"}

EXECUTION_ACTIONS = {
    "s3:GetObject": "jobs read their code, the data and earlier steps' outputs; the pipeline reads evaluation.json",
    "s3:PutObject": "jobs write the splits, the model and the evaluation",
    "s3:ListBucket": "S3Prefix inputs list the keys under their prefix",
    "cloudwatch:PutMetricData": "the steps' metrics (MetricsNamespace) and SageMaker's job metrics",
    "logs:CreateLogGroup": "job logs (/aws/sagemaker/ProcessingJobs, /aws/sagemaker/TrainingJobs)",
    "logs:CreateLogStream": "job logs",
    "logs:PutLogEvents": "job logs",
    "logs:DescribeLogStreams": "job logs (in AWS's documented execution-role permissions for jobs)",
    "ecr:GetAuthorizationToken": "pull the step image; this action has no resource-level permissions",
    "ecr:BatchGetImage": "pull the step image",
    "ecr:GetDownloadUrlForLayer": "pull the step image",
    "ecr:BatchCheckLayerAvailability": "pull the step image",
    "sagemaker:CreateProcessingJob": "the pipeline runs Preprocess and EvaluateRoundK as processing jobs",
    "sagemaker:DescribeProcessingJob": "the pipeline follows its processing jobs",
    "sagemaker:StopProcessingJob": "stopping an execution stops its jobs",
    "sagemaker:CreateTrainingJob": "the pipeline runs TrainRoundK as training jobs",
    "sagemaker:DescribeTrainingJob": "the pipeline follows its training jobs",
    "sagemaker:StopTrainingJob": "stopping an execution stops its jobs",
    "sagemaker:CreateModelPackage": "RegisterRoundK registers the model",
    "sagemaker:CreateModelPackageGroup": "the first registration creates the group",
    "sagemaker:DescribeModelPackageGroup": "registration looks the group up",
    "sagemaker:AddTags": "jobs and packages are created with tags",
    "iam:PassRole": "the pipeline passes this role to the jobs it creates",
}


@dataclass(frozen=True)
class Spec:
    """What the policies are written for."""

    settings: Settings
    account: str
    execution_role_arn: str
    ci_role_name: str = DEFAULT_CI_ROLE
    github_repo: str = ""
    github_environment: str = GITHUB_ENVIRONMENT
    namespaces: tuple[str, ...] = (METRICS_NAMESPACE,)
    model_package_group: str = MODEL_PACKAGE_GROUP
    data_uris: tuple[str, ...] = ()

    @property
    def partition(self) -> str:
        return partition(self.settings.region)

    def arn(self, service: str, resource: str) -> str:
        return f"arn:{self.partition}:{service}:{self.settings.region}:{self.account}:{resource}"

    @property
    def prefix(self) -> str:
        return self.settings.prefix.strip("/")


def partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def role_parts(arn: str) -> tuple[str, str, str]:
    """(account, path, name) of a role ARN; IamError when it is not one."""
    match = ROLE_ARN.match(arn)
    if not match:
        raise IamError(f"not a role ARN: {arn!r} (arn:aws:iam::<12 digits>:role/<path/>name)")
    return match.group(2), "/" + match.group(3), match.group(4)


def names(name: str) -> list[str]:
    """SageMaker ARNs spell resource names in lowercase: both spellings when the name has capitals."""
    return sorted({name, name.lower()})


def statement(sid: str, actions: list[str], resources, condition: dict | None = None) -> dict:
    result = {"Sid": sid, "Effect": "Allow", "Action": sorted(actions), "Resource": resources}
    if condition:
        result["Condition"] = condition
    return result


# -- what the definition touches -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Locations:
    """Where the jobs read and write, per bucket, as key folders ('' is the whole bucket); where upsert writes."""

    reads: dict[str, tuple[str, ...]]
    writes: dict[str, tuple[str, ...]]
    models: dict[str, tuple[str, ...]]  # training output paths: the model artifacts `regula predict` downloads
    code: str  # upsert's step code folder (RegulaSession.code_prefix)
    definition_key: str  # where upsert puts a definition too large to send inline


def strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def steps(definition: dict):
    """Every step, those inside condition branches too."""

    def walk(items):
        for step in items:
            yield step
            arguments = step.get("Arguments", {})
            yield from walk(arguments.get("IfSteps", []) + arguments.get("ElseSteps", []))

    yield from walk(definition["Steps"])


def literal_head(value) -> str | None:
    """The literal start of an S3 location: the value itself, or a Std:Join's leading literal values."""
    if isinstance(value, str):
        return value
    join = value.get("Std:Join") if isinstance(value, dict) else None
    if not join:
        return None
    head = []
    for item in join["Values"]:
        if not isinstance(item, str):
            break
        head.append(item)
    return join["On"].join(head) or None


def split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key.strip("/")


def grouped(pairs) -> dict[str, tuple[str, ...]]:
    found: dict[str, set[str]] = {}
    for bucket, key in pairs:
        found.setdefault(bucket, set()).add(key)
    return {bucket: tuple(sorted(keys)) for bucket, keys in sorted(found.items())}


def locations(definition: dict, settings: Settings, code_prefix: str, definition_key: str) -> Locations:
    """Read from the definition: jobs write only their outputs (a run's folder, the training output paths) and read
    anything under the prefix and any other S3 location the definition names; the step code is never theirs to
    write."""
    prefix = settings.prefix.strip("/")
    outputs, models = [], []
    for step in steps(definition):
        arguments = step.get("Arguments", {})
        if step["Type"] == "Processing":
            outputs += [o["S3Output"]["S3Uri"] for o in arguments.get("ProcessingOutputConfig", {}).get("Outputs", [])]
        elif step["Type"] == "Training":
            models.append(arguments["OutputDataConfig"]["S3OutputPath"])
            outputs += [
                arguments["OutputDataConfig"]["S3OutputPath"],
                arguments.get("CheckpointConfig", {}).get("S3Uri"),
            ]
    heads = [literal_head(value) for value in outputs if value is not None]
    if any(head is None or not head.startswith("s3://") for head in heads):
        raise IamError("an output location of the definition does not start with a literal s3:// URI")
    writes = grouped(split(head) for head in heads)

    def folder(bucket: str, key: str) -> str:
        inside = bucket == settings.bucket and (key == prefix or key.startswith(f"{prefix}/"))
        return prefix if inside else key

    named = [split(text) for text in strings(definition) if text.startswith("s3://")]
    everything = [(settings.bucket, prefix), *named, *((b, k) for b, keys in writes.items() for k in keys)]
    reads = grouped((bucket, folder(bucket, key)) for bucket, key in everything)
    return Locations(reads, writes, grouped(split(uri) for uri in models), code_prefix.strip("/"), definition_key)


def step_images(definition: dict) -> list[str]:
    """The images the jobs run (the registered model's inference image is pulled only by an endpoint)."""
    found = set()
    for step in steps(definition):
        arguments = step.get("Arguments", {})
        if step["Type"] == "Processing":
            found.add(arguments["AppSpecification"]["ImageUri"])
        elif step["Type"] == "Training":
            found.add(arguments["AlgorithmSpecification"]["TrainingImage"])
    return sorted(found)


def repository_arn(image: str, spec: Spec) -> str:
    match = ECR_IMAGE.match(image)
    if not match:
        raise IamError(f"not an ECR image URI: {image!r}")
    account, region, repository = match.groups()
    return f"arn:{spec.partition}:ecr:{region}:{account}:repository/{repository}"


# -- the policies ----------------------------------------------------------------------------------------------------


def bucket_arn(spec: Spec, bucket: str) -> str:
    return f"arn:{spec.partition}:s3:::{bucket}"


def object_arns(spec: Spec, bucket: str, folders) -> list[str]:
    return [
        f"{bucket_arn(spec, bucket)}/{folder}/*" if folder else f"{bucket_arn(spec, bucket)}/*" for folder in folders
    ]


def list_condition(folders) -> dict:
    return {"StringLike": {"s3:prefix": [f"{folder}/*" if folder else "*" for folder in folders]}}


def pass_role(spec: Spec, sid: str) -> dict:
    return statement(
        sid,
        ["iam:PassRole"],
        spec.execution_role_arn,
        {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
    )


def data_locations(spec: Spec) -> dict[str, tuple[str, ...]]:
    """--data-uri: read-only, per bucket, each a file or a folder."""
    from pipelines.s3 import split_uri

    return grouped((bucket, key.strip("/")) for bucket, key in map(split_uri, spec.data_uris))


def execution_policy(spec: Spec, definition: dict, where: Locations) -> dict:
    statements = []
    for index, (bucket, folders) in enumerate(where.reads.items(), start=1):
        statements += [
            statement(f"ReadArtifacts{index}", ["s3:GetObject"], object_arns(spec, bucket, folders)),
            statement(f"ListArtifacts{index}", ["s3:ListBucket"], bucket_arn(spec, bucket), list_condition(folders)),
        ]
    for index, (bucket, folders) in enumerate(where.writes.items(), start=1):
        statements.append(statement(f"WriteOutputs{index}", ["s3:PutObject"], object_arns(spec, bucket, folders)))
    for index, (bucket, keys) in enumerate(data_locations(spec).items(), start=1):
        files = [f"{bucket_arn(spec, bucket)}/{key}" for key in keys if key]
        listed = sorted({*(k for k in keys if k), *(f"{k}/*" if k else "*" for k in keys)})
        statements += [
            statement(f"ReadData{index}", ["s3:GetObject"], files + object_arns(spec, bucket, keys)),
            statement(
                f"ListData{index}", ["s3:ListBucket"], bucket_arn(spec, bucket), {"StringLike": {"s3:prefix": listed}}
            ),
        ]
    namespaces = sorted({*spec.namespaces, *SAGEMAKER_NAMESPACES})
    groups = names(spec.model_package_group)
    statements += [
        statement("Metrics", ["cloudwatch:PutMetricData"], "*", {"StringEquals": {"cloudwatch:namespace": namespaces}}),
        statement(
            "JobLogs",
            ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            spec.arn("logs", "log-group:/aws/sagemaker/*"),
        ),
        statement("EcrLogin", ["ecr:GetAuthorizationToken"], "*"),
        statement(
            "PullStepImages",
            ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
            sorted({repository_arn(image, spec) for image in step_images(definition)}),
        ),
        # Job names are generated by SageMaker Pipelines from the execution and the step (the definition holds no
        # ProcessingJobName/TrainingJobName: base_job_name is not used there), in no documented format: the jobs are
        # scoped to the account and region.
        statement(
            "PipelineJobs",
            [
                "sagemaker:CreateProcessingJob",
                "sagemaker:DescribeProcessingJob",
                "sagemaker:StopProcessingJob",
                "sagemaker:CreateTrainingJob",
                "sagemaker:DescribeTrainingJob",
                "sagemaker:StopTrainingJob",
                "sagemaker:AddTags",
            ],
            [spec.arn("sagemaker", "processing-job/*"), spec.arn("sagemaker", "training-job/*")],
        ),
        statement(
            "RegisterModels",
            [
                "sagemaker:CreateModelPackage",
                "sagemaker:CreateModelPackageGroup",
                "sagemaker:DescribeModelPackageGroup",
                "sagemaker:AddTags",
            ],
            [
                *(spec.arn("sagemaker", f"model-package-group/{n}") for n in groups),
                *(spec.arn("sagemaker", f"model-package/{n}/*") for n in groups),
            ],
        ),
        pass_role(spec, "PassThisRoleToJobs"),
    ]
    return {"Version": "2012-10-17", "Statement": statements}


def ci_policy(spec: Spec, where: Locations) -> dict:
    bucket, prefix = spec.settings.bucket, spec.prefix
    pipelines = names(spec.settings.pipeline_name)
    groups = names(spec.model_package_group)
    models = [
        statement(f"ReadModelArtifacts{index}", ["s3:GetObject"], object_arns(spec, name, folders))
        for index, (name, folders) in enumerate(where.models.items(), start=1)
    ]
    return {
        "Version": "2012-10-17",
        "Statement": [
            statement(
                "Pipeline",
                [
                    "sagemaker:CreatePipeline",
                    "sagemaker:UpdatePipeline",
                    "sagemaker:DescribePipeline",
                    "sagemaker:StartPipelineExecution",
                    "sagemaker:ListPipelineExecutions",
                    "sagemaker:AddTags",
                ],
                [spec.arn("sagemaker", f"pipeline/{n}") for n in pipelines],
            ),
            statement(
                "PipelineExecutions",
                [
                    "sagemaker:DescribePipelineExecution",
                    "sagemaker:ListPipelineExecutionSteps",
                    "sagemaker:RetryPipelineExecution",
                    "sagemaker:StopPipelineExecution",
                ],
                [spec.arn("sagemaker", f"pipeline/{n}/execution/*") for n in pipelines],
            ),
            statement(
                "ModelPackageGroup",
                ["sagemaker:DescribeModelPackageGroup"],
                [spec.arn("sagemaker", f"model-package-group/{n}") for n in groups],
            ),
            statement(
                "ModelPackages",
                ["sagemaker:DescribeModelPackage", "sagemaker:UpdateModelPackage"],
                [spec.arn("sagemaker", f"model-package/{n}/*") for n in groups],
            ),
            # the group is a filter of ListModelPackages, not the resource it is authorized on
            statement("ListModelPackages", ["sagemaker:ListModelPackages"], spec.arn("sagemaker", "model-package/*")),
            statement(
                "StepCode", ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], object_arns(spec, bucket, [where.code])
            ),
            # SageMaker reads a definition given by S3 location with the caller's permissions
            statement(
                "LargeDefinition",
                ["s3:GetObject", "s3:PutObject"],
                f"{bucket_arn(spec, bucket)}/{where.definition_key}",
            ),
            *models,
            statement("ListStepCode", ["s3:ListBucket"], bucket_arn(spec, bucket), list_condition([prefix])),
            statement("BucketRegion", ["s3:GetBucketLocation"], bucket_arn(spec, bucket)),
            statement("DescribeExecutionRole", ["iam:GetRole"], spec.execution_role_arn),
            pass_role(spec, "PassExecutionRole"),
        ],
    }


def sagemaker_trust() -> dict:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }


def github_trust(spec: Spec, provider_arn) -> dict:
    """GitHub Actions runs of one repository's deploy environment, and nothing else."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": provider_arn},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        f"{GITHUB_OIDC}:aud": "sts.amazonaws.com",
                        f"{GITHUB_OIDC}:sub": f"repo:{spec.github_repo}:environment:{spec.github_environment}",
                    }
                },
            }
        ],
    }


def roles(spec: Spec, definition: dict, where: Locations, provider_arn=None) -> dict:
    _, path, name = role_parts(spec.execution_role_arn)
    provider = provider_arn or f"arn:{spec.partition}:iam::{spec.account}:oidc-provider/{GITHUB_OIDC}"
    return {
        "execution": {
            "RoleName": name,
            "Path": path,
            "Arn": spec.execution_role_arn,
            "Description": f"SageMaker execution role of Regula pipeline {spec.settings.pipeline_name}",
            "AssumeRolePolicyDocument": sagemaker_trust(),
            "PolicyName": "regula-execution",
            "PolicyDocument": execution_policy(spec, definition, where),
        },
        "ci": {
            "RoleName": spec.ci_role_name,
            "Path": "/",
            "Arn": f"arn:{spec.partition}:iam::{spec.account}:role/{spec.ci_role_name}",
            "Description": f"CI role of Regula pipeline {spec.settings.pipeline_name}: upsert, start, status, models",
            "AssumeRolePolicyDocument": github_trust(spec, provider),
            "PolicyName": "regula-ci",
            "PolicyDocument": ci_policy(spec, where),
        },
    }


def substituted(value):
    """Strings naming ${AWS::...} become Fn::Sub, recursively."""
    if isinstance(value, str) and "${AWS::" in value:
        return {"Fn::Sub": value}
    if isinstance(value, dict):
        return {key: substituted(item) for key, item in value.items()}
    if isinstance(value, list):
        return [substituted(item) for item in value]
    return value


def cloudformation(spec: Spec, definition: dict, where: Locations) -> dict:
    """Both roles in the stack's account (the region is the one the policies were written for); the GitHub OIDC
    provider too, unless the account has one (an account holds one per URL: pass its ARN as a parameter)."""
    _, path, name = role_parts(spec.execution_role_arn)
    role_arn = f"arn:{spec.partition}:iam::{STACK_ACCOUNT}:role{path}{name}"
    spec = dataclasses.replace(spec, account=STACK_ACCOUNT, execution_role_arn=role_arn)
    provider = {"Fn::If": ["CreateGitHubProvider", {"Ref": "GitHubProvider"}, {"Ref": "GitHubProviderArn"}]}
    described = roles(spec, definition, where, provider_arn="PROVIDER")
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
            if item["Principal"].get("Federated") == "PROVIDER":
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


# -- the command -----------------------------------------------------------------------------------------------------


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=("json", "cloudformation"), default="json")
    parser.add_argument("--account", help="AWS account id (default: the account of these credentials, from STS)")
    parser.add_argument(
        "--github-repo", help="OWNER/NAME of the repository whose GitHub Actions may assume the CI role (required)"
    )
    parser.add_argument(
        "--github-environment",
        default=GITHUB_ENVIRONMENT,
        help=f"the deploy job's environment (default: {GITHUB_ENVIRONMENT}, as in .github/workflows/regula.yml)",
    )
    parser.add_argument("--ci-role-name", default=DEFAULT_CI_ROLE, help=f"default: {DEFAULT_CI_ROLE}")
    parser.add_argument(
        "--metrics-namespace",
        action="append",
        help=f"CloudWatch namespace(s) executions may send metrics to (MetricsNamespace; default: {METRICS_NAMESPACE})",
    )
    parser.add_argument(
        "--model-package-group",
        default=MODEL_PACKAGE_GROUP,
        help=f"registry group (ModelPackageGroupName; default: {MODEL_PACKAGE_GROUP})",
    )
    parser.add_argument(
        "--data-uri", action="append", help="s3:// file or folder the jobs may read (InputDataUri), repeatable"
    )


def account_of(args: argparse.Namespace, settings: Settings) -> str:
    if args.account:
        if not re.fullmatch(r"\d{12}", args.account):
            raise IamError(f"--account takes the 12-digit account id, got {args.account!r}")
        return args.account
    if args.role_arn:
        return role_parts(args.role_arn)[0]
    try:
        import boto3

        return boto3.Session(region_name=settings.region).client("sts").get_caller_identity()["Account"]
    except Exception as error:  # noqa: BLE001 - no credentials, no network: the user can say it
        raise IamError(
            f"pass --account: could not ask STS which account these credentials belong to ({error})"
        ) from None


def spec_from(args: argparse.Namespace, settings: Settings, account: str) -> Spec:
    if not args.github_repo or not re.fullmatch(r"[\w.-]+/[\w.-]+", args.github_repo):
        raise IamError(
            "pass --github-repo OWNER/NAME: the CI role trusts GitHub Actions runs of that repository's "
            f"{args.github_environment!r} environment only"
        )
    role_arn = args.role_arn or f"arn:{partition(settings.region)}:iam::{account}:role/{DEFAULT_EXECUTION_ROLE}"
    role_account = role_parts(role_arn)[0]
    if role_account != account:
        raise IamError(f"--role-arn is in account {role_account}, the policies are for account {account}")
    for uri in args.data_uri or []:
        if not uri.startswith("s3://"):
            raise IamError(f"--data-uri takes s3://bucket/key, got {uri!r}")
    return Spec(
        settings=settings,
        account=account,
        execution_role_arn=role_arn,
        ci_role_name=args.ci_role_name,
        github_repo=args.github_repo,
        github_environment=args.github_environment,
        namespaces=tuple(args.metrics_namespace or [METRICS_NAMESPACE]),
        model_package_group=args.model_package_group,
        data_uris=tuple(args.data_uri or []),
    )


def command(settings: Settings, args: argparse.Namespace) -> int:
    from pipelines.deploy import definition_key
    from pipelines.render import render

    cloudformation_wanted = args.format == "cloudformation"
    # a template is deployed into the stack's account: no account needed, unless --role-arn names one
    account = PLACEHOLDER_ACCOUNT if cloudformation_wanted and not (args.account or args.role_arn) else None
    spec = spec_from(args, settings, account or account_of(args, settings))
    text, session = render(settings)
    definition = json.loads(text)
    where = locations(definition, settings, session.code_prefix, definition_key(settings))
    document = cloudformation(spec, definition, where) if cloudformation_wanted else roles(spec, definition, where)
    print(json.dumps(document, indent=2))
    return 0
