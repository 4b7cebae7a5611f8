"""The pieces every step of the pipeline is built from: the parameters, the images, the jobs' code upload,
inputs and outputs, caching, retries and tags."""

from __future__ import annotations

import os
from pathlib import Path

from pipelines.definition.sdk import IMPORT_REGION

os.environ.setdefault(
    "AWS_DEFAULT_REGION", IMPORT_REGION
)  # the SDK builds a client at import (pipelines/definition/sdk.py)

from sagemaker.core.network import NetworkConfig
from sagemaker.core.processing import ScriptProcessor
from sagemaker.core.shapes import (
    ProcessingInput,
    ProcessingOutput,
    ProcessingS3Input,
    ProcessingS3Output,
)
from sagemaker.core.workflow.execution_variables import ExecutionVariables
from sagemaker.core.workflow.functions import Join, JsonGet
from sagemaker.core.workflow.parameters import ParameterFloat, ParameterInteger, ParameterString
from sagemaker.core.workflow.properties import PropertyFile
from sagemaker.mlops.workflow.retry import (
    SageMakerJobExceptionTypeEnum,
    SageMakerJobStepRetryPolicy,
    StepExceptionTypeEnum,
    StepRetryPolicy,
)
from sagemaker.mlops.workflow.steps import CacheConfig, ProcessingStep

from pipelines.definition.session import RegulaSession
from pipelines.settings import Settings
from steps import defaults as d
from steps import model_code, parameter_table

STEPS_DIR = "steps"  # the package, relative to the repository root where render() runs, and its name in the jobs
ENTRY_SCRIPTS = ("preprocess.py", "train.py", "evaluate.py")  # what the jobs run; every other file is shared
LIB_DIR = "/opt/ml/processing/input/lib"  # on the processing jobs' PYTHONPATH: holds the shared `steps` package
EARLIER_DIR = "/opt/ml/processing/earlier"  # the earlier rounds' evaluations, one folder per round
DECIDED_DIR = "/opt/ml/processing/decided"  # a refit's evaluation: the evaluation that decided
# Transient failures are retried with backoff: a job that SageMaker could not place or that failed inside the
# service (capacity, account limits, internal errors), and throttled or failed service calls of any step.
# MaxAttempts counts retries (AWS: "the maximum number of retry attempts"): up to 4 more, after 1, 2, 4, 8 minutes.
JOB_RETRY = {"interval_seconds": 60, "backoff_rate": 2.0, "max_attempts": 4}
CALL_RETRY = {"interval_seconds": 5, "backoff_rate": 2.0, "max_attempts": 5}

# What the training script prints every epoch, for SageMaker metric definitions.
EPOCH_METRICS = {
    "train:loss": "train_loss",
    "validation:loss": "val_loss",
    "validation:accuracy": "val_accuracy",
    "validation:r2": "val_r2",
    "generalization:gap": "gap",
    "validation:loss_rise_streak": "val_loss_rise_streak",
}


PARAMETER_TYPES = {"String": ParameterString, "Integer": ParameterInteger, "Float": ParameterFloat}
METRICS = ("MetricsNamespace",)  # a processing step's metrics options, last with the pipeline name (metrics_arguments)


class Parameters:
    """The pipeline's parameters, as steps/parameter_table.py declares them: what `regula start --param K=V` can
    change per execution. `p["MaxGap"]` is one."""

    def __init__(self, settings: Settings):
        self.declared = {}
        for param in parameter_table.TABLE:
            if param.spot_only and not settings.spot:  # CreateTrainingJob refuses a MaxWait without spot
                continue
            default = getattr(settings, param.setting) if param.setting else param.default
            enum = enum_values(param, settings)
            declare = PARAMETER_TYPES[param.type]
            self.declared[param.name] = declare(
                param.name, default_value=default, **({"enum_values": enum} if enum else {})
            )

    def __getitem__(self, name: str):
        return self.declared[name]

    def all(self) -> list:
        return list(self.declared.values())


def enum_values(param: parameter_table.Parameter, settings: Settings) -> list[str] | None:
    if param.name == "ModelApprovalStatus" and not settings.allow_auto_approval:
        return [d.APPROVAL_STATUS]  # a package registers for review unless rendered with --allow-auto-approval
    return list(param.choices) if param.enum else None


def argument_text(param):
    """A parameter as a container argument or hyperparameter: numbers as text."""
    return param if isinstance(param, ParameterString) else param.to_string()


def parameter_arguments(p: Parameters, step: str, only: tuple[str, ...] = (), but: tuple[str, ...] = ()) -> list:
    """The container arguments that give `step`'s script its pipeline parameters (steps/parameter_table.py)."""
    arguments = []
    for param, to in parameter_table.received(step):
        if param.name not in p.declared or (only and param.name not in only) or param.name in but:
            continue
        if to.via == parameter_table.JOINED:
            arguments.append(option(to.option, argument_text(p[param.name])))
        elif to.via == parameter_table.ARGUMENT:
            arguments += [to.option, argument_text(p[param.name])]
    return arguments


def training_parameters(p: Parameters) -> tuple[dict, dict]:
    """The training job's hyperparameters (numbers) and environment (free text) from the pipeline parameters."""
    hyperparameters, environment = {}, {}
    for param, to in parameter_table.received("train"):
        if to.via == parameter_table.HYPERPARAMETER:
            hyperparameters[parameter_table.dest(to)] = p[param.name].to_string()
        elif to.via == parameter_table.ENVIRONMENT:
            environment[to.variable] = p[param.name]
    return hyperparameters, environment


def output_uri(settings: Settings, name: str) -> Join:
    """A per-execution S3 location, so runs never overwrite each other."""
    return Join(on="/", values=[settings.s3_root, "runs", ExecutionVariables.PIPELINE_EXECUTION_ID, name])


def s3_input(name: str, uri, local_path: str) -> ProcessingInput:
    return ProcessingInput(
        input_name=name,
        s3_input=ProcessingS3Input(s3_uri=uri, local_path=local_path, s3_data_type="S3Prefix", s3_input_mode="File"),
    )


def s3_output(name: str, uri, local_path: str) -> ProcessingOutput:
    return ProcessingOutput(
        output_name=name, s3_output=ProcessingS3Output(s3_uri=uri, local_path=local_path, s3_upload_mode="EndOfJob")
    )


def processor(settings: Settings, session: RegulaSession, p: Parameters, job: str) -> ScriptProcessor:
    return ScriptProcessor(
        role=settings.role_arn,
        image_uri=processing_image(settings),
        command=["python3"],
        instance_type=p["ProcessingInstanceType"],
        instance_count=1,
        base_job_name=f"{settings.pipeline_name}-{job}",
        env={"PYTHONPATH": LIB_DIR},
        sagemaker_session=session,
        max_runtime_in_seconds=p["MaxRuntimeSeconds"],
        volume_kms_key=settings.kms_key_id,
        output_kms_key=settings.kms_key_id,
        network_config=NetworkConfig(
            subnets=list(settings.subnets) or None,
            security_group_ids=list(settings.security_group_ids) or None,
            enable_network_isolation=settings.network_isolation,
        ),
        tags=job_tags(settings),
    )


def processing_image(settings: Settings) -> str:
    """The Regula image (containers/steps): AWS's PyTorch SageMaker image with every import of the steps."""
    return settings.steps_image


def training_image(settings: Settings) -> str:
    """The CPU image, or its GPU build when rendered with --training-device gpu."""
    return settings.training_image


def inference_image(settings: Settings) -> str:
    """The same image serves the registered model (its `serve` runs code/serve.py from the artifact): AWS's PyTorch
    inference images end at 2.6, whose support has ended."""
    return settings.steps_image


def metrics_arguments(p: Parameters, step: str, per_execution: bool = True) -> list:
    """Where a processing script sends its CloudWatch metrics, and under which dimensions. The execution id in the
    arguments makes every execution's step different: a step that should be cached leaves it out."""
    execution = ["--execution-id", ExecutionVariables.PIPELINE_EXECUTION_ID] if per_execution else []
    return [
        *parameter_arguments(p, step, only=METRICS),
        "--pipeline-name",
        ExecutionVariables.PIPELINE_NAME,
        *execution,
    ]


def option(name: str, value) -> Join:
    """`--name=value` as one argument: a parameter's value that begins with `-` (a column named -x) stays a value."""
    return Join(on="=", values=[name, value])


def shared_code() -> list[str]:
    """The files of the `steps` package that every job may import: all but the entry scripts."""
    folder = Path(STEPS_DIR)
    files = [p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    return sorted(name for name in (p.relative_to(folder).as_posix() for p in files) if name not in ENTRY_SCRIPTS)


def upload_code(session: RegulaSession, entry_script: str | None = None, model: Path | None = None) -> str:
    """The shared modules as the package `steps/`, with one entry script beside it where given (it imports them as
    `steps.<name>`, as everywhere), as one content-addressed folder. Each job's code holds only its own entry script:
    a change to evaluate.py leaves Preprocess's and training's inputs, so their cache keys
    (pipelines/local/engine/cache.py), as they were. A change to a shared module changes every job's code."""
    files = {f"{STEPS_DIR}/{name}": Path(STEPS_DIR) / name for name in shared_code()}
    if entry_script:
        files[entry_script] = Path(STEPS_DIR) / entry_script
    files.update(model_code_files(model))
    return session.upload_files(files)


def model_code_files(path: Path | None) -> dict[str, Path]:
    """The team's model code (rendered with --model-code) as `model_code/...` beside train.py: a file, or a folder's
    files; content-addressed with the rest, so changed model code changes training's cache key."""
    if path is None:
        return {}
    root, entry, folder = model_code.locate(path)
    files = model_code.code_files(root, entry, folder)
    return {f"{model_code.PACKED}/{p.relative_to(root).as_posix()}": p for p in files}


def model_code_hyperparameter(settings: Settings) -> dict[str, str]:
    """train.py's --model_code: where the team's entry file is in the job's code (a literal fixed at render time)."""
    if not settings.model_code:
        return {}
    return {"model_code": f"{model_code.PACKED}/{model_code.locate(settings.model_code)[1]}"}


def cache(settings: Settings) -> CacheConfig:
    """Step caching: an execution reuses a step's result when its cache key (image, arguments, environment, inputs:
    code is content-addressed, so unchanged code keeps its URI) matches a successful run younger than the expiry."""
    return CacheConfig(enable_caching=True, expire_after=settings.cache_expire_after)


def job_retries() -> list:
    return [
        SageMakerJobStepRetryPolicy(
            exception_types=[
                SageMakerJobExceptionTypeEnum.INTERNAL_ERROR,
                SageMakerJobExceptionTypeEnum.CAPACITY_ERROR,
                SageMakerJobExceptionTypeEnum.RESOURCE_LIMIT,
            ],
            **JOB_RETRY,
        ),
        *call_retries(),
    ]


def call_retries() -> list:
    return [
        StepRetryPolicy(
            exception_types=[StepExceptionTypeEnum.SERVICE_FAULT, StepExceptionTypeEnum.THROTTLING], **CALL_RETRY
        )
    ]


def job_tags(settings: Settings) -> list[dict] | None:
    return [{"Key": k, "Value": v} for k, v in settings.tags] or None


def checked_parameters(p: Parameters) -> list:
    """`--check Name=value` for every parameter with limits: the first step refuses bad values before any data is
    read, whoever started the execution (console, API, CI)."""
    # the free text that reaches Preprocess as its own option is checked there as that option (InputDataUri, the
    # job's input, is not: SageMaker checks its S3Uri)
    own = {param.name for param, _ in parameter_table.received("preprocess") if param.rule}
    limited = {param.name for param in parameter_table.TABLE if param.limit or param.choices or param.rule} - own
    return [
        item
        for param in p.all()
        if param.name in limited
        for item in ("--check", Join(on="=", values=[param.name, param]))
    ]


def split_uri(preprocess: ProcessingStep, split: str):
    return preprocess.properties.ProcessingOutputConfig.Outputs[split].S3Output.S3Uri


def evaluation_folder(evaluate: ProcessingStep):
    return evaluate.properties.ProcessingOutputConfig.Outputs["evaluation"].S3Output.S3Uri


def evaluation_value(evaluate: ProcessingStep, report: PropertyFile, path: str) -> JsonGet:
    return JsonGet(step_name=evaluate.name, property_file=report, json_path=path)
