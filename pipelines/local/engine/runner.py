"""Run a rendered SageMaker pipeline definition on this machine, without Docker.

The runner walks the definition the way SageMaker does: it resolves
parameters and step properties, evaluates conditions and runs the chosen
branch, and stops at the first failed step. Processing and Training jobs run
as subprocesses with the container contract mapped onto a folder per job
(pipelines/local/engine/jobs.py, pipelines/local/engine/processes.py; the run folder:
pipelines/local/engine/layout.py). RegisterModel calls the SageMaker API (moto locally),
Fail ends the execution with its message. What is done for each kind of step is
pipelines/local/engine/handlers.py's; the cache and the retries around it,
pipelines/local/engine/attempts.py's.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.aws.s3 import split_uri
from pipelines.local.engine import attempts as step_attempts
from pipelines.local.engine import expressions, retries
from pipelines.local.engine import handlers as step_handlers
from pipelines.local.engine.attempts import STEP_ERRORS
from pipelines.local.engine.cache import StepCache
from pipelines.local.engine.expressions import Context
from pipelines.local.engine.graph import order_steps
from pipelines.local.engine.parameters import parameter_values
from pipelines.local.engine.processes import StepFailed
from pipelines.local.engine.records import Execution, StepRecord

__all__ = ["Execution", "LocalRunner", "Narration", "StepFailed", "StepRecord", "order_steps", "parameter_values"]


def plain_condition_line(name: str, outcome: str) -> str | None:
    return f"   ({name}: {outcome})"


@dataclass(frozen=True)
class Narration:
    """What a caller adds to the runner's own lines: how the jobs' lines are shown (None: as printed), a line for a
    condition's outcome (step name, "True" or "False"; None: no line), a line after a step that succeeded."""

    job_echo: Callable[[str], None] | None = None
    condition_line: Callable[[str, str], str | None] = plain_condition_line
    step_line: Callable[[str], str | None] = lambda name: None


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
        narration: Narration | None = None,
    ):
        """`cache`: where results are looked up (unless not `use_cache`) and recorded; None: no caching at all.
        `faults`: failures to inject (pipelines/local/engine/retries.py), by default from REGULA_LOCAL_FAULTS.
        `retry_scale`
        multiplies the retry waits, by default REGULA_LOCAL_RETRY_SCALE or 1. `verify_code`: puts the step code back
        where S3 holds anything else, and says how many objects it changed; called after each cache restore.
        `narration`: the caller's own lines (the runner knows no pipeline's step names)."""
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
        self.narration = narration or Narration()
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
            line = self.narration.condition_line(name, record.outcome)
            if line:
                self.echo(line)
        elif record.cached_from:
            pass  # its line said so
        elif record.status == "Succeeded":
            self.echo(f"   done in {record.seconds:.1f}s")
        else:  # the reason is printed once, in the run's summary
            self.echo(f"   FAILED after {record.seconds:.1f}s")
        if record.status == "Succeeded":
            line = self.narration.step_line(name)
            if line:
                self.echo(line)
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
