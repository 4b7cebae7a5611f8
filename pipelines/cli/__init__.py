"""The `regula` command: the parser and the one place errors become exit codes.

The commands live in modules by area; each has `add_parsers(commands)`, which adds its subcommands with their
handler as `func`. A new command goes into one of them, or into a new module listed in COMMAND_MODULES. Start-up
stays light: those modules import what a command needs only when it runs (the SageMaker SDK takes seconds)."""

from __future__ import annotations

import argparse
import atexit
import gc
import signal
import sys

from pipelines.cli import account as commands_account
from pipelines.cli import alerts as commands_alerts
from pipelines.cli import help as cli_help
from pipelines.cli import local as commands_local
from pipelines.cli import models as commands_models
from pipelines.cli import runs as commands_runs
from pipelines.cli import sagemaker as commands_sagemaker
from pipelines.errors import RegulaError

# in `regula --help` order
COMMAND_MODULES = (
    commands_local,
    commands_runs,
    commands_sagemaker,
    commands_models,
    commands_alerts,
    commands_account,
)


class VersionAction(argparse.Action):
    """`--version`: the installed version and the code's commit, looked up only when asked (git is a process)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        from importlib.metadata import PackageNotFoundError, version

        from pipelines.settings import code_version

        try:
            installed = version("regula")
        except PackageNotFoundError:
            installed = "(not installed)"
        print(f"regula {installed} (code {code_version()})")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="regula",
        description="SageMaker pipelines that retrain with stronger regularization until the model generalizes.",
        epilog="start here: `regula run --local` (the demo, no AWS account), then `regula run --local --help`",
    )
    parser.add_argument("--version", action=VersionAction, help="print the version and the code's commit")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.add_parsers(commands)
    cli_help.complete(parser)
    return parser


def interrupted(_signum, _frame) -> None:
    raise KeyboardInterrupt  # SIGTERM as Ctrl-C: cleanup (ending running jobs) runs either way


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, interrupted)
    # The last collection at exit walks every object of the SDK, moto and pandas (3,400 modules): 1.4 s of a 14 s
    # local run; freeze the heap instead of sweeping it. Files are closed where they are written, never left to the
    # collector (steps/contract.py says why).
    atexit.unregister(gc.freeze)
    atexit.register(gc.freeze)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # `regula` alone: what there is to do
        parser.print_help()
        return 0
    try:
        return args.func(args)
    except (RegulaError, ValueError) as error:
        print(f"regula: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # a full disk, a file that cannot be read: what and where, on one line
        where = f": {error.filename}" if error.filename else ""
        print(f"regula: error: {error.strerror or error}{where}", file=sys.stderr)
        return 1
    except Exception as error:
        # no network (or a dead AWS_ENDPOINT_URL), no or refused credentials, access denied, throttled: say which
        if type(error).__module__.startswith(("botocore", "urllib3")):
            from pipelines.aws.errors import explain

            print(f"regula: error: {explain(error)}", file=sys.stderr)
            return 1
        raise
    except KeyboardInterrupt:
        print("regula: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
