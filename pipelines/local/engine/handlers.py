"""What the local runner does for each kind of step (pipelines/local/engine/runner.py walks the DAG and calls these).

Each handler takes the runner (its execution, context, clients and run folder), the step's definition and its
record; a Condition returns the branch to run next. Processing and Training jobs are pipelines/local/engine/jobs.py's,
RegisterModel calls the SageMaker API (moto locally), Fail ends the execution with its message.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from pipelines.local.engine import expressions
from pipelines.local.engine import layout as run_layout
from pipelines.local.engine.expressions import evaluate_condition, resolve
from pipelines.local.engine.jobs import ContainerJob, definition_text

if TYPE_CHECKING:
    from pipelines.local.engine.records import Runner as LocalRunner
    from pipelines.local.engine.records import StepRecord


def condition(runner: LocalRunner, step: dict, record: StepRecord) -> list[dict]:
    args = step["Arguments"]
    outcome = all(evaluate_condition(c, runner.ctx) for c in args["Conditions"])
    record.outcome = str(outcome)
    runner.execution.properties[step["Name"]] = {"Outcome": outcome}
    return args["IfSteps"] if outcome else args["ElseSteps"]


def fail(runner: LocalRunner, step: dict, record: StepRecord) -> None:
    message = expressions.to_text(resolve(step["Arguments"].get("ErrorMessage", ""), runner.ctx))
    record.failure_reason = message
    runner.execution.status = "Failed"
    runner.execution.failure_reason = message
    runner.execution.failed_step = step["Name"]


def register_model(runner: LocalRunner, step: dict, record: StepRecord) -> None:
    args = resolve(step["Arguments"], runner.ctx)
    group = args["ModelPackageGroupName"]
    sagemaker = runner.sagemaker
    try:
        sagemaker.describe_model_package_group(ModelPackageGroupName=group)
    except sagemaker.exceptions.ClientError:
        sagemaker.create_model_package_group(
            ModelPackageGroupName=group, ModelPackageGroupDescription="Models registered by Regula"
        )
    arn = sagemaker.create_model_package(**args)["ModelPackageArn"]
    runner.execution.properties[step["Name"]] = {"ModelPackageArn": arn}
    runner.echo(f"   registered {arn}")


def container_job(runner: LocalRunner, step: dict, record: StepRecord) -> None:
    """A Processing or Training job: its container contract and processes are pipelines/local/engine/jobs.py's."""
    args = resolve(definition_text(step["Arguments"]), runner.ctx)  # which /opt/ml paths are the definition's
    name = step["Name"]
    record.job_name = job_name(runner, name)
    job = ContainerJob(
        record.job_name,
        run_layout.job_root(runner.run_dir, name),
        run_layout.job_log(runner.run_dir, name),
        runner.s3,
        runner.env,
        runner.narration.job_echo or runner.echo,
        runner.verbose,
    )
    try:
        run = job.processing if step["Type"] == "Processing" else job.training
        runner.execution.properties[name] = run(args)
    finally:  # a failed job's log and time are the step's too
        record.log, record.process_seconds = job.log, job.seconds


def job_name(runner: LocalRunner, step_name: str) -> str:
    execution = runner.execution
    name = re.sub(r"[^a-zA-Z0-9-]", "-", f"{execution.pipeline_name}-{step_name}-{execution.execution_id}")
    return name[:63]


# the step types the local runner supports, and what it does for each
HANDLERS: dict[str, Callable] = {
    "Processing": container_job,
    "Training": container_job,
    "RegisterModel": register_model,
    "Condition": condition,
    "Fail": fail,
}
