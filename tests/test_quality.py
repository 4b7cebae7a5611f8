"""The metrics, the relative gap and the decision (steps/quality.py), checked against scikit-learn and by hand."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as sk

from steps.quality import (
    baseline_loss,
    classification_metrics,
    decide,
    quality_metric,
    regression_metrics,
    relative_gap,
    roc_auc,
)


@pytest.mark.parametrize("classes", [2, 3, 7])
def test_classification_metrics_agree_with_scikit_learn(classes):
    rng = np.random.default_rng(classes)
    labels = rng.integers(0, classes, 500)
    probabilities = rng.dirichlet(np.ones(classes), 500)
    probabilities[np.arange(250), labels[:250]] += 1.0  # some signal
    probabilities /= probabilities.sum(1, keepdims=True)
    got = classification_metrics(probabilities, labels)
    predicted = probabilities.argmax(1)
    assert got["loss"] == pytest.approx(sk.log_loss(labels, probabilities, labels=range(classes)))
    assert got["accuracy"] == pytest.approx(sk.accuracy_score(labels, predicted))
    assert got["balanced_accuracy"] == pytest.approx(sk.balanced_accuracy_score(labels, predicted))
    assert got["macro_f1"] == pytest.approx(sk.f1_score(labels, predicted, average="macro"))
    if classes == 2:
        assert got["roc_auc"] == pytest.approx(sk.roc_auc_score(labels, probabilities[:, 1]))


def test_roc_auc_counts_ties_half():
    assert roc_auc(np.array([0.5, 0.5, 0.5, 0.5]), np.array([0, 1, 0, 1])) == 0.5
    assert roc_auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == pytest.approx(0.75)


def test_regression_metrics_agree_with_scikit_learn():
    rng = np.random.default_rng(0)
    targets = rng.normal(50, 10, 300)
    predictions = targets + rng.normal(0, 4, 300)
    got = regression_metrics(predictions, targets, std=10.0)
    assert got["r2"] == pytest.approx(sk.r2_score(targets, predictions))
    assert got["mae"] == pytest.approx(sk.mean_absolute_error(targets, predictions))
    assert got["rmse"] == pytest.approx(np.sqrt(sk.mean_squared_error(targets, predictions)))
    assert got["loss"] == pytest.approx(sk.mean_squared_error(targets, predictions) / 100)


def test_the_baseline_loss_is_the_entropy_of_the_training_shares():
    schema = {"problem_type": "classification", "class_counts": [30, 10]}
    labels = np.array([0] * 6 + [1] * 4)  # validation shares differ from training's
    assert baseline_loss(schema, labels) == pytest.approx(-(0.6 * np.log(0.75) + 0.4 * np.log(0.25)))
    assert relative_gap(0.9, 0.6, 0.6) == pytest.approx(0.5)


def test_decisions_and_their_reasons():
    common = {"metric": "balanced_accuracy", "max_gap": 0.1, "min_lift": 0.05, "min_quality": 0.0}
    decision, reason = decide(0.2, 0.9, 0.5, **common)
    assert decision == "overfit" and "generalization gap 0.2000 > MaxGap 0.1" in reason
    decision, reason = decide(0.05, 0.52, 0.5, **common)
    assert decision == "underfit" and "0.5200 < 0.5500" in reason and "HiddenLayers" in reason
    decision, reason = decide(0.05, 0.52, 0.5, **common, later_gap=0.74)
    assert decision == "overfit" and "memorized" in reason and "0.7400" in reason
    assert decide(0.05, 0.8, 0.5, **common, later_gap=0.74)[0] == "register"  # good at its best epoch: kept
    assert decide(float("nan"), 0.9, 0.5, **common)[0] == "underfit"
    decision, reason = decide(0.05, 0.7, 0.5, **{**common, "min_quality": 0.8})
    assert decision == "underfit" and "MinQuality 0.8" in reason


def test_quality_metric_must_fit_the_problem():
    assert quality_metric("auto", "classification", 3) == "balanced_accuracy"
    assert quality_metric("auto", "regression") == "r2"
    with pytest.raises(ValueError, match="roc_auc needs two classes"):
        quality_metric("roc_auc", "classification", 3)
    with pytest.raises(ValueError, match="regression uses r2"):
        quality_metric("accuracy", "regression")
