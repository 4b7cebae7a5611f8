"""What the steps agree on: the split files, the schema, threads, and how a step reports failure.

A step that fails on bad input prints one line naming the problem on stderr,
writes it to the SageMaker failure file, and exits 2. SageMaker shows that line
as the job's FailureReason; Regula's local runner shows it as the step's
message. A step that fails on a bug does the same with exit code 1, after
printing the traceback into the job's log.
"""

from __future__ import annotations

import atexit
import gc
import hashlib
import json
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

import numpy as np

LABEL = "__label__"  # the label column of the split files: class index (classification) or the target (regression)
SCHEMA = "schema.json"
SPLITS = ("train", "validation", "test")
NAIVE = "naive.npy"  # a time series split's seasonal naive forecast per row: label + naive is the level forecast
RAW_SAMPLE = "raw_sample.csv"  # test rows as the user gave them: evaluation scores them through the serving code
SMALL_WORK = 50_000_000  # multiply-adds per training step below which one torch thread is fastest


class StepError(Exception):
    """Bad input or configuration: reported as one line, without a traceback."""


def split_path(directory: str | Path, name: str) -> Path:
    return Path(directory) / f"{name}.parquet"


def write_split(directory: Path, name: str, blocks, names: list[str]) -> Path:
    """One split as Parquet: the label column, then one float32 column per model feature. `blocks` yields
    (features, labels) row blocks, appended in order: a large split is never whole in memory twice."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    directory.mkdir(parents=True, exist_ok=True)
    path = split_path(directory, name)
    writer = None
    try:
        for features, labels in blocks:
            columns = {LABEL: labels, **{f"{j}:{n}": features[:, j] for j, n in enumerate(names)}}
            table = pa.table(columns)
            writer = writer or pq.ParquetWriter(path, table.schema, compression="zstd")
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    return path


def read_split(directory: str | Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Features (float32, row-major) and labels (int64 class indices, or float32 targets) of one split. Read a
    column at a time into the result: the decoded file is never held beside it (half the peak memory)."""
    import pyarrow.parquet as pq

    path = split_path(directory, name)
    if not path.exists():
        raise StepError(f"missing split file {path}")
    parquet = pq.ParquetFile(path)
    names = parquet.schema_arrow.names
    labels = parquet.read(columns=[LABEL]).column(0).to_numpy()
    features = np.empty((parquet.metadata.num_rows, len(names) - 1), dtype=np.float32)
    for j, column in enumerate(names[1:]):
        features[:, j] = parquet.read(columns=[column]).column(0).to_numpy()
    labels = labels.astype(np.int64) if np.issubdtype(labels.dtype, np.integer) else labels.astype(np.float32)
    return features, labels


def file_sha256(path: Path) -> str:
    """The artifact's fingerprint: evaluation records it, `regula predict` checks it before running the code."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_round_evaluation(path: Path, round_: int, project: Callable[[dict], dict]) -> dict:
    """`project` of round `round_`'s evaluation.json at `path` (the fields a later step needs, with "round"); a
    StepError when it cannot be read, lacks those fields, or is another round's."""
    try:
        fields = project(json.loads(Path(path).read_text()))
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise StepError(f"cannot read round {round_}'s evaluation {path}: {error}") from None
    if fields["round"] != round_:
        raise StepError(f"{path} is round {fields['round']}'s evaluation, expected round {round_}'s")
    return fields


def read_schema(directory: str | Path) -> dict:
    return json.loads((Path(directory) / SCHEMA).read_text())


def cpus() -> int:
    """The CPUs this job may use: the local runner's share (REGULA_CPUS), else what the process is allowed."""
    if os.environ.get("REGULA_CPUS"):
        return max(1, int(os.environ["REGULA_CPUS"]))
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def torch_threads(work_per_step: int) -> int:
    """Intra-op threads for a job: one for small models, where more threads only spin-wait on shared cores (two
    runs at once with torch's default threads against this policy: benchmarks/concurrent_runs.py,
    benchmarks/results/concurrent_runs.json); one per ~SMALL_WORK multiply-adds per step beyond that, up to the
    job's CPUs. REGULA_TORCH_THREADS overrides the policy (benchmarks compare with it)."""
    if os.environ.get("REGULA_TORCH_THREADS"):
        return max(1, int(os.environ["REGULA_TORCH_THREADS"]))
    return max(1, min(cpus(), work_per_step // SMALL_WORK))


def run(main: Callable[[], None], step: str, failure_file: str | None = None) -> None:
    """Run `main`, turning StepError and ValueError (bad input or configuration) into a one-line failure; any other
    exception is a bug: its traceback goes to the log, and the failure file still gets one line naming it."""
    # At exit, Python's last collection walks every object torch and pandas made, a visible share of a short step
    # (not broken out in benchmarks/results/); freeze the heap instead of sweeping it. What that skips is only
    # garbage in reference cycles, whose finalizers would run: so every file a step writes is closed where it is
    # written (`with`, write_text), never left to the collector. atexit hooks (tempfile's, logging's) still run.
    atexit.unregister(gc.freeze)
    atexit.register(gc.freeze)
    try:
        main()
    except (StepError, ValueError) as error:
        fail(f"{step}: {error}", failure_file, 2)
    except Exception as error:
        traceback.print_exc()
        bug = f"{step}: unexpected {type(error).__name__}: {error} (a bug: the traceback is in the log)"
        fail(bug, failure_file, 1)


def fail(message: str, failure_file: str | None, status: int) -> None:
    """The step's one line on stderr and in the SageMaker failure file (the job's FailureReason), then exit."""
    message = message.replace("\n", " ")
    print(f"ERROR {message}", file=sys.stderr, flush=True)
    failure_file = failure_file or os.environ.get("SM_OUTPUT_FAILURE")
    if failure_file:
        Path(failure_file).parent.mkdir(parents=True, exist_ok=True)
        Path(failure_file).write_text(message + "\n")
    sys.exit(status)
