"""`regula iam`, `regula doctor`: what a real account needs for Regula, and whether it has it (the work is in
iam.py and doctor.py)."""

from __future__ import annotations

import argparse

from pipelines.cli_shared import add_settings_options, settings_from


def cmd_iam(args: argparse.Namespace) -> int:
    from pipelines import iam

    return iam.command(settings_from(args), args)


def cmd_doctor(args: argparse.Namespace) -> int:
    from pipelines import doctor

    return doctor.command(settings_from(args), args)


def add_parsers(commands) -> None:
    from pipelines import doctor, iam  # light: their options; each imports what it needs when it runs

    for module, handler in ((iam, cmd_iam), (doctor, cmd_doctor)):
        sub = commands.add_parser(module.NAME, help=module.HELP)
        add_settings_options(sub)
        module.add_options(sub)
        sub.set_defaults(func=handler)
