"""What the steps agree on: the split files, and how a step reports failure.

A step that fails on bad input prints one line naming the problem on stderr,
writes it to the SageMaker failure file, and exits non-zero. SageMaker shows
that line as the job's FailureReason; Regula's local runner shows it as the
step's message.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

LABEL = "label"  # preprocessing renames the target column to this and encodes it as 0..C-1
SCHEMA = "schema.json"
SPLITS = ("train", "validation", "test")


class StepError(Exception):
    """Bad input or configuration: reported as one line, without a traceback."""


def read_split(directory: str | Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Features (float32) and label indices (int64) of `name`.csv in `directory`."""
    path = Path(directory) / f"{name}.csv"
    if not path.exists():
        raise StepError(f"missing split file {path}")
    table = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64, ndmin=2)
    return table[:, 1:].astype(np.float32), table[:, 0].astype(np.int64)


def read_schema(directory: str | Path) -> dict:
    return json.loads((Path(directory) / SCHEMA).read_text())


def run(main: Callable[[], None], step: str, failure_file: str | None = None) -> None:
    """Run `main`, turning StepError and ValueError into a one-line failure."""
    try:
        main()
    except (StepError, ValueError) as error:
        message = f"{step}: {error}".replace("\n", " ")
        print(f"ERROR {message}", file=sys.stderr, flush=True)
        failure_file = failure_file or os.environ.get("SM_OUTPUT_FAILURE")
        if failure_file:
            Path(failure_file).parent.mkdir(parents=True, exist_ok=True)
            Path(failure_file).write_text(message + "\n")
        sys.exit(2)
