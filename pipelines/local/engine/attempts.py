"""How the local runner gets a step's result: from an earlier run's cache entry (pipelines/local/engine/cache.py), or by
running it, again after a failure its RetryPolicies retry (pipelines/local/engine/retries.py), as SageMaker does.

pipelines/local/engine/runner.py walks the DAG and calls these with itself; the handlers are
pipelines/local/engine/handlers.py's.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from typing import TYPE_CHECKING

from boto3.exceptions import Boto3Error
from botocore.exceptions import BotoCoreError, ClientError

from pipelines.local.engine import cache as step_cache
from pipelines.local.engine import expressions, retries
from pipelines.local.engine import layout as run_layout
from pipelines.local.engine.expressions import resolve
from pipelines.local.engine.processes import StepFailed

if TYPE_CHECKING:
    from pipelines.local.engine.records import Runner as LocalRunner
    from pipelines.local.engine.records import StepRecord

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

# -- retries (pipelines/local/engine/retries.py) ---------------------------------------------


def attempts(runner: LocalRunner, step: dict, record: StepRecord, handler: Callable) -> list[dict] | None:
    """Run the step, again after a failure its RetryPolicies retry (pipelines/local/engine/retries.py), as SageMaker
    does."""
    retrier = retries.Retrier.for_step(step)
    name = step["Name"]
    while True:
        record.attempts += 1
        try:
            retries.inject(runner.faults, name, record.attempts)
            return handler(runner, step, record)
        except STEP_ERRORS as error:
            failure_type = retries.classify(error)
            decision = retrier.next(failure_type)
            if failure_type is None:
                raise
            if decision is None:
                tried = f"gave up after {record.attempts} attempts" if record.attempts > 1 else "not retried"
                raise StepFailed(f"{failure_type}: {error} ({tried})") from error
            wait, most = decision
            record.failed_attempts.append(f"{failure_type}: {error}")
            runner.echo(f"   attempt {record.attempts} failed: {failure_type}: {error}")
            set_aside(runner, step, record.attempts)
            of = f" of {most}" if most else ""
            scaled = f", scaled to {wait * runner.retry_scale:g} s" if runner.retry_scale != 1 else ""
            runner.echo(
                f"-> {name} attempt {record.attempts + 1}{of} after {retries.DESCRIPTIONS[failure_type]} "
                f"(waiting {wait:g} s{scaled})"
            )
            runner.sleep(wait * runner.retry_scale)


def set_aside(runner: LocalRunner, step: dict, attempt: int) -> None:
    """Before a job's next attempt: keep the failed attempt's logs (<step>.attempt<n>.log), start from an empty
    job folder, as a new SageMaker job does."""
    if step["Type"] not in ("Processing", "Training"):
        return
    log = run_layout.job_log(runner.run_dir, step["Name"])
    for path in sorted(log.parent.glob(f"{step['Name']}.*log")):
        if ".attempt" not in path.name and path.name.split(".")[0] == step["Name"]:
            path.rename(run_layout.attempt_log(path, attempt))
    shutil.rmtree(run_layout.job_root(runner.run_dir, step["Name"]), ignore_errors=True)


# -- caching (pipelines/local/engine/cache.py) ------------------------------------------


def cache_key(runner: LocalRunner, step: dict) -> str | None:
    if runner.cache is None or not step.get("CacheConfig", {}).get("Enabled"):
        return None
    if step["Type"] not in step_cache.KEY_ATTRIBUTES:
        return None
    return step_cache.cache_key(runner.execution.pipeline_name, step, resolve(step["Arguments"], runner.ctx))


def from_cache(runner: LocalRunner, step: dict, record: StepRecord, key: str) -> bool:
    """Take an earlier run's result of this step, if one matches and has not expired; whether it did."""
    if not runner.use_cache:
        return False
    cache = runner.cache
    expire_after = step_cache.parse_duration(step["CacheConfig"].get("ExpireAfter", "P30D"))
    args = resolve(step["Arguments"], runner.ctx)
    entry, why_not = cache.lookup(key, expire_after, step, args, runner.execution.execution_id)
    if entry is None:
        if why_not:
            runner.echo(f"   (cache: {why_not})")
        return False
    try:
        cache.restore(entry, runner.run_dir, runner.s3)
        replaced = runner.verify_code() if runner.verify_code else 0  # the code the jobs run, as it was verified
    except (OSError, ValueError, BotoCoreError, ClientError, Boto3Error) as error:
        runner.echo(f"   (cache: the result of {cache.source(entry)} could not be restored: {error})")
        return False
    if replaced:
        runner.echo(
            f"   (cache: restoring the result of {cache.source(entry)} changed {replaced} step code object(s): "
            "put back, and the result not used)"
        )
        return False
    name = step["Name"]
    runner.execution.properties[name] = entry["properties"]
    record.cached_from = str(cache.source(entry))
    record.cache_source_execution = entry["execution_arn"]
    record.job_name = entry["properties"].get("ProcessingJobName") or entry["properties"].get("TrainingJobName", "")
    if entry.get("log"):
        record.log = str(cache.source(entry) / entry["log"])
    runner.echo(f"-> {name} ({step['Type']}) cached from {record.cached_from}")
    return True


def to_cache(runner: LocalRunner, step: dict, record: StepRecord, key: str) -> None:
    """Record a job step's result for later runs; a failure to record is said, and does not fail the step."""
    name = step["Name"]
    properties = runner.execution.properties[name]
    try:
        objects = step_cache.written_objects(step["Type"], properties, run_layout.job_root(runner.run_dir, name))
        entry = runner.cache.new_entry(runner.run_dir, step, runner.execution.arn, properties, objects, record.log)
        runner.cache.record(key, entry)
    except (OSError, ValueError, KeyError) as error:
        runner.echo(f"   (cache: this result is not recorded: {error})")
