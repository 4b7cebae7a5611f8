"""How `regula` ends: one `regula: error:` line and an exit status per kind of error (pipelines/errors.py), the same
statuses the README's table lists; a bug prints its traceback and exits with its own status; `--debug` shows the
traceback of a user's error too. A step script that hits a bug still writes its one-line failure file."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys

from helpers import REPO, regula

from pipelines.aws import deploy
from pipelines.errors import ExitStatus, exit_status
from pipelines.settings import Settings


def fake_run_folder(tmp_path, archive: bytes, recorded_sha256: str):
    """A finished run folder as the local runner lays it out (pipelines/local/layout.py) whose round 1 was registered:
    its model archive, and the sha256 its evaluation recorded."""
    run = tmp_path / "runs" / "20261202-080000"
    model = run / "jobs" / "TrainRound1" / "model.tar.gz"
    evaluation = run / "jobs" / "EvaluateRound1" / "opt" / "ml" / "processing" / "evaluation" / "evaluation.json"
    for path in (model, evaluation):
        path.parent.mkdir(parents=True)
    model.write_bytes(archive)
    evaluation.write_text(json.dumps({"round": 1, "artifact_sha256": recorded_sha256}))
    report = {"status": "Succeeded", "model_package_arn": "arn:x", "rounds": [{"round": 1, "decision": "register"}]}
    (run / "report.json").write_text(json.dumps(report))
    return run


def test_a_usage_error_is_one_line_and_exit_2_and_starts_nothing(tmp_path):
    result = regula("run", "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        "regula: error: only local runs are done here: add --local (use `regula start` to run on SageMaker)\n"
    )
    assert not (tmp_path / "runs").exists()
    parsed = regula("runs", "list", "--no-such-option", cwd=tmp_path)  # argparse's own usage errors: 2 as well
    assert parsed.returncode == 2 and "unrecognized arguments: --no-such-option" in parsed.stderr


def test_what_is_not_there_is_exit_4_and_debug_adds_the_traceback(tmp_path):
    rows = tmp_path / "rows.csv"
    rows.write_text("a,b\n1,2\n")
    (tmp_path / "empty").mkdir()
    result = regula("predict", "--model", str(tmp_path / "empty"), "--data", str(rows), cwd=tmp_path)
    assert (result.returncode, result.stdout) == (4, "")
    assert result.stderr == f"regula: error: {tmp_path / 'empty'} is not a run folder: no report.json\n"

    for argv in (["--debug", "predict"], ["predict", "--debug"]):  # before or after the command
        debug = regula(*argv, "--model", str(tmp_path / "empty"), "--data", str(rows), cwd=tmp_path)
        assert debug.returncode == 4
        lines = debug.stderr.splitlines()
        assert lines[0] == "Traceback (most recent call last):"
        assert "pipelines.models.predict.ModelNotFound" in lines[-2]
        assert lines[-1] == f"regula: error: {tmp_path / 'empty'} is not a run folder: no report.json"


def test_a_refusal_is_exit_3_and_runs_none_of_the_model_code(tmp_path):
    """A run folder whose model is not the artifact that was evaluated: its code is never unpacked or imported."""
    run = fake_run_folder(tmp_path, b"not the evaluated model", hashlib.sha256(b"the evaluated model").hexdigest())
    rows = tmp_path / "rows.csv"
    rows.write_text("a,b\n1,2\n")
    out = tmp_path / "scored.csv"
    result = regula("predict", "--model", str(run), "--data", str(rows), "--out", str(out), cwd=tmp_path)
    assert (result.returncode, result.stdout) == (3, "")
    [line] = result.stderr.splitlines()
    assert re.fullmatch(
        r"regula: error: model\.tar\.gz is not the artifact that was evaluated \(sha256 [0-9a-f]{12}\.\.\., "
        r"recorded [0-9a-f]{12}\.\.\.\): refusing to run its code",
        line,
    ), line
    assert not out.exists()


def test_a_check_that_fails_is_exit_1(tmp_path):
    stale = tmp_path / "pipeline.json"
    stale.write_text("{}\n")
    result = regula("render", "--check", "--output", str(stale), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == f"{stale} does not match the code: run `regula render`\n"
    assert stale.read_text() == "{}\n"


def test_an_unreachable_aws_endpoint_is_exit_6(tmp_path):
    env = {
        "PATH": "/usr/bin:/bin",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",  # the discard port: nothing listens
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_MAX_ATTEMPTS": "1",
        "PYTHONPATH": str(REPO),
    }
    result = regula("models", "list", cwd=tmp_path, env=env, timeout=120)
    assert result.returncode == 6, result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith("regula: error: cannot reach http://127.0.0.1:9, the endpoint AWS_ENDPOINT_URL names")


def test_a_bug_prints_its_traceback_and_exits_70(tmp_path):
    """A bug forced in a real `regula runs list` process: the command's module is patched there to raise, as a
    broken line of Regula would; nothing else changes."""
    code = (
        "import sys\n"
        "from pipelines import cli; from pipelines.cli import runs as commands_runs\n"
        "def broken(runs_dir):\n"
        "    return len(runs_dir)\n"  # a Path has no len(): a TypeError, Regula's own bug
        "commands_runs.run_folders = broken\n"
        "sys.exit(cli.main(['runs', 'list', '--runs-dir', 'runs']))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert (result.returncode, result.stdout) == (70, "")
    lines = result.stderr.splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert '  File "<string>", line 4, in broken' in lines  # where the bug is
    assert "TypeError: object of type 'PosixPath' has no len()" in lines
    assert lines[-1] == (
        "regula: error: unexpected TypeError: object of type 'PosixPath' has no len() (a bug in Regula: the "
        "traceback above says where; exit status 70)"
    )


def test_giving_up_on_a_wait_is_a_timeout():
    """`start --wait` past its limit: deploy.wait_for against an execution that never ends (moto's end at once)."""

    class StillExecuting:
        def describe_pipeline_execution(self, PipelineExecutionArn):
            return {"PipelineExecutionStatus": "Executing"}

        def list_pipeline_execution_steps(self, **_):
            return {"PipelineExecutionSteps": []}

    try:
        deploy.wait_for(StillExecuting(), "arn:e", poll_seconds=0, timeout_seconds=0, echo=lambda _: None)
    except deploy.DeployError as error:
        assert str(error) == "gave up waiting after 0s; the execution is still Executing"
        assert exit_status(error) == ExitStatus.TIMEOUT == 5
    else:
        raise AssertionError("wait_for returned")


def test_each_kind_of_error_has_its_status():
    """The map, by what the areas raise: a pipeline that does not exist, a retry of a live run, a bad setting."""
    from pipelines.models import predict, registry

    assert exit_status(deploy.DeployNotFound("pipeline regula does not exist")) == ExitStatus.NOT_FOUND
    assert exit_status(deploy.RetryRefused("only a failed execution can be retried")) == ExitStatus.REFUSED
    assert exit_status(registry.ApprovalRefused("refusing")) == ExitStatus.REFUSED
    assert exit_status(predict.PredictError("cannot write x.xlsx")) == ExitStatus.USAGE
    try:
        Settings(rounds=11)
    except ValueError as error:  # a ValueError still, for the callers that catch one
        assert exit_status(error) == ExitStatus.USAGE
    assert exit_status(OSError(28, "No space left on device")) == ExitStatus.ENVIRONMENT
    assert exit_status(KeyError("x")) == ExitStatus.UNEXPECTED
    assert exit_status(ValueError("a library's")) == ExitStatus.UNEXPECTED  # no longer a user's error by default


def test_the_readme_lists_every_exit_status():
    readme = (REPO / "README.md").read_text()
    section = readme.split("\n## Exit statuses\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (\d+) +\| `(\w+)` +\|", section, flags=re.MULTILINE)
    assert [(int(value), name) for value, name in rows] == [(s.value, s.name) for s in ExitStatus]


def test_a_step_that_hits_a_bug_writes_its_one_line_failure_and_logs_the_traceback(tmp_path):
    failure = tmp_path / "failure"
    code = (
        "from steps import contract\n"
        "def main():\n"
        "    return {}['epochs']\n"
        f"contract.run(main, 'train', {str(failure)!r})\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[0] == "Traceback (most recent call last):" and "KeyError: 'epochs'" in lines
    message = "train: unexpected KeyError: 'epochs' (a bug: the traceback is in the log)"
    assert lines[-1] == f"ERROR {message}"
    assert failure.read_text() == message + "\n"
