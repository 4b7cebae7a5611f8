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
