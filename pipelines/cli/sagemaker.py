"""`regula upsert`, `regula start`, `regula retry`, `regula status`: the pipeline in SageMaker (the work is in
aws/deploy.py)."""

from __future__ import annotations

import argparse

from pipelines.cli.shared import add_settings_options, client, key_values, notice, print_json, settings_from
from pipelines.errors import ExitStatus


def note_if_not_aws(sagemaker) -> None:
    """Against moto or LocalStack an execution is recorded and nothing runs: said, beside the command's output."""
    from pipelines.aws.errors import not_aws_note

    note = not_aws_note(sagemaker.meta.endpoint_url)
    if note:
        notice(note)


def cmd_upsert(args: argparse.Namespace) -> int:
    from pipelines.aws.deploy import upsert

    sagemaker = client(args, "sagemaker")
    upsert(settings_from(args), client(args, "s3"), sagemaker, tags=key_values(args.tag, "--tag"))
    note_if_not_aws(sagemaker)
    return 0


def cmd_start(args: argparse.Namespace) -> int:
    from pipelines.aws.deploy import start
    from pipelines.definition.parameter_names import canonical_names, names

    sagemaker = client(args, "sagemaker")
    result = start(
        settings_from(args),
        sagemaker,
        canonical_names(key_values(args.param), names()),
        wait=args.wait,
        poll_seconds=args.poll_seconds,
    )
    note_if_not_aws(sagemaker)
    return ExitStatus.SUCCESS if result["status"] in ("Executing", "Succeeded") else ExitStatus.FAILED


def cmd_retry(args: argparse.Namespace) -> int:
    from pipelines.aws.deploy import retry

    sagemaker = client(args, "sagemaker")
    result = retry(settings_from(args), sagemaker, args.execution, wait=args.wait, poll_seconds=args.poll_seconds)
    note_if_not_aws(sagemaker)
    return ExitStatus.SUCCESS if result["status"] in ("Executing", "Succeeded") else ExitStatus.FAILED


def cmd_status(args: argparse.Namespace) -> int:
    from pipelines.aws.deploy import status

    sagemaker = client(args, "sagemaker")
    rows = status(settings_from(args), sagemaker, limit=args.limit)
    note_if_not_aws(sagemaker)
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print(f"pipeline {settings_from(args).pipeline_name} has no executions")
    for row in rows:
        print(f"{row['status']:<10} {row['started'][:19]:<20} {row['execution_arn']}")
        if row["failure_reason"]:
            print(f"           {row['failure_reason']}")
        for step in row["steps"]:
            cached = step.get("CacheHitResult", {}).get("SourcePipelineExecutionArn")
            extra = f" (cached from {cached})" if cached else ""
            extra += f" (attempt {step['AttemptCount']})" if step.get("AttemptCount", 1) > 1 else ""
            print(f"           {step['StepName']}: {step['StepStatus']}{extra}")
    return 0


def add_parsers(commands) -> None:
    upsert = commands.add_parser("upsert", help="create or update the pipeline in SageMaker (idempotent)")
    add_settings_options(upsert)
    upsert.add_argument("--tag", action="append", metavar="KEY=VALUE", help="tag for the pipeline, repeatable")
    upsert.set_defaults(func=cmd_upsert)

    start = commands.add_parser("start", help="start an execution of the pipeline")
    add_settings_options(start)
    start.add_argument("--param", action="append", metavar="KEY=VALUE", help="pipeline parameter, repeatable")
    start.add_argument("--wait", action="store_true", help="wait for the execution to end; exit 1 unless it succeeds")
    start.add_argument("--poll-seconds", type=float, default=30)
    start.set_defaults(func=cmd_start)

    retry = commands.add_parser("retry", help="retry a failed execution: its failed steps and those after them")
    add_settings_options(retry)
    retry.add_argument(
        "execution", nargs="?", default="latest", help="execution ARN, or latest (default): the latest, if it failed"
    )
    retry.add_argument("--wait", action="store_true", help="wait for the execution to end; exit 1 unless it succeeds")
    retry.add_argument("--poll-seconds", type=float, default=30)
    retry.set_defaults(func=cmd_retry)

    status = commands.add_parser("status", help="the latest executions and their steps")
    add_settings_options(status)
    status.add_argument("--limit", type=int, default=5)
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_status)
