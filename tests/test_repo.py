"""The repository's promises about itself: the README's commands, CI, and start-up cost."""

import re
import subprocess
import sys

from helpers import REPO

TEST_COMMAND = "pip install torch==2.13.0 && pip install -e '.[dev]' && ruff check . && ruff format --check . && pytest"
RUN_COMMAND = "pip install torch==2.13.0 && pip install -e . && regula run --local"


def readme_commands() -> list[str]:
    return re.findall(r"^    (pip install .*)$", (REPO / "README.md").read_text(), flags=re.MULTILINE)


def test_readme_has_exactly_the_two_set_up_and_go_commands():
    assert readme_commands() == [RUN_COMMAND, TEST_COMMAND]


def test_ci_runs_the_readme_test_command_and_the_slow_tier():
    script = (REPO / ".ci" / "run").read_text().splitlines()
    assert TEST_COMMAND in script
    assert "pytest --slow -m slow" in script


def test_cli_start_up_does_not_import_the_sdk():
    code = (
        "import sys; from pipelines import cli; cli.build_parser(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sagemaker', 'torch', 'boto3', 'pandas')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_example_workflow_fails_on_a_failed_execution_and_keeps_credentials_to_deploy():
    import yaml

    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "regula.yml").read_text())
    jobs = workflow["jobs"]
    assert "id-token" not in workflow["permissions"] and "permissions" not in jobs["test"]
    assert jobs["deploy"]["permissions"]["id-token"] == "write" and jobs["deploy"]["environment"]
    runs = [step["run"] for job in jobs.values() for step in job["steps"] if "run" in step]
    assert not [run for run in runs if "${{" in run], "repository values reach scripts through env, not pasted in"
    (start,) = [run for run in runs if "regula start" in run]
    assert "--wait" in start
