"""What `regula ... --help` shows beyond each option's own text: examples for every command (as epilogs), the
pipeline parameters for the commands that take `--param`, and the help of options that many commands share.

Kept apart from the command modules so every command gets the same treatment; light to import (`regula --help`)."""

from __future__ import annotations

import argparse

from pipelines.definition.parameter_names import help_text as parameter_help

# options several commands declare alike: their help, where a module left it out
SHARED_HELP = {
    "--region": "AWS region (default: us-east-1)",
    "--json": "print JSON instead of a table",
    "--pipeline-name": "the pipeline's name (default: regula)",
    "--poll-seconds": "with --wait: seconds between status checks (default: 30)",
    "--limit": "how many executions to show, newest first (default: 5)",
}

EXAMPLES = {
    "render": """examples:
  regula render                          # ./pipeline.json, for the default settings
  regula render --output build/pipeline.json --rounds 4
  regula render --check                  # exit 1 if ./pipeline.json differs from what the code renders""",
    "run": """examples:
  regula run --local                                         # the bundled demo (digits), no AWS account
  regula run --local --data churn.csv --target churned
  regula run --local --data churn.csv --target churned --param ExcludeColumns=customer_id,signup_date
  regula run --local --param MaxGap=0.05 -v                  # a stricter gap: watch the ladder, every line
  regula predict --model runs/<run> --data new.csv           # afterwards: score rows with the registered round""",
    "runs list": """examples:
  regula runs list
  regula runs list --runs-dir elsewhere/runs --json""",
    "runs clean": """examples:
  regula runs clean --dry-run            # what would go: all but the newest 5
  regula runs clean --keep 2
  regula runs clean --failed --keep 0    # every run that did not succeed""",
    "upsert": """examples:
  regula upsert --role-arn arn:aws:iam::123456789012:role/RegulaSageMakerExecution --bucket my-sagemaker-bucket""",
    "start": """examples:
  regula start --param InputDataUri=s3://my-bucket/churn.csv --param TargetColumn=churned --wait
  regula start --param MaxGap=0.05""",
    "retry": """examples:
  regula retry                 # the latest execution, if it failed
  regula retry arn:aws:sagemaker:us-east-1:123456789012:pipeline/regula/execution/abc123 --wait""",
    "status": """examples:
  regula status
  regula status --limit 1 --json""",
    "models list": """examples:
  regula models list
  regula models list --group churn-models --json""",
    "models approve": """examples:
  regula models approve latest --note "reviewed the test metrics"
  regula models approve 3 --force --note "accepted above MaxGap: reviewed by the team" """,
    "models reject": """examples:
  regula models reject 3 --note "leaks the churn date"   # --note is required once a package is Approved""",
    "predict": """examples:
  regula predict --model runs/20261201-120000 --data new.csv            # the round a local run registered
  regula predict --model latest --data new.csv --out scored.csv         # the group's newest package""",
    "iam": """examples:
  regula iam --github-repo my-org/my-repo                           # the policies as JSON
  regula iam --github-repo my-org/my-repo --format cloudformation > regula-iam.yaml""",
    "doctor": """examples:
  regula doctor
  regula doctor --data-uri s3://my-bucket/churn.csv""",
    "alerts apply": """examples:
  regula alerts apply --email ana@example.com --email bo@example.com""",
    "alerts show": """examples:
  regula alerts show
  regula alerts show --json""",
    "alerts template": """examples:
  regula alerts template --email ana@example.com > alerts.json   # the same resources, as CloudFormation""",
}
PARAMETER_COMMANDS = ("run", "start")


def subcommands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(path, parser) of every command and subcommand under `parser`."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*path, name), sub
                yield from subcommands(sub, (*path, name))


def complete(parser: argparse.ArgumentParser) -> None:
    """Examples, the parameters and the shared options' help, on every command of `parser`."""
    for path, sub in subcommands(parser):
        name = " ".join(path)
        epilog = [EXAMPLES[name]] if name in EXAMPLES else []
        if name in PARAMETER_COMMANDS:
            epilog.append(parameter_help())
        if epilog:
            sub.epilog = "\n\n".join(epilog)
            sub.formatter_class = argparse.RawDescriptionHelpFormatter
        for action in sub._actions:
            if action.help is None:
                action.help = next((SHARED_HELP[o] for o in action.option_strings if o in SHARED_HELP), None)
