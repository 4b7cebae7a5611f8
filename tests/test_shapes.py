"""Every job step's Arguments pass botocore's request shapes (what SageMaker checks first on a real account), for any
number of rounds and with every rendering option: spot, KMS, VPC, network isolation, tags."""

from __future__ import annotations

import json

import botocore.session
import pytest
from botocore.validate import ParamValidator
from helpers import rendered

from pipelines.settings import Settings

OPERATIONS = {
    "Processing": ("CreateProcessingJob", "ProcessingJobName"),
    "Training": ("CreateTrainingJob", "TrainingJobName"),
    "RegisterModel": ("CreateModelPackage", None),
}
REGULATED = Settings(
    spot=True,
    kms_key_id="arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    subnets=("subnet-0abc",),
    security_group_ids=("sg-0abc",),
    network_isolation=True,
    tags=(("team", "ml"), ("cost-center", "42")),
    cache_expire_after="PT12H",
)


def resolve(value, parameters: dict):
    """Pipeline expressions replaced by values of the type SageMaker would put there at run time."""
    if isinstance(value, dict):
        if "Get" in value and len(value) == 1:
            ref = value["Get"]
            if ref.startswith("Parameters."):
                return parameters[ref.split(".", 1)[1]]
            if ref.startswith("Execution."):
                return "execution-0123"
            return "s3://bucket/from-an-earlier-step"
        if "Std:Join" in value:
            join = value["Std:Join"]
            return join["On"].join(str(resolve(v, parameters)) for v in join["Values"])
        if "Std:JsonGet" in value:
            return "s3://bucket/from-the-evaluation"
        return {k: resolve(v, parameters) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, parameters) for v in value]
    return value


def job_steps(steps: list[dict]):
    for step in steps:
        if step["Type"] == "Condition":
            yield from job_steps(step["Arguments"]["IfSteps"] + step["Arguments"]["ElseSteps"])
        elif step["Type"] in OPERATIONS:
            yield step


@pytest.mark.parametrize(
    "settings",
    [Settings(rounds=1), pytest.param(Settings(rounds=10), marks=pytest.mark.slow), REGULATED],
    ids=["1 round", "10 rounds", "regulated"],
)
def test_every_job_step_passes_the_api_request_shape(settings):
    definition = json.loads(rendered(settings)[0])
    parameters = {p["Name"]: p["DefaultValue"] for p in definition["Parameters"]}
    model = botocore.session.get_session().get_service_model("sagemaker")
    validator = ParamValidator()
    seen = set()
    for step in job_steps(definition["Steps"]):
        operation, name_key = OPERATIONS[step["Type"]]
        request = resolve(step["Arguments"], parameters)
        if name_key:
            request[name_key] = f"regula-{step['Name']}".lower()
        report = validator.validate(request, model.operation_model(operation).input_shape)
        assert not report.has_errors(), f"{step['Name']}: {report.generate_report()}"
        seen.add(step["Name"])
    last = settings.rounds
    assert {f"TrainRound{last}", f"EvaluateRound{last}", f"RegisterRound{last}"} <= seen


def test_job_steps_retry_transient_failures_and_are_cached():
    definition = json.loads(rendered(Settings())[0])
    for step in job_steps(definition["Steps"]):
        kinds = {kind for policy in step["RetryPolicies"] for kind in policy["ExceptionType"]}
        assert {"Step.SERVICE_FAULT", "Step.THROTTLING"} <= kinds
        if step["Type"] != "RegisterModel":
            assert {"SageMaker.CAPACITY_ERROR", "SageMaker.JOB_INTERNAL_ERROR", "SageMaker.RESOURCE_LIMIT"} <= kinds
            assert step["CacheConfig"] == {"Enabled": True, "ExpireAfter": "P30D"}
        if step["Type"] == "Training":
            assert step["Arguments"]["CheckpointConfig"]["LocalPath"] == "/opt/ml/checkpoints"
            stopping = step["Arguments"]["StoppingCondition"]
            assert stopping == {"MaxRuntimeInSeconds": {"Get": "Parameters.MaxRuntimeSeconds"}}


def test_everything_a_run_writes_is_under_the_prefix():
    definition = rendered(Settings(bucket="team-bucket", prefix="ml/regula"))[0]
    uris = {u.rstrip('",') for u in definition.split() if u.startswith('"s3://')}
    assert uris and all(u.startswith('"s3://team-bucket/ml/regula') for u in uris), uris
    for step in job_steps(json.loads(definition)["Steps"]):
        if step["Type"] == "Training":
            output = step["Arguments"]["OutputDataConfig"]["S3OutputPath"]["Std:Join"]["Values"]
            assert output[0] == "s3://team-bucket/ml/regula"


def test_spot_renders_max_wait_and_on_demand_does_not():
    on_demand = json.loads(rendered(Settings())[0])
    spot = json.loads(rendered(REGULATED)[0])
    names = [p["Name"] for p in on_demand["Parameters"]]
    assert "MaxRuntimeSeconds" in names and "MaxWaitSeconds" not in names
    assert "MaxWaitSeconds" in [p["Name"] for p in spot["Parameters"]]
    train = next(s for s in job_steps(spot["Steps"]) if s["Type"] == "Training")["Arguments"]
    assert train["EnableManagedSpotTraining"] is True
    assert train["StoppingCondition"]["MaxWaitTimeInSeconds"] == {"Get": "Parameters.MaxWaitSeconds"}
    assert train["Tags"] == [{"Key": "team", "Value": "ml"}, {"Key": "cost-center", "Value": "42"}]
