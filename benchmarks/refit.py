"""Refitting on train + validation: does the round the ladder accepts score better on test once it is retrained on
the validation rows too, for as many epochs as it trained? A measurement, not yet a pipeline step.

The suite's baselines are refit on train + validation with the strength validation chose (benchmarks/README.md),
so they train on 80% of the rows while Regula's model trains on 60%. This measures what that costs Regula. For
each table (by default the suite's tuning tables and the bundled demo, as train_options.py picks them) and split
seed:

- preprocess with that seed;
- round 1 at the defaults (train.py), scored by evaluate.py;
- the same options on the training and validation rows together. The transform is still the one fitted on the
  training rows. Training runs for the first fit's best epoch, with early stopping off. evaluate.py scores it on the
  same test rows; its validation figures are no longer held out, so only test is compared.

Recorded per run: test quality of both, the epochs, and the seconds. Per table: the mean test difference in points
and its spread across split seeds. Tuning tables' test rows may be looked at (the protocol); a decision would be
made on them, never on the report tables.

    python benchmarks/refit.py [--tables demo,wine,...] [--split-seeds 1,2] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
import results_file  # noqa: E402  (benchmarks/, the script's own folder, is on the path)
from regularizer_effect import run  # noqa: E402
from train_options import TUNING, splits_of  # noqa: E402
from training import pack, train_command  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
STEPS = REPO / "steps"


def combined(splits: Path, into: Path) -> Path:
    """A copy of `splits` whose train/ holds the training and validation rows (the text block too)."""
    shutil.copytree(splits, into)
    train, validation = into / "train", into / "validation"
    tables = [pq.read_table(train / "train.parquet"), pq.read_table(validation / "validation.parquet")]
    pq.write_table(pa.concat_tables(tables), train / "train.parquet")
    if (train / "train.text.npz").exists():
        blocks = [np.load(train / "train.text.npz"), np.load(validation / "validation.text.npz")]
        first, second = blocks
        offsets = np.r_[first["offsets"][:-1], second["offsets"] + first["offsets"][-1]]
        np.savez(
            train / "train.text.npz",
            offsets=offsets.astype(np.int64),
            ids=np.r_[first["ids"], second["ids"]].astype(np.int32),
            weights=np.r_[first["weights"], second["weights"]].astype(np.float32),
        )
    return into


def evaluate(model: Path, splits: Path) -> dict:
    out = model.with_name(model.name + "-eval")
    run([sys.executable, str(STEPS / "evaluate.py"), "--model-dir", str(pack(model)), "--data-dir", str(splits),
         "--output-dir", str(out), "--gap-reference", "none"])  # fmt: skip
    return json.loads((out / "evaluation.json").read_text())


def one(table: str, split_seed: int, tmp: Path) -> dict:
    splits = splits_of(table, tmp / "p", split_seed)
    started = time.perf_counter()
    run(train_command(splits, tmp / "first", seed=0))
    first_seconds = time.perf_counter() - started
    first = evaluate(tmp / "first", splits)
    both = combined(splits, tmp / "both")
    epochs = max(int(first["best_epoch"]), 1)
    started = time.perf_counter()
    run(train_command(both, tmp / "refit", seed=0, max_epochs=epochs, patience=100_000, patience_steps=10**9,
                      min_steps=0))  # fmt: skip
    refit_seconds = time.perf_counter() - started
    refit = evaluate(tmp / "refit", splits)
    return {
        "split_seed": split_seed,
        "metric": first["quality"]["metric"],
        "first": {"validation": first["quality"]["validation"], "test": first["quality"]["test"],
                  "epochs": first["epochs"], "best_epoch": first["best_epoch"], "seconds": round(first_seconds, 1)},
        "refit": {"test": refit["quality"]["test"], "epochs": refit["epochs"], "seconds": round(refit_seconds, 1)},
        "test_points": round(100 * (refit["quality"]["test"] - first["quality"]["test"]), 2),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", default=",".join(TUNING))
    parser.add_argument("--split-seeds", default="1,2")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "refit_tuning.json")
    args = parser.parse_args()
    tables, seeds = args.tables.split(","), [int(s) for s in args.split_seeds.split(",")]

    def job(pair):
        table, seed = pair
        with tempfile.TemporaryDirectory() as tmp:
            result = one(table, seed, Path(tmp))
        print(f"{table:<24} seed {seed}: test {result['first']['test']:.4f} -> {result['refit']['test']:.4f} "
              f"({result['test_points']:+.2f} points)", flush=True)  # fmt: skip
        return table, result

    with ThreadPoolExecutor(args.jobs) as pool:
        done = list(pool.map(job, [(t, s) for t in tables for s in seeds]))
    results = {}
    for table, result in done:
        results.setdefault(table, {"runs": []})["runs"].append(result)
    for entry in results.values():
        points = [r["test_points"] for r in entry["runs"]]
        entry["mean_test_points"] = round(float(np.mean(points)), 2)
        entry["spread"] = round(float(np.std(points)), 2)
    means = [e["mean_test_points"] for e in results.values()]
    summary = {
        "tables": len(results),
        "mean_test_points": round(float(np.mean(means)), 2),
        "ahead": sum(e["mean_test_points"] > e["spread"] for e in results.values()),
        "behind": sum(e["mean_test_points"] < -e["spread"] for e in results.values()),
    }
    print(json.dumps(summary))
    results_file.write(args.out, {"tables": results, "summary": summary, "split_seeds": seeds})


if __name__ == "__main__":
    main()
