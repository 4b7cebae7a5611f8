"""train.py's options against each other, decided on validation over several splits: how a default is chosen.

For each table (by default the real-tables suite's tuning tables, benchmarks/real_tables.py, and the bundled demo:
digits, 300 training rows, as `regula run --local` splits it) and each split seed: preprocess with that seed (a
different train/validation/test split each), then train.py with each variant's options (the first variant is the
reference) and score every model with steps/evaluate.py. A variant's "preprocess" options (preprocess.py's, e.g.
{"target-transform": "none"}) give it splits of its own, made with the same seed (the same rows). Recorded per run:
the validation, test and training quality metric (balanced accuracy or R2), the epochs and optimizer steps, and for
regression the MAE (evaluation's: on the original scale). Per table and variant: the mean over the splits and their
spread (standard deviation across splits), and the difference from the reference in points, on validation and on
test (the MAE's in %). Tables: real_tables' suite, and by name skewed_tables' and "large" (large_table.py's table,
200,000 rows), with each run's training wall time (the variants of a seed run side by side, under the same load).

The decision is made on validation only (benchmarks/README.md, the protocol): a variant replaces the reference when
its mean validation difference over the tables is positive and it is ahead on more tables than it is behind, by
more than the spread of the difference across splits; otherwise the reference stays. Test figures are reported for
splits no choice looked at (split seed 42, the product's, is the one earlier choices looked at: not a default here).

    python benchmarks/train_options.py --variants '{"base": {}, "dropout 0.4": {"dropout": 0.4}}'
        [--tables demo,wine,...] [--split-seeds 1,2,3] [--seeds 1] [--out FILE.json]
    python benchmarks/train_options.py --tables fair_affairs,lognormal_900 --variants
        '{"raw": {"preprocess": {"target-transform": "none"}}, "log1p": {"preprocess": {"target-transform": "log1p"}}}'

benchmarks/weight_average.py is one such comparison.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

sys.path.insert(0, str(Path(__file__).resolve().parent))
import large_table  # noqa: E402
import real_tables  # noqa: E402
import results_file  # noqa: E402  (benchmarks/, the script's own folder, is on the path)
import skewed_tables  # noqa: E402
from regularizer_effect import prepare, run  # noqa: E402
from training import pack, train_command  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
STEPS = REPO / "steps"
DEMO_TRAIN_ROWS = 300  # the bundled demo's MaxTrainRows (pipelines/local/run.py)
TABLES = ["demo", *real_tables.TABLES]  # any of these with --tables; skewed_tables' and "large" by name too
TUNING = ["demo", *real_tables.TUNING]  # the default: choices look only at the suite's tuning tables
LARGE_ROWS = 200_000  # "large": large_table.py's table at this size, where an epoch is 2**18 rows or fewer


def large() -> tuple:
    return large_table.make_table(LARGE_ROWS)[0].to_pandas(), "label"


LOADERS = {**real_tables.TABLES, **skewed_tables.TABLES, "large": large}


def splits_of(table: str, root: Path, split_seed: int, preprocess: dict | None = None) -> Path:
    """The table's splits with `split_seed`, as the pipeline's Preprocess writes them (the demo: 300 training rows),
    with a variant's `preprocess` options (preprocess.py's, `--key value` each)."""
    root.mkdir(parents=True, exist_ok=True)
    options = ["--seed", str(split_seed), *skewed_tables.OPTIONS.get(table, ())]
    for key, value in (preprocess or {}).items():
        options += [f"--{key}", str(value)]
    if table == "demo":
        digits = load_digits(as_frame=True).frame
        return prepare(digits, "target", root, "--max-train-rows", str(DEMO_TRAIN_ROWS), *options)
    frame, target = LOADERS[table]()
    if table in real_tables.TABLES:  # the suite's cap (skewed_tables' and "large" are sized as they are)
        frame = real_tables.capped(frame, target)[0]
    return prepare(frame, target, root, *options)


def measure(splits: Path, model: Path, seed: int, options: dict) -> dict:
    started = time.perf_counter()
    run(train_command(splits, model, seed=seed, **options))
    seconds = time.perf_counter() - started
    out = model.with_name(model.name + "-eval")
    run([sys.executable, str(STEPS / "evaluate.py"), "--model-dir", str(pack(model)), "--data-dir", str(splits),
         "--output-dir", str(out)])  # fmt: skip
    report = json.loads((out / "evaluation.json").read_text())
    schema = json.loads((splits / "train" / "schema.json").read_text())
    training = json.loads((model / "config.json").read_text())["training"]
    measured = {"validation": report["quality"]["validation"], "test": report["quality"]["test"],
                "train": report["metrics"]["train"][report["quality"]["metric"]],
                "epochs": report["epochs"], "best_epoch": report["best_epoch"], "test_rows": schema["rows"]["test"],
                "train_seconds": round(seconds, 2),
                "steps": report["epochs"] * math.ceil(training["epoch_rows"] / training["batch_size"]),
                "classification": schema["problem_type"] == "classification"}  # fmt: skip
    if not measured["classification"]:  # on the original scale, whatever scale the network predicted on
        measured |= {f"{split}_mae": report["metrics"][split]["mae"] for split in ("validation", "test")}
        measured["target_scale"] = schema.get("target_scale", {}).get("kind", "none")
    return measured


def summarize(runs: dict[str, list[dict]], names: list[str]) -> dict:
    """Means over the runs, the spread across splits, and the differences from the reference (names[0])."""

    def mean(name, key):
        return float(np.mean([r[key] for r in runs[name]]))

    def difference(name, key):  # per split, against the reference's model on the same split
        return [100 * (a[key] - b[key]) for a, b in zip(runs[name], runs[names[0]], strict=True)]

    def relative(name, key, of=np.mean):  # per split, in % of the reference's value on the same split
        pairs = zip(runs[name], runs[names[0]], strict=True)
        return round(float(of([100 * (a[key] / b[key] - 1) for a, b in pairs])), 2)

    return {
        "mean_validation": {n: mean(n, "validation") for n in names},
        "spread_validation": {n: float(np.std([r["validation"] for r in runs[n]])) for n in names},
        "validation_points": {n: round(float(np.mean(difference(n, "validation"))), 2) for n in names},
        "validation_points_spread": {n: round(float(np.std(difference(n, "validation"))), 2) for n in names},
        "mean_test": {n: mean(n, "test") for n in names},
        "points": {n: round(float(np.mean(difference(n, "test"))), 2) for n in names},
        "mean_epochs": {n: mean(n, "epochs") for n in names},
        **(
            {
                "mean_validation_mae": {n: mean(n, "validation_mae") for n in names},
                "validation_mae_change": {n: relative(n, "validation_mae") for n in names},
                "validation_mae_change_spread": {n: relative(n, "validation_mae", np.std) for n in names},
                "mean_test_mae": {n: mean(n, "test_mae") for n in names},
            }
            if "validation_mae" in runs[names[0]][0]
            else {}
        ),
    }


def decide(results: dict, names: list[str]) -> dict:
    """The protocol's rule, on validation only: which variant to keep, and why."""
    verdicts = {}
    for n in names[1:]:
        points = [t["validation_points"][n] for t in results.values()]
        spread = [t["validation_points_spread"][n] for t in results.values()]
        ahead = sum(p > s for p, s in zip(points, spread, strict=True))
        behind = sum(p < -s for p, s in zip(points, spread, strict=True))
        verdicts[n] = {"mean_validation_points": round(float(np.mean(points)), 2), "ahead": ahead, "behind": behind}
    better = [n for n, v in verdicts.items() if v["mean_validation_points"] > 0 and v["ahead"] > v["behind"]]
    keep = max(better, key=lambda n: verdicts[n]["mean_validation_points"]) if better else names[0]
    return {"keep": keep, "variants": verdicts, "tables": len(results)}


def compare(tables: list[str], variants: dict[str, dict], split_seeds: list[int], seeds: int = 1) -> dict:
    """Every variant (name -> train.py options) on every table, on each split seed, `seeds` initialisation seeds
    each; the first variant is the reference."""
    names = list(variants)
    if not names or any("seed" in options for options in variants.values()):
        raise SystemExit("--variants: give at least one variant, none setting seed (--seeds sets them)")
    # a variant's "preprocess" options make splits of their own; the variants without share one set
    preprocessing = {n: variants[n].get("preprocess", {}) for n in names}
    training = {n: {k: v for k, v in variants[n].items() if k != "preprocess"} for n in names}
    kinds = list({json.dumps(p, sort_keys=True): p for p in preprocessing.values()}.values())
    results = {}
    print(f"{'table':<22}{'variant':<24}{'validation':>11}{'sd':>7}{'points':>8}{'test':>8}{'points':>8}{'epochs':>8}")
    for table in tables:
        runs = {n: [] for n in names}
        for split_seed in split_seeds:
            with tempfile.TemporaryDirectory() as tmp:
                splits = [splits_of(table, Path(tmp) / f"p{i}", split_seed, p) for i, p in enumerate(kinds)]
                split_of = {n: splits[kinds.index(preprocessing[n])] for n in names}
                jobs = [(n, s) for s in range(seeds) for n in names]  # the variants side by side: the same load
                models = [(split_of[n], Path(tmp) / f"{n}-{seed}", seed, training[n]) for n, seed in jobs]
                with ThreadPoolExecutor(os.cpu_count() or 1) as pool:  # one torch thread each
                    measured = list(pool.map(lambda job: measure(*job), models))
            for (n, s), m in zip(jobs, measured, strict=True):
                runs[n].append({**m, "split_seed": split_seed, "seed": s})
        results[table] = {"runs": runs, **summarize(runs, names)}
        t = results[table]
        for n in names:
            print(
                f"{table:<22}{n:<24}{t['mean_validation'][n]:>11.4f}{t['spread_validation'][n]:>7.4f}"
                f"{t['validation_points'][n]:>+8.2f}{t['mean_test'][n]:>8.4f}{t['points'][n]:>+8.2f}"
                f"{t['mean_epochs'][n]:>8.0f}",
                flush=True,
            )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", required=True, help="JSON: variant name -> train.py options; first: reference")
    parser.add_argument("--tables", default=",".join(TUNING), help=f"default: {','.join(TUNING)}; any of {TABLES}")
    parser.add_argument("--split-seeds", default="1,2,3", help="preprocess.py --seed values: one split each")
    parser.add_argument("--seeds", type=int, default=1, help="initialisation seeds per split")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "train_options.json"))
    args = parser.parse_args()
    variants = json.loads(args.variants)
    split_seeds = [int(s) for s in args.split_seeds.split(",")]
    results = compare(args.tables.split(","), variants, split_seeds, args.seeds)
    decision = decide(results, list(variants))
    print(json.dumps(decision))
    out = {"variants": variants, "split_seeds": split_seeds, "seeds": args.seeds, "decision": decision}
    results_file.write(args.out, {**out, "results": results})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
