"""Refit: the round the ladder registers, retrained on the training and validation rows before it is registered.

The ladder decides on held-out validation rows; once it has decided, those rows are data the registered model can
learn from, as scikit-learn's refit=True does after a search. The suite's baselines are refit the same way
(benchmarks/real_tables.py: 80% of the rows against the round's 60%). Measured before it was built, on the tuning
tables' test rows over three split seeds (benchmarks/refit.py, benchmarks/results/refit_tuning.json): +0.39 points
on average over 20 tables, ahead on 10 by more than the spread across splits, behind on 2.

Training (train.py, `--refit_of`: the folder holding the selected round's model.tar.gz, the job's `selected`
channel): the artifact's config gives the round's options (regularization, hidden layers, batch size, learning rate)
and its best epoch; the refit trains that many epochs on both splits, early stopping off, and its per-epoch
validation figures are in-sample. It is skipped, the selected model passed through unchanged, when Refit=no or the
training split holds more than MAX_ROWS rows: there the validation rows add little and a refit costs a second job as
long as the round's.

Evaluation (evaluate.py, `--refit-of`: the folder of the evaluation that decided): the refit model is scored on the
same splits and replaces the selected model in the registry only when its quality on the validation rows (in-sample
now) is finite and at least the round's held-out validation quality less QUALITY_Z of its standard errors: a refit
that trained to something worse than what the ladder accepted (diverged, collapsed) is not registered. The
decision, the gap and the held-out validation figures stay the round's: they are what the ladder measured; the test
figures are the registered model's.
"""

from __future__ import annotations

import json
import math
import shutil
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from steps import archive as archive_files
from steps.contract import StepError, file_sha256
from steps.quality import QUALITY_Z

NEEDED = (("hidden", None), ("regularization", "dropout"), ("regularization", "l1"), ("regularization", "l2"),
          ("training", "batch_size"), ("training", "learning_rate"))  # fmt: skip
MAX_ROWS = 200_000  # training rows; above them the selected model is registered as it was trained


@dataclass(frozen=True)
class Plan:
    """What the refit job does: `train` the selected model's options on both splits for `epochs`, or pass it on."""

    config: dict  # the selected model's config.json
    source: Path  # its unpacked folder
    train: bool
    epochs: int
    why: str

    @property
    def strength(self) -> dict:
        return {**self.config["regularization"], "reason": self.why}


def plan(folder: str, refit: str, into: Path) -> Plan:
    """Read the selected round's artifact from `folder` (unpacked into `into`) and say what the refit job does."""
    archive = Path(folder) / "model.tar.gz"
    if not archive.is_file():
        raise StepError(f"no model.tar.gz in {folder}: the refit trains the selected round's model again")
    try:
        archive_files.extract(archive, into)
        config = json.loads((into / "config.json").read_text())
        round_, epochs = int(config["round"]), max(int(config.get("best_epoch") or 0), 1)
        for section, key in NEEDED:  # what set_options and the strength read: a KeyError names what is missing
            config[section] if key is None else config[section][key]  # noqa: B018
    except (OSError, ValueError, KeyError, TypeError, EOFError, tarfile.TarError, zlib.error) as error:
        raise StepError(f"the selected model {archive} cannot be refit: {type(error).__name__}: {error}") from None
    if refit == "no":
        return Plan(config, into, False, epochs, "Refit=no: the selected round's model is registered as trained")
    why = f"round {round_} retrained on the training and validation rows for its best epoch count, {epochs}"
    return Plan(config, into, True, epochs, why)


def set_options(plan: Plan, args) -> None:
    """train.py's `args` as the selected round trained: its round, hidden layers, batch size and learning rate; its
    best epoch count, early stopping off."""
    args.round, args.hidden, args.max_epochs = plan.config["round"], plan.config["hidden"], plan.epochs
    args.batch_size = plan.config["training"]["batch_size"]
    args.learning_rate = plan.config["training"]["learning_rate"]
    args.patience, args.patience_steps, args.min_steps = 10**9, 0, 0


def within_bounds(plan: Plan, train_rows: int) -> Plan:
    """`plan`, or passing the model on where the training split is over MAX_ROWS rows."""
    if not plan.train or train_rows <= MAX_ROWS:
        return plan
    why = (
        f"the training split holds {train_rows} rows, more than {MAX_ROWS}: the selected round's model is "
        "registered as trained (the validation rows would add little)"
    )
    return Plan(plan.config, plan.source, False, plan.epochs, why)


def pass_through(plan: Plan, model_dir: Path) -> None:
    """The selected model as the refit job's output, its config saying why it was not retrained."""
    shutil.copytree(plan.source, model_dir, dirs_exist_ok=True)
    config = {**plan.config, "refit": {"trained": False, "why": plan.why}}
    (model_dir / "config.json").write_text(json.dumps(config, indent=2))


def record(plan: Plan, rows: int, selected_sha256: str) -> dict:
    """What a refit model's config says of it."""
    return {"trained": True, "why": plan.why, "epochs": plan.epochs, "rows": rows, "of_round": plan.config["round"],
            "of_artifact_sha256": selected_sha256}  # fmt: skip


def selected_sha256(folder: str) -> str:
    return file_sha256(Path(folder) / "model.tar.gz")


def number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def keeps(refit_validation: float, decided: dict) -> tuple[bool, str]:
    """Whether the refit model replaces the selected one (the module's rule), and why."""
    quality = decided["quality"]
    held_out, se = quality["validation"], quality.get("validation_se")
    se = se if number(se) else 0.0
    if not number(refit_validation):
        return False, "the refit model's validation quality is not a number: the round's model is registered"
    if not number(held_out):
        return False, "the round's held-out validation quality is not a number: the round's model is registered"
    floor = held_out - QUALITY_Z * se
    if refit_validation < floor:
        return False, (
            f"the refit model's {quality['metric']} on the validation rows it trained on, {refit_validation:.4f}, is "
            f"below the round's held-out {held_out:.4f} less {QUALITY_Z:g} standard error: the round's model is "
            "registered"
        )
    return True, f"the refit model's {quality['metric']} on the validation rows it trained on: {refit_validation:.4f}"


def report(decided: dict, refit: dict, model_uri: str, evaluation_uri: str) -> dict:
    """The evaluation the register step reads: the deciding one, its `selected` block the refit model's where it
    is kept (`refit`: the refit evaluation's measurements and the refit model's config block)."""
    selected = decided["selected"]
    config = refit["config"].get("refit") or {"trained": False, "why": "the model carries no refit record"}
    block = {
        **config,
        "kept": False,
        "round_test": selected["quality"]["test"],
        "test": refit["quality"]["test"],
        "validation_in_sample": refit["quality"]["validation"],
        "metrics": refit["metrics"],
    }
    out = {**decided, "refit": block}
    named = (config.get("of_round"), config.get("of_artifact_sha256"))
    if config.get("trained") and named != (selected["round"], selected["artifact_sha256"]):
        # what the refit job read is not what the ladder evaluated (the archive changed between the steps)
        block["decision"] = (
            f"the refit model was trained from round {named[0]}'s archive (sha256 {named[1]}), not the selected "
            f"round {selected['round']}'s (sha256 {selected['artifact_sha256']}): the round's model is registered"
        )
    elif config.get("trained"):
        block["kept"], block["decision"] = keeps(refit["quality"]["validation"], selected)
    if not block["kept"]:
        out["selected"] = {**selected, "refit": "false"}
        return out
    out["selected"] = {
        **selected,
        "model_uri": model_uri,
        "evaluation_uri": evaluation_uri,
        "artifact_sha256": refit["artifact_sha256"],
        "quality": {**selected["quality"], "test": refit["quality"]["test"]},
        "refit": "true",
    }
    out["model_uri"], out["artifact_sha256"] = model_uri, refit["artifact_sha256"]  # the registered model's
    for key in ("binary_classification_metrics", "multiclass_classification_metrics", "regression_metrics"):
        if key in refit:  # the registry's model-quality view: the registered model's test metrics
            out[key] = refit[key]
    return out
