"""The SageMaker SDK behaviours Regula relies on (pipelines/definition/sdk.py): after an SDK upgrade, this fails first,
naming the behaviour that changed."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest


def python(code: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**clean, "AWS_CONFIG_FILE": "/nonexistent", **env},
    )


@pytest.fixture(scope="module")
def imported_with_a_region() -> subprocess.CompletedProcess:
    """A fresh interpreter that imports the SDK with a region and prints the root logger's level (tests 1 and 2)."""
    code = "import logging, sagemaker.mlops.workflow.pipeline; print(logging.getLogger().level)"
    return python(code, AWS_DEFAULT_REGION="us-east-1")


@pytest.mark.slow
def test_1_importing_the_sdk_needs_a_region(imported_with_a_region):
    result = python("import sagemaker.mlops.workflow.pipeline")
    assert result.returncode != 0 and "NoRegionError" in result.stderr
    assert imported_with_a_region.returncode == 0, imported_with_a_region.stderr


@pytest.mark.slow
def test_2_importing_the_sdk_sets_the_root_logger_to_info(imported_with_a_region):
    result = imported_with_a_region
    assert result.stdout.strip() == str(20), result.stderr  # logging.INFO
    lines = ["import logging", "from pipelines.definition import sdk", "with sdk.quiet_import():"]
    lines.append("    import sagemaker.mlops.workflow.pipeline")
    quiet = "\n".join(lines)
    assert python(quiet + "\nprint(logging.getLogger().level)").stdout.strip() == str(30)  # WARNING, as before


def test_3_the_telemetry_sender_is_where_regula_switches_it_off():
    from sagemaker.core.telemetry import telemetry_logging

    assert callable(telemetry_logging._send_telemetry_request)


def test_4_the_role_is_validated_with_iam_unless_told_not_to():
    from sagemaker.core.helper import iam_role_resolver

    source = inspect.getsource(iam_role_resolver)
    assert "SAGEMAKER_VALIDATE_ROLE" in source and "simulate_principal_policy" in source


def test_5_pipeline_session_keeps_the_given_bucket_where_regula_reads_it():
    from sagemaker.core.workflow.pipeline_context import PipelineSession

    from pipelines.definition import sdk

    boto = boto3.Session(region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    session = PipelineSession(boto_session=boto, default_bucket="regula-check", sagemaker_config={})
    assert sdk.given_default_bucket(session) == "regula-check"


def test_9_processing_steps_build_a_local_client_only_for_a_method_name():
    from pipelines.definition import sdk

    with sdk.quiet_import():
        from sagemaker.core.local.local_session import LocalSagemakerClient
        from sagemaker.mlops.workflow import steps

    for step in (steps.ProcessingStep, steps.TransformStep):
        source = inspect.getsource(step.__init__)
        assert source.count("LocalSagemakerClient()") == 1, step  # built once, only to name the caller
        name = source.split("LocalSagemakerClient().", 1)[1].split(".", 1)[0]
        assert f"LocalSagemakerClient().{name}.__name__" in source, step
        assert callable(getattr(LocalSagemakerClient, name)) and callable(getattr(sdk.LocalClientMethodNames, name))
    with sdk.rendering("us-east-1", Path.cwd()):
        assert steps.LocalSagemakerClient is sdk.LocalClientMethodNames
    assert steps.LocalSagemakerClient is LocalSagemakerClient  # put back after every render


def test_8_a_training_steps_request_is_its_arguments_property():
    from pipelines.definition import sdk

    with sdk.quiet_import():  # as Regula imports it (1, 2): alone, this test has no region otherwise
        from sagemaker.mlops.workflow.steps import TrainingStep

    assert isinstance(inspect.getattr_static(TrainingStep, "arguments"), property)
    from sagemaker.core.training.configs import StoppingCondition

    assert StoppingCondition.model_fields["max_runtime_in_seconds"].annotation in (int, int | None)
