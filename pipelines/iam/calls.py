"""Who calls what on AWS, as data: the reasons behind every action `regula iam` grants.

- `CALLS`: every boto3 call on an S3, SageMaker, IAM, SNS, KMS or EC2 client in the modules the CI role runs
  (`SCANNED`), and the IAM action it needs. tests/test_iam.py parses those modules with `ast` and fails when a call is
  missing here, or when the CI policy allows an action that no call and no documented extra (`CI_EXTRAS`) needs.
- `EXECUTION_ACTIONS`: what SageMaker does as the execution role, which is not in Regula's code: each action with its
  reason. The KMS and VPC ones are granted only when the pipeline is rendered with `--kms-key-id` or `--subnet`.

Light to import: data only.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Call:
    """One boto3 call Regula makes with the CI role's credentials, and the IAM action it needs. `when` names the
    setting without which the call is never made ("" for always)."""

    module: str
    client: str  # boto3 service name
    method: str  # boto3 method, or the paginator's name
    action: str
    when: str = ""


CALLS = (
    Call("pipelines/aws/deploy.py", "sagemaker", "describe_pipeline", "sagemaker:DescribePipeline"),
    Call("pipelines/aws/deploy.py", "sagemaker", "create_pipeline", "sagemaker:CreatePipeline"),
    Call("pipelines/aws/deploy.py", "sagemaker", "update_pipeline", "sagemaker:UpdatePipeline"),
    Call("pipelines/aws/deploy.py", "sagemaker", "add_tags", "sagemaker:AddTags"),
    Call("pipelines/aws/deploy.py", "sagemaker", "start_pipeline_execution", "sagemaker:StartPipelineExecution"),
    Call("pipelines/aws/deploy.py", "sagemaker", "describe_pipeline_execution", "sagemaker:DescribePipelineExecution"),
    Call(
        "pipelines/aws/deploy.py", "sagemaker", "list_pipeline_execution_steps", "sagemaker:ListPipelineExecutionSteps"
    ),
    Call("pipelines/aws/deploy.py", "sagemaker", "list_pipeline_executions", "sagemaker:ListPipelineExecutions"),
    Call("pipelines/aws/deploy.py", "sagemaker", "retry_pipeline_execution", "sagemaker:RetryPipelineExecution"),
    Call("pipelines/aws/deploy.py", "s3", "put_object", "s3:PutObject"),  # a definition over 100 kB goes through S3
    Call("pipelines/aws/s3.py", "s3", "list_objects_v2", "s3:ListBucket"),  # bucket_access_error, under the prefix
    Call("pipelines/definition/session.py", "s3", "list_objects_v2", "s3:ListBucket"),  # push_uploads: the code folders
    Call("pipelines/definition/session.py", "s3", "delete_object", "s3:DeleteObject"),
    Call("pipelines/definition/session.py", "s3", "get_object", "s3:GetObject"),
    Call("pipelines/definition/session.py", "s3", "put_object", "s3:PutObject"),
    Call(
        "pipelines/models/registry.py",
        "sagemaker",
        "describe_model_package_group",
        "sagemaker:DescribeModelPackageGroup",
    ),
    Call("pipelines/models/registry.py", "sagemaker", "list_model_packages", "sagemaker:ListModelPackages"),
    Call("pipelines/models/registry.py", "sagemaker", "describe_model_package", "sagemaker:DescribeModelPackage"),
    Call("pipelines/models/registry.py", "sagemaker", "update_model_package", "sagemaker:UpdateModelPackage"),
    Call("pipelines/models/predict.py", "sagemaker", "describe_model_package", "sagemaker:DescribeModelPackage"),
    Call("pipelines/models/predict.py", "s3", "download_file", "s3:GetObject"),  # the model artifact
    Call("pipelines/doctor/account.py", "s3", "get_bucket_location", "s3:GetBucketLocation"),
    Call("pipelines/doctor/account.py", "s3", "list_objects_v2", "s3:ListBucket"),  # --data-uri (CI: artifacts only)
    Call(
        "pipelines/doctor/account.py",
        "sagemaker",
        "describe_model_package_group",
        "sagemaker:DescribeModelPackageGroup",
    ),
    Call("pipelines/doctor/account.py", "iam", "get_role", "iam:GetRole"),
    Call("pipelines/doctor/account.py", "sns", "list_topics", "sns:ListTopics"),
    Call(
        "pipelines/alerts/resources.py", "sns", "list_subscriptions_by_topic", "sns:ListSubscriptionsByTopic"
    ),  # doctor
    Call("pipelines/doctor/account.py", "kms", "describe_key", "kms:DescribeKey", when="kms_key_id"),
    Call("pipelines/doctor/account.py", "ec2", "describe_subnets", "ec2:DescribeSubnets", when="subnets"),
    Call(
        "pipelines/doctor/account.py", "ec2", "describe_security_groups", "ec2:DescribeSecurityGroups", when="subnets"
    ),
)
# The modules whose calls tests/test_iam.py matches against CALLS. What only ever runs against the local moto server
# (`regula run --local`: the engine's transfers, pipelines/local/engine/s3.py) is not among them.
SCANNED = (
    "pipelines/cli/shared.py",
    "pipelines/cli/models.py",
    "pipelines/cli/sagemaker.py",
    "pipelines/aws/deploy.py",
    "pipelines/cli/doctor.py",
    "pipelines/doctor/check.py",
    "pipelines/doctor/account.py",
    "pipelines/models/predict.py",
    "pipelines/models/registry.py",
    "pipelines/aws/s3.py",
    "pipelines/definition/session.py",
)
# Allowed to the CI role though no Regula command calls them.
CI_EXTRAS = {
    "sagemaker:StopPipelineExecution": "stop a running execution from CI (aws sagemaker stop-pipeline-execution)",
    "iam:PassRole": "CreatePipeline and UpdatePipeline pass the execution role to SageMaker",
}
# Allowed to the CI role with --kms-key-id: S3 decrypts with the caller's permissions.
CI_KMS_EXTRAS = {"kms:Decrypt": "`regula predict` downloads model artifacts the jobs encrypted with the key"}
# Calls `regula doctor` makes that the CI role is not given: doctor says "not checked" for them.
DOCTOR_ONLY = {"sns:ListTopics", "sns:ListSubscriptionsByTopic"}

EXECUTION_ACTIONS = {
    "s3:GetObject": "jobs read their code, the data, earlier steps' outputs and checkpoints; the pipeline reads "
    "evaluation.json; Preprocess fetches the images a manifest names elsewhere in its bucket (--data-uri each prefix)",
    "s3:PutObject": "jobs write the splits, the model, the evaluation and checkpoints",
    "s3:ListBucket": "S3Prefix inputs and checkpoint restores list the keys under their prefix",
    "cloudwatch:PutMetricData": "the steps' metrics (MetricsNamespace) and SageMaker's job metrics",
    "events:PutEvents": "training's one overfitting notice per job (steps/overfitting.py), source regula only",
    "logs:CreateLogGroup": "job logs (/aws/sagemaker/ProcessingJobs, /aws/sagemaker/TrainingJobs)",
    "logs:CreateLogStream": "job logs",
    "logs:PutLogEvents": "job logs",
    "logs:DescribeLogStreams": "job logs (in AWS's documented execution-role permissions for jobs)",
    "ecr:GetAuthorizationToken": "pull the step image; this action has no resource-level permissions",
    "ecr:BatchGetImage": "pull the step image",
    "ecr:GetDownloadUrlForLayer": "pull the step image",
    "ecr:BatchCheckLayerAvailability": "pull the step image",
    "sagemaker:CreateProcessingJob": (
        "the pipeline runs Preprocess, EvaluateRoundK and EvaluateRefitRoundK as processing jobs"
    ),
    "sagemaker:DescribeProcessingJob": "the pipeline follows its processing jobs",
    "sagemaker:StopProcessingJob": "stopping an execution stops its jobs",
    "sagemaker:CreateTrainingJob": "the pipeline runs TrainRoundK and RefitRoundK as training jobs",
    "sagemaker:DescribeTrainingJob": "the pipeline follows its training jobs",
    "sagemaker:StopTrainingJob": "stopping an execution stops its jobs",
    "sagemaker:CreateModelPackage": "RegisterRoundK registers the model",
    "sagemaker:CreateModelPackageGroup": "the first registration creates the group",
    "sagemaker:DescribeModelPackageGroup": "registration looks the group up",
    "sagemaker:AddTags": "jobs and packages are created with tags",
    "iam:PassRole": "the pipeline passes this role to the jobs it creates",
}
# --kms-key-id: job volumes and the S3 outputs are encrypted with the key, as the execution role.
EXECUTION_KMS_ACTIONS = {
    "kms:Encrypt": "SageMaker encrypts the outputs (OutputDataConfig, ProcessingOutputConfig KmsKeyId)",
    "kms:GenerateDataKey": "S3 writes the outputs with SSE-KMS",
    "kms:Decrypt": "jobs read outputs of earlier steps and checkpoints written with the key",
    "kms:DescribeKey": "SageMaker checks the key when it creates a job",
    "kms:CreateGrant": "SageMaker encrypts the job volumes (VolumeKmsKeyId) through a grant, only for AWS resources",
}
# --subnet/--security-group: SageMaker attaches network interfaces in the VPC to the jobs, as the execution role.
EXECUTION_VPC_ACTIONS = {
    "ec2:CreateNetworkInterface": "a network interface for each job instance, in the given subnets and groups",
    "ec2:CreateNetworkInterfacePermission": "SageMaker attaches the interface to its instance",
    "ec2:DeleteNetworkInterface": "the interface is deleted when the job ends",
    "ec2:DeleteNetworkInterfacePermission": "the attachment permission is deleted when the job ends",
    "ec2:DescribeNetworkInterfaces": "SageMaker follows the interfaces (no resource-level permissions)",
    "ec2:DescribeVpcs": "SageMaker checks the VPC (no resource-level permissions)",
    "ec2:DescribeDhcpOptions": "SageMaker reads the VPC's DNS settings (no resource-level permissions)",
    "ec2:DescribeSubnets": "SageMaker checks the subnets (no resource-level permissions)",
    "ec2:DescribeSecurityGroups": "SageMaker checks the security groups (no resource-level permissions)",
}
