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
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from boto3.exceptions import Boto3Error
from botocore.exceptions import BotoCoreError, ClientError

from pipelines import expressions, retries, run_layout, step_cache
from pipelines.container_jobs import ContainerJob, StepFailed
from pipelines.expressions import Context, evaluate_condition, resolve
from pipelines.parameters import parameter_values
from pipelines.s3 import split_uri
from pipelines.step_cache import StepCache
from pipelines.step_graph import order_steps

# what fails a step (any other exception is a bug of the runner, and ends it)
STEP_ERRORS = (
    StepFailed,
    retries.TransientError,
    expressions.ExpressionError,
    OSError,
    ValueError,
    BotoCoreError,
    ClientError,
    Boto3Error,  # boto3's S3 transfers wrap a ClientError in one
)

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
    ):
        """`cache`: where results are looked up (unless not `use_cache`) and recorded; None: no caching at all.
        `faults`: failures to inject (pipelines/retries.py), by default from REGULA_LOCAL_FAULTS. `retry_scale`
        multiplies the retry waits, by default REGULA_LOCAL_RETRY_SCALE or 1."""
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
        announced = False
        try:
            if handler is None:
                raise StepFailed(f"step type {kind} is not supported by the local runner")
            key = self._cache_key(step)
            if key and self._from_cache(step, record, key):
                branch = None
            else:
                if kind != "Condition":
                    self.echo(f"-> {name} ({kind})")
                announced = True
                branch = self._attempts(step, record, handler)
                if key:  # a job that succeeded
                    self._to_cache(step, record, key)
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
            self.echo(f"?  {name}: {record.outcome}")
        elif record.cached_from:
            pass  # its line said so
        elif record.status == "Succeeded":
            self.echo(f"   done in {record.seconds:.1f}s")
        else:
            self.echo(f"   FAILED: {record.failure_reason}")
        if branch:
            self._run_steps(branch)

    def _attempts(self, step: dict, record: StepRecord, handler: Callable) -> list[dict] | None:
        """Run the step, again after a failure its RetryPolicies retry (pipelines/retries.py), as SageMaker does."""
        retrier = retries.Retrier.for_step(step)
        name = step["Name"]
        while True:
            record.attempts += 1
            try:
                retries.inject(self.faults, name, record.attempts)
                return handler(step, record)
            except STEP_ERRORS as error:
                failure_type = retries.classify(error)
                decision = retrier.next(failure_type)
                if failure_type is None:
                    raise
                if decision is None:
                    tried = f"gave up after {record.attempts} attempts" if record.attempts > 1 else "not retried"
                    raise StepFailed(f"{failure_type}: {error} ({tried})") from error
                wait, attempts = decision
                record.failed_attempts.append(f"{failure_type}: {error}")
                self.echo(f"   attempt {record.attempts} failed: {failure_type}: {error}")
                self._set_aside(step, record.attempts)
                of = f" of {attempts}" if attempts else ""
                scaled = f", scaled to {wait * self.retry_scale:g} s" if self.retry_scale != 1 else ""
                self.echo(
                    f"-> {name} attempt {record.attempts + 1}{of} after {retries.DESCRIPTIONS[failure_type]} "
                    f"(waiting {wait:g} s{scaled})"
                )
                self.sleep(wait * self.retry_scale)

    def _set_aside(self, step: dict, attempt: int) -> None:
        """Before a job's next attempt: keep the failed attempt's logs (<step>.attempt<n>.log), start from an empty
        job folder, as a new SageMaker job does."""
        if step["Type"] not in ("Processing", "Training"):
            return
        log = run_layout.job_log(self.run_dir, step["Name"])
        for path in sorted(log.parent.glob(f"{step['Name']}.*log")):
            if ".attempt" not in path.name and path.name.split(".")[0] == step["Name"]:
                path.rename(run_layout.attempt_log(path, attempt))
        shutil.rmtree(run_layout.job_root(self.run_dir, step["Name"]), ignore_errors=True)

    # -- caching (pipelines/step_cache.py) -------------------------------------

    def _cache_key(self, step: dict) -> str | None:
        if self.cache is None or not step.get("CacheConfig", {}).get("Enabled"):
            return None
        if step["Type"] not in step_cache.KEY_ATTRIBUTES:
            return None
        return step_cache.cache_key(self.execution.pipeline_name, step, resolve(step["Arguments"], self.ctx))

    def _from_cache(self, step: dict, record: StepRecord, key: str) -> bool:
        """Take an earlier run's result of this step, if one matches and has not expired; whether it did."""
        if not self.use_cache:
            return False
        expire_after = step_cache.parse_duration(step["CacheConfig"].get("ExpireAfter", "P30D"))
        entry, why_not = self.cache.lookup(key, expire_after)
        if entry is None:
            if why_not:
                self.echo(f"   (cache: {why_not})")
            return False
        try:
            self.cache.restore(entry, self.run_dir, self.s3)
        except (OSError, ValueError, BotoCoreError, ClientError, Boto3Error) as error:
            self.echo(f"   (cache: the result of {self.cache.source(entry)} could not be restored: {error})")
            return False
        name = step["Name"]
        self.execution.properties[name] = entry["properties"]
        record.cached_from = str(self.cache.source(entry))
        record.cache_source_execution = entry["execution_arn"]
        record.job_name = entry["properties"].get("ProcessingJobName") or entry["properties"].get("TrainingJobName", "")
        if entry.get("log"):
            record.log = str(self.cache.source(entry) / entry["log"])
        self.echo(f"-> {name} ({step['Type']}) cached from {record.cached_from}")
        return True

    def _to_cache(self, step: dict, record: StepRecord, key: str) -> None:
        """Record a job step's result for later runs; a failure to record is said, and does not fail the step."""
        name = step["Name"]
        properties = self.execution.properties[name]
        try:
            objects = step_cache.written_objects(step["Type"], properties, run_layout.job_root(self.run_dir, name))
            entry = self.cache.new_entry(self.run_dir, step, self.execution.arn, properties, objects, record.log)
            self.cache.record(key, entry)
        except (OSError, ValueError, KeyError) as error:
            self.echo(f"   (cache: this result is not recorded: {error})")

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
