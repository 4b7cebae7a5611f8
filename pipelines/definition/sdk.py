"""Every place Regula leans on the SageMaker SDK's internals, in one module, each with the reason.

`tests/test_sdk.py` checks that each behaviour below is still what the SDK does, so an upgrade fails there first,
naming it; pyproject.toml pins sagemaker to the minor release they were checked on.

1. Importing `sagemaker.mlops` builds a boto3 client: without a region it raises NoRegionError.
2. Importing the SDK calls `logging.basicConfig(level=INFO)`: every boto call would then log.
3. Telemetry: the opt-out lives in a SageMaker config, and a non-empty config is re-validated against its JSON
   schema on every lookup (many per render, each a jsonschema validation); so the config stays empty and the sender,
   `telemetry_logging._send_telemetry_request`, is switched off.
4. ModelTrainer asks IAM (SimulatePrincipalPolicy) whether the role may write the bucket unless
   SAGEMAKER_VALIDATE_ROLE=false; offline the call is answered "allowed".
5. PipelineSession keeps the bucket given as `default_bucket` in `_default_bucket_name_override`; its own
   `default_bucket()` would call S3.
6. ProcessingStep builds a LocalSession, which needs AWS_DEFAULT_REGION; rendering logs and warns at every call.
7. Code paths in step arguments are taken relative to the working directory: rendering runs in the repository root.
8. ModelTrainer's StoppingCondition takes literal integers only; a TrainingStep's request is its `arguments`
   property, where a pipeline parameter can take their place.
9. ProcessingStep builds a whole LocalSagemakerClient (a boto3 session and client each time, a large share of a
   render) only to read one method's name; while rendering, a class with just those names stands in for it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from pathlib import Path

IMPORT_REGION = "us-east-1"  # any region will do for the client the SDK builds at import (1)


def prepare_import() -> None:
    """Call before importing SDK modules (1)."""
    os.environ.setdefault("AWS_DEFAULT_REGION", IMPORT_REGION)


@contextlib.contextmanager
def quiet_import():
    """Import SDK modules inside this: the root logger is left as it was (2)."""
    prepare_import()
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    try:
        yield
    finally:
        root.setLevel(level)
        root.handlers[:] = handlers


def disable_telemetry() -> None:
    """(3)"""
    from sagemaker.core.telemetry import telemetry_logging

    telemetry_logging._send_telemetry_request = lambda *_args, **_kwargs: None


def answer_role_checks(boto_session) -> None:
    """(4): no IAM call, whatever the environment's credentials."""
    from botocore.awsrequest import AWSResponse

    def allowed(**_kwargs):
        return AWSResponse("", 200, {}, None), {"EvaluationResults": [{"EvalDecision": "allowed"}]}

    os.environ.setdefault("SAGEMAKER_VALIDATE_ROLE", "false")
    boto_session.events.register("before-call.iam.SimulatePrincipalPolicy", allowed)


def given_default_bucket(session) -> str:
    """(5)"""
    return session._default_bucket_name_override


@contextlib.contextmanager
def rendering(region: str, root: Path):
    """Render inside this: a region for LocalSession, the SDK's logs and warnings muted, paths relative to `root`
    (6, 7), no LocalSagemakerClient built (9). The environment, logging and the SDK are restored after."""
    with quiet_import():  # before anything is changed: an import that fails leaves nothing to restore
        from sagemaker.mlops.workflow import steps
    local_client = steps.LocalSagemakerClient
    region_was = os.environ.get("AWS_DEFAULT_REGION")
    os.environ["AWS_DEFAULT_REGION"] = region
    logging.disable(logging.WARNING)
    steps.LocalSagemakerClient = LocalClientMethodNames
    try:
        with warnings.catch_warnings(), contextlib.chdir(root):
            warnings.simplefilter("ignore")
            yield
    finally:
        steps.LocalSagemakerClient = local_client
        logging.disable(logging.NOTSET)
        if region_was is None:
            os.environ.pop("AWS_DEFAULT_REGION", None)
        else:
            os.environ["AWS_DEFAULT_REGION"] = region_was


class LocalClientMethodNames:
    """(9) What ProcessingStep and TransformStep read of LocalSagemakerClient(): their job methods' names."""

    def create_processing_job(self): ...

    def create_transform_job(self): ...


def training_step_class(stopping_condition: dict):
    """(8) A TrainingStep class whose request carries `stopping_condition` (which may hold pipeline parameters)."""
    from sagemaker.mlops.workflow.steps import TrainingStep

    class TrainingStepWithStoppingCondition(TrainingStep):
        @property
        def arguments(self):
            request = super().arguments
            request["StoppingCondition"] = stopping_condition
            return request

    return TrainingStepWithStoppingCondition
