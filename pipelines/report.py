"""The run report of a local execution: rounds, regularization, gaps, decision, and a loss plot."""

from __future__ import annotations

import json
from pathlib import Path

from pipelines import run_layout
from pipelines.local_runner import Execution


def round_evaluations(run_dir: Path) -> list[dict]:
    """evaluation.json of every round that got evaluated, in round order."""
    rounds = []
    for path in run_layout.round_evaluations(run_dir):
        rounds.append(json.loads(path.read_text()))
    return sorted(rounds, key=lambda r: r["round"])


def build_report(execution: Execution) -> dict:
    evaluations = round_evaluations(execution.run_dir)
    registered = [p["ModelPackageArn"] for p in execution.properties.values() if "ModelPackageArn" in p]
    if not registered:
        decision = "failed" if execution.status == "Failed" else "none"
    elif execution.status == "Failed":  # the best candidate, registered for review: not accepted
        decision = "candidate registered"
    else:
        decision = "registered"
    return {
        "pipeline": execution.pipeline_name,
        "execution_id": execution.execution_id,
        "execution_arn": execution.arn,
        "status": execution.status,
        "decision": decision,
        "failure_reason": execution.failure_reason,
        "failed_step": execution.failed_step,
        "model_package_arn": registered[0] if registered else None,
        "seconds": execution.seconds,
        "parameters": execution.parameters,
        "rounds": [
            {
                "round": e["round"],
                "problem_type": e["problem_type"],
                "regularization": e["regularization"],
                "generalization_gap": e["generalization_gap"]["relative"],
                "gap_standard_error": e["generalization_gap"].get("standard_error"),
                "loss_gap": e["generalization_gap"]["loss"],
                "quality_metric": e["quality"]["metric"],
                "train_quality": e["metrics"]["train"][e["quality"]["metric"]],
                "validation_quality": e["quality"]["validation"],
                "baseline_quality": e["quality"]["baseline"],
                "test_quality": e["quality"]["test"],
                "test_metrics": e["metrics"]["test"],
                "epochs": e["epochs"],
                "best_epoch": e["best_epoch"],
                "decision": e["decision"],
                "reason": e["reason"],
                "selected_round": e.get("selected", {}).get("round"),
                "feature_usage": e.get("feature_usage"),
            }
            for e in evaluations
        ],
        "steps": [{k: v for k, v in vars(s).items() if v not in ("", None, [])} for s in execution.steps],
    }


def plot_losses(run_dir: Path, out: Path) -> Path | None:
    """Training and validation loss per epoch, one panel per round."""
    evaluations = round_evaluations(run_dir)
    if not evaluations:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(evaluations), figsize=(4.2 * len(evaluations), 3.6), sharey=True, squeeze=False)
    for ax, e in zip(axes[0], evaluations, strict=True):
        epochs = [h["epoch"] for h in e["history"]]
        ax.plot(epochs, [h["train_loss"] for h in e["history"]], label="train loss (with dropout)", alpha=0.6)
        ax.plot(epochs, [h["train_eval_loss"] for h in e["history"]], label="train loss", color="C0", linestyle="--")
        ax.plot(epochs, [h["val_loss"] for h in e["history"]], label="validation loss", color="C1")
        ax.axvline(e["best_epoch"], color="grey", linestyle=":", label=f"best epoch {e['best_epoch']}")
        reg = e["regularization"]
        ax.set_title(
            f"round {e['round']}: gap {e['generalization_gap']['relative']:.3f} -> "
            f"{decision_text(e['decision'], e['round'], e.get('selected', {}).get('round'))}\n"
            f"dropout {reg['dropout']:.2f}, L1 {reg['l1']:.0e}, L2 {reg['l2']:.0e}",
            fontsize=9,
        )
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    classification = evaluations[0]["problem_type"] == "classification"
    axes[0][0].set_ylabel("cross-entropy" if classification else "squared error (standardized)")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def decision_text(decision: str, round_: int, selected: int | None) -> str:
    """The decision, and the round it registers where that is another one (after a borderline round)."""
    if decision in ("register", "candidate") and selected and selected != round_:
        return f"{decision} round {selected}"
    return decision


def summary_lines(report: dict) -> list[str]:
    rounds = report["rounds"]
    metric = rounds[0]["quality_metric"] if rounds else "quality"
    header = f"round  dropout  l1        l2        gap      {'validation ' + metric:<28} test      epochs  decision"
    lines = ["", header] if rounds else []
    for r in rounds:
        reg = r["regularization"]
        validation = f"{r['validation_quality']:.4f} (baseline {r['baseline_quality']:.4f})"
        lines.append(
            f"{r['round']:>5}  {reg['dropout']:.3f}    {reg['l1']:<8.2e}  {reg['l2']:<8.2e}  "
            f"{r['generalization_gap']:<7.4f}  {validation:<28} {r['test_quality']:.4f}    "
            f"{r['epochs']:>6}  {decision_text(r['decision'], r['round'], r.get('selected_round'))}"
        )
    for r in rounds:  # the text n-grams each round's model still uses: the ladder's L1 prunes them
        usage = r.get("feature_usage") or {}
        if "text_features_used" in usage:
            lines.append(
                f"round {r['round']}: uses {usage['text_features_used']} of {usage['text_vocabulary']} text n-grams "
                f"(weights above {usage['tolerance']:g})"
            )
    if report["model_package_arn"]:
        # after a borderline round the registered round may not be the last one
        kept = f"round {rounds[-1]['selected_round']}: " if rounds and rounds[-1].get("selected_round") else ""
        lines.append(f"registered: {kept}{report['model_package_arn']}")
    if report["status"] == "Failed":
        lines.append(f"FAILED at {report['failed_step']}: {report['failure_reason']}")
    return lines
