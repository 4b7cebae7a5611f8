"""The run report of a local execution: rounds, regularization, gaps, decision, and a loss plot."""

from __future__ import annotations

import json
from pathlib import Path

from pipelines.local import layout as run_layout
from pipelines.local.engine.runner import Execution
from steps.quality import RETRAIN


def round_evaluations(run_dir: Path) -> list[dict]:
    """evaluation.json of every round that got evaluated, in round order."""
    rounds = []
    for path in run_layout.round_evaluations(run_dir):
        rounds.append(json.loads(path.read_text()))
    return sorted(rounds, key=lambda r: r["round"])


def build_report(execution: Execution) -> dict:
    evaluations = round_evaluations(execution.run_dir)
    registered = [p["ModelPackageArn"] for p in execution.properties.values() if "ModelPackageArn" in p]
    if execution.status == "Interrupted":
        decision = "interrupted"
    elif not registered:
        decision = "failed" if execution.status == "Failed" else "none"
    elif execution.status == "Failed":  # the best candidate, registered for review: not accepted
        decision = "candidate registered"
    else:
        decision = "registered"
    report = {
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
                # the linear model a gap above MaxGap was compared with, and the gap the round was held to
                "reference": e.get("reference"),
                "gap_limit": (e.get("thresholds") or {}).get("gap_limit", (e.get("thresholds") or {}).get("max_gap")),
                "loss_gap": e["generalization_gap"]["loss"],
                "quality_metric": e["quality"]["metric"],
                "train_quality": e["metrics"]["train"][e["quality"]["metric"]],
                "validation_quality": e["quality"]["validation"],
                "validation_standard_error": e["quality"].get("validation_se"),
                "baseline_quality": e["quality"]["baseline"],
                "test_quality": e["quality"]["test"],
                "test_metrics": e["metrics"]["test"],
                "epochs": e["epochs"],
                "best_epoch": e["best_epoch"],
                "decision": e["decision"],
                "reason": e["reason"],
                "selected_round": e.get("selected", {}).get("round"),
                "model": e.get("model", {"name": "Regula's MLP", "code_sha256": "builtin:mlp"}),
                "feature_usage": e.get("feature_usage"),
            }
            for e in evaluations
        ],
        "steps": [{k: v for k, v in vars(s).items() if v not in ("", None, [])} for s in execution.steps],
    }
    report["regularization_story"] = regularization_story(report["rounds"])  # what each retrain changed, and the gap
    report["refit"] = refit_summary(execution.run_dir, evaluations) if registered else None
    return report


def refit_summary(run_dir: Path, evaluations: list[dict]) -> dict | None:
    """The registered round's refit on training + validation rows (steps/refit.py): whether it was trained and
    registered, and the registered model's test metrics (the refit's where it was registered)."""
    path = run_layout.refit_evaluation(run_dir, evaluations[-1]["round"]) if evaluations else None
    if path is None or not path.exists():
        return None
    refit = json.loads(path.read_text())["refit"]
    return {k: refit.get(k) for k in ("trained", "kept", "why", "decision", "epochs", "rows", "round_test", "test")} | {
        "test_metrics": refit["metrics"]["test"] if refit["kept"] else None
    }


def registered_round(evaluations: list[dict]) -> int | None:
    """The round the run registered (accepted, or as the candidate for review): the last evaluation selects it."""
    last = evaluations[-1] if evaluations else {}
    if last.get("decision") not in ("register", "candidate"):
        return None
    return (last.get("selected") or {}).get("round") or last["round"]


def plot_losses(run_dir: Path, out: Path) -> Path | None:
    """losses.png: training and validation loss per epoch, one panel per round (each with its legend: the epochs
    scored with the averaged weights shaded, the best epoch, the baseline's validation loss), the registered round
    framed, and a last panel with each round's gap and standard error against MaxGap."""
    evaluations = round_evaluations(run_dir)
    if not evaluations:
        return None
    import matplotlib.pyplot as plt

    fig = loss_figure(evaluations)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def loss_figure(evaluations: list[dict]):
    """The figure of plot_losses, for these evaluations."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pipelines.local.console import short_reason

    registered = registered_round(evaluations)
    panels = len(evaluations) + 1
    fig, axes = plt.subplots(1, panels, figsize=(4.4 * panels, 4.8), squeeze=False)
    loss_axes, gap_ax = axes[0][:-1], axes[0][-1]
    for ax in loss_axes[1:]:
        ax.sharey(loss_axes[0])
    for ax, e in zip(loss_axes, evaluations, strict=True):
        history = e["history"]
        epochs = [h["epoch"] for h in history]
        ax.plot(epochs, [h["train_loss"] for h in history], label="train loss (with dropout)", alpha=0.5)
        ax.plot(epochs, [h["train_eval_loss"] for h in history], label="train loss", color="C0", linestyle="--")
        ax.plot(epochs, [h["val_loss"] for h in history], label="validation loss", color="C1")
        averaged = [h["epoch"] for h in history if h.get("averaged")]
        for i, epoch in enumerate(averaged):  # one legend entry for the epochs measured with the averaged weights
            label = "epochs scored with the averaged weights" if i == 0 else None
            ax.axvspan(epoch - 0.5, epoch + 0.5, color="C2", alpha=0.3, linewidth=0, label=label)
        ax.axvline(e["best_epoch"], color="grey", linestyle=":", label=f"best epoch {e['best_epoch']} (kept)")
        baseline = (e.get("baseline") or {}).get("validation", {}).get("loss")
        if baseline is not None:
            ax.axhline(baseline, color="C7", linestyle="-.", linewidth=1, label="baseline validation loss")
        reg, gap = e["regularization"], e["generalization_gap"]
        kept = " - REGISTERED" if e["round"] == registered else ""
        ax.set_title(
            f"round {e['round']}{kept}: {e['decision']}\n"
            f"gap {gap['relative']:.3f} ± {gap.get('standard_error') or 0:.3f} (MaxGap {e['thresholds']['max_gap']:g})"
            f"\ndropout {reg['dropout']:.2f}, L1 {reg['l1']:.0e}, L2 {reg['l2']:.0e}",
            fontsize=9,
            fontweight="bold" if kept else "normal",
        )
        ax.text(0.02, 0.02, short_reason(e), transform=ax.transAxes, fontsize=7, wrap=True, va="bottom")
        if kept:
            for spine in ax.spines.values():
                spine.set_edgecolor("C2")
                spine.set_linewidth(2.5)
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper right")
    classification = evaluations[0]["problem_type"] == "classification"
    loss_axes[0].set_ylabel("cross-entropy (log scale)" if classification else "squared error, standardized (log)")
    gap_panel(gap_ax, evaluations, registered)
    fig.tight_layout()
    return fig


def gap_panel(ax, evaluations: list[dict], registered: int | None) -> None:
    """Each round's generalization gap with its standard error, against MaxGap: the decision rule, drawn."""
    rounds = [e["round"] for e in evaluations]
    gaps = [e["generalization_gap"]["relative"] for e in evaluations]
    errors = [e["generalization_gap"].get("standard_error") or 0.0 for e in evaluations]
    colors = {"register": "C2", "overfit": "C3", "underfit": "C7"}
    bars = ax.bar(
        rounds, gaps, yerr=errors, capsize=6, color=[colors.get(e["round_decision"], "C0") for e in evaluations]
    )
    for bar, e in zip(bars, evaluations, strict=True):
        if e["round"] == registered:
            bar.set_edgecolor("black")
            bar.set_linewidth(2.5)
            ax.annotate("registered", (bar.get_x() + bar.get_width() / 2, 0), ha="center", va="bottom", fontsize=8)
    max_gap = evaluations[-1]["thresholds"]["max_gap"]
    from matplotlib.patches import Patch

    line = ax.axhline(max_gap, color="C3", linestyle="--", label=f"MaxGap {max_gap:g}")
    handles = [
        line,
        Patch(color="C2", label="within MaxGap (+ 1 s.e.)"),
        Patch(color="C3", label="above MaxGap + 1 s.e."),
        Patch(color="C7", label="underfit"),
    ]
    ax.set_xticks(rounds)
    ax.set_xlabel("round")
    ax.set_ylabel("relative generalization gap (± 1 standard error)")
    ax.set_title("gap per round\naccepted when gap - 1 s.e. <= MaxGap", fontsize=9)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(handles=handles, fontsize=7, loc="upper right")


def decision_text(decision: str, round_: int, selected: int | None) -> str:
    """The decision, and the round it registers where that is another one (a candidate: the best earlier round)."""
    if decision in ("register", "candidate") and selected and selected != round_:
        return f"{decision} round {selected}"
    return decision


def regularization_story(rounds: list[dict]) -> list[str]:
    """What each retrained round changed and what it did to the gap: one line per round that trained another,
    "round 1 overfit: dropout 0.20 -> 0.35, L1 ..., gap 0.312 -> 0.084 in round 2"."""
    lines = []
    for before, after in zip(rounds, rounds[1:], strict=False):
        if before["decision"] not in RETRAIN or after["round"] != before["round"] + 1:
            continue
        old, new = before["regularization"], after["regularization"]
        lines.append(
            f"round {before['round']} {before['decision']}: dropout {old['dropout']:.2f} -> {new['dropout']:.2f}, "
            f"L1 {old['l1']:.1e} -> {new['l1']:.1e}, L2 {old['l2']:.1e} -> {new['l2']:.1e}, "
            f"gap {before['generalization_gap']:.3f} -> {after['generalization_gap']:.3f} in round {after['round']}"
        )
    return lines


def refit_lines(refit: dict | None, metric: str) -> list[str]:
    if not refit:
        return []
    if not refit["trained"]:
        return [f"refit: none ({refit['why']})"]
    if not refit["kept"]:
        return [f"refit: trained, not registered: {refit['decision']}"]
    return [
        f"refit: {refit['why']} ({refit['rows']} rows); the registered model is the refit: test {metric} "
        f"{refit['test']:.4f} (the round as trained: {refit['round_test']:.4f})"
    ]


def summary_lines(report: dict) -> list[str]:
    rounds = report["rounds"]
    metric = rounds[0]["quality_metric"] if rounds else "quality"
    max_gap = report["parameters"].get("MaxGap")
    header = (
        f"round  dropout  l1        l2        gap ± standard error  {'validation ' + metric:<28} test      epochs  "
        "decision"
    )
    lines = ["", header] if rounds else []
    for r in rounds:
        reg = r["regularization"]
        validation = f"{r['validation_quality']:.4f} (baseline {r['baseline_quality']:.4f})"
        gap = f"{r['generalization_gap']:.4f} ± {r['gap_standard_error'] or 0:.4f}"
        lines.append(
            f"{r['round']:>5}  {reg['dropout']:.3f}    {reg['l1']:<8.2e}  {reg['l2']:<8.2e}  "
            f"{gap:<20}  {validation:<28} {r['test_quality']:.4f}    "
            f"{r['epochs']:>6}  {decision_text(r['decision'], r['round'], r.get('selected_round'))}"
        )
    if rounds and max_gap is not None:
        lines.append(
            f"a round is accepted when its gap minus one standard error is at most MaxGap {max_gap:g} and its "
            f"validation {metric} beats the baseline by MinLift {report['parameters'].get('MinLift', 0):g}"
            + (
                "; a gap above MaxGap passes (GapReference=linear) where a linear model of the same features and split "
                "has a gap above MaxGap beyond its noise, the round's gap is within the noise of that model's, and "
                "the round clears the floor and validates as well as that model"
                if any(r.get("reference") for r in rounds)  # a reference was fitted: not for images, nor =none
                else ""
            )
        )
    lines += regularization_story(rounds)
    for r in rounds:  # the text n-grams each round's model still uses: the ladder's L1 prunes them
        usage = r.get("feature_usage") or {}
        if "text_features_used" in usage:
            lines.append(
                f"round {r['round']}: uses {usage['text_features_used']} of {usage['text_vocabulary']} text n-grams "
                f"(weights above {usage['tolerance']:g})"
            )
    if report["model_package_arn"]:
        # a candidate is the best round for review, not always the last one
        kept = f"round {rounds[-1]['selected_round']}: " if rounds and rounds[-1].get("selected_round") else ""
        lines.append(f"registered: {kept}{report['model_package_arn']}")
        lines += refit_lines(report.get("refit"), metric)
    if report["status"] in ("Failed", "Interrupted"):
        lines.append(f"{report['status'].upper()} at {report['failed_step']}: {report['failure_reason']}")
    return lines
