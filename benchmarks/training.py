"""The training step's command line, as the benchmarks run it."""

from __future__ import annotations

import sys
from pathlib import Path

STEPS = Path(__file__).resolve().parent.parent / "steps"


def train_command(splits: Path, model_dir: Path, **hyperparameters) -> list[str]:
    """steps/train.py on the train/ and validation/ folders under `splits`, with `--key value` per hyperparameter."""
    command = [
        sys.executable,
        str(STEPS / "train.py"),
        "--train",
        str(splits / "train"),
        "--validation",
        str(splits / "validation"),
        "--model_dir",
        str(model_dir),
    ]
    for key, value in hyperparameters.items():
        command += [f"--{key}", str(value)]
    return command
