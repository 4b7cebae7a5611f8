"""A step's RetryPolicies, applied by the local runner as SageMaker applies them.

A failed attempt is retried when its failure is of a type one of the step's policies lists, after
IntervalSeconds * BackoffRate^(n-1) before the n-th retry, at most MaxAttempts retries of that policy (AWS: "the
maximum number of retry attempts"; so MaxAttempts 4 is up to 5 attempts) or, with ExpireAfterMin instead, until that
many minutes after the step's first attempt. Everything else fails the step at once.

SageMaker names five failure types. Which local failures count as which (`classify`), conservatively: only what is
transient by nature, never the job's own error.

- SageMaker.CAPACITY_ERROR: EC2 had no instance for the job, before its container started. Locally: the OS could not
  start the job's process for lack of memory (fork/exec failing with ENOMEM).
- SageMaker.RESOURCE_LIMIT: an account quota was exceeded. Locally: the OS refused one more process (EAGAIN: the
  process-count limit of the user or the cgroup).
- SageMaker.JOB_INTERNAL_ERROR: InternalServerError inside SageMaker. Locally nothing is that: an unexpected
  exception in the runner is a bug, not retried.
- Step.THROTTLING, Step.SERVICE_FAULT: a call to a service (S3, the registry) throttled, or failing with a 5xx or on
  the connection, as botocore classifies them, once botocore's own retries are spent.

Never retried, as on SageMaker (ClientError, AlgorithmError): a script exiting non-zero (a StepError's exit code 2, a
crash), a job killed by the OS's out-of-memory killer (the same job needs the same memory again: on SageMaker an
out-of-memory job fails, it is not retried), a job stopped at MaxRuntimeInSeconds, an input that is missing.

For tests and drills, `REGULA_LOCAL_FAULTS` fails chosen attempts before their job starts, and
`REGULA_LOCAL_RETRY_SCALE` multiplies the waits (pipelines/local/engine/faults.py).
"""

from __future__ import annotations

import errno
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pipelines.errors import UsageValueError

JOB_INTERNAL_ERROR = "SageMaker.JOB_INTERNAL_ERROR"
CAPACITY_ERROR = "SageMaker.CAPACITY_ERROR"
RESOURCE_LIMIT = "SageMaker.RESOURCE_LIMIT"
SERVICE_FAULT = "Step.SERVICE_FAULT"
THROTTLING = "Step.THROTTLING"
DESCRIPTIONS = {
    JOB_INTERNAL_ERROR: "an internal error",
    CAPACITY_ERROR: "a capacity error",
    RESOURCE_LIMIT: "a resource limit",
    SERVICE_FAULT: "a service fault",
    THROTTLING: "throttling",
}

# what botocore itself retries as throttling (botocore/retries/standard.py), and as transient: its codes and 5xx
THROTTLING_CODES = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
}
TRANSIENT_CODES = {
    "RequestTimeout",
    "RequestTimeoutException",
    "InternalError",
    "InternalFailure",
    "ServiceUnavailable",
}
TRANSIENT_STATUS = {500, 502, 503, 504}


class TransientError(Exception):
    """A failure of one of SageMaker's retryable types; the message says what happened."""

    def __init__(self, exception_type: str, message: str):
        super().__init__(message)
        self.exception_type = exception_type


def exception_type(name: str) -> str:
    """`CAPACITY_ERROR` or `SageMaker.CAPACITY_ERROR` -> `SageMaker.CAPACITY_ERROR`; ValueError for anything else."""
    for known in DESCRIPTIONS:
        if name in (known, known.split(".", 1)[1]):
            return known
    raise UsageValueError(f"unknown failure type {name!r}; one of {', '.join(DESCRIPTIONS)}")


def classify(error: BaseException) -> str | None:
    """The SageMaker failure type `error` stands for, or None: not transient, never retried (module docstring)."""
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:  # S3's upload errors wrap the ClientError
        seen.add(id(current))
        if isinstance(current, TransientError):
            return current.exception_type
        if isinstance(current, ClientError):
            code = current.response.get("Error", {}).get("Code", "")
            status = current.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in THROTTLING_CODES:
                return THROTTLING
            if code in TRANSIENT_CODES or status in TRANSIENT_STATUS:
                return SERVICE_FAULT
            return None
        if isinstance(current, ConnectionError | HTTPClientError):
            return SERVICE_FAULT
        if isinstance(current, OSError) and starting_a_process(current):
            if current.errno == errno.ENOMEM:
                return CAPACITY_ERROR
            if current.errno == errno.EAGAIN:
                return RESOURCE_LIMIT
            return None  # ENOENT, EACCES: the job's command is wrong
        current = current.__cause__ or current.__context__
    return None


def starting_a_process(error: OSError) -> bool:
    """Whether `error` was raised while starting a subprocess (Popen), not by a job's files or the network."""
    tb = error.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_name == "_execute_child" and code.co_filename.endswith("subprocess.py"):
            return True
        tb = tb.tb_next
    return False


@dataclass(frozen=True)
class Policy:
    """One of a step's RetryPolicies (SageMaker's defaults where a field is left out)."""

    types: tuple[str, ...]
    interval_seconds: float = 1.0
    backoff_rate: float = 2.0
    max_attempts: int | None = None  # retries, not attempts
    expire_after_min: float | None = None

    @classmethod
    def from_definition(cls, policy: dict) -> Policy:
        return cls(
            types=tuple(policy.get("ExceptionType", [])),
            interval_seconds=float(policy.get("IntervalSeconds", 1)),
            backoff_rate=float(policy.get("BackoffRate", 2.0)),
            max_attempts=int(policy["MaxAttempts"]) if "MaxAttempts" in policy else None,
            expire_after_min=float(policy["ExpireAfterMin"]) if "ExpireAfterMin" in policy else None,
        )


@dataclass
class Retrier:
    """One step's retries: for a failure, the wait before the next attempt, or None: fail the step."""

    policies: list[Policy]
    clock: Callable[[], float] = time.monotonic
    retries: list[int] = field(default_factory=list)
    started: float = 0.0

    def __post_init__(self) -> None:
        self.retries = [0] * len(self.policies)
        self.started = self.clock()

    @classmethod
    def for_step(cls, step: dict, clock: Callable[[], float] = time.monotonic) -> Retrier:
        return cls([Policy.from_definition(p) for p in step.get("RetryPolicies", [])], clock)

    def next(self, failure_type: str | None) -> tuple[float, int | None] | None:
        """(seconds to wait, attempts in all this policy allows or None when it is bounded by time), or None."""
        if failure_type is None:
            return None
        for index, policy in enumerate(self.policies):
            if failure_type not in policy.types:
                continue
            if policy.max_attempts is not None and self.retries[index] >= policy.max_attempts:
                return None
            if policy.expire_after_min is not None and self.clock() - self.started >= policy.expire_after_min * 60:
                return None
            self.retries[index] += 1
            wait = policy.interval_seconds * policy.backoff_rate ** (self.retries[index] - 1)
            return wait, None if policy.max_attempts is None else policy.max_attempts + 1
        return None
