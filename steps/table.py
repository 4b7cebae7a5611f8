"""The table transform: a team's raw columns in, float32 model features out.

Packed into model.tar.gz with the inference code, so the served model applies exactly the transform the model was
trained with. Two stages:

- `column_roles` (steps/table_roles.py) reads the whole table's *structure* (types, distinct values) and decides
  what each column is: numeric, categorical, datetime, or dropped with a reason (constant, all missing, an
  identifier, excluded).
- `fit` learns every *number* of the transform from the training split only: medians, scales, clip bounds,
  categories. (Which columns have gaps, and which texts mark a missing value, are structure: whole table.)
  `transform` applies it to any frame with those columns: the splits, or raw rows sent to the model.
  (Values are read, whatever the file format, by steps/table_values.py.)

Numeric columns: clipped to the training split's [0.1%, 99.9%] range (extreme values cannot dominate), missing values
imputed with the median (plus a missing-indicator column where the table had gaps), centered on the median
and divided by the clipped values' standard deviation, then bounded to +-MAX_Z. The bound matters on columns that
are nearly constant: a pixel that is 0 in 99% of rows has a tiny standard deviation, and its rare values become
large features a network can memorize. Bound 5 and the standard deviation were kept against bound 3, no bound and
the IQR, decided on validation over three split seeds of the tuning tables (benchmarks/results/table_scaling.json:
none of the three was ahead on more tables than behind; the differences are a few tenths of a point). The
log1p of skewed non-negative columns ("log-skewed") was measured the same way and kept off
(benchmarks/results/log_skewed_tuning.json: -0.02 points on validation, ahead on 3 tables, behind on 3). Beside
the scaled value, up to NUMERIC_BINS piecewise-linear bins between the training split's quantiles (below).
Categorical columns (strings, booleans, declared integer columns): one-hot for up to MAX_ONEHOT categories; beyond
that the most frequent ones, an "other" column and the category's training frequency, and (given the training
labels) the value's target encoding (steps/target_encoding.py: the training rows' mean of the target per value,
shrunk, cross-fitted on the training split). Unknown categories at inference count as "other" (or as no category)
with the prior as their encoding; a missing one has its own column where the table had gaps.
Datetime columns become year, month, day, day of week (and hour where times vary), read with one day/month order
per column. Text columns are a vocabulary of n-grams (steps/text.py): not dense features, a sparse block beside
them. A missing value in a column the table had no gaps in is refused: the model cannot know what it means.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from steps import target_encoding, text
from steps.table_roles import columns_with_gaps, missing_marks
from steps.table_values import (
    BOOLEAN_SPELLINGS,
    category_keys,
    clean_texts,
    day_first,
    infinite_values,
    parse_dates,
    parse_numbers,
)

MAX_ONEHOT = 32  # one-hot columns per categorical column, at most
MAX_Z = 5.0  # numeric features are bounded to +-MAX_Z standard deviations (a column's "max_z", where fit got another)
# what a numeric column is divided by: the clipped values' standard deviation, or their IQR; "log-skewed": the standard
# deviation, after log1p where the training values are non-negative and skewed (skewness above SKEWED); measured, off
SCALINGS = ("std", "iqr", "log-skewed")
SKEWED = 1.0  # the usual line for "highly skewed", set before any measurement
CLIP_QUANTILES = (0.001, 0.999)
# piecewise-linear encoding of numeric columns (Gorishniy et al. 2022, "On Embeddings for Numerical Features in Tabular
# Deep Learning"): besides the scaled value, one feature per bin between the training split's quantiles, 0 below the
# bin, 1 above it, linear inside, so a network can fit a step or a bump in one column as a tree does. NUMERIC_BINS
# bins at most (a column with fewer distinct values gets one bin between each two); 0: off. 16 against none and 8,
# decided on the tuning tables' validation (benchmarks/results/numeric_bins_tuning.json)
NUMERIC_BINS = 16
# the bins' features are left out where they would take more than this many cells of the training split (rows x
# added features, float32): a large table has the rows to fit steps from the scaled value, and its training time
# and memory grow with the features
MAX_BIN_CELLS = 50_000_000
DATETIME_PARTS = ("year", "month", "day", "day_of_week", "hour")


class TableError(ValueError):
    """Everything wrong with a table, reported at once."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        if len(problems) == 1:
            super().__init__(problems[0])
        else:
            super().__init__(f"{len(problems)} problems: " + "; ".join(f"({i}) {p}" for i, p in enumerate(problems, 1)))


# -- fitting (numbers, training split) ------------------------------------------------------------------------------


def _fit_numeric(
    name: str,
    values: np.ndarray,
    marks: list[str] = (),
    gaps: bool | None = None,
    max_z: float | None = MAX_Z,
    scaling: str = "std",
    bins: int = NUMERIC_BINS,
) -> dict:
    present = values[~np.isnan(values)]
    if present.size == 0:
        present = np.zeros(1)
    low, high = np.quantile(present, CLIP_QUANTILES)
    if not math.isfinite(
        float(high) - float(low)
    ):  # beyond half the float64 range: no difference of two values is a number
        raise TableError([f"column '{name}' holds values too large to scale ({low:g} to {high:g}): rescale it"])
    clipped = np.clip(present, low, high)
    log = scaling == "log-skewed" and bool(low >= 0) and skewness(clipped) > SKEWED
    if log:  # prices, counts, incomes: their logarithm spreads what the raw scale crowds near zero
        clipped = np.log1p(clipped)
    median = float(np.median(clipped))
    # the std of values divided by their largest magnitude: the squares of values near 1e154 overflow float64, and
    # an infinite scale would turn the whole column into zeros
    largest = float(np.abs(clipped).max())
    scale = (largest * float((clipped / largest).std()) if largest > 0 else 0.0) or 1.0
    if scaling == "iqr":  # a column with an IQR of 0 (mostly one value) keeps its standard deviation
        q25, q75 = np.quantile(clipped, (0.25, 0.75))
        scale = float(q75 - q25) or scale
    spec = {
        "name": name,
        "kind": "numeric",
        "low": float(low),
        "high": float(high),
        "median": median,
        "scale": scale,
        "indicator": bool(np.isnan(values).any()) if gaps is None else gaps,
    }
    if marks:
        spec["missing_marks"] = list(marks)
    if log:  # the median and scale are of log1p of the clipped values
        spec["log"] = True
    if max_z != MAX_Z:  # another bound, or none (null): benchmarks/train_options.py compares them
        spec["max_z"] = max_z
    if bins:
        edges = bin_edges(clipped, bins)
        if len(edges) > 2:  # one bin is the scaled value again
            spec["edges"] = edges
    return spec


def bins_for(rows: int, roles: dict[str, str], bins: int = NUMERIC_BINS) -> int:
    """The bins per numeric column for a training split of `rows` rows: `bins`, or 0 where their features (at most
    `bins` per numeric column and per datetime part) would take more than MAX_BIN_CELLS cells."""
    columns = sum(1 for r in roles.values() if r == "numeric") + len(DATETIME_PARTS) * sum(
        1 for r in roles.values() if r == "datetime"
    )
    return bins if rows * bins * columns <= MAX_BIN_CELLS else 0


def bin_edges(values: np.ndarray, bins: int) -> list[float]:
    """The piecewise-linear encoding's bin edges: the values' quantiles at 0, 1/bins, ..., 1, or, for a column with at
    most bins + 1 distinct values, the distinct values themselves (one bin between each two)."""
    distinct = np.unique(values)
    edges = distinct if len(distinct) <= bins + 1 else np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)))
    return [float(e) for e in edges]


def numeric_names(column: dict) -> list[str]:
    """A numeric column's (or datetime part's) features, in order: the scaled value, its bins, its missing indicator
    (the layout _numeric_block writes)."""
    name = column["name"]
    bins = [f"{name} bin {i}" for i in range(1, len(column.get("edges", ())))]
    return [name, *bins] + ([f"{name} missing"] if column["indicator"] else [])


def skewness(values: np.ndarray) -> float:
    """The sample skewness (third standardized moment); 0 for a constant column."""
    centered = values - values.mean()
    spread = float(np.sqrt(np.mean(centered**2)))
    return float(np.mean((centered / spread) ** 3)) if spread > 0 else 0.0


def fit(
    frame: pd.DataFrame,
    roles: dict[str, str],
    marks: dict[str, list[str]] | None = None,
    rows=None,
    gaps: set[str] | None = None,
    max_z: float | None = MAX_Z,
    scaling: str = "std",
    targets: target_encoding.Targets | None = None,
    bins: int = NUMERIC_BINS,
) -> dict:
    """The transform, learned from the training rows of `frame` (positions `rows`; default: all of it), one column
    at a time. `marks` (from `missing_marks`) and `gaps` (from `columns_with_gaps`) describe the whole table; by
    default they are read from `frame`. `max_z` (None: no bound) and `scaling` (SCALINGS) are the numeric columns'
    bound and divisor: preprocessing's hidden options, for benchmarks/train_options.py. `targets`: the training
    rows' labels (target_encoding.targets), for the wide categories' encodings; None: no target encoding. `bins`:
    the numeric columns' piecewise-linear bins (NUMERIC_BINS; 0: none)."""
    marks = missing_marks(frame, roles) if marks is None else marks
    gaps = columns_with_gaps(frame, roles, marks) if gaps is None else gaps
    columns = []
    for name, role in roles.items():
        series = frame[name] if rows is None else frame[name].iloc[rows]
        if role == "numeric":
            values = parse_numbers(series)[0]
            columns.append(_fit_numeric(name, values, marks.get(name, ()), name in gaps, max_z, scaling, bins))
        elif role == "datetime":
            dayfirst = day_first(frame[name])  # the order is structure: read from the whole table, like the roles
            dates = parse_dates(series, dayfirst)
            parts = []
            for part in DATETIME_PARTS:
                values = getattr(dates.dt, part).to_numpy(np.float64, na_value=np.nan)
                present = values[~np.isnan(values)]
                if present.size and present.min() < present.max():  # a part that never varies says nothing
                    numeric = _fit_numeric(f"{name}.{part}", values, (), name in gaps, max_z, scaling, bins)
                    parts.append({**numeric, "part": part})
            spec = {"name": name, "kind": "datetime", "day_first": dayfirst, "parts": parts}
            spec.update({"missing_marks": marks[name]} if name in marks else {})
            columns.append(spec)
        elif role == "text":  # a vocabulary of n-grams (steps/text.py): not dense features, the text block
            columns.append(text.fit_column(name, series, name in gaps)[0])
        else:
            keys = category_keys(series)
            counts = keys.value_counts()
            counts = counts.sort_index(kind="stable").sort_values(ascending=False, kind="stable")
            other = len(counts) > MAX_ONEHOT
            kept = counts.index[: MAX_ONEHOT - 1 if other else MAX_ONEHOT].tolist()
            spec = {"name": name, "kind": "categorical", "categories": kept, "other": other}
            if other:
                spec["frequencies"] = {k: round(float(v), 6) for k, v in (counts / max(len(keys), 1)).items()}
            encoding = target_encoding.fit_column(keys, targets) if other and targets is not None else None
            if encoding is not None:  # None: no value in enough training rows to encode
                spec["target_encoding"] = encoding
            spec["indicator"] = name in gaps
            columns.append(spec)
    return {"columns": columns, "features": feature_names({"columns": columns})}


def feature_names(spec: dict) -> list[str]:
    names = []
    for column in spec["columns"]:
        name = column["name"]
        if column["kind"] == "numeric":
            names += numeric_names(column)
        elif column["kind"] == "datetime":
            names += feature_names({"columns": column["parts"]})
        elif column["kind"] == "text":
            continue  # the text block (steps/text.py)
        else:
            names += [f"{name}={c}" for c in column["categories"]]
            names += [f"{name}=<other>", f"{name} frequency"] if column["other"] else []
            if "target_encoding" in column:
                names += target_encoding.feature_names(name, column["target_encoding"])
            names += [f"{name}=<missing>"] if column["indicator"] else []
    return names


def cross_fitted(
    frame: pd.DataFrame, spec: dict, targets: target_encoding.Targets, seed: int
) -> list[tuple[int, np.ndarray]]:
    """The training rows' own target encodings (target_encoding.cross_fitted), to write over `transform`'s: (the
    position of the column's first encoding feature, rows x outputs) per target-encoded column. `frame`: the training
    rows `fit` saw, in its order; `targets`: their labels."""
    out = []
    for i, column in enumerate(spec["columns"]):
        if "target_encoding" in column:
            start = len(feature_names({"columns": spec["columns"][:i]})) + len(column["categories"]) + 2
            keys = category_keys(frame[column["name"]])
            out.append((start, target_encoding.cross_fitted(keys, targets, column["target_encoding"], seed)))
    return out


# -- applying -------------------------------------------------------------------------------------------------------


def required_columns(spec: dict) -> list[str]:
    """Input columns a row must have: those the training split never had missing. The others may be left out."""
    required = []
    for column in spec["columns"]:
        gaps = column["indicator"] if column["kind"] != "datetime" else any(p["indicator"] for p in column["parts"])
        if not gaps:
            required.append(column["name"])
    return required


def _numeric_block(column: dict, values: np.ndarray, out: np.ndarray) -> None:
    missing = np.isnan(values)
    clipped = np.clip(values, column["low"], column["high"])  # a missing value stays NaN, then gets the median
    if column.get("log"):
        clipped = np.log1p(clipped)
    imputed = np.where(missing, column["median"], clipped)
    bound = column.get("max_z", MAX_Z)
    bound = np.inf if bound is None else bound
    scaled = imputed - column["median"]
    out[:, 0] = np.clip(scaled / column["scale"], -bound, bound)
    edges = column.get("edges", ())
    if len(edges):  # bin i: 0 below edges[i-1], 1 above edges[i], linear between
        low, high = np.asarray(edges[:-1]), np.asarray(edges[1:])
        out[:, 1 : len(edges)] = np.clip((imputed[:, None] - low) / (high - low), 0.0, 1.0)
    if column["indicator"]:
        out[:, -1] = missing


def _bad_values(name: str, what: str, rows: pd.Index, values: pd.Series) -> str:
    examples = ", ".join(f"{v!r}" for v in pd.unique(values)[:3])
    where = ", ".join(str(r) for r in rows[:5]) + (", ..." if len(rows) > 5 else "")
    return f"column '{name}': {len(rows)} values are not {what} ({examples}; rows {where})"


def _gaps(name: str, rows: pd.Index) -> list[str]:
    """A missing value in a column the table never had gaps in: the model cannot know what it means."""
    if not len(rows):
        return []
    where = ", ".join(str(r) for r in rows[:5]) + (", ..." if len(rows) > 5 else "")
    return [f"column '{name}': {len(rows)} missing values (rows {where}); the model was trained without gaps there"]


def infinite_problem(name: str, values: pd.Series) -> list[str]:
    """A column's infinite values, named with their rows: not missing values, not numbers the model can score."""
    if not len(values):
        return []
    examples = ", ".join(repr(v if isinstance(v, str) else float(v)) for v in pd.unique(values)[:3])
    where = ", ".join(str(r) for r in values.index[:5]) + (", ..." if len(values) > 5 else "")
    return [f"column '{name}': {len(values)} values are infinite, not finite numbers ({examples}; rows {where})"]


def transform(frame: pd.DataFrame, spec: dict, refuse_infinite: bool = False) -> np.ndarray:
    """float32 features of every row of `frame` (column-major); raises TableError naming every missing column, every
    column with values of the wrong type, and every missing value in a column the training table had no gaps in.
    `refuse_infinite` (serving): an infinite number is refused, naming its column and rows; otherwise it is read as
    missing (preprocessing's reading of the training table)."""
    problems = []
    absent = [c for c in required_columns(spec) if c not in frame.columns]
    if absent:
        problems.append(f"missing required column(s): {', '.join(absent)}")
    out = np.zeros((len(frame), len(spec["features"])), dtype=np.float32, order="F")
    none = pd.Series([None] * len(frame), index=frame.index, dtype=object)
    at = 0
    for column in spec["columns"]:
        name = column["name"]
        series = frame[name] if name in frame.columns else none
        if column["kind"] == "numeric":
            if pd.api.types.is_bool_dtype(series):
                problems.append(f"column '{name}': true/false values where numbers are expected")
            values, not_numbers = parse_numbers(series)
            marks = set(column.get("missing_marks", ()))
            bad = not_numbers[~not_numbers.str.lower().isin(marks)] if len(not_numbers) else not_numbers
            infinite = infinite_values(series) if refuse_infinite and name in frame.columns else series.iloc[:0]
            problems += infinite_problem(name, infinite)
            if len(bad):
                problems.append(_bad_values(name, "numbers", bad.index, bad))
            elif not column["indicator"] and name in frame.columns:
                problems += _gaps(name, frame.index[np.isnan(values)].difference(infinite.index))
            width = len(numeric_names(column))
            _numeric_block(column, values, out[:, at : at + width])
        elif column["kind"] == "text":
            width = 0  # the text block, encoded and checked by steps/text.py's encode
        elif column["kind"] == "datetime":
            try:
                if pd.api.types.is_datetime64_any_dtype(series):
                    texts, dates = series, parse_dates(series)
                else:
                    texts = clean_texts(series)
                    dates = parse_dates(texts, column.get("day_first", False))
            except TypeError:  # lists or objects (JSON)
                problems.append(f"column '{name}': values must be single values, not lists or objects")
                texts = dates = pd.Series(pd.NaT, index=frame.index)
            marks = set(column.get("missing_marks", ()))
            unparsed = dates.isna() & texts.notna() & ~texts.astype(str).str.lower().isin(marks)
            if unparsed.any():
                problems.append(_bad_values(name, "dates", frame.index[unparsed.to_numpy()], texts[unparsed]))
            elif name in frame.columns and not any(p["indicator"] for p in column["parts"]) and column["parts"]:
                problems += _gaps(name, frame.index[dates.isna().to_numpy()])
            width = 0
            for part in column["parts"]:
                values = getattr(dates.dt, part["part"]).to_numpy(np.float64, na_value=np.nan)
                part_width = len(numeric_names(part))
                _numeric_block(part, values, out[:, at + width : at + width + part_width])
                width += part_width
        else:
            try:
                keys = category_keys(series)
            except TypeError:  # lists or objects (JSON) are not categories
                problems.append(f"column '{name}': values must be single values, not lists or objects")
                keys = none
            categories = column["categories"]
            if set(categories) == {"true", "false"}:  # 1/0, yes/no, y/n mean true/false in a true/false column
                keys = keys.map(lambda k: BOOLEAN_SPELLINGS.get(k.lower(), k) if isinstance(k, str) else k)
            if not column["indicator"] and name in frame.columns:
                problems += _gaps(name, frame.index[keys.isna().to_numpy()])
            codes = pd.Index(categories, dtype=object).get_indexer(keys)  # -1: unknown or missing
            known = codes >= 0
            out[np.flatnonzero(known), at + codes[known]] = 1.0
            width = len(categories)
            if column["other"]:
                out[:, at + width] = ~known & keys.notna().to_numpy()
                out[:, at + width + 1] = keys.map(column["frequencies"]).fillna(0.0).to_numpy(np.float32)
                width += 2
            if "target_encoding" in column:
                encoded = target_encoding.apply(keys, column["target_encoding"])
                out[:, at + width : at + width + encoded.shape[1]] = encoded
                width += encoded.shape[1]
            if column["indicator"]:
                out[:, at + width] = keys.isna().to_numpy()
                width += 1
        at += width
    if problems:
        raise TableError(problems)
    return out
