"""The `regula` command follows the conventions a newcomer expects: help when run alone, --version, help text on
every option and examples on every command, `run --help` that shows what matters locally, files where asked."""

from __future__ import annotations

import argparse
import json
import re

from helpers import REPO, regula_here

from pipelines import cli
from pipelines.cli import help as cli_help


def test_regula_alone_prints_help_and_exits_0():
    result = regula_here()
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: regula [-h] [--version] [--debug] COMMAND ...")
    assert "run       run the pipeline locally" in result.stdout
    assert result.stderr == ""


def test_version_names_the_package_version_and_the_code():
    result = regula_here("--version")
    assert result.returncode == 0
    assert re.fullmatch(r"regula \d+\.\d+\.\d+ \(code ([0-9a-f]{12}(-dirty)?|unknown)\)\n", result.stdout), (
        result.stdout
    )


def test_every_option_has_help_and_every_command_has_examples():
    missing, without_examples = [], []
    for path, sub in cli_help.subcommands(cli.build_parser()):
        has_actions = any(isinstance(a, argparse._SubParsersAction) for a in sub._actions)
        if not has_actions and "examples:" not in (sub.epilog or ""):
            without_examples.append(" ".join(path))
        for action in sub._actions:
            if action.help is None and not isinstance(action, argparse._SubParsersAction):
                missing.append(f"{' '.join(path)} {'/'.join(action.option_strings) or action.dest}")
    assert missing == []
    assert without_examples == []


def test_run_help_shows_the_local_options_and_every_parameter_with_its_default():
    result = regula_here("run", "--local", "--help")
    assert result.returncode == 0
    text = result.stdout
    for option in ("--data", "--target", "--param", "--runs-dir", "--rounds", "--no-cache"):
        assert option in text
    for hidden in ("--role-arn", "--image-uri", "--kms-key-id", "--subnet", "--job-tag", "--spot"):
        assert hidden not in text, f"{hidden} does nothing locally"
    assert re.search(r"^  MaxGap +0\.1 +largest accepted generalization gap", text, re.MULTILINE)
    assert re.search(r"^  ExcludeColumns +'' +comma-separated columns", text, re.MULTILINE)
    declared = [p["Name"] for p in json.loads((REPO / "pipeline.json").read_text())["Parameters"]]
    assert all(re.search(rf"^  {name} ", text, re.MULTILINE) for name in declared)
    assert "regula run --local --data churn.csv --target churned" in text
    # hidden, still accepted (scripts written against the full list keep working)
    args = cli.build_parser().parse_args(["run", "--local", "--role-arn", "arn:aws:iam::1:role/x"])
    assert args.role_arn == "arn:aws:iam::1:role/x"


def test_render_writes_into_the_working_directory_or_output(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = regula_here("render")
    assert (result.returncode, result.stdout) == (0, "wrote pipeline.json\n"), result.stderr
    assert (tmp_path / "pipeline.json").read_text() == (REPO / "pipeline.json").read_text()
    result = regula_here("render", "--output", "out/definition.json")
    assert result.returncode == 4
    assert result.stderr.strip() == "regula: error: cannot write out/definition.json: its folder does not exist"
    (tmp_path / "out").mkdir()
    assert regula_here("render", "--output", "out/definition.json").returncode == 0
    assert (tmp_path / "out" / "definition.json").read_text() == (REPO / "pipeline.json").read_text()
