"""Compute to an accepted model: Regula's regularization ladder vs an Optuna TPE search.

Both sides drive the same training script (steps/train.py) on the same splits, over the same
dropout / L1 / L2 space, with the same early stopping. The ladder trains round after round until
evaluate.py accepts the model (steps/defaults.py: relative gap <= MAX_GAP, validation quality above the
baseline by MIN_LIFT) or the 3 rounds are spent.
Optuna runs 30 TPE trials with a median pruner fed the validation loss of every epoch, and picks the
trial with the lowest validation loss. Reported: total training epochs, wall time, test accuracy of
each side's chosen model.

    python benchmarks/ladder_vs_optuna.py [--trials 30] [--out benchmarks/results/ladder_vs_optuna.json]

Target: the ladder needs <= 0.2x Optuna's epochs with test accuracy within 1 point.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from training import pack, train_command  # noqa: E402

from steps import defaults as d  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
STEPS = REPO / "steps"
ENV = {**os.environ, "REGULA_METRICS": "off", "PYTHONPATH": str(STEPS)}
EPOCH = re.compile(r"^epoch (\d+): .*?val_loss=([0-9.eE+-]+);")
BASE = {"dropout": d.DROPOUT, "l1": d.L1, "l2": d.L2, "growth": d.GROWTH}
ROUNDS = 3


def datasets() -> dict:
    from sklearn import datasets as sk

    return {
        "digits (300 train rows)": (sk.load_digits, 300),
        "breast_cancer": (sk.load_breast_cancer, 0),
        "wine": (sk.load_wine, 0),
    }


def prepare(loader, max_train_rows: int, root: Path) -> Path:
    loader(as_frame=True).frame.to_csv(root / "data.csv", index=False)
    subprocess.run(
        [
            sys.executable,
            str(STEPS / "preprocess.py"),
            "--input",
            str(root / "data.csv"),
            "--output-dir",
            str(root / "splits"),
            "--target",
            "target",
            "--max-train-rows",
            str(max_train_rows),
        ],
        check=True,
        capture_output=True,
        env=ENV,
    )
    return root / "splits"


def evaluate(splits: Path, model_dir: Path, out: Path) -> dict:
    subprocess.run(
        [
            sys.executable,
            str(STEPS / "evaluate.py"),
            "--model-dir",
            str(pack(model_dir)),
            "--data-dir",
            str(splits),
            "--output-dir",
            str(out),
            "--max-gap",
            str(d.MAX_GAP),
            "--min-lift",
            str(d.MIN_LIFT),
        ],
        check=True,
        capture_output=True,
        env=ENV,
    )
    return json.loads((out / "evaluation.json").read_text())


def ladder(splits: Path, work: Path) -> dict:
    started, epochs = time.perf_counter(), 0
    for round_ in range(1, ROUNDS + 1):
        model = work / f"ladder{round_}"
        subprocess.run(train_command(splits, model, round=round_, **BASE), check=True, capture_output=True, env=ENV)
        report = evaluate(splits, model, work / f"ladder-eval{round_}")
        epochs += report["epochs"]
        if report["decision"] != "overfit":
            break
    return {
        "epochs": epochs,
        "seconds": round(time.perf_counter() - started, 2),
        "rounds": round_,
        "accepted": report["decision"] == "register",
        "test_accuracy": report["metrics"]["test"]["accuracy"],
        "gap": report["generalization_gap"]["relative"],
    }


def optuna_search(splits: Path, work: Path, trials: int) -> dict:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    epochs_run = []

    def objective(trial: optuna.Trial) -> float:
        params = {
            "dropout": trial.suggest_float("dropout", 0.0, 0.79),
            "l1": trial.suggest_float("l1", 1e-7, 1e-2, log=True),
            "l2": trial.suggest_float("l2", 1e-4, 10.0, log=True),
        }
        model = work / f"trial{trial.number}"
        process = subprocess.Popen(
            train_command(splits, model, **params),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=ENV,
        )
        best, epochs = float("inf"), 0
        for line in process.stdout:
            match = EPOCH.match(line)
            if not match:
                continue
            epochs = int(match.group(1))
            best = min(best, float(match.group(2)))
            trial.report(float(match.group(2)), epochs)
            if trial.should_prune():
                process.kill()
                process.wait()
                epochs_run.append(epochs)
                raise optuna.TrialPruned()
        process.wait()
        epochs_run.append(epochs)
        return best

    started = time.perf_counter()
    study = optuna.create_study(
        direction="minimize",
        sampler=optuna.samplers.TPESampler(seed=0),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=5),
    )
    study.optimize(objective, n_trials=trials)
    seconds = time.perf_counter() - started
    report = evaluate(splits, work / f"trial{study.best_trial.number}", work / "optuna-eval")
    return {
        "epochs": sum(epochs_run),
        "seconds": round(seconds, 2),
        "trials": trials,
        "pruned": sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials),
        "test_accuracy": report["metrics"]["test"]["accuracy"],
        "gap": report["generalization_gap"]["relative"],
        "best_params": study.best_params,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "ladder_vs_optuna.json"))
    args = parser.parse_args()

    results = []
    for name, (loader, rows) in datasets().items():
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            splits = prepare(loader, rows, work)
            print(f"{name}: ladder ...", flush=True)
            regula = ladder(splits, work)
            print(f"{name}: optuna, {args.trials} trials ...", flush=True)
            search = optuna_search(splits, work, args.trials)
        results.append(
            {
                "dataset": name,
                "regula": regula,
                "optuna": search,
                "epoch_ratio": round(regula["epochs"] / search["epochs"], 3),
                "test_accuracy_difference_points": round(100 * (regula["test_accuracy"] - search["test_accuracy"]), 2),
            }
        )

    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"trials": args.trials, "results": results}, indent=2) + "\n")
    print(f"\n{'dataset':<24} {'side':<7} {'epochs':>7} {'seconds':>8} {'test_acc':>9}  notes")
    for r in results:
        g, o = r["regula"], r["optuna"]
        print(
            f"{r['dataset']:<24} {'regula':<7} {g['epochs']:>7} {g['seconds']:>8.1f} {g['test_accuracy']:>9.4f}  "
            f"{g['rounds']} round(s), accepted={g['accepted']}"
        )
        print(
            f"{'':<24} {'optuna':<7} {o['epochs']:>7} {o['seconds']:>8.1f} {o['test_accuracy']:>9.4f}  "
            f"{o['trials']} trials, {o['pruned']} pruned"
        )
        print(
            f"{'':<24} epochs ratio {r['epoch_ratio']:.3f} (target <= 0.2), "
            f"test accuracy difference {r['test_accuracy_difference_points']:+.2f} points (target within 1)"
        )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
