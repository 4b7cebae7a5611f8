"""Helpers for the tests: where the steps are, how to run one as SageMaker does, and how to run the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
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
    full_env = {**os.environ, "PYTHONPATH": str(STEPS), **(env or {})}
    return subprocess.run(
        [sys.executable, str(STEPS / name), *args], capture_output=True, text=True, env=full_env, cwd=cwd, timeout=300
    )


def run_training(splits: Path, model_dir: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """steps/train.py on the preprocessed `splits`, CloudWatch off unless `env` turns it on."""
    return run_script(
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
