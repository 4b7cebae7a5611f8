"""The column roles: what each column of a team's table is, read from the whole table's *structure* (types,
distinct values): numeric, categorical, datetime, text (free text: steps/text.py), or dropped with a reason
(constant, all missing, an identifier, excluded); and, also structure, which texts mark a missing value and which
columns have gaps.

The numbers of the transform are fitted from the training split only (steps/table.py); the values are read by
steps/table_values.py.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from steps.table_values import are_marks, category_keys, clean_texts, day_first, parse_dates, parse_numbers
from steps.text import looks_like_text

NUMERIC_SHARE = 0.95  # a text column whose values parse as numbers this often is numeric; the rest are missing marks
DATETIME_SHARE = 0.95  # likewise for dates
IDENTIFIER_SHARE = 0.8  # a column this unique (a category seen 1.25 times on average) that is not free text is an ID
IDENTIFIER_MIN_ROWS = 20  # below this, uniqueness says nothing
ID_NAME = re.compile(r"(^|[^a-z])id$|^id[^a-z]|uuid|guid", re.IGNORECASE)


def _looks_like_dates(present: pd.Series) -> bool:
    texts = present.astype(str)
    texts = texts[~are_marks(texts)]
    if texts.empty or not texts.str.contains(r"\d").all() or not texts.str.contains(r"[-/:. ]").all():
        return False
    parsed = parse_dates(texts, day_first(texts))
    return parsed.notna().mean() >= DATETIME_SHARE


def column_roles(
    frame: pd.DataFrame, exclude: list[str] = (), categorical: list[str] = (), text: list[str] = ()
) -> tuple[dict[str, str], dict[str, str]]:
    """({column: numeric|categorical|datetime|text}, {dropped column: why}) for the feature columns of `frame`."""
    roles, dropped, _ = explained_roles(frame, exclude, categorical, text)
    return roles, dropped


def explained_roles(
    frame: pd.DataFrame, exclude: list[str] = (), categorical: list[str] = (), text: list[str] = ()
) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """`column_roles`, and why each text column is text (for the log)."""
    roles, dropped, why_text = {}, {}, {}
    rows = len(frame)
    for name in frame.columns:
        series = frame[name]
        present = series.dropna()
        if name in exclude:
            dropped[name] = "excluded (ExcludeColumns)"
            continue
        if present.empty:
            dropped[name] = "all values missing"
            continue
        try:
            distinct = present.nunique()
        except TypeError:  # lists or records (Parquet): not a column a table model can use
            dropped[name] = "holds lists or records, not single values"
            continue
        if distinct <= 1:
            value = present.iloc[0]
            dropped[name] = f"constant ({value.item() if isinstance(value, np.generic) else value!r})"
            continue
        if name in text:
            roles[name] = "text"
            why_text[name] = "named in TextColumns"
            continue
        if name in categorical or pd.api.types.is_bool_dtype(series):
            roles[name] = "categorical"
        elif pd.api.types.is_datetime64_any_dtype(series):
            roles[name] = "datetime"
        elif pd.api.types.is_numeric_dtype(series):
            roles[name] = "numeric"
            if pd.api.types.is_integer_dtype(series) and distinct == rows >= IDENTIFIER_MIN_ROWS:
                span = int(present.max()) - int(present.min()) + 1
                if span <= 2 * rows or ID_NAME.search(str(name)):
                    dropped[name] = "an ID-like integer sequence (one distinct value per row)"
                    del roles[name]
        else:
            values, not_numbers = parse_numbers(present)
            marks = int(are_marks(not_numbers).sum())  # '?', '-', 'unknown' stand for missing numbers: not evidence
            if np.isfinite(values).sum() >= NUMERIC_SHARE * max(len(present) - marks, 1):
                roles[name] = "numeric"
            elif _looks_like_dates(present):
                roles[name] = "datetime"
            else:
                is_text, why = looks_like_text(present, rows)
                if is_text:
                    roles[name], why_text[name] = "text", f"free text: {why}"
                elif rows >= IDENTIFIER_MIN_ROWS and distinct >= IDENTIFIER_SHARE * len(present):
                    dropped[name] = f"one distinct text per row, not free text ({why}): an identifier"
                else:
                    roles[name] = "categorical"
        named_id = ID_NAME.search(str(name)) and roles.get(name) not in (None, "text")
        if named_id and distinct == len(present) >= IDENTIFIER_MIN_ROWS:
            dropped[name] = "named like an identifier, one distinct value per row"
            del roles[name]
    return roles, dropped, why_text


def missing_marks(frame: pd.DataFrame, roles: dict[str, str]) -> dict[str, list[str]]:
    """The texts standing for a missing number or date ('?', 'n/a', 'unknown', ...) in the numeric and date text
    columns, over the whole table: a mark that only occurs in the validation or test rows is a mark all the same."""
    marks = {}
    for name, role in roles.items():
        series = frame[name]
        if role == "numeric" and not pd.api.types.is_numeric_dtype(series):
            not_numbers = parse_numbers(series)[1]
        elif role == "datetime" and not pd.api.types.is_datetime64_any_dtype(series):
            texts = clean_texts(series)
            not_numbers = texts[parse_dates(texts, day_first(texts)).isna() & texts.notna()].astype(str)
        else:
            continue
        if len(not_numbers):
            marks[name] = sorted(set(not_numbers.str.lower()))
    return marks


def columns_with_gaps(frame: pd.DataFrame, roles: dict[str, str], marks: dict[str, list[str]]) -> set[str]:
    """Columns with a missing value anywhere in the table: these get a missing-indicator and may be left out of a
    row; the others are required, value and all."""
    gaps = set(marks)
    for name, role in roles.items():
        series = frame[name]
        if role == "numeric":
            missing = np.isnan(parse_numbers(series)[0]).any()
        elif role == "datetime":
            missing = parse_dates(series, day_first(series)).isna().any()
        else:
            missing = category_keys(series).isna().any()
        if missing:
            gaps.add(name)
    return gaps
