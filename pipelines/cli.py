"""The `regula` command. Start-up stays light: each command imports what it needs when it runs."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from pipelines.errors import RegulaError
from pipelines.settings import PIPELINE_JSON, Settings
from steps.defaults import METRICS_NAMESPACE, MODEL_PACKAGE_GROUP


class UsageError(RegulaError):
    """A mistake in what the user asked for: reported in one line, exit code 2."""


def key_values(items: list[str] | None, option: str = "--param") -> dict[str, str]:
    values = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"{option} takes KEY=VALUE, got {item!r}")
        values[key] = value
    return values


SETTINGS_OPTIONS = (
    "pipeline_name",
    "region",
    "bucket",
    "prefix",
    "role_arn",
    "rounds",
    "image_uri",
    "allow_auto_approval",
)


def settings_from(args: argparse.Namespace) -> Settings:
    overrides = {k: getattr(args, k) for k in SETTINGS_OPTIONS if getattr(args, k, None) is not None}
    return Settings(**overrides)


def cmd_render(args: argparse.Namespace) -> int:
    from pipelines.render import render

    text, _ = render(settings_from(args))
    out = Path(args.output)
    if args.check:
        if not out.exists() or out.read_text() != text:
            print(f"{out} does not match the code: run `regula render`", file=sys.stderr)
            return 1
        print(f"{out} matches the code")
        return 0
    out.write_text(text)
    print(f"wrote {out}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    if not args.local:
        raise UsageError("only local runs are done here: add --local (use `regula start` to run on SageMaker)")
    from pipelines.local import run_local

    report = run_local(
        settings_from(args),
        data=args.data,
        target=args.target,
        params=key_values(args.param),
        runs_dir=Path(args.runs_dir),
        verbose=args.verbose,
    )
    return 0 if report["status"] == "Succeeded" else 1


def client(args: argparse.Namespace, service: str):
    import boto3

    return boto3.Session(region_name=settings_from(args).region).client(service)


def print_json(value) -> None:
    import json

    print(json.dumps(value, indent=2, default=str))


def cmd_upsert(args: argparse.Namespace) -> int:
    from pipelines.deploy import upsert

    upsert(settings_from(args), client(args, "s3"), client(args, "sagemaker"), tags=key_values(args.tag, "--tag"))
    return 0


def cmd_start(args: argparse.Namespace) -> int:
    from pipelines.deploy import start

    result = start(
        settings_from(args),
        client(args, "sagemaker"),
        key_values(args.param),
        wait=args.wait,
        poll_seconds=args.poll_seconds,
    )
    return 0 if result["status"] in ("Executing", "Succeeded") else 1


def cmd_status(args: argparse.Namespace) -> int:
    from pipelines.deploy import status

    rows = status(settings_from(args), client(args, "sagemaker"), limit=args.limit)
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
            print(f"           {step['StepName']}: {step['StepStatus']}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from pipelines import registry

    sagemaker = client(args, "sagemaker")
    if args.action == "list":
        rows = registry.list_packages(sagemaker, args.group)
        print_json(rows) if args.json else print(registry.table(rows))
        return 0
    status = "Approved" if args.action == "approve" else "Rejected"
    registry.set_status(
        sagemaker, args.group, args.package, status, note=args.note, force=args.force, max_gap=args.max_gap
    )
    return 0


def notice(text: str) -> None:
    print(text, file=sys.stderr)  # beside the data on standard output, never in it


def cmd_predict(args: argparse.Namespace) -> int:
    import tempfile

    from pipelines import predict

    if not args.data.is_file():
        raise UsageError(f"data file {args.data} does not exist")
    with tempfile.TemporaryDirectory(prefix="regula-predict-") as tmp:
        workdir = Path(tmp)
        if Path(args.model).is_dir():
            archive, expected = predict.from_run_folder(Path(args.model))
        else:
            archive, expected = predict.from_registry(
                client(args, "sagemaker"), client(args, "s3"), args.group, args.model, workdir, echo=notice
            )
        model_dir = predict.unpack(archive, expected, workdir / "model")
        rows, text = predict.predict(model_dir, args.data, args.out)
    if args.out is None:
        sys.stdout.write(text)
    else:
        print(f"scored {rows} rows of {args.data} -> {args.out}", file=sys.stderr)
    return 0


def cmd_alerts(args: argparse.Namespace) -> int:
    from pipelines import alerts

    spec = alerts.AlertSpec(
        pipeline_name=settings_from(args).pipeline_name,
        namespace=args.namespace,
        model_package_group=args.group,
        kms_key_id=args.kms_key_id,
    )
    if args.action == "template":
        from pipelines.alerts_template import cloudformation

        print_json(cloudformation(spec, args.email or []))
        return 0
    if args.action == "apply":
        account = client(args, "sts").get_caller_identity()["Account"]
        sns, cloudwatch, events = (client(args, name) for name in ("sns", "cloudwatch", "events"))
        alerts.apply(spec, args.email or [], sns, cloudwatch, events, account, settings_from(args).region)
        return 0
    shown = alerts.show(spec, client(args, "sns"), client(args, "cloudwatch"))
    if args.json:
        print_json(shown)
        return 0
    print(f"topic: {shown['topic_arn']}")
    for sub in shown["subscriptions"]:
        print(f"  {sub['email']}: {'confirmed' if sub['confirmed'] else 'pending confirmation'}")
    pending = [sub["email"] for sub in shown["subscriptions"] if not sub["confirmed"]]
    if pending:
        print(f"  {len(pending)} still to confirm (AWS emailed each a link): {', '.join(pending)}")
    for alarm in shown["alarms"]:
        emails = "emails the team" if alarm["emails"] else "dashboard only"
        print(f"alarm {alarm['name']}: {alarm['state']} ({alarm['metric']} >= {alarm['threshold']:g}, {emails})")
    print(f"dashboard: {shown['dashboard']}")
    return 0


def add_settings_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("where the pipeline is rendered for")
    group.add_argument("--pipeline-name", help="default: regula")
    group.add_argument("--region", help="default: us-east-1")
    group.add_argument("--bucket", help="S3 bucket for code and artifacts (default: regula-artifacts)")
    group.add_argument("--prefix", help="key prefix in the bucket (default: regula)")
    group.add_argument("--role-arn", help="SageMaker execution role")
    group.add_argument("--rounds", type=int, help="rounds in the retraining ladder (default: 3)")
    group.add_argument("--image-uri", help="custom image for the steps (see containers/); default: AWS PyTorch")
    group.add_argument(
        "--allow-auto-approval",
        action="store_true",
        default=None,
        help="let executions register packages as Approved (ModelApprovalStatus); default: review only",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="regula",
        description="SageMaker pipelines that retrain with stronger regularization until the model generalizes.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    render = commands.add_parser("render", help="write the pipeline definition (pipeline.json)")
    add_settings_options(render)
    render.add_argument("--output", default=str(PIPELINE_JSON))
    render.add_argument("--check", action="store_true", help="fail if the file differs from what the code renders")
    render.set_defaults(func=cmd_render)

    run = commands.add_parser("run", help="run the pipeline locally: no Docker, no AWS account")
    add_settings_options(run)
    run.add_argument("--local", action="store_true", help="run on this machine (S3 and the registry in moto)")
    run.add_argument("--data", type=Path, help="CSV or Parquet file with a label column (default: bundled digits)")
    run.add_argument("--target", help="name of the label column")
    run.add_argument("--param", action="append", metavar="KEY=VALUE", help="pipeline parameter, repeatable")
    run.add_argument("--runs-dir", default="runs", help="where run folders go (default: runs)")
    run.add_argument("--verbose", "-v", action="store_true", help="show every line the steps print")
    run.set_defaults(func=cmd_run)

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

    status = commands.add_parser("status", help="the latest executions and their steps")
    add_settings_options(status)
    status.add_argument("--limit", type=int, default=5)
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_status)

    models = commands.add_parser("models", help="the model registry: list, approve, reject")
    model_actions = models.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, text in (
        ("list", "packages of the group, newest first"),
        ("approve", "approve a package"),
        ("reject", "reject a package"),
    ):
        sub = model_actions.add_parser(action, help=text)
        sub.add_argument(
            "--group", default=MODEL_PACKAGE_GROUP, help=f"model package group (default: {MODEL_PACKAGE_GROUP})"
        )
        sub.add_argument("--region")
        if action == "list":
            sub.add_argument("--json", action="store_true")
        else:
            sub.add_argument("package", help="package ARN, version number, or latest")
            sub.add_argument("--note", default="", help="why: stored as the approval description")
        if action == "approve":
            sub.add_argument("--force", action="store_true", help="approve even if the package breaks the gap policy")
            sub.add_argument("--max-gap", type=float, help="policy maximum gap (default: the one recorded)")
        sub.set_defaults(func=cmd_models, force=False, max_gap=None, note="", json=False)

    predict = commands.add_parser("predict", help="score a raw table with a registered model, locally")
    predict.add_argument("--model", required=True, help="run folder, model package ARN, version number, or latest")
    predict.add_argument(
        "--data", required=True, type=Path, help="rows to score: .csv with a header, .json, .jsonl, .parquet"
    )
    predict.add_argument("--out", type=Path, help="write here (.csv or .json) instead of standard output")
    predict.add_argument(
        "--group", default=MODEL_PACKAGE_GROUP, help=f"model package group (default: {MODEL_PACKAGE_GROUP})"
    )
    predict.add_argument("--region")
    predict.set_defaults(func=cmd_predict)

    alerts = commands.add_parser("alerts", help="overfitting alarms emailed to the team")
    alert_actions = alerts.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, text in (
        ("apply", "create or update topic, subscriptions, alarms, dashboard"),
        ("show", "what is set up, and the alarm states"),
        ("template", "print the same resources as a CloudFormation template"),
    ):
        sub = alert_actions.add_parser(action, help=text)
        sub.add_argument("--pipeline-name")
        sub.add_argument("--region")
        if action != "show":
            sub.add_argument("--email", action="append", help="team member's address, repeatable")
        else:
            sub.add_argument("--json", action="store_true")
        sub.add_argument("--namespace", default=METRICS_NAMESPACE, help="CloudWatch namespace of the metrics")
        if action != "show":
            sub.add_argument("--kms-key-id", help="customer-managed KMS key for the topic (template: one is created)")
        sub.add_argument("--group", default=MODEL_PACKAGE_GROUP, help="model package group for approval events")
        sub.set_defaults(func=cmd_alerts, json=False, email=None, kms_key_id=None)
    return parser


def interrupted(_signum, _frame) -> None:
    raise KeyboardInterrupt  # SIGTERM as Ctrl-C: cleanup (ending running jobs) runs either way


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, interrupted)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (RegulaError, ValueError) as error:
        print(f"regula: error: {error}", file=sys.stderr)
        return 2
    except Exception as error:
        if type(error).__name__ == "NoCredentialsError":
            print(
                "regula: error: no AWS credentials. For a local registry, start `moto_server -p 5000` and export "
                "AWS_ENDPOINT_URL=http://127.0.0.1:5000 with any AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (README)",
                file=sys.stderr,
            )
            return 1
        if type(error).__module__.startswith("botocore"):  # no credentials, access denied, throttled: say so
            print(f"regula: error: AWS: {error}", file=sys.stderr)
            return 1
        raise
    except KeyboardInterrupt:
        print("regula: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
