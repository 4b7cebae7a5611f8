"""Two local pipelines at once on shared cores: the thread policy against torch's default threads.

Runs the bundled demo (`regula run --local`) alone, then two at the same time, first with Regula's thread policy
(steps/contract.py: one torch thread for small models, the local runner gives each job its share of the CPUs), then
with torch's default (one intra-op thread per core, forced with REGULA_TORCH_THREADS). Reported: wall seconds of
the whole command alone, of the slower of two concurrent runs, and their ratio.

    python benchmarks/concurrent_runs.py [--out benchmarks/results/concurrent_runs.json]

Target: two at once take at most 1.3x one alone.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import results_file  # noqa: E402  (benchmarks/, the script's own folder, is on the path)

REPO = Path(__file__).resolve().parent.parent


def start(runs_dir: Path, env: dict) -> subprocess.Popen:
    command = [sys.executable, "-m", "pipelines.cli", "run", "--local", "--runs-dir", str(runs_dir)]
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def timed(count: int, env: dict, root: Path) -> float:
    """Wall seconds until the last of `count` runs started together has finished."""
    started = time.perf_counter()
    runs = [start(root / f"runs{i}", env) for i in range(count)]
    for run in runs:
        _, errors = run.communicate()
        if run.returncode != 0:
            raise SystemExit(f"a run failed: {errors.strip()[-500:]}")
    return round(time.perf_counter() - started, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "concurrent_runs.json"))
    args = parser.parse_args()
    base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    base["REGULA_METRICS"] = "off"
    settings = {
        "thread policy": base,
        "torch default threads": {**base, "REGULA_TORCH_THREADS": str(os.cpu_count() or 1)},
    }
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, env in settings.items():
            alone = timed(1, env, Path(tmp) / f"{len(results)}-alone")
            together = timed(2, env, Path(tmp) / f"{len(results)}-together")
            results[name] = {"alone_s": alone, "two_at_once_s": together, "ratio": round(together / alone, 3)}
            print(f"{name}: alone {alone:.1f} s, two at once {together:.1f} s, ratio {together / alone:.2f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    results_file.write(args.out, {"cpus": os.cpu_count(), "results": results})
    print(f"target: ratio <= 1.3; wrote {args.out}")


if __name__ == "__main__":
    main()
