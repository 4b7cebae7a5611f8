"""The Regula pipeline, one function per step.

    Preprocess -> TrainRound1 -> EvaluateRound1 -> CheckRound1
        decision register or candidate:  RegisterRound1 -> AcceptedRound1? (candidate: CandidateRound1, fail)
        else OverfitsRound1?  decision overfit or borderline: TrainRound2 -> EvaluateRound2 -> CheckRound2 ...
                              else:             UnderfitRound1 (fail: more regularization cannot help)
    ... the last round's overfit branch is StillOverfitting (fail, with the evaluation's reason).

The decision and its reason are computed once, by the evaluation step (`steps/quality.py`), and written to
evaluation.json; the conditions only compare that value, and the Fail steps quote the reason.

The ladder is unrolled (a pipeline graph is acyclic) and bounded by `Settings.rounds`. Every round gets the
earlier rounds' evaluation reports as inputs: the training script picks the round's regularization from the gaps
they measured (`steps/regularization.py`: strictly stronger, bounded), and the evaluation script names, and with
RegisterBestCandidate=yes registers for review, the best round when the run gives up. The register step reads what
it registers (model, metrics, metadata) from the evaluation's `selected` block.

Importing this module imports the SageMaker SDK (seconds): only the commands
that render a definition import it.
"""

from __future__ import annotations

import os
from pathlib import Path

from pipelines.definition.sdk import IMPORT_REGION

os.environ.setdefault(
    "AWS_DEFAULT_REGION", IMPORT_REGION
)  # the SDK builds a client at import (pipelines/definition/sdk.py)

from sagemaker.core.model_metrics import MetricsSource, ModelMetrics
from sagemaker.core.network import NetworkConfig
from sagemaker.core.processing import ScriptProcessor
from sagemaker.core.shapes import (
    MetricDefinition,
    ProcessingInput,
    ProcessingOutput,
    ProcessingS3Input,
    ProcessingS3Output,
    Tag,
)
from sagemaker.core.training.configs import (
    CheckpointConfig,
    Compute,
    InputData,
    Networking,
    OutputDataConfig,
    SourceCode,
)
from sagemaker.core.workflow.conditions import ConditionEquals, ConditionIn
from sagemaker.core.workflow.execution_variables import ExecutionVariables
from sagemaker.core.workflow.functions import Join, JsonGet
from sagemaker.core.workflow.parameters import ParameterFloat, ParameterInteger, ParameterString
from sagemaker.core.workflow.properties import PropertyFile
from sagemaker.mlops.workflow.condition_step import ConditionStep
from sagemaker.mlops.workflow.fail_step import FailStep
from sagemaker.mlops.workflow.model_step import ModelStep
from sagemaker.mlops.workflow.pipeline import Pipeline
from sagemaker.mlops.workflow.retry import (
    SageMakerJobExceptionTypeEnum,
    SageMakerJobStepRetryPolicy,
    StepExceptionTypeEnum,
    StepRetryPolicy,
)
from sagemaker.mlops.workflow.steps import CacheConfig, ProcessingStep, TrainingStep
from sagemaker.serve.model_builder import ModelBuilder
from sagemaker.train.distributed import Torchrun
from sagemaker.train.model_trainer import ModelTrainer

from pipelines.definition import sdk
from pipelines.definition.session import RegulaSession
from pipelines.settings import Settings
from steps import defaults as d
from steps import model_code, parameter_table, parameters, serving_code
from steps.quality import RETRAIN

STEPS_DIR = "steps"  # the package, relative to the repository root where render() runs, and its name in the jobs
ENTRY_SCRIPTS = ("preprocess.py", "train.py", "evaluate.py")  # what the jobs run; every other file is shared
LIB_DIR = "/opt/ml/processing/input/lib"  # on the processing jobs' PYTHONPATH: holds the shared `steps` package
EARLIER_DIR = "/opt/ml/processing/earlier"  # the earlier rounds' evaluations, one folder per round
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


def preprocess_step(settings: Settings, session: RegulaSession, p: Parameters, lib_uri: str) -> ProcessingStep:
    args = processor(settings, session, p, "preprocess").run(
        code=f"{STEPS_DIR}/preprocess.py",
        inputs=[
            s3_input("data", p["InputDataUri"], "/opt/ml/processing/input/data"),
            s3_input("lib", lib_uri, LIB_DIR),
        ],
        outputs=[
            s3_output(split, output_uri(settings, split), f"/opt/ml/processing/output/{split}")
            for split in ("train", "validation", "test")
        ],
        arguments=[
            "--input",
            "/opt/ml/processing/input/data",
            "--output-dir",
            "/opt/ml/processing/output",
            *parameter_arguments(p, "preprocess", but=METRICS),
            *metrics_arguments(p, "preprocess", per_execution=False),
            *checked_parameters(p),
        ],
    )
    return ProcessingStep(name="Preprocess", step_args=args, cache_config=cache(settings), retry_policies=job_retries())


def split_uri(preprocess: ProcessingStep, split: str):
    return preprocess.properties.ProcessingOutputConfig.Outputs[split].S3Output.S3Uri


def evaluation_folder(evaluate: ProcessingStep):
    return evaluate.properties.ProcessingOutputConfig.Outputs["evaluation"].S3Output.S3Uri


def train_step(
    settings: Settings,
    session: RegulaSession,
    p: Parameters,
    preprocess: ProcessingStep,
    earlier: list[ProcessingStep],
    round_: int,
) -> TrainingStep:
    hyperparameters, environment = training_parameters(p)
    trainer = ModelTrainer(
        sagemaker_session=session,
        role=settings.role_arn,
        training_image=training_image(settings),
        # what the image was built for: `regula start` and train.py refuse an instance type it cannot use. The free
        # text parameters travel in the job's environment, never as hyperparameters: ModelTrainer's driver writes
        # those into a file the container's shell sources, unescaped (docs/parameters.md)
        environment={
            parameters.TRAINING_DEVICE_VARIABLE: settings.training_device,
            **environment,
        },
        # an S3 folder of the shared modules and train.py: not steps/, which holds the other steps' scripts too
        source_code=SourceCode(
            source_dir=upload_code(session, "train.py", Path(settings.model_code) if settings.model_code else None),
            entry_script="train.py",
        ),
        compute=Compute(
            instance_type=p["TrainingInstanceType"],
            instance_count=p["TrainingInstanceCount"],
            volume_kms_key_id=settings.kms_key_id,
            enable_managed_spot_training=True if settings.spot else None,
        ),
        output_data_config=OutputDataConfig(
            s3_output_path=output_uri(settings, f"train-round{round_}"), kms_key_id=settings.kms_key_id
        ),
        # Not per execution: CheckpointConfig is part of the step's cache key. train.py keeps a fingerprint of its
        # inputs in the checkpoint and resumes only from its own.
        checkpoint_config=CheckpointConfig(
            s3_uri=f"{settings.s3_root}/checkpoints/round{round_}", local_path=d.CHECKPOINT_DIR
        ),
        networking=Networking(
            subnets=list(settings.subnets) or None,
            security_group_ids=list(settings.security_group_ids) or None,
            enable_network_isolation=settings.network_isolation or None,
        )
        if settings.subnets or settings.network_isolation
        else None,
        tags=[Tag(key=k, value=v) for k, v in settings.tags] or None,
        distributed=Torchrun(),  # one process per GPU (or one per CPU instance), across all instances
        base_job_name=f"{settings.pipeline_name}-train-round{round_}",
        hyperparameters={
            "round": str(round_),
            **hyperparameters,
            "rounds": str(settings.rounds),  # the overfitting notice says whether a round is left
            "pipeline_name": ExecutionVariables.PIPELINE_NAME,
            "checkpoint_dir": d.CHECKPOINT_DIR,  # said, not assumed: the job creates it if SageMaker has not
            **model_code_hyperparameter(settings),
        },
    ).with_metric_definitions(
        [MetricDefinition(name=name, regex=rf"{key}=([-+0-9.eE]+);") for name, key in EPOCH_METRICS.items()]
    )
    args = trainer.train(
        input_data_config=[
            *[InputData(channel_name=s, data_source=split_uri(preprocess, s)) for s in ("train", "validation")],
            # the earlier rounds' evaluations: the gaps this round's regularization is chosen from
            *[InputData(channel_name=f"round{i}", data_source=evaluation_folder(e)) for i, e in enumerate(earlier, 1)],
        ]
    )
    stopping = {
        "MaxRuntimeInSeconds": p["MaxRuntimeSeconds"],
        **({"MaxWaitTimeInSeconds": p["MaxWaitSeconds"]} if settings.spot else {}),
    }
    step_class = sdk.training_step_class(stopping)  # parameters where ModelTrainer takes literals only
    return step_class(
        name=f"TrainRound{round_}", step_args=args, cache_config=cache(settings), retry_policies=job_retries()
    )


def evaluate_step(
    settings: Settings,
    session: RegulaSession,
    p: Parameters,
    preprocess: ProcessingStep,
    train: TrainingStep,
    earlier: list[ProcessingStep],
    lib_uri: str,
    round_: int,
) -> tuple[ProcessingStep, PropertyFile]:
    report = PropertyFile(name=f"EvaluationRound{round_}", output_name="evaluation", path="evaluation.json")
    folder = output_uri(settings, f"evaluation-round{round_}")
    args = processor(settings, session, p, "evaluate").run(
        code=f"{STEPS_DIR}/evaluate.py",
        inputs=[
            s3_input("model", train.properties.ModelArtifacts.S3ModelArtifacts, "/opt/ml/processing/model"),
            *[
                s3_input(split, split_uri(preprocess, split), f"/opt/ml/processing/{split}")
                for split in ("train", "validation", "test")
            ],
            s3_input("lib", lib_uri, LIB_DIR),
            *[s3_input(f"round{i}", evaluation_folder(e), f"{EARLIER_DIR}/round{i}") for i, e in enumerate(earlier, 1)],
        ],
        outputs=[s3_output("evaluation", folder, "/opt/ml/processing/evaluation")],
        arguments=[
            "--model-dir",
            "/opt/ml/processing/model",
            "--data-dir",
            "/opt/ml/processing",
            "--output-dir",
            "/opt/ml/processing/evaluation",
            *parameter_arguments(p, "evaluate", but=METRICS),
            "--model-uri",
            train.properties.ModelArtifacts.S3ModelArtifacts,
            "--evaluation-uri",
            Join(on="/", values=[folder, "evaluation.json"]),
            *(["--earlier", EARLIER_DIR] if earlier else []),
            *(["--final-round"] if round_ == settings.rounds else []),
            *metrics_arguments(p, "evaluate"),
        ],
    )
    step = ProcessingStep(
        name=f"EvaluateRound{round_}",
        step_args=args,
        property_files=[report],
        cache_config=cache(settings),  # its arguments hold the execution's output folder: a hit only on a retry
        retry_policies=job_retries(),
    )
    return step, report


def evaluation_value(evaluate: ProcessingStep, report: PropertyFile, path: str) -> JsonGet:
    return JsonGet(step_name=evaluate.name, property_file=report, json_path=path)


def register_step(
    settings: Settings,
    session: RegulaSession,
    p: Parameters,
    evaluate: ProcessingStep,
    report: PropertyFile,
    round_: int,
) -> ModelStep:
    """Registers the evaluation's `selected` round: this round when accepted, else the best candidate."""

    def selected(path: str) -> JsonGet:
        return evaluation_value(evaluate, report, f"selected.{path}")

    builder = ModelBuilder(
        s3_model_data_url=selected("model_uri"),
        image_uri=inference_image(settings),
        env_vars={"SAGEMAKER_PROGRAM": serving_code.PROGRAM, "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code"},
        sagemaker_session=session,
        role_arn=settings.role_arn,
    )
    as_text = lambda value: Join(on="", values=[value])  # noqa: E731 - metadata values must be strings
    args = builder.register(
        model_package_group_name=p["ModelPackageGroupName"],
        approval_status=p["ModelApprovalStatus"],
        content_types=["text/csv", "application/json"],
        response_types=["application/json"],
        inference_instances=["ml.m5.large", "ml.m5.xlarge"],
        transform_instances=["ml.m5.large"],
        model_metrics=ModelMetrics(
            model_statistics=MetricsSource(s3_uri=selected("evaluation_uri"), content_type="application/json")
        ),
        customer_metadata_properties={
            "regula:round": as_text(selected("round")),
            "regula:accepted": as_text(selected("accepted")),
            "regula:decision": as_text(evaluation_value(evaluate, report, "decision")),
            "regula:problem_type": as_text(evaluation_value(evaluate, report, "problem_type")),
            "regula:gap": as_text(selected("gap")),
            "regula:gap_se": as_text(selected("gap_se")),
            "regula:max_gap": p["MaxGap"].to_string(),
            "regula:quality_metric": as_text(selected("quality.metric")),
            "regula:val_quality": as_text(selected("quality.validation")),
            "regula:baseline_quality": as_text(selected("quality.baseline")),
            "regula:test_quality": as_text(selected("quality.test")),
            "regula:min_lift": p["MinLift"].to_string(),
            "regula:min_quality": p["MinQuality"].to_string(),
            "regula:artifact_sha256": as_text(selected("artifact_sha256")),
            "regula:model_code_sha256": as_text(selected("model.code_sha256")),
            # the round's effective regularization, as the training script computed it
            "regula:dropout": as_text(selected("regularization.dropout")),
            "regula:l1": as_text(selected("regularization.l1")),
            "regula:l2": as_text(selected("regularization.l2")),
            "regula:code_version": p["CodeVersion"],
            "regula:execution": ExecutionVariables.PIPELINE_EXECUTION_ID,
            # what it predicts, from which table: a group shared by several tables stays readable (models list)
            "regula:target": p["TargetColumn"],
            "regula:data": as_text(evaluation_value(evaluate, report, "data")),
        },
        description=f"Regula model, registered after regularization round {round_}",
    )
    return ModelStep(name=f"RegisterRound{round_}", step_args=args, retry_policies=call_retries())


def fail_step(name: str, *message) -> FailStep:
    """A FailStep whose message joins literal text and pipeline values."""
    return FailStep(name=name, error_message=Join(on="", values=list(message)))


def still_overfitting_step(evaluate: ProcessingStep, report: PropertyFile, rounds: int) -> FailStep:
    return fail_step(
        "StillOverfitting",
        f"The model still overfits after {rounds} rounds of stronger regularization: ",
        evaluation_value(evaluate, report, "reason"),
        ". Raise RegularizationGrowth, add data, use a smaller model (HiddenLayers), or, where this gap is acceptable "
        "(on small tables it is noisy), raise MaxGap.",
    )


def underfit_step(evaluate: ProcessingStep, report: PropertyFile, round_: int) -> FailStep:
    return fail_step(
        f"UnderfitRound{round_}",
        f"Round {round_} is not good enough: ",
        evaluation_value(evaluate, report, "reason"),
    )


def not_accepted_step(evaluate: ProcessingStep, report: PropertyFile, register: ModelStep, round_: int):
    """After registering a candidate for review, the run still fails: no round was accepted."""
    return ConditionStep(
        name=f"AcceptedRound{round_}",
        depends_on=[register],
        conditions=[ConditionEquals(left=evaluation_value(evaluate, report, "decision"), right="register")],
        if_steps=[],
        else_steps=[
            fail_step(
                f"CandidateRound{round_}", "No round was accepted: ", evaluation_value(evaluate, report, "reason")
            )
        ],
    )


def round_steps(
    settings: Settings,
    session: RegulaSession,
    p: Parameters,
    preprocess: ProcessingStep,
    lib_uri: str,
    earlier: list[ProcessingStep],
) -> list:
    """Train, evaluate and branch on the evaluation's decision for one round; the overfit branch holds all later
    rounds."""
    round_ = len(earlier) + 1
    train = train_step(settings, session, p, preprocess, earlier, round_)
    evaluate, report = evaluate_step(settings, session, p, preprocess, train, earlier, lib_uri, round_)
    decision = evaluation_value(evaluate, report, "decision")
    if round_ < settings.rounds:
        retrain = round_steps(settings, session, p, preprocess, lib_uri, [*earlier, evaluate])
    else:
        retrain = [still_overfitting_step(evaluate, report, settings.rounds)]
    overfits = ConditionStep(
        name=f"OverfitsRound{round_}",
        conditions=[ConditionIn(value=decision, in_values=list(RETRAIN))],
        if_steps=retrain,
        else_steps=[underfit_step(evaluate, report, round_)],
    )
    register = register_step(settings, session, p, evaluate, report, round_)
    check = ConditionStep(
        name=f"CheckRound{round_}",
        conditions=[ConditionIn(value=decision, in_values=["register", "candidate"])],
        if_steps=[register, not_accepted_step(evaluate, report, register, round_)],
        else_steps=[overfits],
    )
    return [train, evaluate, check]


def build_pipeline(settings: Settings, session: RegulaSession) -> Pipeline:
    p = Parameters(settings)
    lib_uri = upload_code(session)
    preprocess = preprocess_step(settings, session, p, lib_uri)
    return Pipeline(
        name=settings.pipeline_name,
        parameters=p.all(),
        steps=[preprocess, *round_steps(settings, session, p, preprocess, lib_uri, [])],
        sagemaker_session=session,
    )
