"""The label of a team's table: what kind of problem it is, and whether it can be split and learned.

Used by preprocessing (steps/preprocess.py), which reports every problem of the table at once.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from steps import table_values

MAX_AUTO_CLASSES = 50  # ProblemType=auto: whole-number targets with at most this many distinct values are classes


# -- the label ------------------------------------------------------------------------------------------------------


def problem_type(labels: pd.Series, requested: str) -> tuple[str, str]:
    """classification or regression, and why."""
    if requested != "auto":
        return requested, "set by ProblemType"
    distinct = labels.nunique()
    if pd.api.types.is_bool_dtype(labels) or not pd.api.types.is_numeric_dtype(labels):
        return "classification", f"the target holds text or true/false values ({distinct} distinct)"
    values = labels.to_numpy(np.float64)
    whole = bool(np.all(values == np.round(values)))
    if whole and distinct <= MAX_AUTO_CLASSES:
        return "classification", (
            f"the target holds {distinct} distinct whole numbers (at most {MAX_AUTO_CLASSES} count as classes; "
            "ProblemType=regression treats them as a quantity)"
        )
    kind = "whole numbers" if whole else "numbers"
    return "regression", f"the target holds {kind} with {distinct} distinct values"


def sort_classes(values: list) -> list:
    try:
        return sorted(values)
    except TypeError:
        return sorted(values, key=str)


def class_weight(requested: str, metric: str) -> str:
    """How the served model turns probabilities into a label (see defaults.CLASS_WEIGHTS)."""
    if requested != "auto":
        return requested
    return "balanced" if metric in ("balanced_accuracy", "macro_f1") else "none"


def check_label(labels: pd.Series, kind: str, target: str, min_rows: int) -> list[str]:
    problems = []
    if kind == "classification":
        counts = labels.value_counts()
        if len(counts) < 2:
            problems.append(f"target column '{target}' has a single class ({counts.index[0]}); need at least 2")
        rare = counts[counts < min_rows]
        if len(rare):
            listed = ", ".join(f"{c} ({n} rows)" for c, n in rare.head(5).items())
            problems.append(
                f"too few rows to split: {len(rare)} classes have fewer than the {min_rows} rows a stratified "
                f"train/validation/test split needs: {listed}"
                + ("" if len(rare) <= 5 else ", ...")
                + " (merge or drop them, or set ProblemType=regression for a quantity)"
            )
    else:
        raw = pd.to_numeric(labels, errors="coerce").to_numpy(np.float64)
        infinite = np.flatnonzero(np.isinf(raw))
        if len(infinite):
            problems.append(
                f"target column '{target}' holds {len(infinite)} infinite values (rows "
                f"{', '.join(str(labels.index[i]) for i in infinite[:5])}): fix or drop them"
            )
        huge = np.flatnonzero(np.isfinite(raw) & (np.abs(raw) > np.finfo(np.float32).max))
        if len(huge):  # the splits hold float32 labels: these would become infinite
            problems.append(
                f"target column '{target}' holds {len(huge)} values beyond float32's range (+-3.4e38; rows "
                f"{', '.join(str(labels.index[i]) for i in huge[:5])}): rescale the column (other units)"
            )
        values, not_numbers = table_values.parse_numbers(labels)
        if len(not_numbers):
            problems.append(
                f"regression needs a numeric target; column '{target}' holds {len(not_numbers)} values that are not "
                f"numbers (e.g. {not_numbers.iloc[0]!r})"
            )
        elif np.nanstd(values) == 0:
            problems.append(f"target column '{target}' is constant; nothing to learn")
        if len(labels) < min_rows * 2:
            problems.append(f"too few rows to split: {len(labels)} labelled rows, need at least {min_rows * 2}")
    return problems
