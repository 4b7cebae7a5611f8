"""Helpers for the tests: where the steps are, and how to run one as SageMaker does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
STEPS = REPO / "steps"
REGION = "us-east-1"


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


# Tables that preprocessing must refuse, with what its one-line error says (target column: label).
BAD_INPUTS = {
    "empty file": ("", "is empty"),
    "missing target": ("a,b\n1,2\n3,4\n", "target column 'label' not found; columns are: a, b"),
    "nan": (
        "a,b,label\n" + "1,2,0\n" * 6 + "nan,2,1\n" + "1,2,1\n" * 6,
        "1 rows have NaN or infinite values in columns: a",
    ),
    "inf": ("a,b,label\n" + "1,2,0\n" * 6 + "1,inf,1\n" + "1,2,1\n" * 6, "NaN or infinite values in columns: b"),
    "non-numeric": ("a,city,label\n" + "1,paris,0\n1,rome,1\n" * 6, "non-numeric feature columns: city"),
    "one class": ("a,label\n" + "1,0\n" * 10, "single class"),
    "too few rows": ("a,label\n1,0\n2,0\n3,1\n4,1\n", "too few rows to split"),
    "no features": ("label\n0\n1\n" * 5, "no feature columns"),
}
