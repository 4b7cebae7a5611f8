"""The two roles' trust and permission policies (the reasons for each action are in calls.py).

- The SageMaker **execution role** (trusted by sagemaker.amazonaws.com): the pipeline runs as it, and so do its jobs.
  They read anything under the prefix and the data URIs, write under `runs/` and `checkpoints/` only, pull their
  image, write logs, send metrics in the given namespaces, register the model in its group; with `--kms-key-id` they
  use the key, with `--subnet` they attach network interfaces in the VPC.
- The **CI role** (trusted by GitHub Actions runs of one repository's deploy environment through OIDC): what
  `regula upsert`, `start`, `status`, `models`, `predict` and `doctor` call, and retrying or stopping an execution.

Light to import.
"""

from __future__ import annotations

from pipelines.iam.spec import (
    GITHUB_OIDC,
    Locations,
    Spec,
    data_locations,
    kms_key,
    names,
    repository_arn,
    role_parts,
)
from steps import overfitting

# SageMaker publishes the metric definitions' values and the instance metrics with the execution role
SAGEMAKER_NAMESPACES = ("/aws/sagemaker/TrainingJobs", "/aws/sagemaker/ProcessingJobs")


def statement(sid: str, actions: list[str], resources, condition: dict | None = None) -> dict:
    result = {"Sid": sid, "Effect": "Allow", "Action": sorted(actions), "Resource": resources}
    if condition:
        result["Condition"] = condition
    return result


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


def data_statements(spec: Spec) -> list[dict]:
    statements = []
    for index, (bucket, keys) in enumerate(data_locations(spec).items(), start=1):
        files = [f"{bucket_arn(spec, bucket)}/{key}" for key in keys if key]
        listed = sorted({*(k for k in keys if k), *(f"{k}/*" if k else "*" for k in keys)})
        statements += [
            statement(f"ReadData{index}", ["s3:GetObject"], files + object_arns(spec, bucket, keys)),
            statement(
                f"ListData{index}", ["s3:ListBucket"], bucket_arn(spec, bucket), {"StringLike": {"s3:prefix": listed}}
            ),
        ]
    return statements


def encryption_statements(spec: Spec) -> list[dict]:
    if not spec.settings.kms_key_id:
        return []
    key, aliased = kms_key(spec)
    use = ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
    grants = {"Bool": {"kms:GrantIsForAWSResource": "true"}, **aliased}
    return [
        statement("JobEncryption", use, key, aliased),
        statement("JobVolumeGrants", ["kms:CreateGrant"], key, grants),
    ]


def network_statements(spec: Spec) -> list[dict]:
    settings = spec.settings
    if not settings.subnets:
        return []
    interfaces = spec.arn("ec2", "network-interface/*")
    placed = [spec.arn("ec2", f"subnet/{s}") for s in settings.subnets]
    placed += [spec.arn("ec2", f"security-group/{g}") for g in settings.security_group_ids]
    described = ["NetworkInterfaces", "Vpcs", "DhcpOptions", "Subnets", "SecurityGroups"]  # no resource-level
    return [
        statement("JobNetworkInterfaces", ["ec2:CreateNetworkInterface"], [interfaces, *placed]),
        statement(
            "JobNetworkInterfaceAttachment",
            [
                "ec2:CreateNetworkInterfacePermission",
                "ec2:DeleteNetworkInterface",
                "ec2:DeleteNetworkInterfacePermission",
            ],
            interfaces,
        ),
        statement("JobNetwork", [f"ec2:Describe{name}" for name in described], "*"),
    ]


def execution_policy(spec: Spec, where: Locations) -> dict:
    bucket = spec.settings.bucket
    namespaces = sorted({*spec.namespaces, *SAGEMAKER_NAMESPACES})
    groups = names(spec.model_package_group)
    job_actions = ["CreateProcessingJob", "DescribeProcessingJob", "StopProcessingJob"]
    job_actions += ["CreateTrainingJob", "DescribeTrainingJob", "StopTrainingJob", "AddTags"]
    register_actions = ["CreateModelPackage", "CreateModelPackageGroup", "DescribeModelPackageGroup", "AddTags"]
    logs = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    pull = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]
    statements = [
        statement("ReadArtifacts", ["s3:GetObject"], object_arns(spec, bucket, [where.prefix])),
        statement("ListArtifacts", ["s3:ListBucket"], bucket_arn(spec, bucket), list_condition([where.prefix])),
        statement("WriteOutputs", ["s3:PutObject"], object_arns(spec, bucket, where.job_writes)),
        *data_statements(spec),
        statement("Metrics", ["cloudwatch:PutMetricData"], "*", {"StringEquals": {"cloudwatch:namespace": namespaces}}),
        # training's one overfitting notice per job (steps/overfitting.py), on the default bus, as source regula only
        statement(
            "OverfittingNotices",
            ["events:PutEvents"],
            spec.arn("events", "event-bus/default"),
            {"StringEquals": {"events:source": overfitting.SOURCE}},
        ),
        statement("JobLogs", logs, spec.arn("logs", "log-group:/aws/sagemaker/*")),
        statement("EcrLogin", ["ecr:GetAuthorizationToken"], "*"),
        statement("PullStepImages", pull, sorted({repository_arn(spec, image) for image in where.images})),
        # Job names are generated by SageMaker Pipelines from the execution and the step, in no documented format:
        # the jobs are scoped to the account and region.
        statement(
            "PipelineJobs",
            [f"sagemaker:{a}" for a in job_actions],
            [spec.arn("sagemaker", "processing-job/*"), spec.arn("sagemaker", "training-job/*")],
        ),
        statement(
            "RegisterModels",
            [f"sagemaker:{a}" for a in register_actions],
            [
                *(spec.arn("sagemaker", f"model-package-group/{n}") for n in groups),
                *(spec.arn("sagemaker", f"model-package/{n}/*") for n in groups),
            ],
        ),
        *encryption_statements(spec),
        *network_statements(spec),
        pass_role(spec, "PassThisRoleToJobs"),
    ]
    return {"Version": "2012-10-17", "Statement": statements}


def ci_policy(spec: Spec, where: Locations) -> dict:
    bucket = spec.settings.bucket
    pipelines = names(spec.settings.pipeline_name)
    groups = names(spec.model_package_group)
    pipeline_actions = ["CreatePipeline", "UpdatePipeline", "DescribePipeline", "StartPipelineExecution"]
    pipeline_actions += ["ListPipelineExecutions", "AddTags"]
    execution_actions = ["DescribePipelineExecution", "ListPipelineExecutionSteps"]
    execution_actions += ["RetryPipelineExecution", "StopPipelineExecution"]
    optional = []
    if spec.settings.kms_key_id:
        key, aliased = kms_key(spec)
        optional.append(statement("DecryptModelArtifacts", ["kms:Decrypt", "kms:DescribeKey"], key, aliased))
    if spec.settings.subnets:
        optional.append(statement("DescribeJobNetwork", ["ec2:DescribeSubnets", "ec2:DescribeSecurityGroups"], "*"))
    statements = [
        statement(
            "Pipeline",
            [f"sagemaker:{a}" for a in pipeline_actions],
            [spec.arn("sagemaker", f"pipeline/{n}") for n in pipelines],
        ),
        statement(
            "PipelineExecutions",
            [f"sagemaker:{a}" for a in execution_actions],
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
            "LargeDefinition", ["s3:GetObject", "s3:PutObject"], f"{bucket_arn(spec, bucket)}/{where.definition_key}"
        ),
        statement("ReadModelArtifacts", ["s3:GetObject"], object_arns(spec, bucket, [where.models])),
        statement("ListStepCode", ["s3:ListBucket"], bucket_arn(spec, bucket), list_condition([where.prefix])),
        statement("BucketRegion", ["s3:GetBucketLocation"], bucket_arn(spec, bucket)),
        statement("DescribeExecutionRole", ["iam:GetRole"], spec.execution_role_arn),
        *optional,
        pass_role(spec, "PassExecutionRole"),
    ]
    return {"Version": "2012-10-17", "Statement": statements}


def sagemaker_trust() -> dict:
    principal = {"Service": "sagemaker.amazonaws.com"}
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}],
    }


def github_trust(spec: Spec, provider_arn) -> dict:
    """GitHub Actions runs of one repository's deploy environment, and nothing else."""
    subject = f"repo:{spec.github_repo}:environment:{spec.github_environment}"
    condition = {"StringEquals": {f"{GITHUB_OIDC}:aud": "sts.amazonaws.com", f"{GITHUB_OIDC}:sub": subject}}
    trusted = {"Federated": provider_arn}
    assume = {
        "Effect": "Allow",
        "Principal": trusted,
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": condition,
    }
    return {"Version": "2012-10-17", "Statement": [assume]}


def roles(spec: Spec, where: Locations, provider_arn=None) -> dict:
    _, path, name = role_parts(spec.execution_role_arn)
    provider = provider_arn or f"arn:{spec.partition}:iam::{spec.account}:oidc-provider/{GITHUB_OIDC}"
    pipeline = spec.settings.pipeline_name
    return {
        "execution": {
            "RoleName": name,
            "Path": path,
            "Arn": spec.execution_role_arn,
            "Description": f"SageMaker execution role of Regula pipeline {pipeline}",
            "AssumeRolePolicyDocument": sagemaker_trust(),
            "PolicyName": "regula-execution",
            "PolicyDocument": execution_policy(spec, where),
        },
        "ci": {
            "RoleName": spec.ci_role_name,
            "Path": "/",
            "Arn": f"arn:{spec.partition}:iam::{spec.account}:role/{spec.ci_role_name}",
            "Description": f"CI role of Regula pipeline {pipeline}: upsert, start, status, models",
            "AssumeRolePolicyDocument": github_trust(spec, provider),
            "PolicyName": "regula-ci",
            "PolicyDocument": ci_policy(spec, where),
        },
    }
