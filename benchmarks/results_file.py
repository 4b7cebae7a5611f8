"""One benchmark run, one results file: what every benchmark writes under benchmarks/results/.

`write(path, results)` writes `results` with a `run` record beside them: the commit (and whether the worktree had
changes), the command line, the machine (cores, load average when the run started and ended, platform, Python)
and the date. A file is written whole by one run, never merged or edited: benchmarks/report.py renders
docs/performance.md from these files, and tests/test_performance_docs.py fails when the two disagree. A file
without a `run` record was written before the benchmarks recorded their runs (or edited by hand): the report
marks it legacy, unverified.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
RUN_FIELDS = ("commit", "worktree_changes", "command", "machine", "started", "finished")

_STARTED: dict = {}


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _git(*args: str) -> str:
    result = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 else ""


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def start() -> None:
    """Note the commit, the date and the machine's load as the run starts: a commit made while it runs is not the
    code it ran."""
    _STARTED.setdefault("started", _now())
    _STARTED.setdefault("load", _load())
    _STARTED.setdefault("commit", _git("rev-parse", "HEAD") or "unknown")
    # changes to the code: results files and the rendered docs, which runs rewrite, do not count
    status = _git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!benchmarks/results", ":!docs")
    _STARTED.setdefault("changes", bool(status))


start()  # importing this module is the start of a benchmark's run


def run_record(argv: list[str] | None = None) -> dict:
    """Who wrote a results file: commit, command line, machine, dates."""
    argv = sys.argv if argv is None else argv
    return {
        "commit": _STARTED["commit"],
        "worktree_changes": _STARTED["changes"],
        "command": shlex.join(["python", *[_relative(a) for a in argv]]),
        "machine": {
            "cpus": os.cpu_count(),
            "load_at_start": _STARTED.get("load"),
            "load_at_end": _load(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "started": _STARTED.get("started"),
        "finished": _now(),
    }


def _relative(arg: str) -> str:
    """Paths inside the repository as relative ones: the command reads the same from any checkout."""
    try:
        return str(Path(arg).resolve().relative_to(REPO)) if "/" in arg and Path(arg).exists() else arg
    except ValueError:
        return arg


def write(path: Path | str, results: dict, argv: list[str] | None = None) -> Path:
    """`results` and this run's record, as one file (replacing any earlier one whole)."""
    if "run" in results:
        raise ValueError("results must not carry their own 'run': the run record is written here")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"run": run_record(argv), **results}, indent=2) + "\n")
    return path


def read(path: Path | str) -> dict:
    return json.loads(Path(path).read_text())


def is_recorded(results: dict) -> bool:
    """Written by write(): its run record has every field."""
    run = results.get("run")
    return isinstance(run, dict) and all(field in run for field in RUN_FIELDS)
