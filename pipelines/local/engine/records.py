"""What the local runner records of an execution and its steps (pipelines/local/engine/runner.py is their only
writer)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


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
