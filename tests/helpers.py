"""Helpers for the tests: where the steps are, how to run one as SageMaker does, and how to run the CLI."""

from __future__ import annotations

import contextlib
import functools
import io
import os
import runpy
import signal
import subprocess
import sys
import tarfile
import threading
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
STEPS = REPO / "steps"
REGION = "us-east-1"


def regula(*args: str, timeout: float = 600, **kwargs) -> subprocess.CompletedProcess:
    """`regula ARGS` as a user runs it: a separate process, output captured as text; kwargs go to subprocess.run."""
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args], capture_output=True, text=True, timeout=timeout, **kwargs
    )


def run_folders(runs: Path) -> list[Path]:
    """The run folders under `runs`, oldest first: not the step cache's `.cache`."""
    return sorted(p for p in runs.iterdir() if p.is_dir() and not p.name.startswith("."))


def run_script(name: str, *args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run a step's entry point as SageMaker would: a separate Python process."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run(
        [sys.executable, str(STEPS / name), *args], capture_output=True, text=True, env=full_env, cwd=cwd, timeout=300
    )


@contextlib.contextmanager
def _as_a_process(argv: list[str], env: dict, cwd: Path | None, result: dict):
    """This process made to look like a fresh one running `argv` with `env` in `cwd`, and put back after: argv,
    os.environ, the working directory, sys.path, torch's thread count and the SIGTERM handler. What a process would
    leave is put into `result`: returncode, stdout, stderr. The `steps` modules stay imported: they keep no state."""
    saved = (sys.argv, dict(os.environ), list(sys.path), signal.getsignal(signal.SIGTERM))
    threads = sys.modules["torch"].get_num_threads() if "torch" in sys.modules else None
    out, err = io.StringIO(), io.StringIO()
    result["returncode"] = 0
    sys.argv = argv
    os.environ.update(env)
    try:
        with contextlib.chdir(cwd or os.getcwd()), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                yield
            except SystemExit as exit:  # as the interpreter ends on it: None is 0, a number is the code, else 1
                if exit.code is not None and not isinstance(exit.code, int):
                    print(exit.code, file=sys.stderr)
                result["returncode"] = exit.code if isinstance(exit.code, int) else int(exit.code is not None)
            except Exception:
                traceback.print_exc()
                result["returncode"] = 1
    finally:
        sys.argv, sys.path[:] = saved[0], saved[2]
        os.environ.clear()
        os.environ.update(saved[1])
        signal.signal(signal.SIGTERM, saved[3])
        if threads is not None:
            sys.modules["torch"].set_num_threads(threads)
        result.update(stdout=out.getvalue(), stderr=err.getvalue())


def run_step(name: str, *args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`run_script` without the interpreter's start-up (1.5-3 s for numpy, pandas, torch): the step's file run as
    `__main__` in this process, with the same argv, environment and sys.path, its exit code, stdout and stderr
    captured as a process's would be. The same code and messages; the process contract itself (exit code, one
    stderr line, the failure file, no traceback, as a separate process) is tested with `run_script`."""
    argv, result = [str(STEPS / name), *args], {}
    with _as_a_process(argv, {"PYTHONPATH": str(REPO), **(env or {})}, cwd, result):
        runpy.run_path(argv[0], run_name="__main__")
    return subprocess.CompletedProcess(argv, **result)


def regula_here(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """`regula ARGS` in this process: `pipelines.cli.main`, which the `regula` script calls, with its exit code and
    output captured as `regula` gives them; no interpreter and SDK start-up (about 3 s). For checks of what a
    command decides; `regula` runs the command as a separate process."""
    from pipelines import cli

    argv, result = ["regula", *args], {}
    with _as_a_process(argv, env or {}, None, result):
        sys.exit(cli.main(list(args)))
    return subprocess.CompletedProcess(argv, **result)


@functools.cache
def _rendered(settings):
    from pipelines.definition.render import render

    return render(settings)


def rendered(settings=None) -> tuple[str, object]:
    """render(settings), once per test process: rendering is deterministic (tests/test_render.py checks it with a
    fresh render) and takes seconds, so the tests that only read a definition share one. Do not change the
    returned session."""
    from pipelines.settings import Settings

    return _rendered(settings or Settings())


def run_training(
    splits: Path, model_dir: Path, *args: str, env: dict | None = None, in_process: bool = False
) -> subprocess.CompletedProcess:
    """steps/train.py on the preprocessed `splits`, CloudWatch off unless `env` turns it on; with `in_process`, as
    `run_step` runs it."""
    return (run_step if in_process else run_script)(
        "train.py",
        "--train",
        str(splits / "train"),
        "--validation",
        str(splits / "validation"),
        "--model_dir",
        str(model_dir),
        *args,
        env={"REGULA_METRICS": "off", **(env or {})},
    )


def pack(model_dir: Path, into: Path) -> Path:
    """model_dir as SageMaker packs it: into/model.tar.gz."""
    into.mkdir(parents=True, exist_ok=True)
    with tarfile.open(into / "model.tar.gz", "w:gz") as tar:
        for path in sorted(model_dir.iterdir()):
            tar.add(path, arcname=path.name)
    return into / "model.tar.gz"


# Tables that preprocessing must refuse, with what its one-line error says (target column: label).
BAD_INPUTS = {
    "empty file": ("", "is empty"),
    "header only": ("a,b,label\n", "input table has no rows"),
    "missing target": ("a,b\n1,2\n3,4\n", "target column 'label' not found; columns are: a, b"),
    "duplicate columns": ("a,b,a,label\n" + "1,2,3,0\n4,5,6,1\n" * 6, "duplicate column names: a"),
    "one class": ("a,label\n" + "1,0\n2,0\n" * 10, "target column 'label' has a single class (0); need at least 2"),
    "too few rows": ("a,label\n1,x\n2,x\n3,y\n4,y\n", "too few rows to split: 2 classes have fewer than the 5 rows"),
    "no features": ("label\n0\n1\n" * 5, "table has no feature columns besides the target"),
    "no usable feature": ("c,label\n" + "7,0\n7,1\n" * 10, "no usable feature column: 'c' is constant (7)"),
    "every problem at once": (
        "c,label\n" + "7,0\n" * 20,
        "2 problems: (1) target column 'label' has a single class (0); need at least 2; "
        "(2) no usable feature column: 'c' is constant (7)",
    ),
}


# -- the model server of an artifact (steps/serve.py), as the image runs it ----------------------------------------


def port_of(process: subprocess.Popen, workers: int) -> int:
    """The port the server prints once it listens, after all its workers have loaded the model."""
    port, ready = None, 0
    for line in process.stdout:
        if line.startswith("serving on port "):
            port = int(line.split()[-1])
        ready += line.startswith("worker ") and line.rstrip().endswith(" ready")
        if port is not None and ready >= workers + (workers > 1):  # the parent loads the model once to check it
            return port
    raise AssertionError(f"the server ended with {process.wait()} before it listened")


@contextlib.contextmanager
def serving(model_dir, workers: int = 1, request_timeout: float = 20):
    """`serve` as the image's entry runs it: code/serve.py of the artifact, the model folder as /opt/ml/model; its
    URL on loopback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAGEMAKER_")}
    command = [sys.executable, str(model_dir / "code" / "serve.py"), "--model-dir", str(model_dir), "--port", "0"]
    process = subprocess.Popen(
        [*command, "--host", "127.0.0.1", "--workers", str(workers), "--request-timeout", str(request_timeout)],
        stdout=subprocess.PIPE,
        text=True,
        env={**env, "PYTHONPATH": ""},  # only the artifact's code: nothing from steps/ on the path
    )
    try:
        url = f"http://127.0.0.1:{port_of(process, workers)}"
        threading.Thread(target=process.stdout.read, daemon=True).start()  # the request log must not fill the pipe
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)
