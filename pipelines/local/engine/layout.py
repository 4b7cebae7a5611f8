"""Where the local runner keeps a run's files, one place for the paths the jobs write and their logs:

- `<run>/jobs/<step>/opt/ml/...`: a job's container folder, its `/opt/ml/...`
- `<run>/jobs/<step>/model.tar.gz`: a training job's model, packed as SageMaker packs it
- `<run>/logs/<step>.log`: a job's output (rank 0; other ranks: `<step>.rank<r>.log`; an attempt that failed and was
  retried: `<step>.attempt<n>.log`, `<step>.rank<r>.attempt<n>.log`)
"""

from __future__ import annotations

from pathlib import Path

CONTAINER_ROOT = "/opt/ml"
MODEL_ARCHIVE = "model.tar.gz"


def on_host(job_root: Path, container_path: str) -> Path:
    """Where a job's `/opt/ml/...` path lives in its folder."""
    return job_root / container_path.lstrip("/")


def job_root(run_dir: Path, step_name: str) -> Path:
    return run_dir / "jobs" / step_name


def job_log(run_dir: Path, step_name: str) -> Path:
    return run_dir / "logs" / f"{step_name}.log"


def rank_log(log: Path, rank: int) -> Path:
    """The output of a distributed job's other ranks, beside rank 0's log."""
    return log.with_suffix(f".rank{rank}.log")


def attempt_log(log: Path, attempt: int) -> Path:
    """Where a log of a failed attempt is kept when the step is retried."""
    return log.with_suffix(f".attempt{attempt}.log")


def model_archive(job_root: Path) -> Path:
    """A training job's model folder, packed as SageMaker packs it."""
    return job_root / MODEL_ARCHIVE
