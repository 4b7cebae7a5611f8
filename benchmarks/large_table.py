"""Regula's step scripts on a large table: wall time and peak memory per step, and a gradient-boosting baseline.

    python benchmarks/large_table.py [--rows 2000000] [--epochs N] [--format csv|parquet] [--no-hgb]
                                     [--dropout P] [--l1 X] [--l2 X]
                                     [--out benchmarks/results/large_table.json] [--workdir DIR]

Generates (seeded, not timed) a synthetic binary-classification table: `--rows` rows x 20 feature columns (16 numeric,
three of them ~5% missing and one heavy-tailed; 4 text categories with ~5, ~20, ~100 and ~1000 values) and a `label`
that depends on several of them plus noise (the Bayes-optimal accuracy is printed: about 0.87). Then runs
steps/preprocess.py, steps/train.py (every option at its default: the batch size chosen from the row count,
early stopping; `--epochs` caps the epochs; `--dropout`, `--l1`, `--l2` set train.py's regularization, e.g. the
base level 10 of docs/ladder.md) and steps/evaluate.py as separate processes, exactly as the pipeline
does, each under a small wrapper that reports its own peak resident memory (ru_maxrss of the child) and its CPU time;
wall time is taken around the wrapper.

For comparison it fits scikit-learn's HistGradientBoostingClassifier in this run, as real_tables.py's fair
baseline (real_tables.boosted_model): the raw table's 20 columns, native categorical support (categories as ordinal
codes; c3's 1,000 values beyond the 250 most frequent grouped), missing values as HGB handles them; trained on Regula's
own training rows (steps/preprocess.split at its defaults, checked against the labels of the split files preprocessing
wrote) with early stopping on the validation rows, its learning rate chosen on their accuracy from
real_tables.HGB_RATES; scored once on the test rows.

Targets at 2,000,000 rows: the peak resident memory of any one step process <= 1536 MB (1.5 GB); the training
step, at its defaults, done in <= 120 s wall on two cores.
Prints a table and writes JSON (default benchmarks/results/large_table.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
import results_file  # noqa: E402  (benchmarks/, the script's own folder, is on the path)

REPO = Path(__file__).resolve().parent.parent
STEPS = REPO / "steps"
TARGET_PEAK_MB = 1536
TARGET_TRAIN_SECONDS = 120
SEED = 0
REGULARIZATION = ("dropout", "l1", "l2")  # train.py's options, passed when given
NUMERIC = 16
CARDINALITIES = (5, 20, 100, 1000)
MISSING_COLUMNS = (3, 7, 11)  # ~5% NaN each
HEAVY_COLUMN = 5  # Student-t with 1.5 degrees of freedom: infinite variance

# Runs argv[2:] as a child and writes its peak resident memory (KiB on Linux) and CPU seconds to argv[1] as JSON.
WRAPPER = (
    "import json,resource,subprocess,sys\n"
    "r=subprocess.run(sys.argv[2:])\n"
    "u=resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "json.dump({'maxrss_kib':u.ru_maxrss,'cpu_s':u.ru_utime+u.ru_stime},open(sys.argv[1],'w'))\n"
    "sys.exit(r.returncode)\n"
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--epochs", type=int, help="train.py --max_epochs (default: train.py's, early stopping)")
    for name in REGULARIZATION:
        parser.add_argument(f"--{name}", type=float, help=f"train.py --{name} (default: train.py's)")
    parser.add_argument("--no-hgb", action="store_true", help="skip the gradient-boosting comparison")
    parser.add_argument("--format", choices=("csv", "parquet"), default="csv", help="of the input table")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "large_table.json")
    parser.add_argument("--workdir", type=Path, help="keep the table, splits and model here (default: a temp dir)")
    return parser.parse_args()


# -- the table ------------------------------------------------------------------------------------------------------


def make_table(rows: int):
    """(pyarrow table with columns x0..x15, c0..c3, label; Bayes-optimal accuracy of the label)."""
    import pyarrow as pa

    rng = np.random.default_rng(SEED)
    x = rng.standard_normal((rows, NUMERIC))
    x[:, 1] = rng.exponential(2.0, rows)  # skewed
    x[:, 2] = rng.uniform(-3, 3, rows)
    x[:, HEAVY_COLUMN] = rng.standard_t(1.5, rows)
    x[:, 9] = np.round(rng.gamma(2.0, 20.0, rows))  # whole numbers, like a count or an age
    x[:, 12] = 100 + 15 * rng.standard_normal(rows)  # offset and scaled
    codes = []
    for k in CARDINALITIES:  # Zipf-like: a few frequent categories, a long tail
        p = 1.0 / np.arange(1, k + 1) ** 0.8
        codes.append(rng.choice(k, size=rows, p=p / p.sum()))
    effects = [rng.normal(0, s, k) for k, s in zip(CARDINALITIES, (0.8, 0.6, 0.6, 0.5), strict=True)]

    logit = (
        1.2 * x[:, 0]
        - 0.9 * x[:, 1] / 2.0
        + 0.8 * np.sin(1.5 * x[:, 2])
        + 0.7 * x[:, 3] * x[:, 4]
        + 0.6 * np.tanh(x[:, HEAVY_COLUMN])
        + 0.5 * (x[:, 9] > 50)
        - 0.4 * (x[:, 12] - 100) / 15
        + sum(e[c] for e, c in zip(effects, codes, strict=True))
    )
    logit = 2.0 * (logit - logit.mean())
    probability = 1 / (1 + np.exp(-logit))
    label = (rng.random(rows) < probability).astype(np.int64)
    bayes = float(np.mean(np.maximum(probability, 1 - probability)))

    for j in MISSING_COLUMNS:  # missing after the label is drawn: the label depends on the true value
        x[rng.random(rows) < 0.05, j] = np.nan
    columns = {f"x{j}": pa.array(x[:, j], from_pandas=True) for j in range(NUMERIC)}
    for i, (k, c) in enumerate(zip(CARDINALITIES, codes, strict=True)):
        levels = np.array([f"c{i}_{v:04d}" for v in range(k)], dtype=object)
        columns[f"c{i}"] = pa.array(levels[c], type=pa.string())
    columns["label"] = pa.array(label)
    return pa.table(columns), bayes


def write_table(table, directory: Path, fmt: str) -> Path:
    if fmt == "parquet":
        import pyarrow.parquet as pq

        path = directory / "data.parquet"
        pq.write_table(table, path)
    else:
        import pyarrow.csv as pacsv

        path = directory / "data.csv"
        pacsv.write_csv(table, path, pacsv.WriteOptions(quoting_style="needed"))
    return path


# -- the steps ------------------------------------------------------------------------------------------------------


def run_step(name: str, argv: list[str], work: Path, env: dict) -> dict:
    """Run one step script under the peak-memory wrapper; its output goes to work/<name>.log."""
    usage = work / f"{name}.usage.json"
    log = work / f"{name}.log"
    command = [sys.executable, "-c", WRAPPER, str(usage), sys.executable, str(STEPS / f"{name}.py"), *argv]
    started = time.perf_counter()
    with open(log, "w") as handle:
        done = subprocess.run(command, cwd=REPO, env=env, stdout=handle, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - started
    text = log.read_text()
    if done.returncode != 0:
        print(text[-4000:], file=sys.stderr)
        print(f"FAILED ({done.returncode}): {' '.join(command[4:])}", file=sys.stderr)
        sys.exit(1)
    measured = json.loads(usage.read_text())
    return {
        "seconds": round(seconds, 2),
        "cpu_seconds": round(measured["cpu_s"], 2),
        "peak_rss_mb": round(measured["maxrss_kib"] / 1024, 1),
        "log_tail": text.strip().splitlines()[-3:],
    }


def pack(model_dir: Path, into: Path) -> None:
    into.mkdir(parents=True, exist_ok=True)
    with tarfile.open(into / "model.tar.gz", "w:gz") as tar:
        for item in sorted(model_dir.iterdir()):
            tar.add(item, arcname=item.name)


# -- the gradient-boosting comparison -------------------------------------------------------------------------------


def gradient_boosting(rows: int, splits: Path) -> dict:
    """HGB as real_tables.py's baseline on the raw columns and Regula's split: each learning rate of HGB_RATES with
    early stopping on the validation rows, the one with the best validation accuracy scored on the test rows."""
    import pyarrow.parquet as pq
    from real_tables import HGB_MAX_CATEGORIES, HGB_RATES, boosted_model

    from steps import defaults, preprocess

    frame = make_table(rows)[0].to_pandas()  # seeded: the table preprocessing read
    y = frame.pop("label").to_numpy()
    split = argparse.Namespace(
        validation_fraction=defaults.VALIDATION_FRACTION,
        test_fraction=defaults.TEST_FRACTION,
        max_train_rows=0,
        seed=defaults.SEED,
    )
    positions = preprocess.split(y, True, split)
    for name, where in positions.items():  # the rows of preprocessing's split files, in their order
        written = pq.read_table(splits / name / f"{name}.parquet", columns=["__label__"]).column(0).to_numpy()
        if not np.array_equal(written, y[where]):
            raise SystemExit(f"hgb: the {name} split is not preprocessing's ({len(written)} rows written)")
    numeric = [f"x{j}" for j in range(NUMERIC)]
    categorical = [f"c{i}" for i in range(len(CARDINALITIES))]
    train, validation, test = (positions[k] for k in ("train", "validation", "test"))
    tried, seconds, fitted = {}, {}, {}
    for rate in HGB_RATES:
        started = time.perf_counter()
        columns, model = boosted_model(numeric, categorical, True, rate, 0, None)
        x_train = columns.fit_transform(frame.iloc[train])
        x_validation = columns.transform(frame.iloc[validation])
        model.fit(x_train, y[train], X_val=x_validation, y_val=y[validation])
        seconds[rate] = round(time.perf_counter() - started, 2)
        tried[rate] = round(float((model.predict(x_validation) == y[validation]).mean()), 4)
        fitted[rate] = (columns, model)
        print(f"hgb: learning rate {rate}: {model.n_iter_} iterations, {seconds[rate]}s, validation {tried[rate]}")
    chosen = max(tried, key=tried.get)  # ties: the first, the lowest rate
    columns, model = fitted[chosen]
    predicted = model.predict(columns.transform(frame.iloc[test]))
    return {
        "model": "sklearn HistGradientBoostingClassifier, real_tables.boosted_model (native categories, early "
        "stopping on the validation rows, random_state=0)",
        "input": f"the raw table's columns on Regula's split; categories beyond {HGB_MAX_CATEGORIES} grouped",
        "chosen": {"learning_rate": chosen, "max_iter": int(model.n_iter_)},
        "validation_accuracy": {str(k): v for k, v in tried.items()},
        "fit_seconds": {str(k): v for k, v in seconds.items()},
        "seconds": round(sum(seconds.values()), 2),
        "test_accuracy": round(float((predicted == y[test]).mean()), 4),
    }


# -- main -----------------------------------------------------------------------------------------------------------


def main() -> None:
    args = parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="regula-large-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(REPO), "REGULA_METRICS": "off"}
    try:
        started = time.perf_counter()
        table, bayes = make_table(args.rows)
        data = write_table(table, work, args.format)
        input_mb = round(data.stat().st_size / 2**20, 1)
        del table
        print(
            f"table: {args.rows} rows, {data.name} {input_mb:.0f} MB, generated in "
            f"{time.perf_counter() - started:.1f}s (not measured); Bayes-optimal accuracy {bayes:.4f}",
            flush=True,
        )

        splits, model, ev = work / "splits", work / "model", work / "evaluation"
        for path in (splits, model, ev, work / "packed"):
            shutil.rmtree(path, ignore_errors=True)
        steps = {}
        steps["preprocess"] = run_step(
            "preprocess", ["--input", str(data), "--output-dir", str(splits), "--target", "label"], work, env
        )
        print(f"preprocess: {steps['preprocess']['seconds']}s", flush=True)
        train = ["--train", str(splits / "train"), "--validation", str(splits / "validation")]
        train += ["--model_dir", str(model), *(["--max_epochs", str(args.epochs)] if args.epochs else [])]
        for name in REGULARIZATION:
            if getattr(args, name) is not None:
                train += [f"--{name}", str(getattr(args, name))]
        steps["train"] = run_step("train", train, work, env)
        print(f"train: {steps['train']['seconds']}s", flush=True)
        pack(model, work / "packed")
        evaluate = ["--model-dir", str(work / "packed"), "--data-dir", str(splits), "--output-dir", str(ev)]
        steps["evaluate"] = run_step("evaluate", evaluate, work, env)
        print(f"evaluate: {steps['evaluate']['seconds']}s", flush=True)

        report = json.loads((ev / "evaluation.json").read_text())
        schema = json.loads((splits / "train" / "schema.json").read_text())
        regula = {
            "test_accuracy": round(report["metrics"]["test"]["accuracy"], 4),
            "validation_accuracy": round(report["metrics"]["validation"]["accuracy"], 4),
            "epochs": report["epochs"],
            "best_epoch": report["best_epoch"],
            "batch_size": report["training"].get("batch_size"),
            "features": len(schema["features"]),
            "rows": schema["rows"],
            "decision": report["decision"],
            "regularization": report["regularization"],  # what train.py trained with
        }
        hgb = None
        if not args.no_hgb:
            print("hgb: fitting ...", flush=True)
            hgb = gradient_boosting(args.rows, splits)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)

    peak = max(s["peak_rss_mb"] for s in steps.values())
    print()
    print(f"{'step':<12}{'wall s':>10}{'cpu s':>10}{'peak RSS MB':>14}  target <= {TARGET_PEAK_MB} MB")
    for name, s in steps.items():
        mark = "ok" if s["peak_rss_mb"] <= TARGET_PEAK_MB else "OVER"
        print(f"{name:<12}{s['seconds']:>10.1f}{s['cpu_seconds']:>10.1f}{s['peak_rss_mb']:>14.0f}  {mark}")
    total = sum(s["seconds"] for s in steps.values())
    print(f"{'total':<12}{total:>10.1f}")
    print(
        f"\nRegula MLP: test accuracy {regula['test_accuracy']:.4f} ({regula['epochs']} epochs, best "
        f"{regula['best_epoch']}, batch {regula['batch_size']}, {regula['features']} features); "
        f"train+evaluate {steps['train']['seconds'] + steps['evaluate']['seconds']:.1f}s"
    )
    if hgb:
        print(
            f"HGB:        test accuracy {hgb['test_accuracy']:.4f} (learning rate {hgb['chosen']['learning_rate']}, "
            f"{hgb['chosen']['max_iter']} iterations, chosen on validation; {hgb['seconds']:.1f}s for every rate)"
        )
    train_seconds = steps["train"]["seconds"]
    mark = "ok" if train_seconds <= TARGET_TRAIN_SECONDS else "OVER"
    print(f"training step {train_seconds:.1f}s (target <= {TARGET_TRAIN_SECONDS}s): {mark}")
    print(f"Bayes-optimal accuracy {bayes:.4f}; peak RSS of any step {peak:.0f} MB (target <= {TARGET_PEAK_MB} MB)")

    result = {
        "rows": args.rows,
        "format": args.format,
        "epochs": args.epochs,
        "input_mb": input_mb,
        "bayes_accuracy": round(bayes, 4),
        "steps": {k: {key: v for key, v in s.items() if key != "log_tail"} for k, s in steps.items()},
        "regula": regula,
        "hgb": hgb,
        "max_peak_rss_mb": peak,
        "target_peak_rss_mb": TARGET_PEAK_MB,
        "within_target": peak <= TARGET_PEAK_MB,
        "target_train_seconds": TARGET_TRAIN_SECONDS,
        "train_within_target": steps["train"]["seconds"] <= TARGET_TRAIN_SECONDS,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
    }
    results_file.write(args.out, result)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
