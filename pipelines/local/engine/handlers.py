"""What the local runner does for each kind of step: a handler gets the step's definition, its resolved arguments and
a StepEnvironment, and returns a StepResult; it never touches the execution (pipelines/local/engine/runner.py records
the result).

Processing and Training jobs are pipelines/local/engine/jobs.py's, RegisterModel calls the SageMaker API (moto
locally), a Condition says which branch runs next, Fail ends the execution with its message.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.local.engine import layout
from pipelines.local.engine.errors import STEP_ERRORS
from pipelines.local.engine.expressions import Context, evaluate_condition, to_text
from pipelines.local.engine.jobs import ContainerJob
from pipelines.local.engine.step_types import StepType


@dataclass(frozen=True)
class StepEnvironment:
    """What a handler may use: where the run is, the clients, the jobs' environment and how their lines are shown.
    `ctx` is read only (a condition evaluates against it); `interrupts`: the spot-interruption test hook's plan
    (pipelines/local/engine/hooks.py), step -> when."""

    pipeline_name: str
    execution_id: str
    run_dir: Path
    s3: Any
    sagemaker: Any
    ctx: Context
    env: dict[str, str] = field(default_factory=dict)
    echo: Callable[[str], None] = print
    job_echo: Callable[[str], None] = print
    verbose: bool = False
    interrupts: dict[str, str] = field(default_factory=dict)


@dataclass
class StepResult:
    """What a step did: the runner records it in the execution."""

    properties: dict | None = None  # the step's properties, for the expressions of the steps after it
    branch: list[dict] | None = None  # a condition's: the steps to run next
    outcome: str = ""  # a condition's: "True" or "False"
    failure: str | None = None  # a Fail step's message (an empty one too): the execution fails with it
    error: BaseException | None = None  # what failed this attempt (retried where a RetryPolicy says so)
    job_name: str = ""
    log: str = ""
    process_seconds: float = 0.0  # the time the job's own processes ran
    cached_from: str = ""  # a cache hit: the run folder whose result this is
    cache_source_execution: str = ""  # and its execution (SageMaker's CacheHitResult.SourcePipelineExecutionArn)


Handler = Callable[[dict, Any, StepEnvironment], StepResult]


def condition(step: dict, args: dict, env: StepEnvironment) -> StepResult:
    """`args`: the step's own arguments, unresolved: each condition resolves its operands when it is evaluated (an Or
    or the conditions' And stops at the first that decides)."""
    outcome = all(evaluate_condition(c, env.ctx) for c in args["Conditions"])
    branch = args["IfSteps"] if outcome else args["ElseSteps"]
    return StepResult(properties={"Outcome": outcome}, branch=branch, outcome=str(outcome))


def fail(step: dict, args: dict, env: StepEnvironment) -> StepResult:
    return StepResult(failure=to_text(args.get("ErrorMessage", "")))


def register_model(step: dict, args: dict, env: StepEnvironment) -> StepResult:
    group = args["ModelPackageGroupName"]
    sagemaker = env.sagemaker
    try:
        sagemaker.describe_model_package_group(ModelPackageGroupName=group)
    except sagemaker.exceptions.ClientError:
        sagemaker.create_model_package_group(
            ModelPackageGroupName=group, ModelPackageGroupDescription="Models registered by Regula"
        )
    arn = sagemaker.create_model_package(**args)["ModelPackageArn"]
    env.echo(f"   registered {arn}")
    return StepResult(properties={"ModelPackageArn": arn})


def container_job(step: dict, args: dict, env: StepEnvironment) -> StepResult:
    """A Processing or Training job (pipelines/local/engine/jobs.py): `args` resolved from the definition marked with
    jobs.definition_text, which says which /opt/ml paths are the definition's. A failed job's log and time are in
    the result too."""
    name = step["Name"]
    job = ContainerJob(
        job_name(env.pipeline_name, name, env.execution_id),
        layout.job_root(env.run_dir, name),
        layout.job_log(env.run_dir, name),
        env.s3,
        env.env,
        env.job_echo,
        env.verbose,
        interrupt=env.interrupts.get(name),
    )
    result = StepResult(job_name=job.name)
    try:
        run = job.processing if step["Type"] == StepType.PROCESSING else job.training
        result.properties = run(args)
    except STEP_ERRORS as error:
        result.error = error
    result.log, result.process_seconds = job.log, job.seconds
    return result


def job_name(pipeline_name: str, step_name: str, execution_id: str) -> str:
    """The job's name, as SageMaker's pipelines name them: at most 63 characters of letters, digits and hyphens."""
    return re.sub(r"[^a-zA-Z0-9-]", "-", f"{pipeline_name}-{step_name}-{execution_id}")[:63]


# the step types the local runner supports, and what it does for each
HANDLERS: dict[StepType, Callable[..., StepResult]] = {
    StepType.PROCESSING: container_job,
    StepType.TRAINING: container_job,
    StepType.REGISTER_MODEL: register_model,
    StepType.CONDITION: condition,
    StepType.FAIL: fail,
}
