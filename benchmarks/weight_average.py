"""The averaged weights against the raw ones: what defaults.AVERAGE_DECAY is measured on.

For each table of the real-tables suite and the bundled demo (digits, 300 training rows, as `regula run --local`
splits it): preprocess once, then train.py at its defaults with `--average_decay 0` (the raw weights) and at the
default decay, three seeds each, and score every model with steps/evaluate.py. Reported per table: the mean test
metric (the table's quality metric: balanced accuracy or R2) of each, their difference in points and, for
classification, about how many test rows that is, and the epochs until early stopping.

    python benchmarks/weight_average.py [--tables demo,wine,...] [--seeds 3] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

sys.path.insert(0, str(Path(__file__).resolve().parent))
import real_tables  # noqa: E402
from regularizer_effect import prepare, run  # noqa: E402
from training import pack, train_command  # noqa: E402

from steps import defaults as d  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
STEPS = REPO / "steps"
DEMO_TRAIN_ROWS = 300  # the bundled demo's MaxTrainRows (pipelines/commands_local.py)


def splits_of(table: str, root: Path) -> Path:
    """The table's splits, as the pipeline's Preprocess writes them (the demo's with its 300 training rows)."""
    if table == "demo":
        return prepare(load_digits(as_frame=True).frame, "target", root, "--max-train-rows", str(DEMO_TRAIN_ROWS))
    return prepare(*real_tables.TABLES[table](), root)


def measure(splits: Path, model: Path, seed: int, decay: float) -> dict:
    run(train_command(splits, model, seed=seed, average_decay=decay))
    out = model.with_name(model.name + "-eval")
    run([sys.executable, str(STEPS / "evaluate.py"), "--model-dir", str(pack(model)), "--data-dir", str(splits),
         "--output-dir", str(out)])  # fmt: skip
    report = json.loads((out / "evaluation.json").read_text())
    schema = json.loads((splits / "train" / "schema.json").read_text())
    classification = schema["problem_type"] == "classification"
    return {"test": report["quality"]["test"], "epochs": report["epochs"], "test_rows": schema["rows"]["test"],
            "classification": classification}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", default=",".join(["demo", *real_tables.TABLES]))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "weight_average.json"))
    args = parser.parse_args()
    variants = {"raw": 0.0, "averaged": d.AVERAGE_DECAY}
    results = {}
    print(f"{'table':<22}{'raw':>8}{'averaged':>10}{'points':>8}{'test rows':>11}{'epochs raw/avg':>16}")
    for table in args.tables.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            splits = splits_of(table, Path(tmp))
            jobs = [(splits, Path(tmp) / f"{n}{s}", s, variants[n]) for n in variants for s in range(args.seeds)]
            with ThreadPoolExecutor(os.cpu_count() or 1) as pool:  # one torch thread each
                measured = list(pool.map(lambda job: measure(*job), jobs))
        pairs = list(zip(jobs, measured, strict=True))
        row = {name: [m for job, m in pairs if job[3] == variants[name]] for name in variants}
        mean = {name: float(np.mean([m["test"] for m in row[name]])) for name in variants}
        epochs = {name: float(np.mean([m["epochs"] for m in row[name]])) for name in variants}
        points = 100 * (mean["averaged"] - mean["raw"])
        rows = row["raw"][0]["test_rows"] if row["raw"][0]["classification"] else None
        results[table] = {"runs": row, "mean_test": mean, "points": round(points, 2), "mean_epochs": epochs}
        print(
            f"{table:<22}{mean['raw']:>8.4f}{mean['averaged']:>10.4f}{points:>+8.2f}"
            f"{f'{points / 100 * rows:+.1f}' if rows else '-':>11}"
            f"{epochs['raw']:>9.0f} / {epochs['averaged']:.0f}",
            flush=True,
        )
    out = {"decay": d.AVERAGE_DECAY, "seeds": args.seeds, "results": results}
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
