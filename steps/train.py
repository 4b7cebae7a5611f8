"""Regularized training step: an MLP with dropout, L1 and L2, early stopping.

SageMaker training entry point (ModelTrainer source code). Reads the train and validation splits written by
preprocessing, trains a classifier (cross-entropy, optionally class-weighted) or a regressor (squared error on the
standardized target) on CPU or GPU (AMP on GPU) on one or more processes (torchrun / torch.distributed), stops early
when the validation loss has not improved for `patience` epochs and restores the best weights. The generalization gap
is relative: (validation loss - training loss) / the baseline's validation loss (steps/quality.py), both losses
without dropout. Every epoch it prints the metrics for SageMaker metric definitions and sends them to CloudWatch. The
model folder (packed by SageMaker into model.tar.gz) holds the weights, their config, the training history, the
schema with the fitted table transform, and the inference code.

Given a checkpoint folder (SageMaker's CheckpointConfig, /opt/ml/checkpoints), it saves the whole training state there
at most every `checkpoint_seconds` and when stopped with SIGTERM, and a restarted job resumes from it: a resumed run
ends where an uninterrupted one does, epoch for epoch (steps/checkpoint.py).
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import math
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import checkpoint
import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from cloudwatch import MetricEmitter
from contract import SCHEMA, StepError, file_sha256, read_schema, read_split, run, split_path, torch_threads
from defaults import (
    BASE_LEARNING_RATE,
    BATCH_SIZE,
    CHECKPOINT_DIR,
    CHECKPOINT_SECONDS,
    DROPOUT,
    GROWTH,
    HIDDEN,
    L1,
    L2,
    LEARNING_RATE,
    MAX_EPOCHS,
    MAX_GAP,
    METRICS_NAMESPACE,
    PATIENCE,
    SEED,
)
from model import MLP, save
from parameters import TRAINING_DEVICE_VARIABLE, training_instance_problem
from quality import baseline_loss, relative_gap
from regularization import next_level, overfit_gap, strengths, validate

HERE = Path(__file__).resolve().parent
INFERENCE_CODE = ("inference.py", "model.py", "table.py", "serve.py")
TRAIN_EVAL_ROWS = 10_000  # the gap each epoch is measured on at most this many training rows, a seeded random sample
BASE_BATCH = 64  # BASE_LEARNING_RATE is for this batch size
RISE_EPOCHS = 3  # the overfitting signal: gap above MaxGap while the validation loss rose this many epochs in a row
MAX_AUTO_BATCH = 4096


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dropout", type=float, default=DROPOUT)
    parser.add_argument("--l1", type=float, default=L1)
    parser.add_argument("--l2", type=float, default=L2)
    parser.add_argument("--growth", type=float, default=GROWTH, help="the largest step of the level per round")
    parser.add_argument("--round", type=int, default=1)
    parser.add_argument(
        "--earlier", default="", help="comma-separated folders with the earlier rounds' evaluation.json, oldest first"
    )
    parser.add_argument("--hidden", default=HIDDEN, help="hidden layer sizes")
    parser.add_argument("--max_epochs", type=int, default=MAX_EPOCHS)
    parser.add_argument("--patience", type=int, default=PATIENCE)
    parser.add_argument("--batch_size", type=int, default=BATCH_SIZE, help="0: chosen from the training rows")
    parser.add_argument("--learning_rate", type=float, default=LEARNING_RATE, help="0: scaled to the batch")
    parser.add_argument("--max_gap", type=float, default=MAX_GAP, help="for the per-epoch overfitting signal")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--metrics_namespace", default=METRICS_NAMESPACE)
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
    numbers = (args.dropout, args.l1, args.l2, args.growth, args.learning_rate)
    if not all(math.isfinite(v) for v in numbers):
        raise StepError(f"dropout, l1, l2, growth and learning_rate must be finite numbers, got {numbers}")
    if not math.isfinite(args.checkpoint_seconds) or args.checkpoint_seconds < 0:
        raise StepError(f"checkpoint_seconds must be a finite number >= 0, got {args.checkpoint_seconds}")
    if args.max_epochs < 1 or args.patience < 1 or args.batch_size < 0 or args.learning_rate < 0:
        raise StepError("max_epochs and patience must be >= 1, batch_size and learning_rate >= 0 (0: automatic)")
    try:
        args.hidden = [int(h) for h in str(args.hidden).split(",") if h.strip()]
    except ValueError:
        raise StepError(f"hidden must be comma-separated layer sizes, got {args.hidden!r}") from None
    if not args.hidden or min(args.hidden) < 1:
        raise StepError(f"hidden must list positive layer sizes, got {args.hidden}")
    try:
        validate(args.dropout, args.l1, args.l2, args.growth)
    except ValueError as error:
        raise StepError(str(error)) from None
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
    reports = []
    for i, folder in enumerate(folders, 1):
        path = Path(folder) / "evaluation.json"
        try:
            report = json.loads(path.read_text())
            level = report["regularization"]["level"]
            reports.append({"round": report["round"], "level": level, "gap": overfit_gap(report)})
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise StepError(f"cannot read round {i}'s evaluation {path}: {error}") from None
        if reports[-1]["round"] != i:
            raise StepError(f"{path} is round {reports[-1]['round']}'s evaluation, expected round {i}'s")
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


def setup_distributed() -> tuple[int, int, torch.device]:
    """torchrun sets WORLD_SIZE/RANK/LOCAL_RANK; a single process needs none of it."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if world > 1:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return rank, world, device


class Objective:
    """The loss of the problem type: cross-entropy over class logits, or squared error of the standardized target.
    `quality` is accuracy (classification) or R2 (regression), for the epoch lines."""

    def __init__(self, schema: dict):
        self.classification = schema["problem_type"] == "classification"
        self.outputs = len(schema["classes"]) if self.classification else 1
        self.quality_name = "accuracy" if self.classification else "r2"

    def train_loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.classification:
            return F.cross_entropy(out.float(), y)
        return F.mse_loss(out.float()[:, 0], y)

    @torch.no_grad()
    def measure(self, model, x: torch.Tensor, y: torch.Tensor, amp: dict, batch: int = 8192) -> tuple[float, float]:
        """(loss, quality) without dropout: the loss evaluation reports too."""
        model.eval()
        loss_sum, hits = torch.zeros((), device=x.device), torch.zeros((), device=x.device)
        for i in range(0, len(x), batch):
            with torch.autocast(**amp):
                out = model(x[i : i + batch]).float()
            target = y[i : i + batch]
            if self.classification:
                loss_sum += F.cross_entropy(out, target, reduction="sum")
                hits += (out.argmax(1) == target).sum()
            else:
                loss_sum += F.mse_loss(out[:, 0], target, reduction="sum")
        loss = loss_sum.item() / len(x)
        if self.classification:
            return loss, hits.item() / len(x)
        spread = ((y - y.mean()) ** 2).mean().item()
        return loss, 1 - loss / spread if spread > 0 else 0.0


def main() -> None:
    args = parse_args()
    check_instance()
    level, why = next_level(earlier_rounds(args), args.max_gap, args.growth)
    base = {"dropout": args.dropout, "l1": args.l1, "l2": args.l2}
    strength = {**strengths(base, level), "level": level, "reason": why}
    rank, world, device = setup_distributed()
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)

    x_train, y_train = read_split(args.train, "train")
    x_val, y_val = read_split(args.validation, "validation")
    schema = read_schema(args.train)
    baseline = baseline_loss(schema, y_val)  # the trivial model's validation loss: the gap's unit
    if schema["problem_type"] == "regression":  # the network predicts the standardized target
        y_train = (y_train - schema["target_mean"]) / schema["target_std"]
        y_val = (y_val - schema["target_mean"]) / schema["target_std"]
        y_train, y_val = y_train.astype(np.float32), y_val.astype(np.float32)
    x_train, y_train = torch.from_numpy(x_train).to(device), torch.from_numpy(y_train).to(device)
    x_val, y_val = torch.from_numpy(x_val).to(device), torch.from_numpy(y_val).to(device)
    objective = Objective(schema)

    batch_size = args.batch_size or auto_batch_size(len(x_train))
    learning_rate = args.learning_rate or BASE_LEARNING_RATE * math.sqrt(batch_size / BASE_BATCH)
    model = MLP(x_train.shape[1], objective.outputs, args.hidden, strength["dropout"]).to(device)
    widths = [x_train.shape[1], *args.hidden, objective.outputs]
    if device.type == "cpu":
        torch.set_num_threads(torch_threads(batch_size * sum(a * b for a, b in itertools.pairwise(widths))))
    weights = [p for n, p in model.named_parameters() if n.endswith("weight")]
    biases = [p for n, p in model.named_parameters() if not n.endswith("weight")]
    optimizer = torch.optim.AdamW(
        [{"params": weights, "weight_decay": strength["l2"]}, {"params": biases, "weight_decay": 0.0}],
        lr=learning_rate,
    )
    use_cuda = device.type == "cuda"
    amp_dtype = torch.bfloat16 if use_cuda and torch.cuda.is_bf16_supported() else torch.float16
    amp = {"device_type": device.type, "dtype": amp_dtype, "enabled": use_cuda}
    scaler = torch.amp.GradScaler("cuda", enabled=use_cuda and amp_dtype == torch.float16)

    job = os.environ.get("TRAINING_JOB_NAME", "local")
    metrics = MetricEmitter(
        args.metrics_namespace,
        {"Pipeline": args.pipeline_name},
        {"TrainingJob": job},
        enabled=None if rank == 0 else False,
    )
    quality_name = objective.quality_name
    if rank == 0:
        print(
            f"train: round {args.round}: {why}\n"
            f"train: round {args.round}, {schema['problem_type']}, dropout={strength['dropout']:.4f} "
            f"l1={strength['l1']:.3g} l2={strength['l2']:.3g}, {len(x_train)} rows x {x_train.shape[1]} features, "
            f"batch {batch_size}, lr {learning_rate:.3g}, device={device}, processes={world}, "
            f"threads={torch.get_num_threads()}",
            flush=True,
        )

    best_loss, best_state, best_epoch = float("inf"), copy.deepcopy(model.state_dict()), 0
    rise_streak, previous_val_loss, history = 0, float("inf"), []
    generator = torch.Generator().manual_seed(args.seed)
    # a random sample, not the first rows: the splits keep the table's order, which may be sorted
    train_eval = torch.randperm(len(x_train), generator=generator)[:TRAIN_EVAL_ROWS].to(device)
    x_eval, y_eval = x_train[train_eval], y_train[train_eval]  # gathered once, not every epoch

    # -- checkpoints: a restarted job (spot interruption, retry) resumes where its checkpoint left off -------------
    first_epoch, folder = 1, Path(args.checkpoint_dir) if args.checkpoint_dir else None
    stop_requested = threading.Event()
    if folder:
        identity = fingerprint(args, strength, batch_size, learning_rate, world, device)
        found, why_not = checkpoint.load(folder, identity)
        if why_not:
            print(f"train: ignoring the checkpoint in {folder}: {why_not}; starting from epoch 1", flush=True)
        if found:
            initial = (best_loss, best_state, best_epoch)
            fresh = copy.deepcopy(training_state(0, model, optimizer, scaler, generator, initial, history))
            try:
                first_epoch, best_loss, best_state, best_epoch, rise_streak, previous_val_loss, history = resume(
                    found, model, optimizer, scaler, generator, args.max_epochs
                )
                first_epoch += 1
                print(
                    f"train: resuming from epoch {first_epoch - 1} (checkpoint {folder / checkpoint.CHECKPOINT_FILE}): "
                    f"best epoch so far {best_epoch}, continuing with epoch {first_epoch}",
                    flush=True,
                )
            except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as error:  # damaged inside
                resume(fresh, model, optimizer, scaler, generator, None)
                why_not = f"it does not fit ({error})"
                print(f"train: ignoring the checkpoint in {folder}: {why_not}; starting from epoch 1", flush=True)
        if world > 1:  # every process must resume from the same epoch
            starts = torch.tensor([first_epoch, -first_epoch], device=device)
            dist.all_reduce(starts, op=dist.ReduceOp.MAX)
            if starts[0].item() != -starts[1].item():
                raise StepError(f"the processes found different checkpoints (epochs {starts.tolist()}): not resuming")
        # SageMaker stops a job with SIGTERM (StopTrainingJob: SIGKILL 120 s later): finish the epoch, save, exit
        signal.signal(signal.SIGTERM, lambda *_: stop_requested.set())
    saved = time.monotonic()
    net = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model  # rank 0's weights, broadcast

    started, interrupted = time.perf_counter(), False
    for epoch in range(first_epoch, args.max_epochs + 1):
        net.train()
        # equal shards, so every process runs the same number of steps
        order = torch.randperm(len(x_train), generator=generator)[: len(x_train) // world * world][rank::world].to(
            device
        )
        loss_sum = torch.zeros((), device=device)  # summed on the device: no sync per step
        for i in range(0, len(order), batch_size):
            index = order[i : i + batch_size]
            with torch.autocast(**amp):
                data_loss = objective.train_loss(net(x_train[index]), y_train[index])
            loss = data_loss + strength["l1"] * model.l1_norm() if strength["l1"] else data_loss
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            loss_sum += data_loss.detach() * len(index)
        if world > 1:  # a stop request travels with the loss: every process stops after the same epoch
            reduced = torch.stack([loss_sum, torch.tensor(float(stop_requested.is_set()), device=device)])
            dist.all_reduce(reduced)
            loss_sum, stopping = reduced[0], bool(reduced[1].item())
        else:
            stopping = stop_requested.is_set()
        train_loss = loss_sum.item() / max(len(order) * world, 1)

        val_loss, val_quality = objective.measure(model, x_val, y_val, amp)
        train_eval_loss, train_quality = objective.measure(model, x_eval, y_eval, amp)
        rise_streak = rise_streak + 1 if val_loss > previous_val_loss else 0
        previous_val_loss = val_loss
        record = {
            "epoch": epoch,
            "train_loss": train_loss,
            "train_eval_loss": train_eval_loss,
            "val_loss": val_loss,
            f"val_{quality_name}": val_quality,
            f"train_{quality_name}": train_quality,
            "gap": relative_gap(val_loss, train_eval_loss, baseline),
            "val_loss_rise_streak": rise_streak,
        }
        history.append(record)
        if rank == 0:
            print(f"epoch {epoch}: " + " ".join(f"{k}={v:.6f};" for k, v in record.items() if k != "epoch"), flush=True)
            diverged = not (math.isfinite(train_loss) and math.isfinite(val_loss))
            overfitting = record["gap"] > args.max_gap and rise_streak >= RISE_EPOCHS
            metrics.put_many(
                {
                    "TrainingLoss": train_loss,
                    "ValidationLoss": val_loss,
                    "ValidationAccuracy" if quality_name == "accuracy" else "ValidationR2": val_quality,
                    "GeneralizationGap": record["gap"],
                    "ValLossRiseStreak": rise_streak,
                    "OverfittingSignal": float(overfitting),
                    "TrainingDiverged": float(diverged),
                }
            )
            if diverged:
                print(f"train: the loss is no longer a number at epoch {epoch}: stopping", flush=True)

        if val_loss < best_loss - 1e-6:
            best_loss, best_state, best_epoch = val_loss, copy.deepcopy(model.state_dict()), epoch
        elif epoch - best_epoch >= args.patience or not math.isfinite(val_loss):
            break
        if folder and epoch < args.max_epochs and (stopping or time.monotonic() - saved >= args.checkpoint_seconds):
            if rank == 0:  # the others hold the same state; on SageMaker every instance syncs the same S3 folder
                writing = time.perf_counter()
                state = training_state(
                    epoch, model, optimizer, scaler, generator, (best_loss, best_state, best_epoch),
                    history, rise_streak, previous_val_loss,
                )  # fmt: skip
                path = checkpoint.save(folder, {"fingerprint": identity, **state})
                took = time.perf_counter() - writing
                print(f"train: checkpoint after epoch {epoch} in {took:.3f}s ({path})", flush=True)
            saved = time.monotonic()
        if stopping and epoch < args.max_epochs:  # at the last epoch (or an early stop, above) the model is done: saved
            interrupted = True
            break

    seconds = time.perf_counter() - started
    epochs_here = epoch - first_epoch + 1
    if interrupted:  # no model: the restarted job saves it
        if rank == 0:
            print(f"train: stopped by SIGTERM after epoch {epoch}; a restarted job resumes from its checkpoint")
        metrics.close()
        if world > 1:
            dist.destroy_process_group()
        raise SystemExit(128 + signal.SIGTERM)
    model.load_state_dict(best_state)
    if rank == 0:
        print(
            f"train: stopped after {epoch} epochs in {seconds:.2f}s ({epochs_here * len(x_train) / seconds:.0f} "
            f"samples/s{f', {epochs_here} of them in this run' if first_epoch > 1 else ''}), "
            f"restored best epoch {best_epoch} (val_loss={best_loss:.4f})",
            flush=True,
        )
        training = {"batch_size": batch_size, "learning_rate": learning_rate}
        save_model(model, args, strength, training, schema, history, best_epoch, Path(args.model_dir))
    metrics.close()
    if world > 1:
        dist.destroy_process_group()


# -- checkpoints ------------------------------------------------------------------------------------------------
# Where things are and go, not what is trained: a checkpoint of a run that differs only in these is still its own.
NOT_FINGERPRINTED = ("train", "validation", "model_dir", "checkpoint_dir", "checkpoint_seconds", "earlier",
                     "metrics_namespace", "pipeline_name")  # fmt: skip


def fingerprint(args, strength: dict, batch_size: int, learning_rate: float, world: int, device) -> dict:
    """What this run is: a checkpoint resumes only a run with an equal fingerprint. The earlier rounds count through
    the regularization they led to; the inputs by their sha256 (the S3 folder is shared across executions)."""
    hyperparameters = {k: v for k, v in vars(args).items() if k not in NOT_FINGERPRINTED}
    inputs = {"train": split_path(args.train, "train"), "validation": split_path(args.validation, "validation")}
    return {
        "format": checkpoint.FORMAT,
        "code": checkpoint.code_digest(HERE),
        "torch": str(torch.__version__),  # a str subclass that weights_only loading refuses
        "hyperparameters": {**hyperparameters, "batch_size": batch_size, "learning_rate": learning_rate},
        "regularization": {k: strength[k] for k in ("level", "dropout", "l1", "l2")},
        "inputs": {**{k: file_sha256(v) for k, v in inputs.items()}, "schema": file_sha256(Path(args.train) / SCHEMA)},
        "processes": world,
        "device": device.type,
    }


def training_state(epoch, model, optimizer, scaler, generator, best, history, rise_streak=0, previous=math.inf) -> dict:
    """Everything the epochs after `epoch` depend on: tensors and plain Python values only (weights_only loading)."""
    best_loss, best_state, best_epoch = best
    return {
        "epoch": epoch,
        "model": model.state_dict(),
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


def resume(state: dict, model, optimizer, scaler, generator, max_epochs: int | None) -> tuple:
    """Load a training state into the model, optimizer, scaler and generators; the loop's variables to go on with."""
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
    optimizer.load_state_dict(state["optimizer"])
    scaler.load_state_dict(state["scaler"])
    checkpoint.set_rng_state(state["rng"], generator)
    best_state = {k: v.to(next(model.parameters()).device) for k, v in state["best_state"].items()}
    previous = float(state["previous_val_loss"])
    return epoch, float(state["best_loss"]), best_state, best_epoch, int(state["rise_streak"]), previous, list(history)


def save_model(model, args, strength, training, schema, history, best_epoch, model_dir: Path) -> None:
    config = {
        "n_features": len(schema["features"]),
        "n_outputs": model.net[-1].out_features,
        "problem_type": schema["problem_type"],
        "hidden": args.hidden,
        "dropout": strength["dropout"],
        "round": args.round,
        "regularization": strength,
        "base_regularization": {"dropout": args.dropout, "l1": args.l1, "l2": args.l2, "growth": args.growth},
        "training": training,
        "best_epoch": best_epoch,
        "epochs": len(history),
    }
    save(model.cpu(), config, model_dir)
    (model_dir / "history.json").write_text(json.dumps(history))
    shutil.copy(Path(args.train) / SCHEMA, model_dir / SCHEMA)
    (model_dir / "code").mkdir(exist_ok=True)
    for name in INFERENCE_CODE:
        shutil.copy(HERE / name, model_dir / "code" / name)


if __name__ == "__main__":
    run(main, "train")
