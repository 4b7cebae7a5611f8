"""The ladder's Fail steps: each quotes the evaluation's reason (pipelines/definition/pipeline.py)."""

from __future__ import annotations

import os

from pipelines.definition.sdk import IMPORT_REGION

os.environ.setdefault(
    "AWS_DEFAULT_REGION", IMPORT_REGION
)  # the SDK builds a client at import (pipelines/definition/sdk.py)

from sagemaker.core.workflow.conditions import ConditionEquals
from sagemaker.core.workflow.functions import Join
from sagemaker.core.workflow.properties import PropertyFile
from sagemaker.mlops.workflow.condition_step import ConditionStep
from sagemaker.mlops.workflow.fail_step import FailStep
from sagemaker.mlops.workflow.model_step import ModelStep
from sagemaker.mlops.workflow.steps import ProcessingStep

from pipelines.definition.jobs import evaluation_value


def fail_step(name: str, *message) -> FailStep:
    """A FailStep whose message joins literal text and pipeline values."""
    return FailStep(name=name, error_message=Join(on="", values=list(message)))


def still_overfitting_step(evaluate: ProcessingStep, report: PropertyFile, rounds: int) -> FailStep:
    return fail_step(
        "StillOverfitting",
        f"The model still overfits after {rounds} rounds of stronger regularization: ",
        evaluation_value(evaluate, report, "reason"),
        ". Raise RegularizationGrowth, add data, use a smaller model (HiddenLayers), or, where this gap is acceptable "
        "(on small tables it is noisy), raise MaxGap.",
    )


def underfit_step(evaluate: ProcessingStep, report: PropertyFile, round_: int) -> FailStep:
    return fail_step(
        f"UnderfitRound{round_}",
        f"Round {round_} is not good enough: ",
        evaluation_value(evaluate, report, "reason"),
    )


def not_accepted_step(evaluate: ProcessingStep, report: PropertyFile, register: ModelStep, round_: int):
    """After registering a candidate for review, the run still fails: no round was accepted."""
    return ConditionStep(
        name=f"AcceptedRound{round_}",
        depends_on=[register],
        conditions=[ConditionEquals(left=evaluation_value(evaluate, report, "decision"), right="register")],
        if_steps=[],
        else_steps=[
            fail_step(
                f"CandidateRound{round_}", "No round was accepted: ", evaluation_value(evaluate, report, "reason")
            )
        ],
    )
