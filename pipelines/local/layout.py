"""Where a local run keeps its files: one place for the paths the runner writes and the report and predict read.

The jobs' folders and logs are the engine's (pipelines/local/engine/layout.py: `<run>/jobs/<step>/opt/ml/...`,
`<run>/logs/<step>.log`); a Regula run adds:

- `<run>/jobs/TrainRound<k>/model.tar.gz`: a training round's model
- `<run>/jobs/EvaluateRound<k>/opt/ml/processing/evaluation/evaluation.json`: a round's evaluation
- `<run>/jobs/RefitRound<k>/model.tar.gz`, `<run>/jobs/EvaluateRefitRound<k>/...evaluation.json`: the selected
  round's refit on training + validation rows and the evaluation the register step read (steps/refit.py)
- `<run>/report.json`, `<run>/losses.png`: the run report and its loss plot
"""

from __future__ import annotations

import json
from pathlib import Path

from pipelines.local.engine.layout import (
    CONTAINER_ROOT,
    MODEL_ARCHIVE,
    attempt_log,
    job_log,
    job_root,
    model_archive,
    on_host,
    rank_log,
)

__all__ = [  # the engine's paths, and the run's own
    "CONTAINER_ROOT", "MODEL_ARCHIVE", "attempt_log", "job_log", "job_root", "model_archive", "on_host", "rank_log",
    "EVALUATE_ROUND", "EVALUATION_FILE", "LOSS_PLOT", "REPORT_FILE", "TRAIN_ROUND",
    "REFIT_ROUND", "EVALUATE_REFIT_ROUND", "loss_plot", "refit_evaluation", "refit_model", "registered_artifact",
    "report_file", "round_evaluation", "round_evaluations", "round_model",
]  # fmt: skip

REPORT_FILE = "report.json"
LOSS_PLOT = "losses.png"
# the step names and evaluation output of pipelines/definition/pipeline.py
TRAIN_ROUND = "TrainRound{}"
EVALUATE_ROUND = "EvaluateRound{}"
REFIT_ROUND = "RefitRound{}"
EVALUATE_REFIT_ROUND = "EvaluateRefitRound{}"
EVALUATION_FILE = "/opt/ml/processing/evaluation/evaluation.json"


def round_model(run_dir: Path, round_: int) -> Path:
    return model_archive(job_root(run_dir, TRAIN_ROUND.format(round_)))


def round_evaluation(run_dir: Path, round_: int | str) -> Path:
    return on_host(job_root(run_dir, EVALUATE_ROUND.format(round_)), EVALUATION_FILE)


def refit_model(run_dir: Path, round_: int) -> Path:
    return model_archive(job_root(run_dir, REFIT_ROUND.format(round_)))


def refit_evaluation(run_dir: Path, round_: int) -> Path:
    """The evaluation the register step read after round `round_` decided (it names the registered model)."""
    return on_host(job_root(run_dir, EVALUATE_REFIT_ROUND.format(round_)), EVALUATION_FILE)


def registered_artifact(run_dir: Path, deciding_round: int, selected_round: int) -> tuple[Path, dict]:
    """(model.tar.gz, the evaluation whose `selected` block names it) of what the run registered when
    `deciding_round`'s evaluation selected `selected_round`: the refit where the refit's evaluation kept it, else the
    round's own model. Raises OSError or ValueError for a missing or unreadable evaluation."""
    refit = refit_evaluation(run_dir, deciding_round)
    if refit.exists():
        evaluation = json.loads(refit.read_text())
        if evaluation["selected"].get("refit") == "true":
            return refit_model(run_dir, deciding_round), evaluation
    evaluation = json.loads(round_evaluation(run_dir, selected_round).read_text())
    return round_model(run_dir, selected_round), {
        **evaluation,
        "selected": {"artifact_sha256": evaluation["artifact_sha256"]},
    }


def round_evaluations(run_dir: Path) -> list[Path]:
    """evaluation.json of every round that got evaluated, sorted by path."""
    return sorted(run_dir.glob(str(round_evaluation(Path(), "*"))))


def report_file(run_dir: Path) -> Path:
    return run_dir / REPORT_FILE


def loss_plot(run_dir: Path) -> Path:
    return run_dir / LOSS_PLOT
