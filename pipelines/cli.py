"""The `regula` command. Start-up stays light: each command imports what it needs when it runs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipelines.settings import PIPELINE_JSON, Settings


class UsageError(Exception):
    """A mistake in what the user asked for: reported in one line, exit code 2."""


def key_values(items: list[str] | None) -> dict[str, str]:
    values = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--param takes KEY=VALUE, got {item!r}")
        values[key] = value
    return values


def settings_from(args: argparse.Namespace) -> Settings:
    overrides = {
        k: getattr(args, k)
        for k in ("pipeline_name", "region", "bucket", "prefix", "role_arn", "rounds", "image_uri")
        if getattr(args, k, None) is not None
    }
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


def add_settings_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("where the pipeline is rendered for")
    group.add_argument("--pipeline-name", help="default: regula")
    group.add_argument("--region", help="default: us-east-1")
    group.add_argument("--bucket", help="S3 bucket for code and artifacts (default: regula-artifacts)")
    group.add_argument("--prefix", help="key prefix in the bucket (default: regula)")
    group.add_argument("--role-arn", help="SageMaker execution role")
    group.add_argument("--rounds", type=int, help="rounds in the retraining ladder (default: 3)")
    group.add_argument("--image-uri", help="custom image for the steps (see containers/); default: AWS PyTorch")


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
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (UsageError, ValueError) as error:
        print(f"regula: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("regula: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
