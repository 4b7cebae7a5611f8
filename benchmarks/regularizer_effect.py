"""Which regularizer moves the generalization gap, on which tables: the measurement the ladder's schedule rests on.

For each table: preprocess once, train at the base strengths (steps/defaults.py), then raise one regularizer at a
time (dropout, L1, L2) by one and two ladder steps and evaluate every model with steps/evaluate.py. Reported per
table and regularizer: the relative gap and the validation / test quality (the table's quality metric) at each
strength, so one can read which knob closes the gap and what it costs in quality.

    python benchmarks/regularizer_effect.py [--tables digits_300,wine,...] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import real_tables  # noqa: E402
import results_file  # noqa: E402  (benchmarks/, the script's own folder, is on the path)
from training import pack, train_command  # noqa: E402

from steps import defaults as d  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
STEPS = REPO / "steps"
ENV = {**os.environ, "REGULA_METRICS": "off", "PYTHONPATH": str(REPO), "REGULA_TORCH_THREADS": "1"}
# one and two ladder steps up from the base, one regularizer at a time
STEPS_UP = {
    "dropout": [d.DROPOUT, 0.35, 0.6],
    "l1": [d.L1, d.L1 * 30, d.L1 * 1000],
    "l2": [d.L2, d.L2 * 30, d.L2 * 1000],
}
MAX_EPOCHS = 100


def digits_300() -> tuple[pd.DataFrame, str]:
    frame, target = real_tables.sklearn_table("digits")()
    return frame.sample(500, random_state=0), target  # 300 training rows: the bundled demo's size


def sparse_wide(n: int = 500, features: int = 1000, informative: int = 10) -> tuple[pd.DataFrame, str]:
    """Many columns, few of them informative: where L1 should matter."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((n, features))
    y = (x[:, :informative] @ rng.normal(0, 1, informative) + rng.normal(0, 1, n) > 0).astype(int)
    frame = pd.DataFrame(x.round(3), columns=[f"x{i:04d}" for i in range(features)])
    frame["label"] = np.where(y == 1, "yes", "no")
    return frame, "label"


def noisy_small(n: int = 300, features: int = 12) -> tuple[pd.DataFrame, str]:
    """Few rows, a weak signal: a gap that is mostly noise."""
    rng = np.random.default_rng(9)
    x = rng.standard_normal((n, features))
    y = (x[:, 0] + 0.5 * x[:, 1] + rng.normal(0, 1.5, n) > 0).astype(int)
    frame = pd.DataFrame(x.round(3), columns=[f"x{i}" for i in range(features)])
    frame["label"] = y.astype(bool)
    return frame, "label"


TABLES = {
    "digits_300": digits_300,
    "wine": real_tables.sklearn_table("wine"),
    "breast_cancer": real_tables.sklearn_table("breast_cancer"),
    "penguins": real_tables.penguins,
    "diabetes": real_tables.sklearn_table("diabetes", scaled=False),
    "synthetic_50_classes": lambda: real_tables.fifty_classes(n=3000),
    "sparse_wide": sparse_wide,
    "noisy_small": noisy_small,
}


def run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, env=ENV)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:2])} failed:\n{done.stderr[-2000:]}")


def prepare(frame: pd.DataFrame, target: str, root: Path, *options: str) -> Path:
    """The table's splits, as the pipeline's Preprocess writes them (`options`: more of preprocess.py's)."""
    frame.to_csv(root / "data.csv", index=False)
    run(
        [
            sys.executable,
            str(STEPS / "preprocess.py"),
            "--input",
            str(root / "data.csv"),
            "--output-dir",
            str(root / "splits"),
            "--target",
            target,
            *options,
        ]
    )
    return root / "splits"


def measure(splits: Path, work: Path, name: str, strength: dict) -> dict:
    model = work / name
    run(train_command(splits, model, round=1, max_epochs=MAX_EPOCHS, **strength))
    out = work / f"{name}-eval"
    run(
        [
            sys.executable,
            str(STEPS / "evaluate.py"),
            "--model-dir",
            str(pack(model)),
            "--data-dir",
            str(splits),
            "--output-dir",
            str(out),
        ]
    )
    report = json.loads((out / "evaluation.json").read_text())
    return {
        "gap": round(report["generalization_gap"]["relative"], 4),
        "validation": round(report["quality"]["validation"], 4),
        "test": round(report["quality"]["test"], 4),
        "epochs": report["epochs"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", default=",".join(TABLES))
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "regularizer_effect.json"))
    args = parser.parse_args()
    base = {"dropout": d.DROPOUT, "l1": d.L1, "l2": d.L2}
    results = {}
    for table in args.tables.split(","):
        frame, target = TABLES[table]()
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            splits = prepare(frame, target, work)
            row = {"base": measure(splits, work, "base", base)}
            for knob, values in STEPS_UP.items():
                row[knob] = [
                    {"value": value, **measure(splits, work, f"{knob}{i}", {**base, knob: value})}
                    for i, value in enumerate(values[1:], 1)
                ]
        results[table] = row
        b = row["base"]
        print(f"{table}: base gap {b['gap']:.3f} val {b['validation']:.3f} test {b['test']:.3f}", flush=True)
        for knob in STEPS_UP:
            cells = "  ".join(f"{m['value']:g}: gap {m['gap']:.3f} val {m['validation']:.3f}" for m in row[knob])
            print(f"    {knob:<8} {cells}", flush=True)
    results_file.write(args.out, {"max_epochs": MAX_EPOCHS, "results": results})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
