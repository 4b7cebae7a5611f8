"""What training checkpoints cost: a run without them, one at the default interval, one after every epoch.

    python benchmarks/checkpoints.py [--repeats 5] [--rows 500000] [--epochs 8]
                                     [--out benchmarks/results/checkpoints.json]

Two tables: the demo (digits, 300 training rows, as `regula run --local` trains it; 60 epochs) and a synthetic large
table (benchmarks/large_table.py's generator, `--rows` rows, `--epochs` epochs). On each, steps/train.py runs as a
separate process with one torch thread, the variants alternated so drift in the machine's load hits all of them:

- off: no checkpoint folder (what a run outside SageMaker does);
- default: a checkpoint folder, at most one checkpoint per CHECKPOINT_SECONDS (what the pipeline runs);
- every epoch: --checkpoint_seconds 0, which prices one checkpoint.

Reported: the training loop's seconds per epoch (median over repeats), the whole process, one checkpoint's write time
and size, and the fingerprint (sha256 of the splits and the code), which a run with a folder computes once at start.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
STEPS = REPO / "steps"
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import results_file  # noqa: E402  (benchmarks/, the script's own folder, is on the path)
from large_table import make_table, write_table  # noqa: E402
from training import train_command  # noqa: E402

from steps.checkpoint import code_digest  # noqa: E402
from steps.contract import file_sha256  # noqa: E402
from steps.defaults import CHECKPOINT_SECONDS  # noqa: E402

LOOP = re.compile(r"stopped after (\d+) epochs in ([0-9.]+)s")
WRITE = re.compile(r"train: checkpoint after epoch \d+ in ([0-9.]+)s")
VARIANTS = {"off": {"checkpoint_dir": ""}, "default": {}, "every epoch": {"checkpoint_seconds": 0}}
ENV = {**os.environ, "PYTHONPATH": str(REPO), "REGULA_METRICS": "off", "REGULA_TORCH_THREADS": "1"}


def preprocess(data: Path, splits: Path, *args: str) -> None:
    command = [sys.executable, str(STEPS / "preprocess.py"), "--input", str(data), "--output-dir", str(splits)]
    subprocess.run([*command, *args], check=True, capture_output=True, env=ENV)


def train(splits: Path, work: Path, variant: str, epochs: int) -> dict:
    folder = work / "checkpoints"
    shutil.rmtree(folder, ignore_errors=True)  # a fresh run each time: never resume
    shutil.rmtree(work / "model", ignore_errors=True)
    options = {"max_epochs": epochs, "patience": 100000, "checkpoint_dir": str(folder), **VARIANTS[variant]}
    command = train_command(splits, work / "model", **options)
    started = time.perf_counter()
    out = subprocess.run(command, check=True, capture_output=True, text=True, env=ENV).stdout
    process = time.perf_counter() - started
    ran, loop = LOOP.search(out).groups()
    writes = [float(s) for s in WRITE.findall(out)]
    size = (folder / "checkpoint.pt").stat().st_size if (folder / "checkpoint.pt").exists() else 0
    return {"epoch": float(loop) / int(ran), "process": process, "writes": writes, "bytes": size}


def measure(name: str, splits: Path, work: Path, epochs: int, repeats: int) -> dict:
    runs = {v: [] for v in VARIANTS}
    train(splits, work, "off", 2)  # warm the file cache
    for _ in range(repeats):
        for variant in VARIANTS:
            runs[variant].append(train(splits, work, variant, epochs))
    started = time.perf_counter()
    for split in ("train", "validation"):
        file_sha256(splits / split / f"{split}.parquet")
    file_sha256(splits / "train" / "schema.json")
    code_digest(STEPS.glob("*.py"))
    fingerprint = time.perf_counter() - started
    result = {"table": name, "epochs": epochs, "repeats": repeats}
    for variant, values in runs.items():
        result[variant] = {
            "epoch_seconds": round(statistics.median(r["epoch"] for r in values), 4),
            "process_seconds": round(statistics.median(r["process"] for r in values), 2),
            "checkpoints_per_run": statistics.median(len(r["writes"]) for r in values),
        }
    writes = [w for r in runs["every epoch"] for w in r["writes"]]
    result["checkpoint_write_seconds"] = round(statistics.median(writes), 4)
    result["checkpoint_bytes"] = runs["every epoch"][0]["bytes"]
    result["fingerprint_seconds"] = round(fingerprint, 3)
    result["split_bytes"] = sum((splits / s / f"{s}.parquet").stat().st_size for s in ("train", "validation"))
    off = result["off"]["epoch_seconds"]
    result["default_over_off"] = round(result["default"]["epoch_seconds"] / off, 3)
    result["every_epoch_over_off"] = round(result["every epoch"]["epoch_seconds"] / off, 3)
    # at the default interval a long run writes one checkpoint per max(interval, epoch): this share of its time
    result["default_share_long_run"] = round(result["checkpoint_write_seconds"] / max(CHECKPOINT_SECONDS, off), 5)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rows", type=int, default=500_000, help="of the large table; 0: the demo alone")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "checkpoints.json"))
    args = parser.parse_args()

    results = []
    with tempfile.TemporaryDirectory(prefix="regula-checkpoints-") as tmp:
        work = Path(tmp)
        from sklearn.datasets import load_digits

        load_digits(as_frame=True).frame.to_csv(work / "digits.csv", index=False)
        preprocess(work / "digits.csv", work / "digits", "--target", "target", "--max-train-rows", "300")
        results.append(measure("digits (demo, 300 training rows)", work / "digits", work, 60, args.repeats))
        print(json.dumps(results[-1]), flush=True)

        if args.rows:
            table, _ = make_table(args.rows)
            data = write_table(table, work, "parquet")
            del table
            preprocess(data, work / "large", "--target", "label")
            results.append(measure(f"synthetic, {args.rows} rows", work / "large", work, args.epochs, args.repeats))
            print(json.dumps(results[-1]), flush=True)

    output = {"results": results, "checkpoint_seconds": CHECKPOINT_SECONDS, "cpus": os.cpu_count()}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    results_file.write(args.out, output)
    print(f"\n{'table':<36}{'s/epoch off':>12}{'default':>9}{'every':>9}{'one ckpt s':>11}{'MB':>6}{'fpr s':>7}")
    for r in results:
        print(
            f"{r['table']:<36}{r['off']['epoch_seconds']:>12.4f}{r['default']['epoch_seconds']:>9.4f}"
            f"{r['every epoch']['epoch_seconds']:>9.4f}{r['checkpoint_write_seconds']:>11.4f}"
            f"{r['checkpoint_bytes'] / 2**20:>6.1f}{r['fingerprint_seconds']:>7.3f}"
        )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
