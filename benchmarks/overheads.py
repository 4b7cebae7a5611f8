"""What Regula itself costs: the local runner per step, CloudWatch emission during training, CLI start-up.

    python benchmarks/overheads.py [--repeats 5] [--out benchmarks/results/overheads.json]

Prints a table and writes JSON. Targets: emission-on / emission-off training time <= 1.03, `regula --help` <= 0.5 s.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pipelines.local.moto_server import MotoServer  # noqa: E402
from pipelines.local.run import run_local  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import results_file  # noqa: E402  (benchmarks/, the script's own folder, is on the path)
from synthetic import write_splits  # noqa: E402
from training import train_command  # noqa: E402

LOOP = re.compile(r"stopped after (\d+) epochs in ([0-9.]+)s")


def runner_overhead() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        report = run_local(runs_dir=Path(tmp), echo=lambda _: None)
    steps = [s for s in report["steps"] if s["type"] in ("Processing", "Training")]
    per_step = [s["seconds"] - s.get("process_seconds", 0.0) for s in steps]
    return {
        "pipeline_seconds": report["seconds"],
        "job_steps": len(steps),
        "job_process_seconds": round(sum(s.get("process_seconds", 0.0) for s in steps), 3),
        "runner_overhead_per_step_seconds": round(statistics.mean(per_step), 3),
        "runner_overhead_max_step_seconds": round(max(per_step), 3),
        "decision": report["decision"],
    }


def train_seconds(splits: Path, model_dir: Path, env: dict) -> tuple[float, float]:
    """(training loop seconds, whole process seconds) for a fixed number of epochs."""
    started = time.perf_counter()
    out = subprocess.run(
        train_command(splits, model_dir, max_epochs=40, patience=1000, pipeline_name="bench"),
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
    )
    total = time.perf_counter() - started
    return float(LOOP.search(out.stdout).group(2)), total


def emission_overhead(repeats: int) -> dict:
    server = MotoServer().start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            splits = Path(tmp) / "splits"
            write_splits(splits, rows=20_000)
            on_env = {**server.env("us-east-1"), "REGULA_METRICS": "on"}
            off_env = {"REGULA_METRICS": "off"}
            on, off = [], []
            train_seconds(splits, Path(tmp) / "warm", off_env)
            for i in range(repeats):  # alternate, so drift in machine load hits both sides
                off.append(train_seconds(splits, Path(tmp) / f"off{i}", off_env))
                on.append(train_seconds(splits, Path(tmp) / f"on{i}", on_env))
    finally:
        server.stop()
    loop_on, loop_off = statistics.median(x[0] for x in on), statistics.median(x[0] for x in off)
    proc_on, proc_off = statistics.median(x[1] for x in on), statistics.median(x[1] for x in off)
    return {
        "repeats": repeats,
        "loop_seconds_on": round(loop_on, 3),
        "loop_seconds_off": round(loop_off, 3),
        "loop_ratio": round(loop_on / loop_off, 3),
        "process_seconds_on": round(proc_on, 3),
        "process_seconds_off": round(proc_off, 3),
        "process_ratio": round(proc_on / proc_off, 3),
        "target_ratio": 1.03,
    }


def cli_startup(repeats: int) -> dict:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pipelines.cli", "--help"], check=True, capture_output=True, cwd=REPO)
        times.append(time.perf_counter() - started)
    return {"repeats": repeats, "median_seconds": round(statistics.median(times), 3), "target_seconds": 0.5}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "overheads.json"))
    args = parser.parse_args()

    results = {
        "runner": runner_overhead(),
        "cloudwatch_emission": emission_overhead(args.repeats),
        "cli_help": cli_startup(10),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    results_file.write(args.out, results)

    r, e, c = results["runner"], results["cloudwatch_emission"], results["cli_help"]
    print(f"{'measure':<48} {'value':>10}  target")
    print(f"{'local pipeline run, wall (s)':<48} {r['pipeline_seconds']:>10.2f}  < 60")
    print(f"{'  of which job processes (s)':<48} {r['job_process_seconds']:>10.2f}")
    print(f"{'  runner overhead per job step (s)':<48} {r['runner_overhead_per_step_seconds']:>10.3f}")
    print(f"{'training loop, emission on / off':<48} {e['loop_ratio']:>10.3f}  <= 1.03")
    print(f"{'training process, emission on / off':<48} {e['process_ratio']:>10.3f}")
    print(f"{'regula --help, median (s)':<48} {c['median_seconds']:>10.3f}  <= 0.5")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
