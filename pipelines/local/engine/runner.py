"""Run a rendered SageMaker pipeline definition on this machine, without Docker.

The runner walks the definition the way SageMaker does: it resolves parameters and step properties, evaluates
conditions and runs the chosen branch, and stops at the first failed step. Processing and Training jobs run as
subprocesses with the container contract mapped onto a folder per job (pipelines/local/engine/jobs.py,
pipelines/local/engine/processes.py; the run folder: pipelines/local/engine/layout.py). RegisterModel calls the
SageMaker API (moto locally), Fail ends the execution with its message.

The runner is the only writer of the execution. Each step's arguments are resolved once, for its cache key and its
job; its handler (pipelines/local/engine/handlers.py) gets them with a StepEnvironment and returns a StepResult; the
cache and the retries around it (pipelines/local/engine/attempts.py) return what happened too. The test hooks
(REGULA_LOCAL_*, pipelines/local/engine/faults.py) are read and checked once, before the first step.

Nothing here knows which pipeline it runs: a caller adds its own lines (`Narration`: the jobs' lines, what a
condition's outcome means, a line after a step) and its own check of the step code after a cache restore.
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

from pipelines.local.engine import attempts, expressions, layout
from pipelines.local.engine.cache import StepCache
from pipelines.local.engine.errors import STEP_ERRORS, StepFailed
from pipelines.local.engine.expressions import Context, resolve
from pipelines.local.engine.faults import Faults
from pipelines.local.engine.graph import order_steps
from pipelines.local.engine.handlers import HANDLERS, StepEnvironment, StepResult, job_name
from pipelines.local.engine.jobs import definition_text
from pipelines.local.engine.parameters import parameter_values
from pipelines.local.engine.records import Execution, StepRecord
from pipelines.local.engine.s3 import split_uri
from pipelines.local.engine.step_types import JOB_TYPES, StepType

__all__ = ["Execution", "LocalRunner", "Narration", "StepFailed", "StepRecord", "order_steps", "parameter_values"]


def step_type(step: dict) -> StepType:
    """The step's type; StepFailed for one the local runner does not run."""
    try:
        return StepType(step["Type"])
    except ValueError:
        raise StepFailed(step["Name"], f"step type {step['Type']} is not supported by the local runner") from None


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
        faults: Faults | dict[str, list[str]] | None = None,
        retry_scale: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
        verify_code: Callable[[], int] | None = None,
        narration: Narration | None = None,
    ):
        """`cache`: where results are looked up (unless not `use_cache`) and recorded; None: no caching at all.
        `faults`: the test hooks (pipelines/local/engine/faults.py), by default read from the environment now, or
        only the failures to inject; `retry_scale` multiplies the retry waits (default: the hooks'). `verify_code`:
        puts the step code back where S3 holds anything else, and says how many objects it changed; called after
        each cache restore."""
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
        if not isinstance(faults, Faults):  # read and checked here, before any step runs
            hooks = Faults.from_environ(os.environ, definition)
            faults = hooks if faults is None else Faults(faults, hooks.retry_scale, hooks.interrupts)
        if retry_scale is not None:
            faults = Faults(faults.plan, retry_scale, faults.interrupts)
        self.faults = faults
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
        self.environment = StepEnvironment(
            pipeline_name=pipeline_name,
            execution_id=execution_id,
            run_dir=self.run_dir,
            s3=self.s3,
            sagemaker=self.sagemaker,
            ctx=self.ctx,
            env=self.env,
            echo=self.echo,
            job_echo=self.narration.job_echo or self.echo,
            verbose=self.verbose,
            interrupts=self.faults.interrupts,
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

    def _arguments(self, step: dict, kind: StepType) -> Any:
        """The step's arguments as its handler takes them: resolved (a job's with the definition's own strings marked,
        jobs.definition_text), a condition's as they are (each condition resolves its operands when evaluated)."""
        if kind == StepType.CONDITION:
            return step["Arguments"]
        if kind in JOB_TYPES:
            return resolve(definition_text(step["Arguments"]), self.ctx)
        return resolve(step.get("Arguments", {}), self.ctx)

    def _run_step(self, step: dict) -> None:
        name, kind = step["Name"], step["Type"]
        self.step_defs[name] = step
        record = StepRecord(name, kind)
        self.execution.steps.append(record)
        started = time.perf_counter()
        announced = False
        try:
            kind = step_type(step)
            args = self._arguments(step, kind)
            key = attempts.cache_key(self.cache, self.execution.pipeline_name, step, args)
            result = None
            if key and self.use_cache:
                result = attempts.from_cache(self.cache, step, args, key, self.environment, self.verify_code)
            if result is None:
                if kind != StepType.CONDITION:
                    self.echo(f"-> {name} ({kind})")
                announced = True
                if kind in JOB_TYPES:
                    record.job_name = job_name(self.execution.pipeline_name, name, self.execution.execution_id)
                tried = attempts.attempt(step, args, HANDLERS[kind], self.environment, self.faults, self.sleep)
                result, record.attempts, record.failed_attempts = tried.result, tried.count, tried.failed
                if key and result.error is None:  # a job that succeeded
                    attempts.to_cache(self.cache, step, result, key, self.environment, self.execution.arn)
        except STEP_ERRORS as error:  # the step's type, its arguments or the cache lookup
            result = StepResult(error=error)
            if not announced and kind != StepType.CONDITION:
                self.echo(f"-> {name} ({kind})")
        except KeyboardInterrupt:  # a job's log is the step's, also when it is stopped
            if kind in JOB_TYPES and layout.job_log(self.run_dir, name).exists():
                record.log = str(layout.job_log(self.run_dir, name))
            raise
        self._record(record, result)
        record.seconds = round(time.perf_counter() - started, 3)
        if kind == StepType.CONDITION:
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
            if result.branch:
                self._run_steps(result.branch)

    def _record(self, record: StepRecord, result: StepResult) -> None:
        """What the step did, into its record and the execution."""
        record.job_name = result.job_name or record.job_name
        record.log, record.process_seconds = result.log, result.process_seconds
        record.outcome = result.outcome
        record.cached_from, record.cache_source_execution = result.cached_from, result.cache_source_execution
        failure = str(result.error) if result.error is not None else result.failure
        if failure is not None:
            record.status = "Failed"
            record.failure_reason = failure
            self.execution.status = "Failed"
            self.execution.failure_reason = failure
            self.execution.failed_step = record.name
            return
        record.status = "Succeeded"
        if result.properties is not None:
            self.execution.properties[record.name] = result.properties

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
