"""The linear reference (steps/reference.py): the gap and validation quality of LogisticRegression or Ridge on the
same features and split, checked against scikit-learn's own metrics."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import balanced_accuracy_score, log_loss, r2_score

from steps import reference
from steps.inputs import Dense, WithText


def bags(rows: int, vocabulary: int, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lengths = rng.integers(0, 6, rows)
    offsets = np.r_[0, np.cumsum(lengths)]
    ids = rng.integers(0, vocabulary, offsets[-1]).astype(np.int32)
    return offsets, ids, rng.random(offsets[-1]).astype(np.float32)


def test_the_matrix_puts_the_text_bag_after_the_dense_features():
    rng = np.random.default_rng(0)
    dense = rng.normal(size=(7, 3)).astype(np.float32)
    offsets, ids, weights = bags(7, 11, rng)
    got = reference.matrix(WithText(dense, offsets, ids, weights, 11)).toarray()
    expected = np.zeros((7, 14), dtype=np.float32)
    expected[:, :3] = dense
    for row in range(7):
        for at in range(offsets[row], offsets[row + 1]):
            expected[row, 3 + ids[at]] += weights[at]
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    # a subset (what sampling gives) keeps each row's own entries
    subset = reference.matrix(WithText(dense, offsets, ids, weights, 11).subset(np.array([5, 1]))).toarray()
    np.testing.assert_allclose(subset, expected[[5, 1]], rtol=1e-6)
    assert np.array_equal(reference.matrix(Dense(dense)), dense)


def test_classification_reference_is_the_most_regularized_strength_within_one_error_of_the_best():
    rng = np.random.default_rng(1)
    rows, vocabulary = 600, 400
    dense = rng.normal(size=(rows, 2)).astype(np.float32)
    offsets, ids, weights = bags(rows, vocabulary, rng)
    labels = ((dense[:, 0] + rng.normal(size=rows)) > 0.8).astype(np.int64)  # about 30% positives
    features = WithText(dense, offsets, ids, weights, vocabulary)
    train, val = np.arange(400), np.arange(400, rows)
    shares = np.bincount(labels[train]) / len(train)
    schema = {"problem_type": "classification", "classes": ["a", "b"], "class_counts": list(np.bincount(labels[train]))}
    baseline = log_loss(labels[val], np.tile(shares, (len(val), 1)), labels=[0, 1])

    got = reference.fit(
        schema,
        "balanced_accuracy",
        (features.subset(train), labels[train]),
        (features.subset(val), labels[val]),
        baseline,
        lambda p: (p / shares).argmax(1),
    )

    x = reference.matrix(features)
    by_c = {}
    for c in reference.C_GRID:
        model = LogisticRegression(C=c, max_iter=1000).fit(x[train], labels[train])
        p_train, p_val = model.predict_proba(x[train]), model.predict_proba(x[val])
        predicted = (p_val / shares).argmax(1)
        quality = balanced_accuracy_score(labels[val], predicted)
        # balanced accuracy's standard error: each class's recall is binomial, r(1-r)/n, averaged over the classes
        recalls = [(predicted[labels[val] == k] == k).mean() for k in (0, 1)]
        counts = [(labels[val] == k).sum() for k in (0, 1)]
        se = np.sqrt(sum(r * (1 - r) / n for r, n in zip(recalls, counts, strict=True))) / 2
        gap = (log_loss(labels[val], p_val) - log_loss(labels[train], p_train)) / baseline
        by_c[c] = (quality, se, gap)
    # the one-standard-error rule: the smallest C (the most regularized) within one error of the best validation
    best = max(by_c, key=lambda c: by_c[c][0])
    chosen = min(c for c in by_c if by_c[c][0] >= by_c[best][0] - by_c[best][1])
    assert got.model == f"LogisticRegression(C={chosen:g})" and got.train_rows == 400
    assert got.validation == pytest.approx(by_c[chosen][0]) and got.gap == pytest.approx(by_c[chosen][2], rel=1e-5)
    assert got.gap > 0 and got.gap_se > 0
    # the rule does choose here: the best C overfits more than the chosen one
    assert chosen < best and by_c[chosen][2] < by_c[best][2]


def test_no_reference_when_validation_holds_a_class_the_fitted_rows_lack():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 4)).astype(np.float32)
    labels = (x[:, 0] > 0).astype(np.int64)
    labels[250:260] = 2  # a third class, only in validation
    schema = {"problem_type": "classification", "classes": ["a", "b", "c"], "class_counts": [100, 100, 0]}
    train, val = np.arange(200), np.arange(200, 300)
    got = reference.fit(
        schema, "balanced_accuracy", (Dense(x[train]), labels[train]), (Dense(x[val]), labels[val]), 1.0, None
    )
    assert got is None


def test_regression_reference_measures_the_gap_on_the_standardized_target():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(300, 40)).astype(np.float32)
    y = (3 * x[:, 0] + rng.normal(size=300) * 2 + 100).astype(np.float32)
    train, val = np.arange(200), np.arange(200, 300)
    std = float(y[train].std())
    schema = {"problem_type": "regression", "target_std": std, "target_mean": float(y[train].mean())}
    baseline = float(np.mean(((y[val] - y[train].mean()) / std) ** 2))

    got = reference.fit(schema, "r2", (Dense(x[train]), y[train]), (Dense(x[val]), y[val]), baseline, None)

    scores = {}
    for alpha in reference.ALPHA_GRID:
        model = Ridge(alpha=alpha).fit(x[train], y[train].astype(np.float64))
        mse = [np.mean(((model.predict(x[part]) - y[part]) / std) ** 2) for part in (train, val)]
        predicted = model.predict(x[val])
        # R2's standard error by the delta method: the squared errors' mean's, over the target's variance
        squared = (predicted - y[val]) ** 2
        se = squared.std(ddof=1) / np.sqrt(len(squared)) / np.var(y[val])
        scores[alpha] = (r2_score(y[val], predicted), se, (mse[1] - mse[0]) / baseline)
    best = max(scores, key=lambda a: scores[a][0])
    chosen = max(a for a in scores if scores[a][0] >= scores[best][0] - scores[best][1])  # the largest alpha
    assert got.model == f"Ridge(alpha={chosen:g})"
    assert got.validation == pytest.approx(scores[chosen][0], rel=1e-5)
    assert got.gap == pytest.approx(scores[chosen][2], rel=1e-4)


def test_images_have_no_reference():
    assert not reference.applies({"kind": "image"})
    assert reference.applies({"kind": "series"}) and reference.applies({})


def test_a_training_split_over_the_bound_of_rows_or_values_gets_no_reference(monkeypatch):
    """A linear model fitted on a sample of the rows overfits more than one fitted on all of them, and would excuse
    a gap the network's own rows do not: over the bound there is no reference (the gate is MaxGap alone)."""
    assert reference.within_bounds(Dense(np.zeros((10, 20), dtype=np.float32)))
    assert not reference.within_bounds(Dense(np.zeros((10, reference.MAX_VALUES // 10 + 1), dtype=np.float32)))
    rng = np.random.default_rng(4)
    x = rng.normal(size=(900, 3)).astype(np.float32)
    y = (x[:, 0] + rng.normal(size=900)).astype(np.float32)
    schema = {"problem_type": "regression", "target_std": 1.0, "target_mean": 0.0}
    train, validation = (Dense(x[:600]), y[:600]), (Dense(x[600:]), y[600:])
    assert reference.fit(schema, "r2", train, validation, 1.0, None).train_rows == 600  # every row
    monkeypatch.setattr(reference, "MAX_ROWS", 599)
    assert reference.fit(schema, "r2", train, validation, 1.0, None) is None
    monkeypatch.setattr(reference, "MAX_ROWS", 600)
    monkeypatch.setattr(reference, "MAX_VALUES", 600 * 3 - 1)
    assert reference.fit(schema, "r2", train, validation, 1.0, None) is None
