"""Where a local run keeps its files: one place for the paths the runner writes and the report and predict read.

- `<run>/jobs/<step>/opt/ml/...`: a job's container folder, its `/opt/ml/...`
- `<run>/jobs/TrainRound<k>/model.tar.gz`: a training round's model
- `<run>/jobs/EvaluateRound<k>/opt/ml/processing/evaluation/evaluation.json`: a round's evaluation
- `<run>/logs/<step>.log`: a job's output (rank 0; other ranks: `<step>.rank<r>.log`; an attempt that failed and was
  retried: `<step>.attempt<n>.log`, `<step>.rank<r>.attempt<n>.log`)
- `<run>/report.json`, `<run>/losses.png`: the run report and its loss plot
"""

from __future__ import annotations

from pathlib import Path

CONTAINER_ROOT = "/opt/ml"
REPORT_FILE = "report.json"
LOSS_PLOT = "losses.png"
MODEL_ARCHIVE = "model.tar.gz"
# the step names and evaluation output of pipelines/definition/pipeline.py
TRAIN_ROUND = "TrainRound{}"
EVALUATE_ROUND = "EvaluateRound{}"
EVALUATION_FILE = "/opt/ml/processing/evaluation/evaluation.json"


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


def round_model(run_dir: Path, round_: int) -> Path:
    return model_archive(job_root(run_dir, TRAIN_ROUND.format(round_)))


def round_evaluation(run_dir: Path, round_: int | str) -> Path:
    return on_host(job_root(run_dir, EVALUATE_ROUND.format(round_)), EVALUATION_FILE)


def round_evaluations(run_dir: Path) -> list[Path]:
    """evaluation.json of every round that got evaluated, sorted by path."""
    return sorted(run_dir.glob(str(round_evaluation(Path(), "*"))))


def report_file(run_dir: Path) -> Path:
    return run_dir / REPORT_FILE


def loss_plot(run_dir: Path) -> Path:
    return run_dir / LOSS_PLOT
