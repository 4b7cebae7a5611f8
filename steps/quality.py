"""How good a model is, measured against the trivial model: metrics, the generalization gap and the decision.

The one owner of the ladder's decision, with steps/evaluate.py: `decide` gives a round's verdict on its own numbers,
evaluate's `select` turns it into what the pipeline does next (given the earlier rounds), writes that decision and its
reason into evaluation.json, and the pipeline's conditions only branch on that value.

The trivial model (the baseline) predicts the training split's class shares (classification) or mean (regression).
The generalization gap is relative to it: (validation loss - training loss) / baseline validation loss, so one MaxGap
means the same on 2 classes, 50 classes and regression. Loss is cross-entropy (classification) or the mean squared
error of the standardized target (regression).

The gap is measured on finite splits, so it carries sampling noise: on a few hundred validation rows its standard
error is about 0.01-0.02, as large as the difference between a passing and a failing round. A round overfits when
its gap is above MaxGap by more than GAP_Z standard errors (`gap_exceeds`); on large tables the error vanishes and
the rule is the plain one. The registry's approval guard applies the same rule to the recorded gap and error.
"""

from __future__ import annotations

import math

import numpy as np

QUALITY_FOR = {"classification": "balanced_accuracy", "regression": "r2"}  # QualityMetric=auto
CLASSIFICATION_METRICS = ("balanced_accuracy", "accuracy", "macro_f1", "roc_auc")
# what the pipeline does after a round: register it, retrain stronger (overfit; collapsed: no round was accepted
# yet, a round is left, and this one validates worse than an earlier one beyond the noise (QUALITY_Z): it passed the
# gate, or it fell below the quality floor after an overfitting round that validated better (the regularization went
# too far); the next round's level goes between the last overfitting level and this one, steps/regularization.py),
# give up, or give up and register the best round for review (RegisterBestCandidate=yes)
DECISIONS = ("register", "overfit", "collapsed", "underfit", "candidate")
RETRAIN = ("overfit", "collapsed")  # the decisions that train another round
GAP_Z = 1.0  # a gap within one standard error of MaxGap is not evidence of overfitting
# A round validates worse than an earlier one when its validation quality is lower by more than QUALITY_Z standard
# errors of the difference (the two rounds' errors combined as independent: conservative, since they share rows). Such
# a round is never registered: its regularization cost more than the noise of the measurement. It replaced the rule
# that a passing round keep half the best round's lift, which let a 1,470-row table (16% positives) register level 100
# at 0.675 balanced accuracy after 0.775 at level 10 (difference 0.10, about 2 standard errors): it keeps 58% of the
# lift; and it still catches what that rule was for (a 5000-row mixed table: 0.58 after 0.73, about 8 errors).
QUALITY_Z = 1.0
# what a round below the floor with its gap within MaxGap is told, unless an earlier round validated better at a weaker
# level (steps/evaluate.select says then that the regularization went too far)
UNDERFIT_ADVICE = (
    "stronger regularization cannot fix that; lower Dropout/L1/L2, give the model more capacity (HiddenLayers) or more "
    "informative columns"
)
# in the reason of a round below the floor that lost an earlier overfitting round's quality (steps/evaluate.select);
# the local console's round line looks for it
WENT_TOO_FAR = "went too far and cost the quality"
BOOTSTRAP_SAMPLES, BOOTSTRAP_ROWS = 200, 20_000  # macro F1 and ROC AUC have no simple error formula


def quality_metric(requested: str, problem_type: str, n_classes: int = 0) -> str:
    """The metric the gate uses; raises ValueError when it does not fit the problem."""
    metric = QUALITY_FOR[problem_type] if requested == "auto" else requested
    if problem_type == "regression" and metric != "r2":
        raise ValueError(f"QualityMetric {metric} is for classification; regression uses r2 (or auto)")
    if problem_type == "classification" and metric not in CLASSIFICATION_METRICS:
        raise ValueError(f"QualityMetric {metric} is for regression; use one of {', '.join(CLASSIFICATION_METRICS)}")
    if metric == "roc_auc" and n_classes != 2:
        raise ValueError(f"QualityMetric roc_auc needs two classes, the target has {n_classes}")
    return metric


def classification_metrics(probabilities: np.ndarray, labels: np.ndarray, predicted: np.ndarray | None = None) -> dict:
    """Loss from the probabilities; accuracy-type metrics from the predicted classes (default: the most probable)."""
    n_classes = probabilities.shape[1]
    picked = np.clip(probabilities[np.arange(len(labels)), labels], 1e-12, 1.0)
    predicted = probabilities.argmax(1) if predicted is None else predicted
    support = np.bincount(labels, minlength=n_classes)
    hits = np.bincount(labels[predicted == labels], minlength=n_classes)
    predicted_counts = np.bincount(predicted, minlength=n_classes)
    present = support > 0
    recall = hits[present] / support[present]
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(support + predicted_counts > 0, 2 * hits / (support + predicted_counts), 0.0)
    metrics = {
        "loss": float(-np.log(picked).mean()),
        "loss_se": standard_error(-np.log(picked)),
        "accuracy": float((predicted == labels).mean()),
        "balanced_accuracy": float(recall.mean()),
        "macro_f1": float(f1[present | (predicted_counts > 0)].mean()),
        "rows": len(labels),
    }
    if n_classes == 2:
        metrics["roc_auc"] = roc_auc(probabilities[:, 1], labels)
    return metrics


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U, ties counted half); 0.5 when a class is absent."""
    positives = int(labels.sum())
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        return 0.5
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    # average ranks over ties
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_scores)) + 1]
    ends = np.r_[starts[1:], len(scores)]
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    return float((ranks[labels == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def regression_metrics(predictions: np.ndarray, targets: np.ndarray, std: float) -> dict:
    errors = predictions.astype(np.float64) - targets
    total = float(((targets - targets.mean()) ** 2).sum())
    return {
        "loss": float(np.mean((errors / std) ** 2)),
        "loss_se": standard_error((errors / std) ** 2),
        "rmse": float(np.sqrt(np.mean(errors**2))),
        "mae": float(np.mean(np.abs(errors))),
        "r2": float(1 - (errors**2).sum() / total) if total > 0 else 0.0,
        "rows": len(targets),
    }


def baseline_outputs(schema: dict, rows: int) -> np.ndarray:
    """What the trivial model outputs for `rows` rows: the training class shares (it predicts the majority class), or
    the training mean. A time series' labels are the change over the seasonal naive forecast (steps/series.py): its
    trivial model is that forecast, which outputs 0 there."""
    if schema.get("baseline") == "seasonal_naive":
        return np.zeros(rows)
    if schema["problem_type"] == "classification":
        counts = np.asarray(schema["class_counts"], dtype=np.float64)
        return np.tile(counts / counts.sum(), (rows, 1))
    return np.full(rows, schema["target_mean"])


def split_metrics(
    schema: dict, outputs: np.ndarray, labels: np.ndarray, predicted: np.ndarray | None = None, naive=None
) -> dict:
    """The split's metrics. A time series' `naive` (its rows' seasonal naive forecasts, steps/series.py) adds R2 on
    the levels, `r2_levels`: the forecast (naive + output) against the target's values (naive + label)."""
    if schema["problem_type"] == "classification":
        return classification_metrics(outputs, labels, predicted)
    metrics = regression_metrics(outputs, labels.astype(np.float64), schema["target_std"])
    if schema.get("baseline") == "seasonal_naive":  # MASE: MAE relative to the seasonal naive forecast's (|label|)
        naive_mae = float(np.mean(np.abs(labels))) if len(labels) else 0.0
        metrics["mase"] = metrics["mae"] / naive_mae if naive_mae > 0 else float("nan")
        if naive is not None:
            levels = labels.astype(np.float64) + naive
            forecasts = outputs.astype(np.float64) + naive
            metrics["r2_levels"] = regression_metrics(forecasts, levels, schema["target_std"])["r2"]
    return metrics


def baseline_loss(schema: dict, labels: np.ndarray) -> float:
    return split_metrics(schema, baseline_outputs(schema, len(labels)), labels)["loss"]


def standard_error(row_losses: np.ndarray) -> float:
    """The standard error of the mean loss over these rows."""
    return float(row_losses.std(ddof=1) / np.sqrt(len(row_losses))) if len(row_losses) > 1 else 0.0


def relative_gap(validation_loss: float, train_loss: float, baseline: float) -> float:
    return (validation_loss - train_loss) / max(baseline, 1e-12)


def relative_gap_se(validation_se: float, train_se: float, baseline: float) -> float:
    """The gap's standard error: the two means' errors combined (independent rows)."""
    return math.hypot(validation_se, train_se) / max(baseline, 1e-12)


def gap_exceeds(gap: float, gap_se: float, max_gap: float) -> bool:
    """Is the gap above MaxGap by more than its sampling noise? The allowance is at most MaxGap itself: on a tiny
    validation split the error is huge, and the gap would otherwise never count."""
    allowance = min(GAP_Z * gap_se, max_gap) if math.isfinite(gap_se) and gap_se > 0 else 0.0
    return gap - allowance > max_gap


def decide(
    gap: float,
    gap_se: float,
    quality: float,
    baseline_quality: float,
    metric: str,
    max_gap: float,
    min_lift: float,
    min_quality: float,
    later_gap: float | None = None,
    reference=None,
) -> tuple[str, str]:
    """register, overfit or underfit, and why, in words a team can act on. `gap` is measured at the restored best
    epoch; `later_gap` is the largest gap the training curve reached after it: a model that is not good enough at
    its best epoch but then memorized the training split overfits (more capacity is not what it lacks). `reference`
    (steps/reference.py, where it was fitted) is the linear model's gap and validation quality on the same split: a
    gap above MaxGap passes within it (`reference_verdict`)."""
    floor = max(baseline_quality + min_lift, min_quality)
    if not (math.isfinite(gap) and math.isfinite(quality)):
        return "underfit", "the model's losses are not finite numbers: training diverged; lower L1/L2 or add data"
    allowed = ""
    if gap_exceeds(gap, gap_se, max_gap):
        reason = (
            f"generalization gap {gap:.4f} (standard error {gap_se:.4f}) > MaxGap {max_gap:g} (validation loss "
            f"exceeds training loss by {gap:.1%} of the baseline's loss)"
        )
        if reference_verdict(gap, gap_se, quality, reference, max_gap, floor) != "excused":
            return "overfit", reason + reference_note(gap, gap_se, quality, reference, max_gap, metric, floor)
        allowed = (
            f"generalization gap {gap:.4f} (standard error {gap_se:.4f}) above MaxGap {max_gap:g} but within the "
            f"noise of the linear reference's {reference.gap:.4f} (standard error {reference.gap_se:.4f}, limit "
            f"{reference_limit(reference, gap_se):.4f}; {reference.model} on the same features and split, validation "
            f"{metric} {reference.validation:.4f}): the split's rows lie that far apart for a linear model too"
        )
    if quality < floor and later_gap is not None and later_gap > max_gap:
        return "overfit", (
            f"validation {metric} {quality:.4f} < {floor:.4f} at the best epoch, and after it the model memorized "
            f"the training split (the gap rose to {later_gap:.4f} > MaxGap {max_gap:g})"
        )
    if quality < floor:
        return "underfit", (
            f"validation {metric} {quality:.4f} < {floor:.4f} (the baseline's {baseline_quality:.4f} + MinLift "
            f"{min_lift:g}"
            + (f", or MinQuality {min_quality:g}" if min_quality > baseline_quality + min_lift else "")
            + f"), with the gap within MaxGap: {UNDERFIT_ADVICE}"
        )
    within = f"<= MaxGap {max_gap:g}" if gap <= max_gap else f"within MaxGap {max_gap:g} + {GAP_Z:g} standard error"
    gate = allowed or f"generalization gap {gap:.4f} (standard error {gap_se:.4f}) {within}"
    return "register", f"{gate} and validation {metric} {quality:.4f} >= {floor:.4f}"


def usable_se(se: float) -> float:
    """A standard error as the reference's rule counts it: a missing or non-finite one counts as none."""
    return se if math.isfinite(se) and se > 0 else 0.0


def reference_limit(reference, gap_se: float) -> float:
    """The gap a round of standard error `gap_se` is held to under the reference, for gap_exceeds: the round's gap
    is above the reference's only by more than GAP_Z standard errors of the difference (both gaps are noisy), which
    gap_exceeds's own allowance of GAP_Z * gap_se, added to this, makes."""
    ref_se, own = usable_se(reference.gap_se), usable_se(gap_se)
    return reference.gap + GAP_Z * (math.hypot(own, ref_se) - own)


# Why the linear reference excused a gap above MaxGap, or the first of its conditions the round failed
REFERENCE_VERDICTS = ("excused", "no_signal", "no_evidence", "overfits_more", "under_floor", "no_better")


def reference_verdict(gap, gap_se, quality, reference, max_gap: float, floor: float) -> str | None:
    """Does the linear reference (steps/reference.py) excuse a gap above MaxGap? "excused" when all of these hold,
    else the first that fails (None without a reference):

    - no_signal: the reference clears the quality floor itself. A linear model no better than the trivial one
      measures noise, not how far apart the rows lie: on a heavy-tailed target its gap is a few outliers;
    - no_evidence: the reference's gap is above MaxGap by more than GAP_Z of its own standard error: the evidence
      that the rows lie far apart must not be noise;
    - overfits_more: the round's gap is not above the reference's beyond the noise of the two (reference_limit);
    - under_floor: the round clears the quality floor;
    - no_better: the round validates at least as well as the reference. The reference's strength is the most
      regularized within one standard error of the best (steps/reference.py): a network that overfits like that
      linear model but is no better than it has not earned its gap."""
    if reference is None:
        return None
    ref_se = usable_se(reference.gap_se)
    if not reference.validation >= floor:
        return "no_signal"
    if not (math.isfinite(reference.gap) and reference.gap - GAP_Z * ref_se > max_gap):
        return "no_evidence"
    if gap_exceeds(gap, gap_se, reference_limit(reference, gap_se)):
        return "overfits_more"
    if not quality >= floor:
        return "under_floor"
    if not quality >= reference.validation:
        return "no_better"
    return "excused"


def gap_limit(gap, gap_se, quality, reference, max_gap: float, floor: float) -> float:
    """The largest gap the round was held to: the reference's where it excused the round, else MaxGap. The registry
    records it, and its approval guard holds the package to it (by gap_exceeds, with the package's gap_se)."""
    excused = reference_verdict(gap, gap_se, quality, reference, max_gap, floor) == "excused"
    return reference_limit(reference, gap_se) if gap_exceeds(gap, gap_se, max_gap) and excused else max_gap


def reference_note(gap, gap_se, quality, reference, max_gap: float, metric: str, floor: float) -> str:
    """Why the linear reference did not excuse the gap, when one was fitted."""
    verdict = reference_verdict(gap, gap_se, quality, reference, max_gap, floor)
    if verdict is None:
        return ""
    said = (
        f"; the linear reference ({reference.model} on the same features and split) has gap {reference.gap:.4f} "
        f"(standard error {reference.gap_se:.4f})"
    )
    return (
        said
        + {
            "no_signal": (
                f" at validation {metric} {reference.validation:.4f}, under the floor {floor:.4f}: a linear model "
                "finds no signal here either, so its gap measures noise and excuses nothing"
            ),
            "no_evidence": ", within MaxGap give or take its noise: no evidence the rows lie far apart",
            "overfits_more": ": the network overfits more than a linear model",
            "under_floor": f", but this round's validation {metric} {quality:.4f} is under the floor {floor:.4f}",
            "no_better": (
                f" but validates {metric} {reference.validation:.4f} against this round's {quality:.4f}: the network "
                "overfits as much and is no better"
            ),
            "excused": "",
        }[verdict]
    )


def round_summary(report: dict) -> dict:
    """What a later round needs of an evaluated round: to compare it, name it and register it."""
    return {
        "round": report["round"],
        "model_uri": report.get("model_uri", ""),
        "evaluation_uri": report.get("evaluation_uri", ""),
        "artifact_sha256": report["artifact_sha256"],
        "quality": report["quality"],
        "gap": report["generalization_gap"]["relative"],
        "gap_se": report["generalization_gap"]["standard_error"],
        # the gap it was held to: MaxGap, or the linear reference's that excused it (evaluated before: MaxGap)
        "gap_limit": report.get("thresholds", {}).get("gap_limit", report.get("thresholds", {}).get("max_gap")),
        "regularization": report["regularization"],
        "verdict": report["round_decision"],  # register: the round passed the gate on its own
        # which model it is: the built-in MLP or the team's code, by its files' sha256 (before: always the MLP)
        "model": report.get("model", {"name": "Regula's MLP", "code_sha256": "builtin:mlp"}),
    }


def quality_standard_error(metric: str, schema: dict, outputs: np.ndarray, labels: np.ndarray, predicted=None) -> float:
    """The standard error of a split's quality metric over its rows: binomial for accuracy, per class for balanced
    accuracy, the mean squared error's for R2 (delta method), a seeded bootstrap for macro F1 and ROC AUC."""
    n = len(labels)
    if n < 2:
        return 0.0
    if metric == "r2":
        errors = (outputs.astype(np.float64) - labels) ** 2
        spread = float(np.var(labels))
        return standard_error(errors) / spread if spread > 0 else 0.0
    predicted = outputs.argmax(1) if predicted is None else predicted
    hits = (predicted == labels).astype(np.float64)
    if metric == "accuracy":
        return standard_error(hits)
    if metric == "balanced_accuracy":
        classes = [k for k in np.unique(labels)]
        variances = [hits[labels == k].var() / max((labels == k).sum(), 1) for k in classes]  # r(1-r)/n_k
        return float(math.sqrt(sum(variances)) / len(classes))
    rng = np.random.default_rng(0)
    rows = rng.choice(n, size=min(n, BOOTSTRAP_ROWS), replace=False)
    values = []
    for _ in range(BOOTSTRAP_SAMPLES):
        sample = rows[rng.integers(0, len(rows), len(rows))]
        values.append(classification_metrics(outputs[sample], labels[sample], predicted[sample])[metric])
    return float(np.std(values, ddof=1)) * math.sqrt(len(rows) / n)


def worse_than(summary: dict, rounds: list[dict]) -> dict | None:
    """The earlier round of `rounds` that `summary` validates worse than beyond the noise (the best such one by
    validation), or None. Rounds without a recorded error (evaluated before it was) count as exact."""
    mine, my_se = summary["quality"]["validation"], summary["quality"].get("validation_se", 0.0)
    better = [
        r
        for r in rounds
        if r["round"] < summary["round"]
        and math.isfinite(r["quality"]["validation"])
        and mine < r["quality"]["validation"] - QUALITY_Z * math.hypot(my_se, r["quality"].get("validation_se", 0.0))
    ]
    return best_candidate(better)


def best_candidate(rounds: list[dict]) -> dict | None:
    """The round summary with the highest validation quality; the smaller gap breaks a tie. Rounds whose quality or gap
    is not a finite number (training diverged) are never candidates; None when no round is left."""
    finite = [r for r in rounds if math.isfinite(r["quality"]["validation"]) and math.isfinite(r["gap"])]
    return max(finite, key=lambda r: (r["quality"]["validation"], -r["gap"])) if finite else None


def describe(summary: dict) -> str:
    q = summary["quality"]
    return (
        f"round {summary['round']} (validation {q['metric']} {q['validation']:.4f}, test {q['test']:.4f}, gap "
        f"{summary['gap']:.4f}, artifact {summary['model_uri'] or 'unknown'})"
    )
