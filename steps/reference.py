"""The linear reference: how far apart training and validation lie for a regularized linear model of the same
features and split. It tells a model that overfits from a split whose rows are simply far apart.

On some data every good model has a gap above MaxGap. Bags of n-grams are the measured case: there are more n-grams
than rows, so a model can tell every training row apart. On Rotten Tomatoes, TF-IDF + LogisticRegression has a gap
of 0.19 at the C that validates best, and at a C where the gap is within MaxGap 0.1 it validates 1.7 points lower.
There, a gap above MaxGap comes from the data, not the network. Regularizing harder costs quality and does not close
the gap.

So when a round's gap is above MaxGap (steps/quality.gap_exceeds), evaluation fits the reference
(GapReference=linear):

- the features: the split files' dense features, plus the text block's TF-IDF bag where the table has text;
- the model: LogisticRegression (classification) or Ridge (regression), each strength of the grid below fitted on
  the training split;
- the chosen strength: the most regularized one whose validation quality (by the gate's own metric and decision
  rule) is within one standard error of the best;
- the measurements: at that strength, the reference's gap and validation quality, as the round's are measured.

A reference that cannot be fitted (scikit-learn refuses the data, memory runs out) is no reference: evaluation says
so in its log and the gate is MaxGap alone.

The round then passes the gap test (steps/quality.reference_verdict) when the reference's gap is above MaxGap by
more than its own standard error (evidence that the rows lie far apart, not noise), the round's gap is above the
reference's by no more than one standard error of the difference, the round clears the quality floor, and it
validates at least as well as the reference. A network that overfits more than the linear model, or no better, is
still overfit, and the ladder regularizes it as before. Images have no such reference: their gate stays MaxGap
alone.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass

import numpy as np

from steps.quality import quality_standard_error, relative_gap, relative_gap_se, split_metrics

C_GRID = (0.01, 0.1, 1.0, 10.0, 100.0)  # LogisticRegression's inverse strength: benchmarks/README.md's baseline grid
ALPHA_GRID = (0.1, 1.0, 10.0, 100.0, 1000.0)  # Ridge's strength, on standardized features
# A training split of more rows than this, or of more dense values (rows x dense features), gets no reference: on
# more rows a linear model's gap is about zero, the fit would cost more than the round it judges, and a sample of
# the rows would not do. Fitted on fewer rows than the network, a linear model overfits more and validates worse:
# it would excuse a gap that the network's own rows do not.
MAX_ROWS, MAX_VALUES = 50_000, 20_000_000
KINDS = ("table", "series")  # the inputs with a linear reference (steps/inputs.py kinds)


@dataclass
class Reference:
    model: str  # e.g. "LogisticRegression(C=1)"
    gap: float
    gap_se: float
    validation: float  # the quality metric on the validation split
    train_rows: int  # rows fitted

    def as_dict(self) -> dict:
        return asdict(self)


def applies(schema: dict) -> bool:
    return schema.get("kind", "table") in KINDS


def matrix(features):
    """The split's inputs (steps/inputs.py Dense, SeriesRows or WithText) as one matrix: a CSR matrix with the text
    bag's columns after the dense features, or the dense array."""
    dense = features.x.numpy() if hasattr(features.x, "numpy") else np.asarray(features.x)
    if not hasattr(features, "ids"):
        return dense
    from scipy import sparse

    offsets = np.r_[features.offsets.numpy(), len(features.ids)][: len(dense) + 1]
    bag = sparse.csr_matrix(
        (features.weights.numpy(), features.ids.numpy(), offsets), shape=(len(dense), features.vocabulary)
    )
    return sparse.hstack([sparse.csr_matrix(dense), bag], format="csr")


def within_bounds(features) -> bool:
    """Is the training split small enough for a reference fitted on every row of it?"""
    rows, width = int(features.x.shape[0]), max(int(features.x.shape[1]), 1)
    return rows <= MAX_ROWS and rows * width <= MAX_VALUES


def fit(schema: dict, metric: str, train, validation, baseline_loss: float, labels_of) -> Reference | None:
    """The reference on (features, labels) of the training and validation splits. `labels_of(probabilities)` is
    the served model's decision rule (steps/inference.py Predictor.labels); `baseline_loss` is the trivial model's
    validation loss, the gap's unit. None when the training split is too large (`within_bounds`), or no strength gives
    finite numbers."""
    if not within_bounds(train[0]):
        return None
    (x_train, y_train), (x_val, y_val) = train, validation
    classes = len(schema.get("classes") or [])
    if classes and not set(np.unique(y_val)) <= set(np.unique(y_train)):
        return None  # a class the fitted rows lack gets probability 0: its validation rows would inflate the gap
    x_train, x_val = matrix(x_train), matrix(x_val)
    fits = []
    # the grid from the most regularized strength to the least
    for strength in C_GRID if classes else ALPHA_GRID[::-1]:
        outputs = _fitted_outputs(strength, classes, x_train, y_train, (x_train, x_val))
        if outputs is None:
            continue
        scored, predicted = [], None
        for out, labels in zip(outputs, (y_train, y_val), strict=True):
            predicted = labels_of(out) if classes else None
            scored.append(split_metrics(schema, out, labels, predicted))
        on_train, on_val = scored
        gap = relative_gap(on_val["loss"], on_train["loss"], baseline_loss)
        quality = on_val[metric]
        if not (math.isfinite(gap) and math.isfinite(quality)):
            continue
        se = quality_standard_error(metric, schema, outputs[1], y_val, predicted)
        model = f"LogisticRegression(C={strength:g})" if classes else f"Ridge(alpha={strength:g})"
        gap_se = relative_gap_se(on_val["loss_se"], on_train["loss_se"], baseline_loss)
        fits.append((Reference(model, gap, gap_se, quality, len(y_train)), se))
    if not fits:
        return None
    # The one-standard-error rule: the most regularized strength within one standard error of the best validation.
    # The gap grows steeply as the regularization weakens, and a strength that wins by a fraction of the noise would
    # otherwise set a limit several times larger.
    best, best_se = max(fits, key=lambda fit: fit[0].validation)
    return next(ref for ref, _ in fits if ref.validation >= best.validation - best_se)


def _fitted_outputs(strength: float, classes: int, x, y, score_on):
    """Probabilities over all the schema's classes (a class missing from the sample gets none), or predictions."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression, Ridge

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # the grid's loosest C on separable rows: close enough
        if not classes:
            model = Ridge(alpha=strength).fit(x, y.astype(np.float64))
            return [model.predict(part) for part in score_on]
        if len(np.unique(y)) < 2:
            return None
        model = LogisticRegression(C=strength, max_iter=1000).fit(x, y)
        outputs = []
        for part in score_on:
            probabilities = np.zeros((part.shape[0], classes))
            probabilities[:, model.classes_] = model.predict_proba(part)
            outputs.append(probabilities)
        return outputs
