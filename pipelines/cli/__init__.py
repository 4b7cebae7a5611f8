"""The `regula` command: the parser and the one place errors become exit statuses (pipelines/errors.py's map).

The commands live in modules by area; each has `add_parsers(commands)`, which adds its subcommands with their
handler as `func`. A handler turns the options into plain data, calls the work in the other packages of pipelines/
(none of which parses a command line) and prints what it returns; a failure is one of errors.py's errors. A new
command goes into one of them, or into a new module listed in COMMAND_MODULES. Start-up stays light: those modules
import what a command needs only when it runs (the SageMaker SDK takes seconds)."""

from __future__ import annotations

import argparse
import atexit
import gc
import signal
import sys
import traceback

from pipelines.cli import alerts as commands_alerts
from pipelines.cli import doctor as commands_doctor
from pipelines.cli import help as cli_help
from pipelines.cli import iam as commands_iam
from pipelines.cli import local as commands_local
from pipelines.cli import models as commands_models
from pipelines.cli import runs as commands_runs
from pipelines.cli import sagemaker as commands_sagemaker
from pipelines.errors import ExitStatus, RegulaError, exit_status, is_aws_error

# in `regula --help` order
COMMAND_MODULES = (
    commands_local,
    commands_runs,
    commands_sagemaker,
    commands_models,
    commands_alerts,
    commands_iam,
    commands_doctor,
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
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.add_parsers(commands)
    cli_help.complete(parser)
    for _, sub in cli_help.subcommands(parser):  # `regula run --local --debug` as well as `regula --debug run ...`
        if not any(isinstance(a, argparse._SubParsersAction) for a in sub._actions):
            sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)
    return parser


DEBUG_HELP = "print the traceback of an error too (a bug's traceback is always printed)"


def interrupted(_signum, _frame) -> None:
    raise KeyboardInterrupt  # SIGTERM as Ctrl-C: cleanup (ending running jobs) runs either way


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, interrupted)
    # progress shows as it happens when the output is a pipe too (a CI log, `| tee`): a line at a time, not 8 KB
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)
    # The last collection at exit walks every object of the SDK, moto and pandas (thousands of modules), a visible
    # share of a short local run; freeze the heap instead of sweeping it. Files are closed where they are written,
    # never left to the collector (steps/contract.py says why).
    atexit.unregister(gc.freeze)
    atexit.register(gc.freeze)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # `regula` alone: what there is to do
        parser.print_help()
        return 0
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("regula: interrupted", file=sys.stderr)
        return ExitStatus.INTERRUPTED
    except Exception as error:
        status = exit_status(error)
        if args.debug or status == ExitStatus.UNEXPECTED:
            traceback.print_exc()
        print(f"regula: error: {one_line(error, status)}", file=sys.stderr)
        return status


def one_line(error: Exception, status: ExitStatus) -> str:
    """What the user reads: the error's own message for a user's error; for AWS and OSError what and where; for a
    bug, that it is one."""
    if isinstance(error, RegulaError):
        return str(error)
    if is_aws_error(error):  # no network (or a dead AWS_ENDPOINT_URL), no or refused credentials: say which
        from pipelines.aws.errors import explain

        return explain(error)
    if isinstance(error, OSError):  # a full disk, a file that cannot be read: what and where, on one line
        where = f": {error.filename}" if error.filename else ""
        return f"{error.strerror or error}{where}"
    return (
        f"unexpected {type(error).__name__}: {error} (a bug in Regula: the traceback above says where; exit status "
        f"{int(status)})"
    )


if __name__ == "__main__":
    sys.exit(main())
