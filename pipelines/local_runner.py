"""Run a rendered SageMaker pipeline definition on this machine, without Docker.

The runner walks the definition the way SageMaker does: it resolves
parameters and step properties, evaluates conditions and runs the chosen
branch, and stops at the first failed step. Processing and Training jobs run
as subprocesses with the container contract mapped onto a folder per job
(pipelines/container_jobs.py, pipelines/process_supervisor.py; the run folder:
pipelines/run_layout.py). RegisterModel calls the SageMaker API (moto locally),
Fail ends the execution with its message.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipelines import expressions, run_layout
from pipelines.container_jobs import ContainerJob, StepFailed
from pipelines.expressions import Context, evaluate_condition, resolve
from pipelines.parameters import parameter_values
from pipelines.s3 import split_uri
from pipelines.step_graph import order_steps

__all__ = ["Execution", "LocalRunner", "StepFailed", "StepRecord", "order_steps", "parameter_values"]


@dataclass
class StepRecord:
    name: str
    type: str
    status: str = "Executing"
    seconds: float = 0.0
    failure_reason: str = ""
    outcome: str = ""  # conditions: "True" or "False"
    job_name: str = ""
    log: str = ""
    process_seconds: float = 0.0  # of `seconds`, the time the job's own processes ran


@dataclass
class Execution:
    pipeline_name: str
    execution_id: str
    arn: str
    parameters: dict[str, Any]
    run_dir: Path
    status: str = "Executing"
    failure_reason: str = ""
    failed_step: str = ""
    steps: list[StepRecord] = field(default_factory=list)
    properties: dict[str, dict] = field(default_factory=dict)
    seconds: float = 0.0


class LocalRunner:
    def __init__(
        self,
        definition: dict,
        run_dir: Path,
        s3,
        sagemaker,
        region: str,
        account: str = "000000000000",
        env: dict[str, str] | None = None,
        echo: Callable[[str], None] = print,
        verbose: bool = False,
    ):
        self.definition = definition
        self.run_dir = Path(run_dir).resolve()
        self.s3 = s3
        self.sagemaker = sagemaker
        self.region = region
        self.account = account
        self.env = env or {}
        self.echo = echo
        self.verbose = verbose
        self.step_defs: dict[str, dict] = {}
        self._property_files: dict[tuple[str, str], Any] = {}

    # -- execution ---------------------------------------------------------

    def run(
        self, pipeline_name: str, overrides: dict[str, str] | None = None, execution_id: str | None = None
    ) -> Execution:
        execution_id = execution_id or secrets.token_hex(6)
        arn = f"arn:aws:sagemaker:{self.region}:{self.account}:pipeline/{pipeline_name}/execution/{execution_id}"
        parameters = parameter_values(self.definition, overrides or {})
        self.execution = Execution(pipeline_name, execution_id, arn, parameters, self.run_dir)
        self.ctx = Context(
            parameters=parameters,
            execution={
                "PipelineExecutionId": execution_id,
                "PipelineExecutionArn": arn,
                "PipelineName": pipeline_name,
                "StartDateTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
            steps=self.execution.properties,
            read_property_file=self._read_property_file,
        )
        self.run_dir.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        self._run_steps(self.definition["Steps"])
        if self.execution.status == "Executing":
            self.execution.status = "Succeeded"
        self.execution.seconds = round(time.perf_counter() - started, 3)
        return self.execution

    def _run_steps(self, steps: list[dict]) -> None:
        for step in order_steps(steps):
            if self.execution.status != "Executing":
                return
            self._run_step(step)

    def _run_step(self, step: dict) -> None:
        name, kind = step["Name"], step["Type"]
        self.step_defs[name] = step
        record = StepRecord(name, kind)
        self.execution.steps.append(record)
        handler = {
            "Processing": self._container_job,
            "Training": self._container_job,
            "RegisterModel": self._register_model,
            "Condition": self._condition,
            "Fail": self._fail,
        }.get(kind)
        started = time.perf_counter()
        if kind != "Condition":
            self.echo(f"-> {name} ({kind})")
        try:
            if handler is None:
                raise StepFailed(f"step type {kind} is not supported by the local runner")
            branch = handler(step, record)
            record.status = "Succeeded" if kind != "Fail" else "Failed"
        except (StepFailed, expressions.ExpressionError, OSError, ValueError, BotoCoreError, ClientError) as error:
            branch = None
            record.status = "Failed"
            record.failure_reason = str(error)
            self.execution.status = "Failed"
            self.execution.failure_reason = str(error)
            self.execution.failed_step = name
        record.seconds = round(time.perf_counter() - started, 3)
        if kind == "Condition":
            self.echo(f"?  {name}: {record.outcome}")
        elif record.status == "Succeeded":
            self.echo(f"   done in {record.seconds:.1f}s")
        else:
            self.echo(f"   FAILED: {record.failure_reason}")
        if branch:
            self._run_steps(branch)

    # -- step types ----------------------------------------------------------

    def _condition(self, step: dict, record: StepRecord) -> list[dict]:
        args = step["Arguments"]
        outcome = all(evaluate_condition(c, self.ctx) for c in args["Conditions"])
        record.outcome = str(outcome)
        self.execution.properties[step["Name"]] = {"Outcome": outcome}
        return args["IfSteps"] if outcome else args["ElseSteps"]

    def _fail(self, step: dict, record: StepRecord) -> None:
        message = expressions.to_text(resolve(step["Arguments"].get("ErrorMessage", ""), self.ctx))
        record.failure_reason = message
        self.execution.status = "Failed"
        self.execution.failure_reason = message
        self.execution.failed_step = step["Name"]

    def _register_model(self, step: dict, record: StepRecord) -> None:
        args = resolve(step["Arguments"], self.ctx)
        group = args["ModelPackageGroupName"]
        try:
            self.sagemaker.describe_model_package_group(ModelPackageGroupName=group)
        except self.sagemaker.exceptions.ClientError:
            self.sagemaker.create_model_package_group(
                ModelPackageGroupName=group, ModelPackageGroupDescription="Models registered by Regula"
            )
        arn = self.sagemaker.create_model_package(**args)["ModelPackageArn"]
        self.execution.properties[step["Name"]] = {"ModelPackageArn": arn}
        self.echo(f"   registered {arn}")

    def _container_job(self, step: dict, record: StepRecord) -> None:
        """A Processing or Training job: its container contract and processes are pipelines/container_jobs.py's."""
        args = resolve(step["Arguments"], self.ctx)
        name = step["Name"]
        record.job_name = self._job_name(name)
        job = ContainerJob(
            record.job_name,
            run_layout.job_root(self.run_dir, name),
            run_layout.job_log(self.run_dir, name),
            self.s3,
            self.env,
            self.echo,
            self.verbose,
        )
        try:
            run = job.processing if step["Type"] == "Processing" else job.training
            self.execution.properties[name] = run(args)
        finally:  # a failed job's log and time are the step's too
            record.log, record.process_seconds = job.log, job.seconds

    # -- helpers -------------------------------------------------------------

    def _read_property_file(self, step_name: str, file_name: str) -> Any:
        key = (step_name, file_name)
        if key not in self._property_files:
            step = self.step_defs[step_name]
            spec = next((p for p in step.get("PropertyFiles", []) if p["PropertyFileName"] == file_name), None)
            if spec is None:
                raise expressions.ExpressionError(f"step {step_name} has no property file {file_name}")
            outputs = self.execution.properties[step_name]["ProcessingOutputConfig"]["Outputs"]
            output = next(o for o in outputs if o["OutputName"] == spec["OutputName"])
            bucket, prefix = split_uri(output["S3Output"]["S3Uri"])
            body = self.s3.get_object(Bucket=bucket, Key=f"{prefix.rstrip('/')}/{spec['FilePath']}")["Body"].read()
            self._property_files[key] = json.loads(body)
        return self._property_files[key]

    def _job_name(self, step_name: str) -> str:
        name = re.sub(
            r"[^a-zA-Z0-9-]", "-", f"{self.execution.pipeline_name}-{step_name}-{self.execution.execution_id}"
        )
        return name[:63]
