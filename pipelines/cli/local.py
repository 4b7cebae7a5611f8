"""`regula render` and `regula run --local`: the commands that need no AWS account."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipelines.cli.shared import UsageError, add_settings_options, key_values, settings_from
from pipelines.errors import ExitStatus, NotFound
from steps.defaults import TARGET_COLUMN


def cmd_render(args: argparse.Namespace) -> int:
    from pipelines.definition.render import render

    text, _ = render(settings_from(args))
    out = Path(args.output)
    if args.check:
        if not out.exists() or out.read_text() != text:
            print(f"{out} does not match the code: run `regula render`", file=sys.stderr)
            return ExitStatus.FAILED
        print(f"{out} matches the code")
        return 0
    if not out.parent.is_dir():
        raise NotFound(f"cannot write {out}: its folder does not exist")
    out.write_text(text)
    print(f"wrote {out}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    if not args.local:
        raise UsageError("only local runs are done here: add --local (use `regula start` to run on SageMaker)")
    from pipelines.local.run import run_local

    report = run_local(
        settings_from(args),
        data=args.data,
        target=args.target,
        params=key_values(args.param),
        runs_dir=Path(args.runs_dir),
        verbose=args.verbose,
        cache=not args.no_cache,
    )
    return ExitStatus.SUCCESS if report["status"] == "Succeeded" else ExitStatus.FAILED


def add_parsers(commands) -> None:
    render = commands.add_parser("render", help="write the pipeline definition (pipeline.json)")
    add_settings_options(render)
    render.add_argument(
        "--output", default="pipeline.json", help="where to write it (default: pipeline.json in this folder)"
    )
    render.add_argument("--check", action="store_true", help="fail if the file differs from what the code renders")
    render.set_defaults(func=cmd_render)

    run = commands.add_parser(
        "run",
        help="run the pipeline locally: no Docker, no AWS account",
        description="Run the pipeline definition on this machine: the same steps and decisions as on SageMaker,\n"
        "with S3 and the model registry in an embedded moto server (or AWS_ENDPOINT_URL's, if set).",
    )
    run.add_argument("--local", action="store_true", help="run on this machine (required: SageMaker is `start`)")
    run.add_argument(
        "--data",
        type=Path,
        help="table with a label column: .csv/.tsv (any delimiter), .parquet, or either .gz; or a folder of images "
        "(class folders, or a manifest and its images) (default: bundled digits)",
    )
    run.add_argument("--target", help=f"name of the label column (default: {TARGET_COLUMN})")
    run.add_argument(
        "--param", action="append", metavar="NAME=VALUE", help="pipeline parameter, repeatable (listed below)"
    )
    run.add_argument("--runs-dir", default="runs", help="where run folders go (default: runs)")
    run.add_argument("--verbose", "-v", action="store_true", help="show every line the steps print")
    run.add_argument(
        "--no-cache",
        action="store_true",
        help="run every step, even where an earlier run's result matches its cache key (results are still recorded)",
    )
    add_settings_options(run, local=True)
    run.set_defaults(func=cmd_run)
