"""CI usage: put the pipeline into SageMaker (upsert), start executions, retry failed ones, read their status."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable

from pipelines.aws.s3 import bucket_access_error, bucket_name_error
from pipelines.definition.parameters import parameter_values
from pipelines.errors import NotFound, Refused, RegulaError, UsageError, WaitTimeout
from pipelines.settings import Settings, code_version

INLINE_DEFINITION_LIMIT = 100_000  # CreatePipeline's PipelineDefinition; larger ones go through S3
TERMINAL = {"Succeeded", "Failed", "Stopped"}


class DeployError(RegulaError):
    """A settings, bucket or parameter problem of upsert, start or retry (a usage error)."""


class DeployNotFound(DeployError, NotFound):
    """The pipeline or the execution named does not exist, or has no executions."""


class RetryRefused(DeployError, Refused):
    """Only a failed execution can be retried."""


class WaitGaveUp(DeployError, WaitTimeout):
    """`--wait` ran past its limit."""


def compact(definition_text: str) -> str:
    return json.dumps(json.loads(definition_text), separators=(",", ":"))


def upsert(settings: Settings, s3, sagemaker, tags: dict[str, str] | None = None, echo: Callable = print) -> dict:
    """Create the pipeline, or update it when its definition or role changed. Running it twice changes nothing."""
    from pipelines.definition.render import render

    invalid = bucket_name_error(settings.bucket)
    if invalid:
        raise DeployError(invalid)
    text, session = render(settings)
    definition = compact(text)
    inaccessible = bucket_access_error(s3, settings.bucket, settings.prefix)
    if inaccessible:
        raise DeployError(inaccessible)
    written = session.push_uploads(s3)
    echo(
        f"step code: {len(session.uploads)} objects under s3://{settings.bucket}/{session.code_prefix}/ ({written} new)"
    )

    request = {"PipelineName": settings.pipeline_name, "RoleArn": settings.role_arn}
    if len(definition) > INLINE_DEFINITION_LIMIT:
        key = definition_key(settings)
        s3.put_object(Bucket=settings.bucket, Key=key, Body=definition.encode())
        request["PipelineDefinitionS3Location"] = {"Bucket": settings.bucket, "ObjectKey": key}
    else:
        request["PipelineDefinition"] = definition
    description = "Regula: regularized training with a retraining ladder"
    tag_list = [{"Key": k, "Value": v} for k, v in sorted({"regula:managed": "true", **(tags or {})}.items())]

    try:
        current = sagemaker.describe_pipeline(PipelineName=settings.pipeline_name)
    except sagemaker.exceptions.ClientError as error:
        if not missing(error):
            raise
        current = None

    if current is None:
        arn = sagemaker.create_pipeline(
            **request, PipelineDescription=description, Tags=tag_list, ClientRequestToken=str(uuid.uuid4())
        )["PipelineArn"]
        action = "created"
    else:
        arn = current["PipelineArn"]
        same = current.get("RoleArn") == settings.role_arn and _same_json(current.get("PipelineDefinition"), definition)
        if same:
            action = "unchanged"
        else:
            sagemaker.update_pipeline(**request, PipelineDescription=description)
            action = "updated"
        sagemaker.add_tags(ResourceArn=arn, Tags=tag_list)
    echo(f"pipeline {settings.pipeline_name}: {action} ({arn})")
    return {"pipeline_arn": arn, "action": action, "code_objects_written": written}


def definition_key(settings: Settings) -> str:
    """Where upsert puts a definition too large to send inline."""
    return f"{settings.prefix}/definitions/{settings.pipeline_name}.json"


def missing(error) -> bool:
    """SageMaker says ResourceNotFound; some emulators say ValidationException "Could not find"."""
    code = error.response.get("Error", {}).get("Code", "")
    message = str(error).lower()
    return code == "ResourceNotFound" or "could not find" in message or "does not exist" in message


def _same_json(left: str | None, right: str) -> bool:
    try:
        return left is not None and json.loads(left) == json.loads(right)
    except json.JSONDecodeError:
        return False


def deployed_definition(sagemaker, pipeline_name: str) -> dict:
    try:
        described = sagemaker.describe_pipeline(PipelineName=pipeline_name)
    except sagemaker.exceptions.ClientError as error:
        if not missing(error):
            raise
        raise DeployNotFound(f"pipeline {pipeline_name} does not exist: run `regula upsert` first") from None
    return json.loads(described["PipelineDefinition"])


def start(
    settings: Settings,
    sagemaker,
    params: dict[str, str] | None = None,
    wait: bool = False,
    poll_seconds: float = 30,
    timeout_seconds: float = 6 * 3600,
    echo: Callable = print,
) -> dict:
    definition = deployed_definition(sagemaker, settings.pipeline_name)
    params = dict(params or {})
    if any(p["Name"] == "CodeVersion" for p in definition.get("Parameters", [])):
        params.setdefault("CodeVersion", code_version())
    try:  # names, types, ranges: refused here, before any execution starts
        parameter_values(definition, params)
    except UsageError as error:
        raise DeployError(str(error)) from None
    response = sagemaker.start_pipeline_execution(
        PipelineName=settings.pipeline_name,
        PipelineParameters=[{"Name": k, "Value": str(v)} for k, v in sorted(params.items())],
        ClientRequestToken=str(uuid.uuid4()),
    )
    arn = response["PipelineExecutionArn"]
    echo(f"started {arn}")
    result = {"execution_arn": arn, "parameters": params, "status": "Executing"}
    if wait:
        result["status"] = wait_for(sagemaker, arn, poll_seconds, timeout_seconds, echo)
    return result


def retry(
    settings: Settings,
    sagemaker,
    execution: str = "latest",
    wait: bool = False,
    poll_seconds: float = 30,
    timeout_seconds: float = 6 * 3600,
    echo: Callable = print,
) -> dict:
    """RetryPipelineExecution for a failed execution (its ARN, or `latest`: the pipeline's latest execution, which
    must be the failed one). SageMaker runs the failed steps and the steps after them again, with the execution's
    parameters and definition; steps that succeeded keep their results."""
    arn = latest_execution(settings, sagemaker) if execution == "latest" else execution
    try:
        described = sagemaker.describe_pipeline_execution(PipelineExecutionArn=arn)
    except sagemaker.exceptions.ClientError as error:
        if not missing(error):
            raise
        raise DeployNotFound(f"execution {arn} does not exist") from None
    state = described["PipelineExecutionStatus"]
    if state != "Failed":
        which = f"the latest execution of {settings.pipeline_name}, {arn}," if execution == "latest" else arn
        raise RetryRefused(
            f"{which} is {state}: only a failed execution can be retried (`regula status` lists the executions; "
            "`regula start` starts a new one)"
        )
    sagemaker.retry_pipeline_execution(PipelineExecutionArn=arn, ClientRequestToken=str(uuid.uuid4()))
    echo(f"retrying {arn}")
    result = {"execution_arn": arn, "status": "Executing"}
    if wait:  # until then, "Failed" with the same LastModifiedTime is the old outcome, not the retry's
        stale = described.get("LastModifiedTime")
        result["status"] = wait_for(sagemaker, arn, poll_seconds, timeout_seconds, echo, stale_failure=stale)
    return result


def latest_execution(settings: Settings, sagemaker) -> str:
    try:
        summaries = sagemaker.list_pipeline_executions(
            PipelineName=settings.pipeline_name, SortBy="CreationTime", SortOrder="Descending", MaxResults=1
        )["PipelineExecutionSummaries"]
    except sagemaker.exceptions.ClientError as error:
        if not missing(error):
            raise
        raise DeployNotFound(f"pipeline {settings.pipeline_name} does not exist: run `regula upsert` first") from None
    if not summaries:
        raise DeployNotFound(f"pipeline {settings.pipeline_name} has no executions")
    return summaries[0]["PipelineExecutionArn"]


def wait_for(
    sagemaker, arn: str, poll_seconds: float, timeout_seconds: float, echo: Callable, stale_failure=None
) -> str:
    """Follow an execution until it ends; its final status. `stale_failure`: the LastModifiedTime of a failure that
    a retry replaces, which does not count as the end."""
    deadline = time.monotonic() + timeout_seconds
    seen: dict[str, str] = {}
    while True:
        described = sagemaker.describe_pipeline_execution(PipelineExecutionArn=arn)
        status = described["PipelineExecutionStatus"]
        for step in execution_steps(sagemaker, arn):
            if seen.get(step["StepName"]) != step["StepStatus"]:
                seen[step["StepName"]] = step["StepStatus"]
                echo(f"  {step['StepName']}: {step['StepStatus']} {step.get('FailureReason', '')}".rstrip())
        stale = status == "Failed" and stale_failure is not None and described.get("LastModifiedTime") == stale_failure
        if status in TERMINAL and not stale:
            echo(f"execution {status}")
            return status
        if time.monotonic() > deadline:
            raise WaitGaveUp(f"gave up waiting after {timeout_seconds:.0f}s; the execution is still {status}")
        time.sleep(poll_seconds)


def execution_steps(sagemaker, arn: str) -> list[dict]:
    """Step statuses, oldest first; empty where the service does not list them (moto)."""
    try:
        steps = sagemaker.list_pipeline_execution_steps(PipelineExecutionArn=arn, SortOrder="Ascending")
    except Exception:  # noqa: BLE001 - an emulator without this API: show the execution status only
        return []
    return steps.get("PipelineExecutionSteps", [])


def status(settings: Settings, sagemaker, limit: int = 5) -> list[dict]:
    try:
        summaries = sagemaker.list_pipeline_executions(
            PipelineName=settings.pipeline_name, SortBy="CreationTime", SortOrder="Descending", MaxResults=limit
        )["PipelineExecutionSummaries"]
    except sagemaker.exceptions.ClientError as error:
        if not missing(error):
            raise
        raise DeployNotFound(f"pipeline {settings.pipeline_name} does not exist: run `regula upsert` first") from None
    rows = []
    for summary in summaries:
        arn = summary["PipelineExecutionArn"]
        described = sagemaker.describe_pipeline_execution(PipelineExecutionArn=arn)
        rows.append(
            {
                "execution_arn": arn,
                "status": described["PipelineExecutionStatus"],
                "started": str(summary.get("StartTime", "")),
                "failure_reason": described.get("FailureReason", ""),
                "steps": execution_steps(sagemaker, arn),
            }
        )
    return rows
