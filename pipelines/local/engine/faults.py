"""The local runner's test hooks, read from the environment once, before the first step: a malformed value, or one
naming a step the pipeline does not have, fails before anything runs.

- `REGULA_LOCAL_FAULTS` fails chosen attempts before their job starts, as SageMaker's capacity errors happen before
  the container starts: `TrainRound1:CAPACITY_ERROR:1` fails TrainRound1's first attempt with
  SageMaker.CAPACITY_ERROR; entries are comma-separated, `STEP:TYPE[:COUNT]`, and one step's entries fail its
  attempts in the order given (how they are retried: pipelines/local/engine/retries.py).
- `REGULA_LOCAL_RETRY_SCALE` multiplies the retry waits (0: retry at once).
- `REGULA_LOCAL_INTERRUPT` stops a training job once, as a spot interruption would (not a SageMaker feature):
  `TrainRound1:after_epochs=5` when its output reaches epoch 5, `TrainRound1:after_checkpoint` (or just
  `TrainRound1`) once a file appears in its checkpoint folder (pipelines/local/engine/checkpoints.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from pipelines.errors import UsageValueError
from pipelines.local.engine import retries
from pipelines.local.engine.graph import all_steps
from pipelines.local.engine.step_types import RETRYABLE_TYPES, StepType

FAULTS_ENV = "REGULA_LOCAL_FAULTS"
SCALE_ENV = "REGULA_LOCAL_RETRY_SCALE"
INTERRUPT_ENV = "REGULA_LOCAL_INTERRUPT"
INTERRUPT_FORMAT = "STEP, STEP:after_checkpoint or STEP:after_epochs=N, comma-separated"


@dataclass(frozen=True)
class Faults:
    """The hooks of one run: step -> the failure types of its first attempts, the retry waits' scale, and training
    step -> when it is interrupted ("", "after_checkpoint" or "after_epochs=N")."""

    plan: dict[str, list[str]] = field(default_factory=dict)
    retry_scale: float = 1.0
    interrupts: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], definition: dict) -> Faults:
        """The hooks `environ` sets for a run of `definition`; ValueError naming what is wrong."""
        return cls(
            fault_plan(environ.get(FAULTS_ENV), definition),
            scale_from(environ.get(SCALE_ENV)),
            interrupt_plan(environ.get(INTERRUPT_ENV), definition),
        )


def fault_plan(text: str | None, definition: dict) -> dict[str, list[str]]:
    """REGULA_LOCAL_FAULTS parsed: step -> the failure types of its first attempts, in order. Refuses unknown steps
    and types, and steps that SageMaker never retries (conditions, Fail)."""
    plan: dict[str, list[str]] = {}
    if not text or not text.strip():
        return plan
    kinds = {s["Name"]: s["Type"] for s in all_steps(definition.get("Steps", []))}
    for item in (part.strip() for part in text.split(",") if part.strip()):
        match = re.fullmatch(r"([^:]+):([A-Za-z_.]+)(?::(\d+))?", item)
        if not match:
            raise UsageValueError(f"{FAULTS_ENV}: {item!r} is not STEP:TYPE[:COUNT]")
        step, kind, count = match.group(1), retries.exception_type(match.group(2)), int(match.group(3) or 1)
        if step not in kinds:
            raise UsageValueError(f"{FAULTS_ENV}: the pipeline has no step {step!r}; its steps: {', '.join(kinds)}")
        if kinds[step] not in RETRYABLE_TYPES:
            raise UsageValueError(f"{FAULTS_ENV}: {step} is a {kinds[step]} step, which has no retry policies")
        plan.setdefault(step, []).extend([kind] * count)
    return plan


def inject(plan: dict[str, list[str]], step: str, attempt: int) -> None:
    """Fail `step`'s attempt `attempt` (from 1) where the plan says so."""
    planned = plan.get(step, [])
    if attempt <= len(planned):
        kind = planned[attempt - 1]
        raise retries.TransientError(
            kind, f"{retries.DESCRIPTIONS[kind]}, injected by {FAULTS_ENV} before the job started"
        )


def scale_from(text: str | None) -> float:
    if text is None or not text.strip():
        return 1.0
    try:
        scale = float(text)
    except ValueError:
        scale = -1.0
    if not scale >= 0:
        raise UsageValueError(f"{SCALE_ENV} must be a number >= 0, got {text!r}")
    return scale


def interrupt_plan(text: str | None, definition: dict) -> dict[str, str]:
    """REGULA_LOCAL_INTERRUPT parsed: training step -> when it is interrupted (the first entry naming it counts).
    Refuses a malformed entry and one naming a step that is not one of the pipeline's training steps."""
    plan: dict[str, str] = {}
    if not text or not text.strip():
        return plan
    training = [s["Name"] for s in all_steps(definition.get("Steps", [])) if s["Type"] == StepType.TRAINING]
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, when = item.partition(":")
        if when not in ("", "after_checkpoint") and not re.fullmatch(r"after_epochs=(\d+)", when):
            raise UsageValueError(f"{INTERRUPT_ENV}={text!r}: {item!r} is not one of {INTERRUPT_FORMAT}")
        if name not in training:
            steps = ", ".join(training)
            raise UsageValueError(
                f"{INTERRUPT_ENV}: the pipeline has no training step {name!r}; its training steps: {steps}"
            )
        plan.setdefault(name, when)
    return plan
