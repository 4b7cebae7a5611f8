"""Reading a team's table file as they wrote it: CSV in the common dialects, or Parquet.

Used by preprocessing and by `regula predict`, so a file scores the way it trained. CSV: the delimiter (comma,
semicolon, tab, pipe) is what the first lines agree on; a semicolon file with decimal commas (1,5) is read as the
European dialect; read in blocks of rows (one go peaks at twice the table's size). Duplicate column names are
refused: pandas would silently rename them. A row with a field more than the header is refused with its line (an
unquoted delimiter in a value would shift or drop values); an empty one (a trailing delimiter) is not a field.

Encoding: UTF-8, strictly. A file that is not UTF-8 is read as Windows-1252 or Latin-1 only when none of its
non-ASCII bytes form a UTF-8 character, and the note says so; a UTF-8 file with a stray byte is refused, naming its
line and byte, since Latin-1 would turn every accented category of it into another category.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pandas as pd

from steps.table_values import field_beyond_header

DELIMITERS = ",;\t|"
READ_ROWS = 250_000
DECIMAL_COMMA = re.compile(r"(^|;)\s*-?\d+,\d+\s*(;|$)", re.MULTILINE)
SNIFF_CHARACTERS = 65536  # read past the header (however long) for the delimiter, the dialect and the first row
# a UTF-8 character of two to four bytes: any in a file that is not valid UTF-8 says it is UTF-8 with a bad byte
UTF8_CHARACTER = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}|\xed[\x80-\x9f][\x80-\xbf]"
    rb"|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}|\xf4[\x80-\x8f][\x80-\xbf]{2}"
)
WINDOWS_ONLY = re.compile(rb"[\x80-\x9f]")  # control characters in Latin-1, letters and signs in Windows-1252


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


def legacy_encoding(path: Path) -> tuple[str, str]:
    """The encoding of a file that is not UTF-8 and the note that says why: Windows-1252 where its bytes 0x80-0x9f
    are all characters of it (a spreadsheet's export: 0x80 is the euro sign), else Latin-1. TableFileError when the
    file holds UTF-8 characters (a UTF-8 file with a stray byte), naming the first line and byte that fail. Reads the
    file once, a line at a time."""
    first_bad, characters, lines, windows = None, 0, 0, 0
    cp1252 = True
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, 1):
            if line.isascii():
                continue
            lines += 1
            characters += len(UTF8_CHARACTER.findall(line))
            windows += len(WINDOWS_ONLY.findall(line))
            if cp1252:
                try:
                    line.decode("cp1252")
                except UnicodeDecodeError:
                    cp1252 = False
            if first_bad is None:
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError as error:
                    first_bad = (number, error.start + 1, line[error.start])
    if characters and first_bad:
        number, column, byte = first_bad
        raise TableFileError(
            f"{path.name} is UTF-8 ({characters} UTF-8 characters) except line {number}, byte {column} (0x{byte:02x}), "
            "which is not: fix that byte or save the file as UTF-8 (read as Latin-1, every accented category of it "
            "would become another category)"
        )
    encoding = "cp1252" if cp1252 and windows else "latin-1"  # the same characters where 0x80-0x9f do not occur
    return encoding, f"{encoding} (not UTF-8: no UTF-8 character among the non-ASCII bytes of its {lines} lines)"


def _read_head(path: Path, encoding: str) -> str:
    """The header line whole (however long), the first data line, and SNIFF_CHARACTERS more; strict decoding."""
    with open(path, encoding=encoding, errors="strict", newline="") as handle:
        return handle.readline() + handle.readline() + handle.read(SNIFF_CHARACTERS)


def _read_csv(path: Path, head: str, encoding: str, duplicates_allowed: bool) -> tuple[pd.DataFrame, str]:
    delimiter = sniff_delimiter(head[:SNIFF_CHARACTERS])  # a header of megabytes is no better a sample
    decimal = "," if delimiter == ";" and DECIMAL_COMMA.search(head) else "."
    header = [h.strip() for h in next(csv.reader(io.StringIO(head), delimiter=delimiter))]
    if duplicated(header) and not duplicates_allowed:
        raise TableFileError(f"duplicate column names: {', '.join(duplicated(header))}")
    with open(path, encoding=encoding, newline="") as lines:
        wrong = field_beyond_header(lines, delimiter)
    if wrong:  # pandas would drop (or shift) the field
        raise TableFileError(f"{path.name}: {wrong}: a value holding the delimiter {delimiter!r} needs quotes")
    # index_col=False: a trailing delimiter must not turn the first column into the row index
    blocks = pd.read_csv(path, sep=delimiter, decimal=decimal, encoding=encoding, index_col=False, chunksize=READ_ROWS)
    frame = pd.concat(blocks, ignore_index=True)
    frame.columns = [str(c).strip() for c in frame.columns]
    frame.attrs["duplicates"] = duplicated(header)
    comma = ", decimal comma" if decimal == "," else ""
    return frame, f"CSV, delimiter {delimiter!r}{comma}"


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
        encoding = note = "utf-8-sig"
        try:
            head = _read_head(path, encoding)
            if not head.strip():
                raise TableFileError(f"input file {path.name} is empty")
            frame, how = _read_csv(path, head, encoding, duplicates_allowed)
        except UnicodeDecodeError:  # anywhere in the file: a legacy encoding only when nothing in it is UTF-8
            encoding, note = legacy_encoding(path)
            frame, how = _read_csv(path, _read_head(path, encoding), encoding, duplicates_allowed)
        return frame, f"{how}, {note}"
    except pd.errors.EmptyDataError:
        raise TableFileError(f"input file {path.name} is empty") from None
    except TableFileError:
        raise
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as error:
        raise TableFileError(f"cannot read {path.name}: {str(error).strip().splitlines()[0]}") from None


def read_input_table(path) -> pd.DataFrame:
    """Preprocessing's input table (duplicate names kept, reported by the caller), with the line that says how it
    was read; TableFileError when it cannot be read or has no rows. Shared by the table and time-series kinds."""
    frame, how = read_table(path, duplicates_allowed=True)
    print(f"preprocess: read {path.name} ({how}): {len(frame)} rows, {frame.shape[1]} columns", flush=True)
    if frame.empty:
        raise TableFileError("input table has no rows")
    return frame
