"""`regula doctor`: is this account ready for `regula upsert` and `regula start`? Every problem at once, one line each
(the work is in doctor/check.py).

Errors first, then warnings; the exit status is 1 when there is an error (warnings alone exit 0), and the last line
says how many problems there are to fix, or, when there is none, "ok" and what was checked."""

from __future__ import annotations

import argparse

from pipelines.cli.shared import add_settings_options, settings_from
from pipelines.errors import ExitStatus
from steps.defaults import MODEL_PACKAGE_GROUP

HELP = "check the account is ready (bucket, region, role, images, registry, alerts): every problem at once"


def lines(report) -> list[str]:
    """The report as `regula doctor` prints it (a doctor.check.Report)."""
    found = [f"error: {e}" for e in report.errors] + [f"warning: {w}" for w in report.warnings]
    if report.errors:
        count = len(report.errors)
        found.append(f"{count} problem{'s' if count > 1 else ''} to fix before `regula upsert`")
    else:
        found.append(f"ok: {'; '.join(report.checked)}")
    return found


def cmd_doctor(args: argparse.Namespace) -> int:
    from pipelines.doctor import check  # boto3 and the SDK's image tables: only when it runs

    options = check.Options(model_package_group=args.model_package_group, data_uris=tuple(args.data_uri or ()))
    report = check.run(settings_from(args), options)
    print("\n".join(lines(report)))
    return ExitStatus.FAILED if report.errors else ExitStatus.SUCCESS


def add_parsers(commands) -> None:
    parser = commands.add_parser("doctor", help=HELP)
    add_settings_options(parser)
    parser.add_argument(
        "--model-package-group",
        default=MODEL_PACKAGE_GROUP,
        help=f"registry group (ModelPackageGroupName; default: {MODEL_PACKAGE_GROUP})",
    )
    parser.add_argument("--data-uri", action="append", help="s3:// table the executions will read, repeatable")
    parser.set_defaults(func=cmd_doctor)
