"""`regula iam`: what a real account needs for Regula (the work is in iam.py)."""

from __future__ import annotations

import argparse

from pipelines.cli_shared import add_settings_options, settings_from


def cmd_iam(args: argparse.Namespace) -> int:
    from pipelines import iam

    return iam.command(settings_from(args), args)


def add_parsers(commands) -> None:
    from pipelines import iam  # light: its options; it imports the SDK only when it runs

    sub = commands.add_parser("iam", help=iam.HELP)
    add_settings_options(sub)
    iam.add_options(sub)
    sub.set_defaults(func=cmd_iam)
