"""Reading a table's values the one way the transform reads them, wherever they come from (CSV, JSON, Parquet):
the texts that mean missing, one spelling per category, numbers, and dates with one day/month order per column.

Used by the column roles (steps/table_roles.py) and the transform (steps/table.py); packed into model.tar.gz with
them, so the served model reads a row as training did.
"""

from __future__ import annotations

import csv
import re

import numpy as np
import pandas as pd

# Texts that mean "missing" wherever a value comes from: pandas' read_csv defaults, applied to JSON and Parquet
# values too, so the same row scores the same whichever way it is sent.
MISSING_TEXTS = frozenset(
    ["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A", "NA"]
    + ["NULL", "NaN", "None", "n/a", "nan", "null"]
)
MARK = re.compile(r"^[^0-9A-Za-z]*$|^(unknown|missing|none|null|na|n/a|nan|not available)$", re.IGNORECASE)
BOOLEAN_SPELLINGS = {"1": "true", "0": "false", "yes": "true", "no": "false", "y": "true", "n": "false"}
DAY_MONTH = re.compile(r"^\s*(\d{1,2})[/.-](\d{1,2})[/.-]\d{2,4}")


def _number_key(number: float) -> str:
    return str(int(number)) if number.is_integer() and abs(number) < 2**53 else repr(number)


def category_key(value) -> str | None:
    """One spelling per category, whether it came from CSV, JSON or Parquet: True, 'true' and 'TRUE' are 'true';
    2, 2.0 and '2' are '2'; 1.1 and '1.10' are '1.1'. None for a missing value."""
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return _number_key(float(value)) if np.isfinite(value) else None
    text = str(value).strip()
    if text in MISSING_TEXTS:
        return None
    if text.lower() in ("true", "false"):
        return text.lower()
    try:
        number = float(text)
    except ValueError:
        return text
    return _number_key(number) if np.isfinite(number) else text


def category_keys(series: pd.Series) -> pd.Series:
    """`category_key` of every value, computed once per distinct value (fast and light on millions of rows);
    missing stays missing (None). TypeError for values that are lists or objects."""
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    keys = np.array([category_key(value) for value in uniques] + [None], dtype=object)  # code -1: the None
    return pd.Series(keys[codes], index=series.index, dtype=object)


def clean_texts(series: pd.Series) -> pd.Series:
    """Stripped text of each value; None for missing values and MISSING_TEXTS."""
    text = series.astype(object).map(lambda v: v if v is None or isinstance(v, float) else str(v).strip())
    return text.where(~text.isin(MISSING_TEXTS) & text.notna(), None)


def parse_numbers(series: pd.Series) -> tuple[np.ndarray, pd.Series]:
    """float64 values (NaN where missing or not a number) and the text of the values that are not numbers."""
    if pd.api.types.is_bool_dtype(series):
        return series.to_numpy(np.float64), series.iloc[:0]
    if pd.api.types.is_numeric_dtype(series):
        values = series.to_numpy(np.float64, na_value=np.nan)
        return np.where(np.isfinite(values), values, np.nan), series.iloc[:0]
    text = clean_texts(series)
    values = pd.to_numeric(text, errors="coerce").to_numpy(np.float64)
    not_numbers = text[np.isnan(values) & text.notna().to_numpy()]
    return np.where(np.isfinite(values), values, np.nan), not_numbers.astype(str)


def infinite_values(series: pd.Series) -> pd.Series:
    """The values of `series` that are numbers but not finite (inf, -inf, "Infinity", 1e999), by row: parse_numbers
    reads them as missing, which a request must not be told."""
    if pd.api.types.is_bool_dtype(series):
        return series.iloc[:0]
    if pd.api.types.is_numeric_dtype(series):
        values = series.to_numpy(np.float64, na_value=np.nan)
    else:
        values = pd.to_numeric(clean_texts(series), errors="coerce").to_numpy(np.float64)
    return series[np.isinf(values)]


def day_first(series: pd.Series) -> bool:
    """Whether dates like 04/03/2021 are day first: some value's first field is above 12, and no second one is."""
    parts = clean_texts(series).dropna().astype(str).str.extract(DAY_MONTH).dropna().astype(int)
    return bool(len(parts)) and bool((parts[0] > 12).any()) and not bool((parts[1] > 12).any())


def parse_dates(series: pd.Series, dayfirst: bool = False) -> pd.Series:
    """Timestamps (UTC, naive); NaT where missing or not a date. One day/month order for the whole column."""
    if pd.api.types.is_datetime64_any_dtype(series):
        dates = series
    else:
        texts = clean_texts(series)
        with np.errstate(all="ignore"):
            dates = pd.to_datetime(texts, errors="coerce", format="mixed", utc=True)
            if dayfirst:  # only for dd/mm/yyyy texts: pandas would read ISO 2021-03-04 as April 3 too
                short = texts.astype(str).str.match(DAY_MONTH.pattern).to_numpy()
                dates[short] = pd.to_datetime(texts[short], errors="coerce", format="mixed", dayfirst=True, utc=True)
    if getattr(dates.dt, "tz", None) is not None:
        dates = dates.dt.tz_convert("UTC").dt.tz_localize(None)
    return dates


def are_marks(texts: pd.Series) -> pd.Series:
    """Which of these texts are marks for a missing value ('?', '-', 'unknown'), not values."""
    return texts.str.fullmatch(MARK.pattern, case=False).fillna(False).astype(bool)


# -- CSV rows against their header -------------------------------------------------------------------------------


def field_beyond_header(lines, delimiter: str, skipinitialspace: bool = False) -> str | None:
    """Where a CSV row has a field beyond its header (`lines`: the text, header first), or None. pandas drops
    such a field without a word (or, when it takes the first column for an index, shifts every value of the row
    one column over): an unquoted delimiter in a value, or a header short of a name. An empty field past the
    header (a trailing delimiter) is not one. One pass of the csv module, linear in the text."""
    records = csv.reader(lines, delimiter=delimiter, skipinitialspace=skipinitialspace)
    width = len(next(records, []))
    for row in records:
        if len(row) > width and any(field.strip() for field in row[width:]):
            return f"line {records.line_num} has {len(row)} fields, the header {width}"
    return None
