"""The Regula pipeline, one function per step.

    Preprocess -> TrainRound1 -> EvaluateRound1 -> CheckRound1
        decision register or candidate:  RefitRound1 -> EvaluateRefitRound1 -> RegisterRound1
                                         -> AcceptedRound1? (candidate: CandidateRound1, fail)
        else OverfitsRound1?  decision overfit or collapsed: TrainRound2 -> EvaluateRound2 -> CheckRound2 ...
                              else:             UnderfitRound1 (fail: more regularization cannot help)
    ... the last round's overfit branch is StillOverfitting (fail, with the evaluation's reason).

The decision and its reason are computed once, by the evaluation step (`steps/quality.py`), and written to
evaluation.json; the conditions only compare that value, and the Fail steps quote the reason.

The ladder is unrolled (a pipeline graph is acyclic) and bounded by `Settings.rounds`. Every round gets the
earlier rounds' evaluation reports as inputs: the training script picks the round's regularization from the gaps
they measured (`steps/regularization.py`: strictly stronger, bounded), and the evaluation script names, and with
RegisterBestCandidate=yes registers for review, the best round when the run gives up. The register step reads what
it registers (model, metrics, metadata) from the `selected` block of the refit's evaluation: RefitRoundK trains the
selected round's options again on the training and validation rows (Refit=yes; steps/refit.py), and
EvaluateRefitRoundK keeps the deciding evaluation with the refit model selected where it scores as it should.

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
from sagemaker.core.shapes import (
    MetricDefinition,
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
from sagemaker.core.workflow.conditions import ConditionIn
from sagemaker.core.workflow.execution_variables import ExecutionVariables
from sagemaker.core.workflow.functions import Join, JsonGet
from sagemaker.core.workflow.properties import PropertyFile
from sagemaker.mlops.workflow.condition_step import ConditionStep
from sagemaker.mlops.workflow.model_step import ModelStep
from sagemaker.mlops.workflow.pipeline import Pipeline
from sagemaker.mlops.workflow.steps import ProcessingStep, TrainingStep
from sagemaker.serve.model_builder import ModelBuilder
from sagemaker.train.distributed import Torchrun
from sagemaker.train.model_trainer import ModelTrainer

from pipelines.definition import sdk
from pipelines.definition.jobs import (
    DECIDED_DIR,
    EARLIER_DIR,
    EPOCH_METRICS,
    LIB_DIR,
    METRICS,
    STEPS_DIR,
    Parameters,
    cache,
    call_retries,
    checked_parameters,
    evaluation_folder,
    evaluation_value,
    inference_image,
    job_retries,
    metrics_arguments,
    model_code_hyperparameter,
    output_uri,
    parameter_arguments,
    processor,
    s3_input,
    s3_output,
    split_uri,
    training_image,
    training_parameters,
    upload_code,
)
from pipelines.definition.ladder import not_accepted_step, still_overfitting_step, underfit_step
from pipelines.definition.session import RegulaSession
from pipelines.settings import Settings
from steps import defaults as d
from steps import parameters, serving_code
from steps.quality import RETRAIN


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


def train_step(
    settings: Settings,
    session: RegulaSession,
    p: Parameters,
    preprocess: ProcessingStep,
    earlier: list[ProcessingStep],
    round_: int,
    selected: JsonGet | None = None,
) -> TrainingStep:
    """TrainRoundK, or with `selected` (the deciding evaluation's selected model) RefitRoundK: that model's options
    trained again on the training and validation rows."""
    # the refit's output beside the rounds': the policies let jobs write models under runs/*/train-round*
    job = f"train-round{round_}-refit" if selected is not None else f"train-round{round_}"
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
        output_data_config=OutputDataConfig(s3_output_path=output_uri(settings, job), kms_key_id=settings.kms_key_id),
        # Not per execution: CheckpointConfig is part of the step's cache key. train.py keeps a fingerprint of its
        # inputs in the checkpoint and resumes only from its own. The trailing slash: S3 prefixes match by
        # characters, and round1 would also sync round1-refit's (and round10's) checkpoints.
        checkpoint_config=CheckpointConfig(
            s3_uri=f"{settings.s3_root}/checkpoints/{job.removeprefix('train-')}/", local_path=d.CHECKPOINT_DIR
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
        base_job_name=f"{settings.pipeline_name}-{job}",
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
            # a refit's: the selected round's model.tar.gz, whose config holds its options and best epoch
            *([InputData(channel_name="selected", data_source=selected)] if selected is not None else []),
        ]
    )
    stopping = {
        "MaxRuntimeInSeconds": p["MaxRuntimeSeconds"],
        **({"MaxWaitTimeInSeconds": p["MaxWaitSeconds"]} if settings.spot else {}),
    }
    step_class = sdk.training_step_class(stopping)  # parameters where ModelTrainer takes literals only
    name = f"RefitRound{round_}" if selected is not None else f"TrainRound{round_}"
    return step_class(name=name, step_args=args, cache_config=cache(settings), retry_policies=job_retries())


def evaluate_step(
    settings: Settings,
    session: RegulaSession,
    p: Parameters,
    preprocess: ProcessingStep,
    train: TrainingStep,
    earlier: list[ProcessingStep],
    lib_uri: str,
    round_: int,
    decided: ProcessingStep | None = None,
) -> tuple[ProcessingStep, PropertyFile]:
    """EvaluateRoundK, or with `decided` (that round's evaluation; `train` is the refit) EvaluateRefitRoundK."""
    kind = "Refit" if decided is not None else ""
    report = PropertyFile(name=f"Evaluation{kind}Round{round_}", output_name="evaluation", path="evaluation.json")
    folder = output_uri(settings, f"evaluation-{kind.lower()}{'-' if kind else ''}round{round_}")
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
            *([s3_input("decided", evaluation_folder(decided), DECIDED_DIR)] if decided is not None else []),
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
            *(["--earlier", EARLIER_DIR] if earlier and decided is None else []),
            *(["--final-round"] if round_ == settings.rounds and decided is None else []),
            *(["--refit-of", DECIDED_DIR] if decided is not None else []),
            *metrics_arguments(p, "evaluate"),
        ],
    )
    step = ProcessingStep(
        name=f"Evaluate{kind}Round{round_}",
        step_args=args,
        property_files=[report],
        cache_config=cache(settings),  # its arguments hold the execution's output folder: a hit only on a retry
        retry_policies=job_retries(),
    )
    return step, report


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
            "regula:gap_limit": as_text(selected("gap_limit")),  # MaxGap, or the linear reference's gap that excused it
            "regula:quality_metric": as_text(selected("quality.metric")),
            "regula:val_quality": as_text(selected("quality.validation")),
            "regula:baseline_quality": as_text(selected("quality.baseline")),
            "regula:test_quality": as_text(selected("quality.test")),
            "regula:min_lift": p["MinLift"].to_string(),
            "regula:min_quality": p["MinQuality"].to_string(),
            "regula:artifact_sha256": as_text(selected("artifact_sha256")),
            # true: the round retrained on training + validation rows (steps/refit.py); the test figures are its
            "regula:refit": as_text(selected("refit")),
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
    selected_model = evaluation_value(evaluate, report, "selected.model_uri")
    refit = train_step(settings, session, p, preprocess, [], round_, selected=selected_model)
    refit_evaluate, refit_report = evaluate_step(
        settings, session, p, preprocess, refit, [], lib_uri, round_, decided=evaluate
    )
    register = register_step(settings, session, p, refit_evaluate, refit_report, round_)
    check = ConditionStep(
        name=f"CheckRound{round_}",
        conditions=[ConditionIn(value=decision, in_values=["register", "candidate"])],
        if_steps=[refit, refit_evaluate, register, not_accepted_step(refit_evaluate, refit_report, register, round_)],
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
