"""The repository's promises about itself: the README's commands, CI, and start-up cost."""

import re
import subprocess
import sys

from helpers import REPO

TEST_COMMAND = ".ci/install dev && . .venv/bin/activate && ruff check . && ruff format --check . && pytest"
RUN_COMMAND = ".ci/install && . .venv/bin/activate && regula run --local"
WORKFLOW = REPO / ".github" / "workflows" / "regula.yml"


def readme_commands() -> list[str]:
    return re.findall(r"^    (\.ci/install.*)$", (REPO / "README.md").read_text(), flags=re.MULTILINE)


def test_readme_has_exactly_the_two_set_up_and_go_commands():
    assert readme_commands() == [RUN_COMMAND, TEST_COMMAND]


def test_ci_runs_the_readme_test_command_and_the_slow_tier():
    script = (REPO / ".ci" / "run").read_text().splitlines()
    assert TEST_COMMAND in script
    assert "pytest --slow -m slow" in script


def test_torch_and_regula_are_installed_one_way():
    """.ci/install alone says how (torch's CPU build first): the README, .ci/run and the workflow call it."""
    import yaml

    callers = [REPO / "README.md", REPO / ".ci" / "run", WORKFLOW]
    assert [path.name for path in callers if "pip install" in path.read_text()] == []
    install = (REPO / ".ci" / "install").read_text()
    assert "install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in install
    assert "-m venv" in install  # PEP 668: the system Python may refuse pip
    jobs = yaml.safe_load(WORKFLOW.read_text())["jobs"]
    assert [step["run"] for step in jobs["test"]["steps"] if "run" in step] == [TEST_COMMAND]
    assert ".ci/install" in [step.get("run") for step in jobs["deploy"]["steps"]]


def test_cli_start_up_does_not_import_the_sdk():
    code = (
        "import sys; from pipelines import cli; cli.build_parser(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sagemaker', 'torch', 'boto3', 'pandas')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_example_workflow_fails_on_a_failed_execution_and_keeps_credentials_to_deploy():
    import yaml

    workflow = yaml.safe_load(WORKFLOW.read_text())
    jobs = workflow["jobs"]
    assert "id-token" not in workflow["permissions"] and "permissions" not in jobs["test"]
    assert jobs["deploy"]["permissions"]["id-token"] == "write" and jobs["deploy"]["environment"]
    runs = [step["run"] for job in jobs.values() for step in job["steps"] if "run" in step]
    assert not [run for run in runs if "${{" in run], "repository values reach scripts through env, not pasted in"
    (start,) = [run for run in runs if "regula start" in run]
    assert "--wait" in start


def test_the_image_versions_have_one_source_and_ci_tests_the_steps_with_them():
    """containers/steps says what the image runs (its base, Python, torch, the pins), containers/build builds that
    base's CPU and GPU variants, Settings renders its tag, local tests run its torch, and a CI job runs the step
    scripts' tests with exactly those versions."""
    import yaml

    from pipelines.settings import Settings

    dockerfile = (REPO / "containers" / "steps" / "Dockerfile").read_text()
    base = re.search(r"^ARG BASE=(\S+)$", dockerfile, flags=re.MULTILINE)[1]
    version = Settings().pytorch_version
    assert base == f"public.ecr.aws/deep-learning-containers/pytorch:{version}-cpu-amzn2023-sagemaker"
    build = (REPO / "containers" / "build").read_text()
    assert f"cpu) base={base} ;;" in build
    assert re.search(rf"gpu\) base=public\.ecr\.aws/deep-learning-containers/pytorch:{version}-cu\d+-amzn2023", build)

    versions = subprocess.run([REPO / ".ci" / "image-versions"], capture_output=True, text=True, check=True).stdout
    pins = dict(line.split("==") for line in versions.split())
    assert pins["torch"].startswith(f"{version}.") and {"numpy", "pandas", "pyarrow", "scikit-learn"} <= set(pins)
    assert f" install torch=={pins['torch']} " in (REPO / ".ci" / "install").read_text(), "local tests: its torch"

    job = yaml.safe_load(WORKFLOW.read_text())["jobs"]["image-versions"]
    assert [step["run"] for step in job["steps"] if "run" in step][-1] == ".ci/image-test"
    assert "image-versions" in yaml.safe_load(WORKFLOW.read_text())["jobs"]["deploy"]["needs"]
    image_test = (REPO / ".ci" / "image-test").read_text()
    assert ".ci/image-versions --check" in image_test and "tests/test_steps.py" in image_test


def test_the_step_modules_have_one_import_name():
    """Every module of steps/ imports its siblings as `steps.<name>`, never by a bare name, and each imports as
    `steps.<name>` in a fresh interpreter with nothing added to its path (no path juggling in the package)."""
    import ast

    steps = REPO / "steps"
    names = {path.stem for path in steps.glob("*.py")}
    bare = []
    for path in sorted(steps.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            imported = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            imported += [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else []
            bare += [f"{path.name}: {name}" for name in imported if name.split(".")[0] in names]
    assert bare == []
    modules = sorted(name for name in names if name != "__init__")
    code = f"import importlib, sys; [importlib.import_module('steps.' + m) for m in {modules}]; print(sys.path)"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(REPO)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=env)
    assert result.returncode == 0, result.stderr
    assert str(steps) not in result.stdout, "steps/ itself on the path: a second import name"
