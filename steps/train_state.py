"""What a checkpoint of steps/train.py holds, and how a run resumes from one (the file itself, written and read
safely, and the fingerprint check: steps/checkpoint.py).

A run resumes only from a checkpoint with its own fingerprint; one that is another run's, or damaged inside, is
ignored with a line saying why, and the run starts from epoch 1.
"""

from __future__ import annotations

import copy
import math
import sys
from pathlib import Path

import torch

from steps import checkpoint
from steps.contract import SCHEMA, file_sha256, split_path

# Where things are and go, not what is trained: a checkpoint of a run that differs only in these is still its own.
NOT_FINGERPRINTED = ("train", "validation", "model_dir", "checkpoint_dir", "checkpoint_seconds", "earlier",
                     "metrics_namespace", "pipeline_name")  # fmt: skip


def code_files() -> list[Path]:
    """The code this run executes: the `steps` package and the entry script (beside it in a training job's code)."""
    entry = Path(sys.argv[0])
    return [*Path(__file__).resolve().parent.glob("*.py"), *([entry] if entry.is_file() else [])]


def split_files(directory: str, name: str) -> dict[str, Path]:
    """A split's data files: a table's one Parquet file, or every file of the split's folder (another input kind's
    arrays, e.g. images.npy and labels.npy)."""
    table = split_path(directory, name)
    if table.exists():
        return {name: table}
    return {f"{name}/{p.name}": p for p in sorted(Path(directory).iterdir()) if p.is_file() and p.name != SCHEMA}


def fingerprint(args, strength: dict, batch_size: int, learning_rate: float, world: int, device, model: str) -> dict:
    """What this run is: a checkpoint resumes only a run with an equal fingerprint. The earlier rounds count through
    the regularization they led to; the inputs by their sha256 (the S3 folder is shared across executions); the
    model code by its files' sha256 (`model`: ModelCode.sha256, or the built-in's name: its code is the package's)."""
    hyperparameters = {k: v for k, v in vars(args).items() if k not in NOT_FINGERPRINTED}
    inputs = {**split_files(args.train, "train"), **split_files(args.validation, "validation")}
    return {
        "format": checkpoint.FORMAT,
        "code": checkpoint.code_digest(code_files()),
        "model_code": model,
        "torch": str(torch.__version__),  # a str subclass that weights_only loading refuses
        "hyperparameters": {**hyperparameters, "batch_size": batch_size, "learning_rate": learning_rate},
        "regularization": {k: strength[k] for k in ("level", "dropout", "l1", "l2")},
        "inputs": {**{k: file_sha256(v) for k, v in inputs.items()}, "schema": file_sha256(Path(args.train) / SCHEMA)},
        "processes": world,
        "device": device.type,
    }


def training_state(
    epoch, model, average, optimizer, scaler, generator, best, history, rise_streak=0, previous=math.inf
) -> dict:
    """Everything the epochs after `epoch` depend on: tensors and plain Python values only (weights_only loading)."""
    best_loss, best_state, best_epoch = best
    return {
        "epoch": epoch,
        "model": model.state_dict(),
        "average": average.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict(),
        "best_loss": float(best_loss),
        "best_state": best_state,
        "best_epoch": best_epoch,
        "rise_streak": rise_streak,
        "previous_val_loss": float(previous),
        "history": [{k: v if isinstance(v, int) else float(v) for k, v in record.items()} for record in history],
        "rng": checkpoint.rng_state(generator),
    }


def resume(state: dict, model, average, optimizer, scaler, generator, max_epochs: int | None) -> tuple:
    """Load a training state into the model, its average, the optimizer, scaler and generators; the loop's variables
    to go on with."""
    epoch, history, best_epoch = state["epoch"], state["history"], state["best_epoch"]
    if max_epochs is not None and not (
        isinstance(epoch, int) and 1 <= epoch < max_epochs and isinstance(history, list) and len(history) == epoch
    ):
        raise ValueError(f"epoch {epoch!r} with {len(history)} history records, max_epochs {max_epochs}")
    if not (isinstance(best_epoch, int) and 0 <= best_epoch <= epoch):
        raise ValueError(f"best epoch {best_epoch!r} after epoch {epoch!r}")
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    if {k: getattr(v, "shape", None) for k, v in state["best_state"].items()} != shapes:
        raise ValueError("the best weights do not fit the model")
    model.load_state_dict(state["model"])
    average.load_state_dict(state["average"])
    optimizer.load_state_dict(state["optimizer"])
    scaler.load_state_dict(state["scaler"])
    checkpoint.set_rng_state(state["rng"], generator)
    best_state = {k: v.to(next(model.parameters()).device) for k, v in state["best_state"].items()}
    previous = float(state["previous_val_loss"])
    return epoch, float(state["best_loss"]), best_state, best_epoch, int(state["rise_streak"]), previous, list(history)


def resume_from(
    folder: Path, identity: dict, model, average, optimizer, scaler, generator, initial: tuple, max_epochs: int
):
    """Resume from the checkpoint in `folder` if it is this run's (`identity`, its fingerprint) and fits: the loop's
    variables (the checkpoint's epoch, best loss, state and epoch, rise streak, previous validation loss, history).
    None: start from epoch 1 (`initial`: the best loss, state and epoch before any), saying why where one was found."""
    found, why_not = checkpoint.load(folder, identity)
    if why_not:
        print(f"train: ignoring the checkpoint in {folder}: {why_not}; starting from epoch 1", flush=True)
    if not found:
        return None
    fresh = copy.deepcopy(training_state(0, model, average, optimizer, scaler, generator, initial, []))
    try:
        resumed = resume(found, model, average, optimizer, scaler, generator, max_epochs)
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as error:  # damaged inside
        resume(fresh, model, average, optimizer, scaler, generator, None)
        why_not = f"it does not fit ({error})"
        print(f"train: ignoring the checkpoint in {folder}: {why_not}; starting from epoch 1", flush=True)
        return None
    epoch, best_epoch = resumed[0], resumed[3]
    print(
        f"train: resuming from epoch {epoch} (checkpoint {folder / checkpoint.CHECKPOINT_FILE}): "
        f"best epoch so far {best_epoch}, continuing with epoch {epoch + 1}",
        flush=True,
    )
    return resumed
