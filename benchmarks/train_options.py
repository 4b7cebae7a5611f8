"""train.py's options against each other on the real-tables suite: how a default is chosen, and what it costs.

For each table of the real-tables suite and the bundled demo (digits, 300 training rows, as `regula run --local`
splits it): preprocess once, then train.py with each variant's options (the first variant is the reference), a
few seeds each, and score every model with steps/evaluate.py. Reported per table and variant: the mean test metric
(the table's quality metric: balanced accuracy or R2), its difference from the reference in points and, for
classification, about how many test rows that is, and the mean epochs until early stopping.

    python benchmarks/train_options.py --variants '{"base": {}, "dropout 0.4": {"dropout": 0.4}}'
        [--tables demo,wine,...] [--seeds 3] [--out FILE.json]

benchmarks/weight_average.py is one such comparison, kept with its results.
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
import results_file  # noqa: E402  (benchmarks/, the script's own folder, is on the path)
from regularizer_effect import prepare, run  # noqa: E402
from training import pack, train_command  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
STEPS = REPO / "steps"
DEMO_TRAIN_ROWS = 300  # the bundled demo's MaxTrainRows (pipelines/local.py)
TABLES = ["demo", *real_tables.TABLES]


def splits_of(table: str, root: Path) -> Path:
    """The table's splits, as the pipeline's Preprocess writes them (the demo's with its 300 training rows)."""
    if table == "demo":
        return prepare(load_digits(as_frame=True).frame, "target", root, "--max-train-rows", str(DEMO_TRAIN_ROWS))
    return prepare(*real_tables.TABLES[table](), root)


def measure(splits: Path, model: Path, seed: int, options: dict) -> dict:
    run(train_command(splits, model, seed=seed, **options))
    out = model.with_name(model.name + "-eval")
    run([sys.executable, str(STEPS / "evaluate.py"), "--model-dir", str(pack(model)), "--data-dir", str(splits),
         "--output-dir", str(out)])  # fmt: skip
    report = json.loads((out / "evaluation.json").read_text())
    schema = json.loads((splits / "train" / "schema.json").read_text())
    classification = schema["problem_type"] == "classification"
    return {"test": report["quality"]["test"], "epochs": report["epochs"], "test_rows": schema["rows"]["test"],
            "classification": classification}  # fmt: skip


def compare(tables: list[str], variants: dict[str, dict], seeds: int) -> dict:
    """Every variant (name -> train.py options) on every table, `seeds` seeds each; the first is the reference."""
    names = list(variants)
    if not names or any("seed" in options for options in variants.values()):
        raise SystemExit("--variants: give at least one variant, none setting seed (--seeds sets them)")
    results = {}
    print(f"{'table':<22}{'variant':<24}{'test':>8}{'points':>8}{'test rows':>11}{'epochs':>8}")
    for table in tables:
        with tempfile.TemporaryDirectory() as tmp:
            splits = splits_of(table, Path(tmp))
            jobs = [
                (splits, Path(tmp) / f"v{i}-s{s}", s, variants[name])
                for i, name in enumerate(names)
                for s in range(seeds)
            ]
            with ThreadPoolExecutor(os.cpu_count() or 1) as pool:  # one torch thread each
                measured = list(pool.map(lambda job: measure(*job), jobs))
        runs = {n: measured[i * seeds : (i + 1) * seeds] for i, n in enumerate(names)}
        mean = {n: float(np.mean([m["test"] for m in runs[n]])) for n in names}
        epochs = {n: float(np.mean([m["epochs"] for m in runs[n]])) for n in names}
        points = {n: round(100 * (mean[n] - mean[names[0]]), 2) for n in names}
        first = runs[names[0]][0]
        for n in names:
            rows = f"{points[n] / 100 * first['test_rows']:+.1f}" if first["classification"] else "-"
            print(f"{table:<22}{n:<24}{mean[n]:>8.4f}{points[n]:>+8.2f}{rows:>11}{epochs[n]:>8.0f}", flush=True)
        results[table] = {"runs": runs, "mean_test": mean, "points": points, "mean_epochs": epochs}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", required=True, help="JSON: variant name -> train.py options; first: reference")
    parser.add_argument("--tables", default=",".join(TABLES))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "train_options.json"))
    args = parser.parse_args()
    variants = json.loads(args.variants)
    results = compare(args.tables.split(","), variants, args.seeds)
    results_file.write(args.out, {"variants": variants, "seeds": args.seeds, "results": results})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
