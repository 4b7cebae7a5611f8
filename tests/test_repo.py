"""The repository's promises about itself: the README's commands, CI, and start-up cost."""

import json
import os
import re
import shlex
import subprocess
import sys

import pytest
from helpers import REPO

TEST_COMMAND = ".ci/install dev && . .venv/bin/activate && ruff check . && ruff format --check . && pytest"
RUN_COMMAND = ".ci/install && . .venv/bin/activate && regula run --local"
WORKFLOW = REPO / ".github" / "workflows" / "regula.yml"


def readme_commands() -> list[str]:
    return re.findall(r"^    (\.ci/install.*)$", (REPO / "README.md").read_text(), flags=re.MULTILINE)


def test_readme_has_exactly_the_two_set_up_and_go_commands():
    assert readme_commands() == [RUN_COMMAND, TEST_COMMAND]


def test_the_readme_commands_are_the_ones_ci_runs():
    """Read from the README itself: its test command is a line of .ci/run, which the workflow's test job runs; its
    run command installs as the deploy job does (.ci/install, then the venv)."""
    import yaml

    run, test = readme_commands()
    assert test in (REPO / ".ci" / "run").read_text().splitlines()
    jobs = yaml.safe_load(WORKFLOW.read_text())["jobs"]
    assert ".ci/run" in [step.get("run", "").split("#")[0].strip() for step in jobs["test"]["steps"]]
    install, activate, command = run.split(" && ")
    assert (activate, command) == (". .venv/bin/activate", "regula run --local")
    assert install in [step.get("run", "").split("#")[0].strip() for step in jobs["deploy"]["steps"]]
    assert test.startswith(f"{install} dev && {activate} && ")


def test_ci_runs_the_readme_test_command_and_the_slow_tier_and_the_workflow_gates_deploys_on_both():
    """.ci/run is the README's test command, then the slow tier, with CI set (a test that needs something missing
    fails instead of skipping); the workflow's test job runs it, with a Python >= 3.12 for LocalStack, and deploy
    needs that job."""
    import yaml

    script = (REPO / ".ci" / "run").read_text().splitlines()
    assert script.index("export CI=true") < script.index(TEST_COMMAND) < script.index("pytest --slow -m slow")
    jobs = yaml.safe_load(WORKFLOW.read_text())["jobs"]
    assert [step["run"].split("#")[0].strip() for step in jobs["test"]["steps"] if "run" in step] == [".ci/run"]
    (python,) = [
        step["with"]["python-version"] for step in jobs["test"]["steps"] if "setup-python" in step.get("uses", "")
    ]
    assert "3.12" in python.split() and "test" in jobs["deploy"]["needs"]


def test_torch_and_regula_are_installed_one_way():
    """.ci/install alone says how (torch's CPU build first): the README, .ci/run and the workflow call it."""
    import yaml

    callers = [REPO / "README.md", REPO / ".ci" / "run", WORKFLOW]
    assert [path.name for path in callers if "pip install" in path.read_text()] == []
    install = (REPO / ".ci" / "install").read_text()
    assert "install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in install
    assert "-m venv" in install  # PEP 668: the system Python may refuse pip
    jobs = yaml.safe_load(WORKFLOW.read_text())["jobs"]
    assert ".ci/install" in [step.get("run") for step in jobs["deploy"]["steps"]]


def test_cli_start_up_does_not_import_the_sdk():
    code = (
        "import sys; from pipelines import cli; cli.build_parser(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sagemaker', 'torch', 'boto3', 'pandas')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_example_workflow_keeps_credentials_to_deploy():
    import yaml

    workflow = yaml.safe_load(WORKFLOW.read_text())
    jobs = workflow["jobs"]
    assert "id-token" not in workflow["permissions"] and "permissions" not in jobs["test"]
    assert jobs["deploy"]["permissions"]["id-token"] == "write" and jobs["deploy"]["environment"]
    runs = [step["run"] for job in jobs.values() for step in job["steps"] if "run" in step]
    assert not [run for run in runs if "${{" in run], "repository values reach scripts through env, not pasted in"


def deploy_steps(*words: str) -> str:
    """The deploy job's steps that call `regula`, as bash runs them (folded YAML is one line each)."""
    import yaml

    steps = yaml.safe_load(WORKFLOW.read_text())["jobs"]["deploy"]["steps"]
    runs = [step["run"] for step in steps if "regula " in step.get("run", "")]
    assert [next(w for w in ("upsert", "start") if f"regula {w}" in run) for run in runs] == ["upsert", "start"]
    return "\n".join(run.strip() for run in runs if any(f"regula {word}" in run for word in words))


@pytest.mark.parametrize(("outcome", "exit_code"), [("Succeeded", 0), ("Failed", 1)])
def test_the_workflow_deploy_steps_fail_exactly_when_the_execution_fails(outcome, exit_code, clients, monkeypatch):
    """The deploy job's own `regula upsert` and `regula start` lines, run by bash against the moto server, whose
    executions end as `outcome` at once (moto's are Succeeded; a Failed one is made so in its backend, which runs in
    this process): the job's last step exits 1 on a failed execution, 0 on a succeeded one."""
    from moto.sagemaker import models

    made = models.FakePipelineExecution.__init__

    def ends_as_outcome(self, *args, **kwargs):
        made(self, *args, **kwargs)
        self.pipeline_execution_status = outcome
        self.pipeline_execution_failure_reason = "TrainRound1 failed" if outcome == "Failed" else None

    monkeypatch.setattr(models.FakePipelineExecution, "__init__", ends_as_outcome)
    clients["s3"].create_bucket(Bucket="regula-ci")
    env = {
        **os.environ,
        "REGION": "us-east-1",
        "BUCKET": "regula-ci",
        "ROLE_ARN": "arn:aws:iam::123456789012:role/regula-sagemaker",
        "DATA_URI": "s3://regula-ci/data/table.csv",
        "COMMIT": "0123456789abcdef0123456789abcdef01234567",
        "PYTHON": sys.executable,
        "PYTHONPATH": str(REPO),
    }
    script = 'set -euo pipefail\nregula() { "$PYTHON" -m pipelines.cli "$@"; }\n' + deploy_steps("upsert", "start")
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert result.returncode == exit_code, result.stderr
    assert result.stdout.strip().splitlines()[-1] == f"execution {outcome}"
    (execution,) = clients["sagemaker"].list_pipeline_executions(PipelineName="regula")["PipelineExecutionSummaries"]
    given = clients["sagemaker"].list_pipeline_parameters_for_execution(
        PipelineExecutionArn=execution["PipelineExecutionArn"]
    )["PipelineParameters"]
    assert {"Name": "CodeVersion", "Value": env["COMMIT"]} in given
    assert {"Name": "InputDataUri", "Value": env["DATA_URI"]} in given


def test_regula_run_local_with_no_aws_environment_runs_on_its_embedded_moto_server(tmp_path):
    """The README's first command on a machine with no AWS anything: no endpoint, no credentials, no config file.
    `regula run --local` starts its own moto server (pipelines/local/moto_server.aws_environment), the steps reach it
    with
    its fake credentials, and the model is registered there (MaxGap 5: one round, to keep this in the fast tier)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env |= {
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
        "PYTHONPATH": str(REPO),
    }
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "run", "--local", "--param", "MaxGap=5"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(
        r"^S3 and the model registry: embedded moto server at http://127\.0\.0\.1:\d+ ", result.stdout, re.M
    )
    assert "AWS endpoint:" not in result.stdout
    (run_dir,) = [path for path in (tmp_path / "runs").iterdir() if not path.name.startswith(".")]
    report = json.loads((run_dir / "report.json").read_text())
    assert report["status"] == "Succeeded" and report["decision"] == "registered"
    assert report["model_package_arn"].startswith("arn:aws:sagemaker:us-east-1:")
    assert f"registered {report['model_package_arn']}" in result.stdout


def image_test_pytest_argv() -> list[str]:
    """The pytest command line of .ci/image-test: the arguments after `-m pytest`, its continuation lines joined."""
    script = (REPO / ".ci" / "image-test").read_text().replace("\\\n", " ")
    (line,) = [line for line in script.splitlines() if " -m pytest " in line]
    words = shlex.split(line)
    return words[words.index("pytest") + 1 :]


def test_the_image_test_pytest_line_runs_with_only_the_plugins_it_installs():
    """.ci/image-test installs pytest alone (no pytest-xdist, whose -n pyproject's addopts pass): its pytest line,
    run here with plugin autoloading off as on a fresh runner, collects the step tests instead of stopping on
    "unrecognized arguments"."""
    argv = image_test_pytest_argv()
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", *argv, "--collect-only", "-q"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    files = {line.split("::")[0] for line in result.stdout.splitlines() if "::" in line}
    assert files == {word for word in argv if word.startswith("tests/")}
    assert "tests/test_steps.py" in files


def test_under_ci_a_cached_localstack_venv_is_installed_again_so_a_broken_pin_fails(tmp_path, monkeypatch):
    """A venv installed earlier would hide pins that no longer install: under CI it is made again (and fails here,
    on a pin that cannot install); elsewhere the cached one is used as it is. The key names the Python too."""
    import localstack_server

    requirements = tmp_path / "localstack-requirements.txt"
    requirements.write_text("regula-no-such-package==0\n")
    monkeypatch.setattr(localstack_server, "REQUIREMENTS", requirements)
    monkeypatch.setattr(localstack_server, "CACHE", tmp_path / "cache")
    monkeypatch.setattr(localstack_server, "find_python", lambda: sys.executable)
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # nothing from the network: the pin fails at once
    cached = tmp_path / "cache" / localstack_server.venv_key(sys.executable)
    cached.mkdir(parents=True)
    (cached / ".installed").write_text("ok\n")

    monkeypatch.delenv("CI", raising=False)
    assert localstack_server.ensure_venv() == cached
    monkeypatch.setenv("CI", "true")
    with pytest.raises(subprocess.CalledProcessError) as failed:
        localstack_server.ensure_venv()
    assert "install" in failed.value.cmd and not (cached / ".installed").exists()

    requirements.write_text("regula-no-such-package==1\n")
    assert localstack_server.venv_key(sys.executable) != cached.name


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


@pytest.mark.parametrize("ci, outcome", [("true", "1 error"), ("", "1 skipped")])
def test_without_a_python_for_localstack_the_alarm_tests_fail_under_ci_and_skip_elsewhere(tmp_path, ci, outcome):
    """The LocalStack fixture, run for real in a pytest of its own on a machine with no Python >= 3.12 (an empty
    home, a PATH whose only python3 is this 3.11 one): under CI the alarm test errors with the reason, so a runner
    that lost its Python cannot pass by skipping; elsewhere it is skipped."""
    if sys.version_info >= (3, 12):
        pytest.skip("this Python is itself one LocalStack can use")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(sys.executable)
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "XDG_CACHE_HOME", "PYTEST_ADDOPTS")}
    env.update(HOME=str(tmp_path), PATH=str(bin_dir), PYTHONPATH=str(REPO), **({"CI": ci} if ci else {}))
    test = "tests/test_alerts_e2e.py::test_a_run_that_gives_up_emails_every_member_once_and_a_run_that_registers_emails"
    test += "_nobody"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", test, "--slow", "-n", "0", "-q", "-rs"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert outcome in output, output
    if ci:
        assert result.returncode == 1 and "CI needs Python >= 3.12 for LocalStack" in output, output
    else:
        assert result.returncode == 0 and "no Python >= 3.12 for LocalStack" in output, output
