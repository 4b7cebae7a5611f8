"""steps/train.py's options and what it reads before it trains: its arguments, checked; the earlier rounds'
evaluations (the regularization ladder's history); the batch size when it is chosen from the rows; and whether the
instance is one the image was built for."""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

import torch

from steps.contract import StepError, read_round_evaluation
from steps.defaults import AVERAGE_DECAY, CHECKPOINT_DIR, CHECKPOINT_SECONDS, MIN_STEPS, PATIENCE_STEPS, SEED
from steps.parameter_table import add_options
from steps.parameter_table import values as parameter_values
from steps.parameters import TRAINING_DEVICE_VARIABLE, hidden_layers, training_instance_problem
from steps.parameters import problems as parameter_problems
from steps.regularization import overfit_gap

BASE_BATCH = 64  # BASE_LEARNING_RATE is for this batch size
MAX_AUTO_BATCH = 4096


def parse_args(description: str) -> argparse.Namespace:
    """train.py's options (`description`: its --help), checked: StepError names what is wrong."""
    parser = argparse.ArgumentParser(description=description)
    add_options(parser, "train")  # the pipeline parameters it gets (steps/parameter_table.py)
    parser.add_argument("--round", type=int, default=1)
    parser.add_argument(
        "--earlier", default="", help="comma-separated folders with the earlier rounds' evaluation.json, oldest first"
    )
    parser.add_argument(
        "--refit_of",
        default=os.environ.get("SM_CHANNEL_SELECTED", ""),
        help="a folder with the selected round's model.tar.gz: train it again on the training and validation rows",
    )
    parser.add_argument("--model_code", default="", help="the team's model code (steps/model_code.py); empty: the MLP")
    parser.add_argument(
        "--patience_steps", type=int, default=PATIENCE_STEPS, help="and at least this many optimizer steps; 0: epochs"
    )
    parser.add_argument(
        "--min_steps", type=int, default=MIN_STEPS, help="no early stop before this many optimizer steps"
    )
    parser.add_argument("--rounds", type=int, default=0, help="the pipeline's rounds, for the overfitting notice")
    parser.add_argument("--average_decay", type=float, default=AVERAGE_DECAY, help="of the weights' average; 0: none")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--pipeline_name", default="")
    parser.add_argument("--train", default=os.environ.get("SM_CHANNEL_TRAIN", "data/train"))
    parser.add_argument("--validation", default=os.environ.get("SM_CHANNEL_VALIDATION", "data/validation"))
    parser.add_argument("--model_dir", default=os.environ.get("SM_MODEL_DIR", "model"))
    parser.add_argument(
        "--checkpoint_dir",
        default=CHECKPOINT_DIR if Path(CHECKPOINT_DIR).is_dir() else "",
        help="where checkpoints are saved and resumed from; empty: none",
    )
    parser.add_argument("--checkpoint_seconds", type=float, default=CHECKPOINT_SECONDS, help="0: after every epoch")
    args = parser.parse_args()
    # the pipeline parameters by the table's rules: a job started from the console or the API passes no client
    problems = parameter_problems(parameter_values(args, "train"))
    if problems:
        raise StepError("; ".join(problems))
    args.hidden = hidden_layers(args.hidden)
    if not 0 <= args.average_decay < 1:  # also NaN
        raise StepError(f"average_decay must be in [0, 1), got {args.average_decay}")
    if not math.isfinite(args.checkpoint_seconds) or args.checkpoint_seconds < 0:
        raise StepError(f"checkpoint_seconds must be a finite number >= 0, got {args.checkpoint_seconds}")
    if args.patience_steps < 0 or args.min_steps < 0:
        raise StepError(
            f"patience_steps and min_steps must be >= 0 (0: epochs alone), got {args.patience_steps}, {args.min_steps}"
        )
    if args.round < 1:
        raise StepError(f"round must be >= 1, got {args.round}")
    return args


def earlier_rounds(args: argparse.Namespace) -> list[dict]:
    """The earlier rounds' evaluation reports: SageMaker mounts round i's as the channel `round<i>`."""
    folders = [f for f in args.earlier.split(",") if f] or [
        os.environ.get(f"SM_CHANNEL_ROUND{i}", "") for i in range(1, args.round)
    ]
    if len(folders) != args.round - 1 or not all(folders):
        raise StepError(f"round {args.round} needs the evaluations of rounds 1-{args.round - 1}, got {folders}")

    def level_and_gap(report: dict) -> dict:
        return {
            "round": report["round"],
            "level": report["regularization"]["level"],
            "gap": overfit_gap(report),
            "decision": report["decision"],  # collapsed: the next level bisects (steps/regularization.py)
        }

    reports = []
    for i, folder in enumerate(folders, 1):
        path = Path(folder) / "evaluation.json"
        reports.append(read_round_evaluation(path, i, level_and_gap))
        level, gap = reports[-1]["level"], reports[-1]["gap"]
        if not all(isinstance(v, int | float) and math.isfinite(v) for v in (level, gap)) or not 1 <= level <= 1e12:
            raise StepError(f"{path} holds no usable level and gap (level {level!r}, gap {gap!r})")
    levels = [r["level"] for r in reports]
    if len(set(levels)) != len(levels):  # they grow, except where a collapse made the ladder bisect
        raise StepError(f"the earlier rounds' levels must all differ, got {levels}")
    return reports


def auto_batch_size(rows: int) -> int:
    """About 200-300 steps per epoch on large tables, 64 on small ones: a power of two in [64, MAX_AUTO_BATCH]."""
    return int(min(MAX_AUTO_BATCH, max(BASE_BATCH, 2 ** round(math.log2(max(rows, 1) / 256)))))


def check_instance() -> None:
    """On SageMaker, refuse an instance the image was not built for before reading any data: `regula start` checks
    this too, but an execution started from the console or the API does not pass through it."""
    device = os.environ.get(TRAINING_DEVICE_VARIABLE)
    instance = os.environ.get("SM_CURRENT_INSTANCE_TYPE")
    if not (device and instance):
        return  # not on SageMaker (a local run), or a definition that does not say
    problem = training_instance_problem(instance, device)
    if problem:
        raise StepError(problem)
    if device == "gpu" and not torch.cuda.is_available():
        raise StepError(f"the pipeline was rendered for GPU training, but PyTorch sees no CUDA GPU on {instance}")
