"""How the local runner gets a step's result: from an earlier run's cache entry (pipelines/local/engine/cache.py),
or by running its handler, again after a failure its RetryPolicies retry (pipelines/local/engine/retries.py), as
SageMaker does. Each says what happened; pipelines/local/engine/runner.py records it.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field

from boto3.exceptions import Boto3Error
from botocore.exceptions import BotoCoreError, ClientError

from pipelines.local.engine import cache as step_cache
from pipelines.local.engine import layout, retries
from pipelines.local.engine.errors import STEP_ERRORS, StepFailed
from pipelines.local.engine.faults import Faults, inject
from pipelines.local.engine.handlers import Handler, StepEnvironment, StepResult
from pipelines.local.engine.step_types import JOB_TYPES

# -- retries (pipelines/local/engine/retries.py) ----------------------------------


@dataclass
class Attempts:
    """How a step's attempts went: the last one's result (its `error` set when the step failed), how many attempts
    there were, and the failures that were retried, each "<type>: <reason>"."""

    result: StepResult
    count: int = 0
    failed: list[str] = field(default_factory=list)


def attempt(
    step: dict, args, handler: Handler, env: StepEnvironment, faults: Faults, sleep: Callable[[float], None]
) -> Attempts:
    """Run the step with its resolved `args`, again after a failure its RetryPolicies retry, as SageMaker does."""
    retrier = retries.Retrier.for_step(step)
    name = step["Name"]
    done = Attempts(StepResult())
    while True:
        done.count += 1
        try:
            inject(faults.plan, name, done.count)
            done.result = handler(step, args, env)
        except STEP_ERRORS as error:
            done.result = StepResult(error=error)
        error = done.result.error
        if error is None:
            return done
        failure_type = retries.classify(error)
        decision = retrier.next(failure_type)
        if failure_type is None:
            return done
        if decision is None:
            tried = f"gave up after {done.count} attempts" if done.count > 1 else "not retried"
            gave_up = StepFailed(name, f"{failure_type}: {error} ({tried})")
            gave_up.__cause__ = error
            done.result.error = gave_up
            return done
        wait, most = decision
        done.failed.append(f"{failure_type}: {error}")
        env.echo(f"   attempt {done.count} failed: {failure_type}: {error}")
        set_aside(step, env, done.count)
        of = f" of {most}" if most else ""
        scale = faults.retry_scale
        scaled = f", scaled to {wait * scale:g} s" if scale != 1 else ""
        env.echo(
            f"-> {name} attempt {done.count + 1}{of} after {retries.DESCRIPTIONS[failure_type]} "
            f"(waiting {wait:g} s{scaled})"
        )
        sleep(wait * scale)


def set_aside(step: dict, env: StepEnvironment, attempt: int) -> None:
    """Before a job's next attempt: keep the failed attempt's logs (<step>.attempt<n>.log), start from an empty
    job folder, as a new SageMaker job does."""
    if step["Type"] not in JOB_TYPES:
        return
    log = layout.job_log(env.run_dir, step["Name"])
    for path in sorted(log.parent.glob(f"{step['Name']}.*log")):
        if ".attempt" not in path.name and path.name.split(".")[0] == step["Name"]:
            path.rename(layout.attempt_log(path, attempt))
    shutil.rmtree(layout.job_root(env.run_dir, step["Name"]), ignore_errors=True)


# -- caching (pipelines/local/engine/cache.py) ------------------------------------


def cache_key(cache: step_cache.StepCache | None, pipeline_name: str, step: dict, args) -> str | None:
    """The step's cache key from its resolved `args`; None where it is not cached (no cache, not Enabled, a type
    SageMaker does not cache)."""
    if cache is None or not step.get("CacheConfig", {}).get("Enabled"):
        return None
    if step["Type"] not in step_cache.KEY_ATTRIBUTES:
        return None
    return step_cache.cache_key(pipeline_name, step, args)


def from_cache(
    cache: step_cache.StepCache,
    step: dict,
    args: dict,
    key: str,
    env: StepEnvironment,
    verify_code: Callable[[], int] | None = None,
) -> StepResult | None:
    """An earlier run's result of this step, if one matches and has not expired; None where none can be used."""
    expire_after = step_cache.parse_duration(step["CacheConfig"].get("ExpireAfter", "P30D"))
    entry, why_not = cache.lookup(key, expire_after, step, args, env.execution_id)
    if entry is None:
        if why_not:
            env.echo(f"   (cache: {why_not})")
        return None
    try:
        cache.restore(entry, env.run_dir, env.s3)
        replaced = verify_code() if verify_code else 0  # the code the jobs run, as it was verified
    except (OSError, ValueError, BotoCoreError, ClientError, Boto3Error) as error:
        env.echo(f"   (cache: the result of {cache.source(entry)} could not be restored: {error})")
        return None
    if replaced:
        env.echo(
            f"   (cache: restoring the result of {cache.source(entry)} changed {replaced} step code object(s): "
            "put back, and the result not used)"
        )
        return None
    properties = entry["properties"]
    result = StepResult(
        properties=properties,
        cached_from=str(cache.source(entry)),
        cache_source_execution=entry["execution_arn"],
        job_name=properties.get("ProcessingJobName") or properties.get("TrainingJobName", ""),
        log=str(cache.source(entry) / entry["log"]) if entry.get("log") else "",
    )
    env.echo(f"-> {step['Name']} ({step['Type']}) cached from {result.cached_from}")
    return result


def to_cache(
    cache: step_cache.StepCache, step: dict, result: StepResult, key: str, env: StepEnvironment, execution_arn: str
) -> None:
    """Record a job step's result for later runs; a failure to record is said, and does not fail the step."""
    try:
        job_root = layout.job_root(env.run_dir, step["Name"])
        objects = step_cache.written_objects(step["Type"], result.properties, job_root)
        entry = cache.new_entry(env.run_dir, step, execution_arn, result.properties, objects, result.log)
        cache.record(key, entry)
    except (OSError, ValueError, KeyError) as error:
        env.echo(f"   (cache: this result is not recorded: {error})")
