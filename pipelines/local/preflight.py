"""What `regula run --local` checks in the data file before rendering or starting anything: that it is a table
Regula reads (by its name and its first bytes), and that the columns the run names are in its header.

Only the header is read (the first 64 KiB of a CSV, a Parquet file's schema), with the delimiter rule preprocessing
reads the file with (steps/tablefile.py), so a misspelt `--target` is refused in a fraction of a second instead of
at the Preprocess step. A gzip-compressed table (.csv.gz, .tsv.gz, .parquet.gz) is decompressed here and run as the
file inside."""

from __future__ import annotations

import gzip
import io
from dataclasses import dataclass
from pathlib import Path

from pipelines.definition.parameter_names import did_you_mean
from pipelines.errors import RegulaError
from steps.defaults import TARGET_COLUMN
from steps.parameters import column_names

CSV_SUFFIXES = (".csv", ".tsv", ".txt")
PARQUET_SUFFIXES = (".parquet", ".pq")
HEAD_BYTES = 65536
SHOWN_COLUMNS = 12
SAVE_AS = "save it as CSV (UTF-8, with a header row) or Parquet"
# the first bytes of the files people have at hand that are not a CSV or Parquet table
MAGIC = (
    (b"PK\x03\x04", "a ZIP archive (an Excel .xlsx, an OpenDocument sheet or a .zip)"),
    (b"\xd0\xcf\x11\xe0", "an old Excel .xls (OLE) file"),
    (b"BZh", "bzip2-compressed"),
    (b"\xfd7zXZ", "xz-compressed"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed"),
    (b"%PDF", "a PDF"),
)


class DataFileError(RegulaError):
    """A data file Regula cannot read, or columns it does not have: one line, exit code 2."""


@dataclass
class DataFile:
    name: str  # the file name the run uploads it under (without .gz)
    body: bytes
    kind: str  # "csv" or "parquet"
    columns: list[str]


def read_data_file(path: Path) -> DataFile:
    """The table file as the run will upload it, with its header; DataFileError for anything else."""
    try:
        body = Path(path).read_bytes()
    except OSError as error:
        raise DataFileError(f"cannot read data file {path}: {error.strerror}") from None
    name = Path(path).name
    if body[:2] == b"\x1f\x8b":
        try:
            body = gzip.decompress(body)
        except (OSError, EOFError) as error:
            raise DataFileError(f"{name} looks gzip-compressed but does not decompress: {error}") from None
        name = name[:-3] if name.lower().endswith(".gz") else name
        if Path(name).suffix.lower() not in CSV_SUFFIXES + PARQUET_SUFFIXES:
            name += ".csv"
    kind = file_kind(name, body)
    if kind == "parquet" and Path(name).suffix.lower() not in PARQUET_SUFFIXES:
        name += ".parquet"  # preprocessing reads a file by its name
    return DataFile(name, body, kind, header(name, body, kind))


def file_kind(name: str, body: bytes) -> str:
    """ "csv" or "parquet", from what the bytes are (a renamed file is caught) and the name."""
    for magic, what in MAGIC:
        if body.startswith(magic):
            raise DataFileError(f"{name} is {what}, not a table Regula reads: {SAVE_AS}")
    suffix = Path(name).suffix.lower()
    if body[:4] == b"PAR1":
        return "parquet"
    if suffix in PARQUET_SUFFIXES:
        raise DataFileError(f"{name} is not a Parquet file (it does not start with PAR1): {SAVE_AS}")
    if b"\x00" in body[:HEAD_BYTES]:
        raise DataFileError(f"{name} is a binary file, not a CSV table: {SAVE_AS}")
    if suffix not in CSV_SUFFIXES:
        known = ", ".join(CSV_SUFFIXES + PARQUET_SUFFIXES)
        raise DataFileError(f"{name}: Regula reads {known} (or any of them .gz): {SAVE_AS}, or rename it")
    return "csv"


def header(name: str, body: bytes, kind: str) -> list[str]:
    if kind == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            return [str(n) for n in pq.read_schema(pa.BufferReader(body)).names]
        except (pa.ArrowException, OSError) as error:
            raise DataFileError(f"cannot read {name} as Parquet: {error}") from None
    import csv

    from steps.tablefile import sniff_delimiter  # the delimiter preprocessing will read it with

    head = body[:HEAD_BYTES].decode("utf-8-sig", errors="ignore")
    if not head.strip():
        raise DataFileError(f"data file {name} is empty")
    return [h.strip() for h in next(csv.reader(io.StringIO(head), delimiter=sniff_delimiter(head)))]


def shown(columns: list[str]) -> str:
    more = len(columns) - SHOWN_COLUMNS
    return ", ".join(columns[:SHOWN_COLUMNS]) + (f", ... ({more} more)" if more > 0 else "")


def column_problems(data: DataFile, params: dict[str, str], target_given: bool) -> tuple[list[str], list[str]]:
    """(problems, notes) about the columns `params` names (TargetColumn, ExcludeColumns, CategoricalColumns)."""
    columns, problems, notes = data.columns, [], []
    target = params.get("TargetColumn", TARGET_COLUMN)
    if target not in columns:
        hint = did_you_mean(target, columns, quote="'")
        if target_given:
            problems.append(f"target column '{target}' is not in {data.name}{hint}; its columns: {shown(columns)}")
        else:
            problems.append(
                f"no --target given, and {data.name} has no column '{TARGET_COLUMN}' (the default){hint}: "
                f"pass --target NAME; its columns: {shown(columns)}"
            )
    elif not target_given:
        notes.append(f"NOTE: no --target given: predicting the column '{target}' (the default name)")
    for option in ("ExcludeColumns", "CategoricalColumns"):
        for listed in column_names(params.get(option, "")):  # CSV quoting, as the steps read them
            if listed and listed not in columns:
                hint = did_you_mean(listed, columns, quote="'")
                problems.append(f"{option} names '{listed}', not a column of {data.name}{hint}")
    return problems, notes
