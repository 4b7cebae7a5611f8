"""Target encoding of wide categorical columns: a category with more values than one-hot keeps (MAX_ONEHOT in
steps/table.py) also gets, per value, the training rows' mean of the target, shrunk toward the overall mean by how
few and how spread that value's rows are. One feature per output: the target's mean (regression), the positive
class's share (two classes), each class's share (more).

The one-hot keeps a wide column's most frequent values and folds the rest into "other" and a frequency: a movie,
a store, a team or a country beyond the first 31 is then a number of rows, not who it is. Its target mean carries
what one-hot columns for every value would, in one dense feature per output, so it works with any model (a team's
too: the batches stay dense) and costs the same on a million rows as on a thousand.

As scikit-learn's TargetEncoder (smooth="auto", cv=5) does:

- the shrinkage is empirical Bayes: a value with n rows, mean m and variance v (of its rows' targets) is encoded as
  lambda m + (1 - lambda) prior, lambda = n var / (n var + v), where prior and var are the training rows' mean and
  variance of the target;
- the training rows' own encodings are cross-fitted (`cross_fitted`): each training row is encoded from the other
  FOLDS - 1 folds only, so no row's feature holds its own label. Otherwise a value seen in two training rows
  would tell the network their labels, and it would learn to trust a feature that serving cannot give it.
  Validation, test and serving rows use the encoding fitted on all training rows, as does every row at serving.

Values in fewer than MIN_ROWS training rows (in a fold: the other folds' rows) and unknown or missing values get the
prior. Only the MAX_VALUES most frequent values are stored (schema.json carries them to serving; at most MAX_NUMBERS
numbers a column, so fewer values where there are many classes). Encodings are
centered on the prior and divided by their standard deviation over the training rows (per output), so they are on
the scale of the other features.
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
# wide_categories_tuning.json): ahead on most, behind on none.
DEFAULT_MODE = "target"


def targets(labels: np.ndarray, problem_type: str, classes: list | None = None) -> tuple[np.ndarray, list[str]]:
    """(rows x outputs float64 matrix, the outputs' names) of the training labels: the value (regression), the
    indicator of the second class (two classes), of every class (more)."""
    if problem_type != "classification":
        return np.asarray(labels, np.float64).reshape(-1, 1), ["target mean"]
    codes = np.asarray(labels, np.int64)
    names = [str(c) for c in classes]
    which = [1] if len(names) == 2 else list(range(len(names)))
    matrix = np.stack([(codes == k).astype(np.float64) for k in which], axis=1)
    return matrix, [f"share {names[k]}" for k in which]


def _encodings(codes: np.ndarray, values: int, matrix: np.ndarray, prior: np.ndarray, var: np.ndarray) -> np.ndarray:
    """(values + 1) x outputs: the shrunk mean of each value's rows (codes: -1 for none of them); the last row, and
    every value in fewer than MIN_ROWS rows, is the prior."""
    known = codes >= 0
    counts = np.bincount(codes[known], minlength=values).astype(np.float64)
    out = np.tile(prior, (values + 1, 1))
    for j in range(matrix.shape[1]):
        y = matrix[known, j]
        sums = np.bincount(codes[known], weights=y, minlength=values)
        squares = np.bincount(codes[known], weights=y * y, minlength=values)
        with np.errstate(invalid="ignore", divide="ignore"):
            means = sums / counts
            within = np.maximum(squares / counts - means**2, 0.0)
            shrink = counts * var[j] / (counts * var[j] + within)
        enough = (counts >= MIN_ROWS) & np.isfinite(shrink) & (var[j] > 0)
        out[:values, j] = np.where(enough, shrink * means + (1 - shrink) * prior[j], prior[j])
    return out


def fit_column(keys: pd.Series, matrix: np.ndarray, outputs: list[str]) -> dict:
    """A wide column's encoding from its training rows' category keys and target matrix (rows x outputs)."""
    counts = keys.value_counts()
    counts = counts.sort_index(kind="stable").sort_values(ascending=False, kind="stable")
    kept = [k for k, n in counts.items() if n >= MIN_ROWS][: min(MAX_VALUES, MAX_NUMBERS // matrix.shape[1])]
    codes = pd.Index(kept, dtype=object).get_indexer(keys)
    prior, var = matrix.mean(axis=0), matrix.var(axis=0)
    table = _encodings(codes, len(kept), matrix, prior, var)
    encoded = table[codes]  # the training rows through the full fit: the scale of the feature
    scale = encoded.std(axis=0)
    return {
        "outputs": outputs,
        "values": {k: [round(float(x), 6) for x in table[i]] for i, k in enumerate(kept)},
        "prior": [round(float(x), 6) for x in prior],
        "scale": [round(float(s), 6) if s > 0 else 1.0 for s in scale],
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


def cross_fitted(keys: pd.Series, matrix: np.ndarray, encoding: dict, seed: int) -> np.ndarray:
    """The training rows' own features: each row encoded from the other folds' rows alone (folds seeded by `seed`),
    centered and scaled as `apply`'s (the stored prior and scale: constants, the same for every row)."""
    values = list(encoding["values"])
    codes = pd.Index(values, dtype=object).get_indexer(keys)
    fold = np.random.default_rng(seed).permutation(len(keys)) % FOLDS
    out = np.empty((len(keys), matrix.shape[1]), np.float64)
    for k in range(FOLDS):
        held = fold == k
        rest = matrix[~held]  # the prior and the variance too come from the other folds only
        table = _encodings(np.where(held, -1, codes), len(values), matrix, rest.mean(axis=0), rest.var(axis=0))
        out[held] = table[codes[held]]
    return _scaled(out, encoding)


def _scaled(encoded: np.ndarray, encoding: dict) -> np.ndarray:
    prior, scale = np.asarray(encoding["prior"]), np.asarray(encoding["scale"])
    return ((encoded - prior) / scale).astype(np.float32)
