"""Run a rendered SageMaker pipeline definition on this machine, without Docker.

The runner walks the definition the way SageMaker does: it resolves
parameters and step properties, evaluates conditions and runs the chosen
branch, and stops at the first failed step. Processing and Training jobs run
as subprocesses with the container contract mapped onto a folder per job
(pipelines/container_jobs.py, pipelines/process_supervisor.py; the run folder:
pipelines/run_layout.py). RegisterModel calls the SageMaker API (moto locally),
Fail ends the execution with its message. What is done for each kind of step is
pipelines/step_handlers.py's; the cache and the retries around it,
pipelines/step_attempts.py's.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines import console, expressions, retries, step_attempts, step_handlers
from pipelines.expressions import Context
from pipelines.parameters import parameter_values
from pipelines.process_supervisor import StepFailed
from pipelines.s3 import split_uri
from pipelines.step_attempts import STEP_ERRORS
from pipelines.step_cache import StepCache
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
    attempts: int = 0  # SageMaker's AttemptCount: 1, more where a retry policy retried it; 0 for a cached step
    failed_attempts: list[str] = field(default_factory=list)  # the retried failures, each "<type>: <reason>"
    cached_from: str = ""  # a cache hit: the run folder whose result this is
    cache_source_execution: str = ""  # and its execution (SageMaker's CacheHitResult.SourcePipelineExecutionArn)


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
        cache: StepCache | None = None,
        use_cache: bool = True,
        faults: dict[str, list[str]] | None = None,
        retry_scale: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
        verify_code: Callable[[], int] | None = None,
    ):
        """`cache`: where results are looked up (unless not `use_cache`) and recorded; None: no caching at all.
        `faults`: failures to inject (pipelines/retries.py), by default from REGULA_LOCAL_FAULTS. `retry_scale`
        multiplies the retry waits, by default REGULA_LOCAL_RETRY_SCALE or 1. `verify_code`: puts the step code back
        where S3 holds anything else, and says how many objects it changed; called after each cache restore."""
        self.definition = definition
        self.run_dir = Path(run_dir).resolve()
        self.s3 = s3
        self.sagemaker = sagemaker
        self.region = region
        self.account = account
        self.env = env or {}
        self.echo = echo
        self.verbose = verbose
        self.cache = cache
        self.use_cache = use_cache
        if faults is None:
            faults = retries.fault_plan(os.environ.get(retries.FAULTS_ENV), definition)
        self.faults = faults
        if retry_scale is None:
            retry_scale = retries.scale_from(os.environ.get(retries.SCALE_ENV))
        self.retry_scale = retry_scale
        self.sleep = sleep
        self.verify_code = verify_code
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
        handler = step_handlers.HANDLERS.get(kind)
        started = time.perf_counter()
        announced = False
        try:
            if handler is None:
                raise StepFailed(f"step type {kind} is not supported by the local runner")
            key = step_attempts.cache_key(self, step)
            if key and step_attempts.from_cache(self, step, record, key):
                branch = None
            else:
                if kind != "Condition":
                    self.echo(f"-> {name} ({kind})")
                announced = True
                branch = step_attempts.attempts(self, step, record, handler)
                if key:  # a job that succeeded
                    step_attempts.to_cache(self, step, record, key)
            record.status = "Succeeded" if kind != "Fail" else "Failed"
        except STEP_ERRORS as error:
            if not announced and kind != "Condition":
                self.echo(f"-> {name} ({kind})")
            branch = None
            record.status = "Failed"
            record.failure_reason = str(error)
            self.execution.status = "Failed"
            self.execution.failure_reason = str(error)
            self.execution.failed_step = name
        record.seconds = round(time.perf_counter() - started, 3)
        if kind == "Condition":
            line = console.condition_line(self.run_dir, name, record.outcome, self.verbose)
            if line:
                self.echo(line)
        elif record.cached_from:
            pass  # its line said so
        elif record.status == "Succeeded":
            self.echo(f"   done in {record.seconds:.1f}s")
        else:  # the reason is printed once, in the run's summary
            self.echo(f"   FAILED after {record.seconds:.1f}s")
        if record.status == "Succeeded" and console.ROUND_STEP.fullmatch(name) and name.startswith("Evaluate"):
            evaluation = console.read_evaluation(self.run_dir, int(console.ROUND_STEP.fullmatch(name)["round"]))
            if evaluation:
                self.echo(console.round_line(evaluation))
                notice = console.notice_line(self.run_dir, evaluation)
                if notice:
                    self.echo(notice)
        if branch:
            self._run_steps(branch)

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
