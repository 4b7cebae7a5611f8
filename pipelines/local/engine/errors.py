"""What fails a step, as the local runner sees it: StepFailed, and the errors it takes as a step's failure."""

from __future__ import annotations

from boto3.exceptions import Boto3Error
from botocore.exceptions import BotoCoreError, ClientError

from pipelines.local.engine.expressions import ExpressionError
from pipelines.local.engine.retries import TransientError


class StepFailed(Exception):
    """The step `step` failed; the message is its failure reason."""

    def __init__(self, step: str, reason: str):
        super().__init__(reason)
        self.step = step
        self.reason = reason


# what fails a step (any other exception is a bug of the runner, and ends it)
STEP_ERRORS = (
    StepFailed,
    TransientError,
    ExpressionError,
    OSError,
    ValueError,
    BotoCoreError,
    ClientError,
    Boto3Error,  # boto3's S3 transfers wrap a ClientError in one
)
