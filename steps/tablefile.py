"""Reading a team's table file as they wrote it: CSV in the common dialects, or Parquet.

Used by preprocessing and by `regula predict`, so a file scores the way it trained. CSV: the delimiter (comma,
semicolon, tab, pipe) is what the first lines agree on; a semicolon file with decimal commas (1,5) is read as the
European dialect; UTF-8, else Latin-1; read in blocks of rows (one go peaks at twice the table's size). Duplicate
column names are refused: pandas would silently rename them.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pandas as pd

DELIMITERS = ",;\t|"
READ_ROWS = 250_000
DECIMAL_COMMA = re.compile(r"(^|;)\s*-?\d+,\d+\s*(;|$)", re.MULTILINE)


class TableFileError(ValueError):
    """A file that cannot be read as a table: one line saying why."""


def sniff_delimiter(head: str) -> str:
    try:
        return csv.Sniffer().sniff(head, delimiters=DELIMITERS).delimiter
    except csv.Error:
        return ","


def duplicated(header: list[str]) -> list[str]:
    seen, duplicates = set(), []
    for name in header:
        if name in seen and name not in duplicates:
            duplicates.append(name)
        seen.add(name)
    return duplicates


def _read_csv(path: Path, delimiter: str, decimal: str, encoding: str) -> pd.DataFrame:
    # index_col=False: a trailing delimiter must not turn the first column into the row index
    blocks = pd.read_csv(path, sep=delimiter, decimal=decimal, encoding=encoding, index_col=False, chunksize=READ_ROWS)
    return pd.concat(blocks, ignore_index=True)


def read_table(path: Path, duplicates_allowed: bool = False) -> tuple[pd.DataFrame, str]:
    """The table and a note on how it was read. Duplicate column names raise TableFileError, unless
    `duplicates_allowed`: then pandas' renamed copies are kept and the names are in `frame.attrs["duplicates"]`, so
    the caller can report them with every other problem of the table."""
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            header = [str(n) for n in pq.read_schema(path).names]
            if duplicated(header) and not duplicates_allowed:
                raise TableFileError(f"duplicate column names: {', '.join(duplicated(header))}")
            frame = pd.read_parquet(path)
            frame.attrs["duplicates"] = duplicated(header)
            return frame, "Parquet"
        with open(path, "rb") as handle:
            head = handle.read(65536).decode("utf-8-sig", errors="ignore")
        if not head.strip():
            raise TableFileError(f"input file {path.name} is empty")
        delimiter = sniff_delimiter(head)
        decimal = "," if delimiter == ";" and DECIMAL_COMMA.search(head) else "."
        header = [h.strip() for h in next(csv.reader(io.StringIO(head), delimiter=delimiter))]
        if duplicated(header) and not duplicates_allowed:
            raise TableFileError(f"duplicate column names: {', '.join(duplicated(header))}")
        encoding = "utf-8-sig"
        try:
            frame = _read_csv(path, delimiter, decimal, encoding)
        except UnicodeDecodeError:  # not UTF-8: a legacy single-byte encoding reads every byte
            encoding = "latin-1"
            frame = _read_csv(path, delimiter, decimal, encoding)
        frame.columns = [str(c).strip() for c in frame.columns]
        frame.attrs["duplicates"] = duplicated(header)
        comma = ", decimal comma" if decimal == "," else ""
        return frame, f"CSV, delimiter {delimiter!r}{comma}, {encoding}"
    except pd.errors.EmptyDataError:
        raise TableFileError(f"input file {path.name} is empty") from None
    except TableFileError:
        raise
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as error:
        raise TableFileError(f"cannot read {path.name}: {str(error).strip().splitlines()[0]}") from None
