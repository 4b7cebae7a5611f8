"""Target encoding of wide categorical columns: a category with more values than one-hot keeps (MAX_ONEHOT in
steps/table.py) also gets, per value, the training rows' mean of the target, shrunk toward the overall mean by how
few and how spread that value's rows are. One feature per output: the target's mean (regression), the positive
class's share (two classes), each class's share (more).

The one-hot keeps a wide column's most frequent values and folds the rest into "other" and a frequency: a movie,
a store, a team or a country beyond the first 31 is then a number of rows, not who it is. Its target mean carries
what one-hot columns for every value would, in one dense feature per output, so it works with any model (a team's
too: the batches stay dense) and costs the same on a million rows as on a thousand.

Like scikit-learn's TargetEncoder (smooth="auto", cv=5), with two differences: a value in fewer than MIN_ROWS
training rows gets the prior (scikit-learn encodes it, from its one row), and the folds are not stratified.

- the shrinkage is empirical Bayes: a value with n rows, mean m and variance v (of its rows' targets) is encoded as
  lambda m + (1 - lambda) prior, lambda = n var / (n var + v), where prior and var are the training rows' mean and
  variance of the target;
- the training rows' own encodings are cross-fitted (`cross_fitted`): each training row is encoded from the other
  FOLDS - 1 folds only, so no row's feature holds its own label. Otherwise a value seen in two training rows
  would tell the network their labels, and it would learn to trust a feature that serving cannot give it.
  Validation, test and serving rows use the encoding fitted on all training rows, as does every row at serving.

Values in fewer than MIN_ROWS training rows (in a fold: the other folds' rows) and unknown or missing values get the
prior; a column with no value in MIN_ROWS training rows gets no encoding. Only the MAX_VALUES most frequent values
are stored, to 7 significant digits (schema.json carries them to serving; at most MAX_NUMBERS numbers a column, so
fewer values where there are many classes). Encodings are centered on the prior and divided by their standard
deviation over the training rows (per output; the target's own where that is under 0.1% of it), so they are on the
scale of the other features whatever the target's unit.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

FOLDS = 5  # cross-fitting folds for the training rows' own encodings (scikit-learn's default cv)
MIN_ROWS = 2  # a value in fewer training rows is encoded as the prior: one row's label is not a mean
MAX_VALUES = 20_000  # values stored per column (the most frequent by training rows), as the text vocabulary
MAX_NUMBERS = 200_000  # numbers stored per column, values x outputs: fewer values where there are many classes
MODES = ("target", "frequency")  # wide categories: + target encoding, or the one-hot's frequency only
# Chosen on validation over the suite's tuning tables with a wide column (benchmarks/results/
# wide_categories_tuning.json, all six regression tables): ahead on 4 beyond the spread across splits, behind on none.
DEFAULT_MODE = "target"


class Targets:
    """The training labels as the encoding's outputs: the value (regression), the indicator of the second class (two
    classes), of each class (more). A column at a time (`column`), so memory stays one column of rows however many
    classes there are."""

    def __init__(self, labels: np.ndarray, problem_type: str, classes: list | None = None):
        self.classification = problem_type == "classification"
        if not self.classification:
            self.labels = np.asarray(labels, np.float64)
            self.which, self.outputs = [None], ["target mean"]
            return
        self.labels = np.asarray(labels, np.int64)
        names = [str(c) for c in classes]
        self.which = [1] if len(names) == 2 else list(range(len(names)))
        self.outputs = [f"share {names[k]}" for k in self.which]

    def column(self, j: int, rows: np.ndarray | None = None) -> np.ndarray:
        labels = self.labels if rows is None else self.labels[rows]
        return labels.astype(np.float64) if not self.classification else (labels == self.which[j]).astype(np.float64)


def targets(labels: np.ndarray, problem_type: str, classes: list | None = None) -> Targets:
    return Targets(labels, problem_type, classes)


def _encodings(codes: np.ndarray, values: int, targets: Targets, rows: np.ndarray | None = None) -> np.ndarray:
    """(values + 1) x outputs: the shrunk mean of each value's rows among `rows` (default: all; codes -1: none of
    the values), with the prior and variance of those rows; the last row, and every value in fewer than MIN_ROWS of
    them, is the prior."""
    codes = codes if rows is None else codes[rows]
    known = codes >= 0
    counts = np.bincount(codes[known], minlength=values).astype(np.float64)
    out = np.empty((values + 1, len(targets.outputs)))
    for j in range(len(targets.outputs)):
        y_all = targets.column(j, rows)
        prior, var = y_all.mean(), y_all.var()
        y = y_all[known]
        sums = np.bincount(codes[known], weights=y, minlength=values)
        squares = np.bincount(codes[known], weights=y * y, minlength=values)
        with np.errstate(invalid="ignore", divide="ignore"):
            means = sums / counts
            within = np.maximum(squares / counts - means**2, 0.0)
            shrink = counts * var / (counts * var + within)
        enough = (counts >= MIN_ROWS) & np.isfinite(shrink) & (var > 0)
        out[:values, j] = np.where(enough, shrink * means + (1 - shrink) * prior, prior)
        out[values, j] = prior
    return out


def _digits(x: float) -> float:
    """7 significant digits: what schema.json stores, on any scale of the target."""
    return float(f"{x:.7g}")


def fit_column(keys: pd.Series, targets: Targets) -> dict | None:
    """A wide column's encoding from its training rows' category keys and targets; None when no value is in
    MIN_ROWS training rows (there is nothing to encode)."""
    counts = keys.value_counts()
    counts = counts.sort_index(kind="stable").sort_values(ascending=False, kind="stable")
    eligible = [k for k, n in counts.items() if n >= MIN_ROWS]
    kept = eligible[: min(MAX_VALUES, MAX_NUMBERS // len(targets.outputs))]
    if not kept:
        return None
    codes = pd.Index(kept, dtype=object).get_indexer(keys)
    table = np.vectorize(_digits)(_encodings(codes, len(kept), targets))  # stored as schema.json will hold it
    prior = table[-1]
    spread = np.sqrt([targets.column(j).var() for j in range(len(targets.outputs))])
    scale = table[codes].std(axis=0)  # the training rows through the stored fit: the feature's own spread
    # a feature that varies by less than 0.1% of the target's spread carries nothing: divided by the target's
    scale = [_digits(s) if s > 1e-3 * t else (_digits(t) if t > 0 else 1.0) for s, t in zip(scale, spread, strict=True)]
    return {
        "outputs": targets.outputs,
        "values": {k: table[i].tolist() for i, k in enumerate(kept)},
        "prior": prior.tolist(),
        "scale": scale,
        "eligible": len(eligible),  # values in MIN_ROWS training rows or more; "values" keeps the first MAX_VALUES
    }


def feature_names(name: str, encoding: dict) -> list[str]:
    return [f"{name} {output}" for output in encoding["outputs"]]


def apply(keys: pd.Series, encoding: dict) -> np.ndarray:
    """rows x outputs float32 features of any rows (the full training fit): unknown and missing values get the
    prior, i.e. 0."""
    values = list(encoding["values"])
    table = np.asarray([*encoding["values"].values(), encoding["prior"]], np.float64).reshape(len(values) + 1, -1)
    codes = pd.Index(values, dtype=object).get_indexer(keys)  # -1: the prior's row, the last
    return _scaled(table[codes], encoding)


def cross_fitted(keys: pd.Series, targets: Targets, encoding: dict, seed: int) -> np.ndarray:
    """The training rows' own features: each row encoded from the other folds' rows alone, their prior and
    variance too (folds seeded by `seed`), centered and scaled as `apply`'s (the stored prior and scale: constants,
    the same for every row)."""
    values = list(encoding["values"])
    codes = pd.Index(values, dtype=object).get_indexer(keys)
    fold = np.random.default_rng(seed).permutation(len(keys)) % FOLDS
    out = np.empty((len(keys), len(targets.outputs)), np.float32)
    for k in range(FOLDS):
        held = fold == k
        table = _encodings(codes, len(values), targets, rows=np.flatnonzero(~held))
        out[held] = _scaled(table[codes[held]], encoding)
    return out


def _scaled(encoded: np.ndarray, encoding: dict) -> np.ndarray:
    prior, scale = np.asarray(encoding["prior"]), np.asarray(encoding["scale"])
    return ((encoded - prior) / scale).astype(np.float32)
