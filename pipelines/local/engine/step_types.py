"""The step types of a SageMaker pipeline definition that the local runner runs. Light to import (iam and the
parameter checks walk definitions with pipelines/local/engine/graph.py)."""

from __future__ import annotations

from enum import StrEnum


class StepType(StrEnum):
    PROCESSING = "Processing"
    TRAINING = "Training"
    REGISTER_MODEL = "RegisterModel"
    CONDITION = "Condition"
    FAIL = "Fail"


JOB_TYPES = (StepType.PROCESSING, StepType.TRAINING)  # a job: a container, its processes, its folder and log
RETRYABLE_TYPES = (*JOB_TYPES, StepType.REGISTER_MODEL)  # the types with RetryPolicies
