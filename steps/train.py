"""Regularized training step: a model with dropout, L1 and L2, early stopping.

SageMaker training entry point (ModelTrainer source code). Reads the train and validation splits written by
preprocessing, builds the round's model (Regula's MLP, or the team's own through the model contract,
steps/model_code.py; the batches come from steps/inputs.py, whatever the input kind), trains a classifier
(cross-entropy, optionally class-weighted) or a regressor (squared error on the standardized target) on CPU or GPU
(AMP on GPU) on one or more processes (torchrun / torch.distributed), stops early when the validation loss has not
improved for `patience` epochs and restores the best weights. The generalization gap is relative: (validation loss -
training loss) / the baseline's validation loss (steps/quality.py), both losses without dropout. Every epoch it
prints the metrics for SageMaker metric definitions and sends them to CloudWatch. The model folder (packed by
SageMaker into model.tar.gz) holds the weights, their config, the training history, the schema with the fitted
table transform, the inference code and the model code.

Given a checkpoint folder (SageMaker's CheckpointConfig, /opt/ml/checkpoints), it saves the whole training state there
at most every `checkpoint_seconds` and when stopped with SIGTERM, and a restarted job resumes from it: a resumed run
ends where an uninterrupted one does, epoch for epoch (steps/checkpoint.py, steps/train_state.py).

Given the selected round's model (`--refit_of`, after the ladder decided), it trains that model's options again on
the training and validation rows for its best epoch count, or passes it on (steps/refit.py).
"""

from __future__ import annotations

import copy
import json
import math
import os
import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch
from torch.optim.swa_utils import get_ema_multi_avg_fn

from steps import checkpoint, inputs, lazy_rows, model_code, refit, serving_code, target_scale
from steps.cloudwatch import MetricEmitter
from steps.contract import SCHEMA, StepError, read_schema, run, torch_threads
from steps.defaults import BASE_LEARNING_RATE
from steps.distributed import check_same_start, finish, setup_distributed, sum_loss_and_stop
from steps.model import save
from steps.objective import Objective
from steps.optimizer import AdamW
from steps.overfitting import Watch, announce
from steps.proximal import shrink
from steps.quality import baseline_loss, relative_gap
from steps.regularization import next_level, strengths
from steps.train_args import BASE_BATCH, auto_batch_size, check_instance, earlier_rounds, parse_args
from steps.train_state import fingerprint, resume_from, training_state

TRAIN_EVAL_ROWS = 10_000  # the gap each epoch is measured on at most this many training rows, a seeded random sample
# An epoch is one pass over the training rows, or this many of them (drawn at random each epoch) on larger tables:
# early stopping looks at the validation loss every 64 steps of the largest batch, so patience costs as much training
# on 2M rows as on 200k, and a large table that has converged after a fraction of a pass stops there. Up to this many
# training rows an epoch is a full pass, as it always was. What it costs and gains on a 2M-row table, against full
# passes: benchmarks/large_table.py, benchmarks/results/large_table.json.
EPOCH_ROWS = 2**18
VAL_EVAL_ROWS = 2**16  # the validation loss each epoch on at most this many rows, a seeded sample (evaluation: all)
# AdamW's decoupled decay multiplies every weight by 1 - lr x L2 each step: at 1 or more the weights change sign and
# grow every step and training diverges (barley at L2 1e4, lr 1e-3: no longer a number by epoch 4). An L2 parameter
# or a ladder many rounds deep can ask for that, so L2 is bounded to this decay per step (weights halve each step:
# the trivial model, still a finite one the ladder can judge).
MAX_DECAY_PER_STEP = 0.5


def main() -> None:
    args = parse_args(__doc__)
    check_instance()
    if args.refit_of:
        with tempfile.TemporaryDirectory() as selected:
            train(args, refit.plan(args.refit_of, args.refit, Path(selected)))
    else:
        train(args, None)


def train(args, plan: refit.Plan | None) -> None:
    """One round's training, or (`plan`) the refit of the selected round's model."""
    if plan is None:
        level, why = next_level(earlier_rounds(args), args.max_gap, args.growth)
        base = {"dropout": args.dropout, "l1": args.l1, "l2": args.l2}
        strength = {**strengths(base, level), "level": level, "reason": why}
    else:
        strength, why = plan.strength, plan.why
        refit.set_options(plan, args)  # the selected round's layers, batch and learning rate; its epochs, no early stop
    code = model_code.load(model_code_path(args.model_code))  # the contract's import checks, before any data
    rank, world, device = setup_distributed()
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)

    schema = read_schema(args.train)
    x_train, y_train = inputs.read(args.train, "train", schema)
    x_val, y_val = inputs.read(args.validation, "validation", schema)
    if plan is not None and not (plan := refit.within_bounds(plan, len(x_train))).train:
        if rank == 0:
            print(f"train: refit: {plan.why}", flush=True)
            refit.pass_through(plan, Path(args.model_dir))
        finish(world)
        return
    if plan is not None:  # the validation rows join the training rows; they are still measured each epoch, in-sample
        x_train, y_train = x_train.joined(x_val), np.concatenate([y_train, y_val])
    baseline = baseline_loss(schema, y_val)  # the trivial model's validation loss: the gap's unit
    if schema["problem_type"] == "regression":  # the network predicts the standardized target (steps/target_scale.py)
        y_train, y_val = target_scale.to_model(schema, y_train), target_scale.to_model(schema, y_val)
        if target_scale.transformed(schema):  # the trivial model on the network's scale: the training mean, 0 there
            baseline = float(np.mean(y_val.astype(np.float64) ** 2))
    x_train, y_train = x_train.to(device), torch.from_numpy(y_train).to(device)
    x_val, y_val = x_val.to(device), torch.from_numpy(y_val).to(device)
    objective = Objective(schema)

    batch_size = args.batch_size or auto_batch_size(len(x_train))
    epoch_rows = min(len(x_train), EPOCH_ROWS) // world * world  # equal shards: every process runs the same steps
    steps_per_epoch = math.ceil(epoch_rows // world / batch_size)
    learning_rate = args.learning_rate or BASE_LEARNING_RATE * math.sqrt(batch_size / BASE_BATCH)
    bounded = ""
    if strength["l2"] * learning_rate > MAX_DECAY_PER_STEP:
        asked, strength["l2"] = strength["l2"], MAX_DECAY_PER_STEP / learning_rate
        bounded = (
            f"L2 {asked:.3g} bounded to {strength['l2']:.3g}: AdamW's decay (lr {learning_rate:.3g} x L2) at most "
            f"{MAX_DECAY_PER_STEP:g} per step, beyond which the weights change sign every step and training diverges"
        )
        strength["reason"] += f"; {bounded}"
    shape = x_train.model_shape()
    spec = model_code.ModelSpec(
        n_features=shape["n_features"],
        n_outputs=objective.outputs,
        problem_type=schema["problem_type"],
        input_kind=inputs.kind_of(schema),
        hidden=tuple(args.hidden),
        extra=shape["extra"],
    )
    model = model_code.build(code, spec, strength["dropout"]).to(device)
    model_code.check(code, model, spec, x_train[: model_code.CHECK_ROWS], device)  # before the first epoch
    dropout_modules = model_code.dropout_modules(model)
    if world > 1:  # DistributedDataParallel reduces dense gradients
        lazy_rows.make_dense(model)
    # embedding weights with sparse gradients (the text model's n-grams): AdamW and L1 on the rows a batch touches
    sparse = lazy_rows.sparse_parameters(model)
    # weights (2 or more dimensions: linear, convolution, embedding) decay and carry L1; biases and norms do not
    weights = [p for p in model.parameters() if p.dim() >= 2 and all(p is not q for q in sparse)]
    others = [p for p in model.parameters() if p.dim() < 2]
    # L1 as a soft-threshold after each step where the model marks weights for it (exact zeros), else in the loss
    proximal = model_code.proximal_parameters(model)
    penalized = [p for p in model_code.l1_parameters(code, model) if all(p is not q for q in [*proximal, *sparse])]
    lazy = [
        {"params": [p], "weight_decay": strength["l2"], "lazy": True, "l1": strength["l1"] * proximal.get(p, 1.0)}
        for p in sparse
    ]
    proximal = {p: scale for p, scale in proximal.items() if all(p is not q for q in sparse)}
    data_loss_of = model_code.loss_function(code) or objective.train_loss
    if device.type == "cpu":  # multiply-adds of a step: about one per weight per row
        torch.set_num_threads(torch_threads(batch_size * sum(p.numel() for p in weights)))
    optimizer = AdamW(  # torch's, without its torch.compile hooks (steps/optimizer.py)
        [{"params": weights, "weight_decay": strength["l2"]}, {"params": others, "weight_decay": 0.0}, *lazy],
        lr=learning_rate,
    )
    # the weights' moving average (defaults.AVERAGE_DECAY; 0: the raw weights), measured beside the raw ones
    average = torch.optim.swa_utils.AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(args.average_decay))
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
            f"train: model: {code.describe(spec.input_kind)}, {sum(p.numel() for p in model.parameters())} parameters",
            flush=True,
        )
        if not dropout_modules:
            print(
                "train: WARNING: the model has no dropout module (nn.Dropout*): the ladder regularizes it with "
                "L1 and L2 only",
                flush=True,
            )
        if bounded:
            print(f"train: {bounded}", flush=True)
        print(
            f"train: round {args.round}: {why}\n"
            f"train: round {args.round}, {schema['problem_type']}, dropout={strength['dropout']:.4f} "
            f"l1={strength['l1']:.3g} l2={strength['l2']:.3g}, {len(x_train)} rows x {spec.n_features} features, "
            f"batch {batch_size}, lr {learning_rate:.3g}, epochs of {epoch_rows} rows, device={device}, "
            f"processes={world}, threads={torch.get_num_threads()}",
            flush=True,
        )

    best_loss, best_state, best_epoch = float("inf"), copy.deepcopy(average.module.state_dict()), 0
    rise_streak, previous_val_loss, history = 0, float("inf"), []
    generator = torch.Generator().manual_seed(args.seed)
    # a random sample, not the first rows: the splits keep the table's order, which may be sorted
    train_eval = torch.randperm(len(x_train), generator=generator)[:TRAIN_EVAL_ROWS].to(device)
    x_eval, y_eval = x_train.subset(train_eval), y_train[train_eval]  # gathered once, not every epoch
    if len(x_val) > VAL_EVAL_ROWS:  # its own generator: a smaller table's training is unchanged by it
        val_eval = torch.randperm(len(x_val), generator=torch.Generator().manual_seed(args.seed))[:VAL_EVAL_ROWS]
        x_val, y_val = x_val.subset(val_eval.to(device)), y_val[val_eval.to(device)]

    # -- checkpoints: a restarted job (spot interruption, retry) resumes where its checkpoint left off -------------
    first_epoch, folder = 1, Path(args.checkpoint_dir) if args.checkpoint_dir else None
    stop_requested = threading.Event()
    if folder:
        identity = fingerprint(args, strength, batch_size, learning_rate, world, device, code.sha256 or code.name)
        initial = (best_loss, best_state, best_epoch)
        resumed = resume_from(folder, identity, model, average, optimizer, scaler, generator, initial, args.max_epochs)
        if resumed:
            first_epoch, best_loss, best_state, best_epoch, rise_streak, previous_val_loss, history = resumed
            first_epoch += 1
        if world > 1:  # every process must resume from the same epoch
            check_same_start(first_epoch, device)
        # SageMaker stops a job with SIGTERM (StopTrainingJob: SIGKILL 120 s later): finish the epoch, save, exit
        signal.signal(signal.SIGTERM, lambda *_: stop_requested.set())
    saved = time.monotonic()
    net = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model  # rank 0's weights, broadcast

    # the overfitting condition (gap above MaxGap OR validation loss up 3 epochs in a row), its notice once per job,
    # and StopOnOverfitting: steps/overfitting.py
    watch = Watch(args.max_gap, args.patience, args.stop_on_overfitting == "yes")
    watch.replay(history)
    started, interrupted = time.perf_counter(), False
    for epoch in range(first_epoch, args.max_epochs + 1):
        net.train()
        order = torch.randperm(len(x_train), generator=generator)[:epoch_rows][rank::world].to(device)
        loss_sum = torch.zeros((), device=device)  # summed on the device: no sync per step
        for i in range(0, len(order), batch_size):
            index = order[i : i + batch_size]
            with torch.autocast(**amp):
                data_loss = data_loss_of(net(x_train[index]), y_train[index])
            loss = data_loss + strength["l1"] * l1_norm(penalized) if strength["l1"] else data_loss
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            if proximal:
                shrink(optimizer, proximal, strength["l1"])
            average.update_parameters(model)
            loss_sum += data_loss.detach() * len(index)
        optimizer.catch_up()  # every row of a lazy (sparse) weight up to date before it is measured or saved
        loss_sum, stopping = sum_loss_and_stop(loss_sum, stop_requested.is_set(), world)  # every process stops alike
        train_loss = loss_sum.item() / max(len(order) * world, 1)

        # the averaged weights, or the raw ones in an epoch where they do better on validation
        scored, (val_loss, val_quality) = average.module, objective.measure(average.module, x_val, y_val, amp)
        if args.average_decay:
            raw_loss, raw_quality = objective.measure(model, x_val, y_val, amp)
            if raw_loss < val_loss:
                scored, val_loss, val_quality = model, raw_loss, raw_quality
        train_eval_loss, train_quality = objective.measure(scored, x_eval, y_eval, amp)
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
            "averaged": int(scored is average.module),
        }
        history.append(record)
        overfitting = watch.update(epoch, record["gap"], rise_streak)
        if rank == 0:
            print(f"epoch {epoch}: " + " ".join(f"{k}={v:.6f};" for k, v in record.items() if k != "epoch"), flush=True)
            diverged = not (math.isfinite(train_loss) and math.isfinite(val_loss))
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
            if watch.starts_episode and plan is None:  # a refit's validation rows are in-sample: no notice
                announce(args, job, record)
            if diverged:
                print(f"train: the loss is no longer a number at epoch {epoch}: stopping", flush=True)

        if val_loss < best_loss - 1e-6:
            best_loss, best_state, best_epoch = val_loss, copy.deepcopy(scored.state_dict()), epoch
        elif (
            epoch - best_epoch >= args.patience
            and (epoch - best_epoch) * steps_per_epoch >= args.patience_steps
            and epoch * steps_per_epoch >= args.min_steps
        ) or (not math.isfinite(val_loss)):
            break
        if watch.stop:  # every process alike: the same records
            if rank == 0:
                print(f"train: overfitting held {watch.held} epochs in a row: stopping (StopOnOverfitting)", flush=True)
                metrics.put("StoppedForOverfitting", 1.0)
            break
        if folder and epoch < args.max_epochs and (stopping or time.monotonic() - saved >= args.checkpoint_seconds):
            if rank == 0:  # the others hold the same state; on SageMaker every instance syncs the same S3 folder
                writing = time.perf_counter()
                state = training_state(
                    epoch, model, average, optimizer, scaler, generator, (best_loss, best_state, best_epoch),
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
        finish(world)
        raise SystemExit(128 + signal.SIGTERM)
    model.load_state_dict(best_state)
    if target_scale.transformed(schema):  # the log1p scale's smearing factor, from the training rows' residuals
        schema = target_scale.with_smearing(schema, y_eval.cpu().numpy() - scores(model, x_eval, amp))
    if rank == 0:
        print(
            f"train: stopped after {epoch} epochs ({epoch * steps_per_epoch} optimizer steps) in {seconds:.2f}s "
            f"({epochs_here * epoch_rows / seconds:.0f} "
            f"samples/s{f', {epochs_here} of them in this run' if first_epoch > 1 else ''}), "
            f"restored best epoch {best_epoch} (val_loss={best_loss:.4f})",
            flush=True,
        )
        usage = model_code.feature_usage(model)  # the restored weights: what is saved and registered
        if usage and "text_features_used" in usage:
            print(
                f"train: round {args.round}: the model uses {usage['text_features_used']} of "
                f"{usage['text_vocabulary']} text n-grams (a weight above {usage['tolerance']:g}; L1 zeroes the rest)",
                flush=True,
            )
        training = {
            "batch_size": batch_size,
            "learning_rate": learning_rate,
            "epoch_rows": epoch_rows,
            "steps": epoch * steps_per_epoch,
        }
        described = {"spec": spec, "code": code, "dropout_modules": dropout_modules, "feature_usage": usage}
        if plan is not None:
            described["refit"] = refit.record(plan, len(x_train), refit.selected_sha256(args.refit_of))
        save_model(model, args, strength, training, schema, history, best_epoch, Path(args.model_dir), described)
    metrics.close()
    finish(world)


@torch.no_grad()
def scores(model, x, amp: dict, batch: int = 8192) -> np.ndarray:
    """The model's first output on every row of `x`, without dropout."""
    model.eval()
    batch = x.scoring_rows(batch)
    out = []
    for i in range(0, len(x), batch):
        with torch.autocast(**amp):
            out.append(model(x[i : i + batch]).float()[:, 0].cpu().numpy())
    return np.concatenate(out)


def l1_norm(parameters: list[torch.Tensor]) -> torch.Tensor:
    """Sum of absolute values of the penalized parameters (the contract's l1_parameters)."""
    return sum(p.abs().sum() for p in parameters)


def model_code_path(value: str) -> Path | None:
    """--model_code: relative to this script's folder (the training job's code, where the pipeline put the team's
    code under model_code/), and inside it; an absolute path as given (a run by hand). Empty: the built-in MLP."""
    if not value:
        return None
    path = Path(value)
    if path.is_absolute():
        return path
    here = Path(__file__).resolve().parent
    if ".." in path.parts or not (here / path).resolve().is_relative_to(here):
        raise StepError(f"model_code must be a path inside the training code's folder, got {value!r}")
    return here / path


def save_model(model, args, strength, training, schema, history, best_epoch, model_dir: Path, described) -> None:
    spec, code = described["spec"], described["code"]
    config = {
        "n_features": spec.n_features,
        "n_outputs": spec.n_outputs,
        "spec": spec.as_dict(),
        "model": code.describe(spec.input_kind),
        "dropout_modules": described["dropout_modules"],
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
    if described.get("feature_usage"):
        config["feature_usage"] = described["feature_usage"]
    if described.get("refit"):
        config["refit"] = described["refit"]
    serving_code.pack(model_dir / "code")
    config["model_code"] = model_code.pack(code, model_dir / "code")  # serving builds the model from this copy
    save(model.cpu(), config, model_dir)
    (model_dir / "history.json").write_text(json.dumps(history))
    if schema == read_schema(args.train):
        shutil.copy(Path(args.train) / SCHEMA, model_dir / SCHEMA)
    else:  # what training measured for serving: the target scale's smearing factor
        (model_dir / SCHEMA).write_text(json.dumps(schema, indent=2))


if __name__ == "__main__":
    run(main, "train")
