"""`regula iam`, `regula doctor`: what a real account needs for Regula, and whether it has it (the work is in
iam/command.py and doctor/command.py)."""

from __future__ import annotations

import argparse

from pipelines.cli.shared import add_settings_options, settings_from


def cmd_iam(args: argparse.Namespace) -> int:
    from pipelines.iam import command as iam

    return iam.command(settings_from(args), args)


def cmd_doctor(args: argparse.Namespace) -> int:
    from pipelines.doctor import command as doctor

    return doctor.command(settings_from(args), args)


def add_parsers(commands) -> None:
    from pipelines.doctor import command as doctor  # light: their options; each imports what it needs when it runs
    from pipelines.iam import command as iam

    for module, handler in ((iam, cmd_iam), (doctor, cmd_doctor)):
        sub = commands.add_parser(module.NAME, help=module.HELP)
        add_settings_options(sub)
        module.add_options(sub)
        sub.set_defaults(func=handler)
