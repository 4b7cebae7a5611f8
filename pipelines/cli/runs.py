"""`regula runs list` and `regula runs clean`: the local run folders (`regula run --local`), what each holds, and
removing the old ones.

Only folders named as the runner names them (runs/<YYYYmmdd-HHMMSS>[-n]) are listed or removed; the step cache
(runs/.cache) drops the entries of a removed run by itself (pipelines/local/engine/cache.py). A run without report.json
whose files changed in the last hour may still be running: clean leaves it."""

from __future__ import annotations

import argparse
import json
import re
import shutil
import time
from pathlib import Path

from pipelines.cli.shared import UsageError, print_json

RUN_NAME = re.compile(r"\d{8}-\d{6}(-\d+)?")
STILL_RUNNING_SECONDS = 3600


def run_folders(runs_dir: Path) -> list[Path]:
    """The run folders under `runs_dir`, oldest first."""
    if not runs_dir.is_dir():
        return []
    return sorted(p for p in runs_dir.iterdir() if p.is_dir() and RUN_NAME.fullmatch(p.name))


def size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def describe(run_dir: Path) -> dict:
    """What a run folder holds: its status, decision, rounds, registered round, data and size."""
    row = {"run": run_dir.name, "path": str(run_dir), "bytes": size(run_dir)}
    try:
        report = json.loads((run_dir / "report.json").read_text())
    except (OSError, ValueError):
        newest = max((f.stat().st_mtime for f in run_dir.rglob("*")), default=run_dir.stat().st_mtime)
        running = time.time() - newest < STILL_RUNNING_SECONDS
        return {**row, "status": "running?" if running else "unfinished", "decision": "-", "rounds": 0}
    rounds = report.get("rounds") or []
    data = str((report.get("parameters") or {}).get("InputDataUri", ""))
    return {
        **row,
        "status": report.get("status", "?"),
        "decision": f"{report.get('decision')} at {report['failed_step']}"
        if report.get("failed_step") and report.get("decision") in ("failed", "interrupted")
        else report.get("decision", "?"),
        "rounds": len(rounds),
        "registered_round": (rounds[-1].get("selected_round") or rounds[-1]["round"])
        if report.get("model_package_arn") and rounds
        else None,
        "data": "demo (digits)" if data.endswith("/demo/digits.csv") else data.rsplit("/", 1)[-1],
        "target": (report.get("parameters") or {}).get("TargetColumn"),
    }


def megabytes(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def cmd_runs(args: argparse.Namespace) -> int:
    runs_dir = Path(args.runs_dir)
    rows = [describe(p) for p in run_folders(runs_dir)]
    if args.action == "list":
        if args.json:
            print_json(rows)
            return 0
        if not rows:
            print(f"no run folders under {runs_dir}")
            return 0
        print(f"{'run':<20} {'status':<12} {'decision':<30} {'rounds':>6}  {'kept':>4}  {'size':>9}  data (target)")
        for r in rows:
            kept = r.get("registered_round") or "-"
            data = f"{r.get('data', '-')} ({r.get('target')})" if r.get("data") else "-"
            print(
                f"{r['run']:<20} {r['status']:<12} {r['decision']:<30} {r['rounds']:>6}  {kept:>4}  "
                f"{megabytes(r['bytes']):>9}  {data}"
            )
        cache = runs_dir / ".cache"
        cached = f", step cache {megabytes(size(cache))}" if cache.is_dir() else ""
        total = megabytes(sum(r["bytes"] for r in rows))
        print(f"{len(rows)} runs, {total}{cached}; `regula runs clean` removes old ones")
        return 0
    if args.keep < 0:
        raise UsageError(f"--keep must be >= 0, got {args.keep}")
    candidates = rows[: max(len(rows) - args.keep, 0)]
    if args.older_than is not None:
        cutoff = time.time() - args.older_than * 86400
        candidates = [r for r in candidates if Path(r["path"]).stat().st_mtime < cutoff]
    if args.failed:
        candidates = [r for r in candidates if r["status"] != "Succeeded"]
    candidates = [r for r in candidates if r["status"] != "running?"]
    freed = sum(r["bytes"] for r in candidates)
    for r in candidates:
        if not args.dry_run:
            shutil.rmtree(r["path"])
        print(f"{'would remove' if args.dry_run else 'removed'} {r['path']} ({r['status']}, {megabytes(r['bytes'])})")
    verb = "would free" if args.dry_run else "freed"
    print(f"{len(candidates)} of {len(rows)} runs, {verb} {megabytes(freed)}; kept the newest {args.keep}")
    return 0


def add_parsers(commands) -> None:
    runs = commands.add_parser("runs", help="the local run folders: list, clean")
    actions = runs.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, text in (
        ("list", "each run folder: status, decision, rounds, the registered round, size, data"),
        ("clean", "remove old run folders (the newest --keep stay; a run still going is never removed)"),
    ):
        sub = actions.add_parser(action, help=text)
        sub.add_argument("--runs-dir", default="runs", help="where the run folders are (default: runs)")
        if action == "list":
            sub.add_argument("--json", action="store_true", help="print JSON instead of a table")
        else:
            sub.add_argument("--keep", type=int, default=5, help="how many of the newest runs stay (default: 5)")
            sub.add_argument("--older-than", type=float, metavar="DAYS", help="only runs older than this many days")
            sub.add_argument("--failed", action="store_true", help="only runs that did not succeed")
            sub.add_argument("--dry-run", action="store_true", help="say what would be removed, remove nothing")
        sub.set_defaults(func=cmd_runs, json=False)
