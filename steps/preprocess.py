"""Preprocessing step: validate a labelled table, split it, scale it.

SageMaker Processing entry point. Reads one CSV or Parquet file (or a folder
holding one) with a label column, checks it, makes a stratified, seeded
train/validation/test split, fits a standard scaler on the training split
only, and writes train/train.csv (+ schema.json), validation/validation.csv
and test/test.csv with the encoded label as the first column.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
from cloudwatch import MetricEmitter
from contract import LABEL, SCHEMA, SPLITS, StepError, run
from sklearn.model_selection import train_test_split

DATA_SUFFIXES = (".csv", ".parquet", ".pq")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--input", default="/opt/ml/processing/input/data", help="data file or folder holding one")
    parser.add_argument("--output-dir", default="/opt/ml/processing/output")
    parser.add_argument("--target", default="label", help="name of the label column")
    parser.add_argument("--validation-fraction", type=float, default=0.2)
    parser.add_argument("--test-fraction", type=float, default=0.2)
    parser.add_argument("--max-train-rows", type=int, default=0, help="keep at most this many training rows (0: all)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--metrics-namespace", default="Regula")
    parser.add_argument("--pipeline-name", default="")
    parser.add_argument("--execution-id", default="")
    return parser.parse_args()


def find_data_file(path: Path) -> Path:
    if path.is_file():
        return path
    if not path.is_dir():
        raise StepError(f"input {path} does not exist")
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in DATA_SUFFIXES)
    if not files:
        raise StepError(f"no .csv or .parquet file under {path}")
    if len(files) > 1:
        raise StepError(
            f"expected one data file under {path}, found {len(files)}: {', '.join(p.name for p in files[:5])}"
        )
    return files[0]


def read_table(path: Path) -> pd.DataFrame:
    try:
        if path.suffix.lower() == ".csv":
            return pd.read_csv(path)
        return pd.read_parquet(path)
    except pd.errors.EmptyDataError:
        raise StepError(f"input file {path.name} is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as error:
        raise StepError(f"cannot read {path.name}: {str(error).strip().splitlines()[0]}") from None


def validate(table: pd.DataFrame, target: str, min_per_class: int) -> None:
    if table.empty:
        raise StepError("input table has no rows")
    if target not in table.columns:
        columns = ", ".join(map(str, table.columns[:10])) + (", ..." if len(table.columns) > 10 else "")
        raise StepError(f"target column '{target}' not found; columns are: {columns}")
    features = table.drop(columns=[target])
    if features.shape[1] == 0:
        raise StepError("table has no feature columns besides the target")
    non_numeric = [str(c) for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])]
    if non_numeric:
        raise StepError(f"non-numeric feature columns: {', '.join(non_numeric[:10])} (encode them as numbers first)")
    values = features.to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        columns = [str(c) for c in features.columns[bad.any(axis=0)]]
        raise StepError(
            f"{int(bad.any(axis=1).sum())} rows have NaN or infinite values in columns: {', '.join(columns[:10])}"
        )
    if table[target].isna().any():
        raise StepError(f"{int(table[target].isna().sum())} rows have no value in target column '{target}'")
    counts = table[target].value_counts()
    if len(counts) < 2:
        raise StepError(f"target column '{target}' has a single class ({counts.index[0]!r}); need at least 2")
    if counts.min() < min_per_class:
        raise StepError(
            f"too few rows to split: class {counts.idxmin()!r} has {counts.min()} rows, "
            f"a stratified train/validation/test split needs at least {min_per_class} per class"
        )


def split(table: pd.DataFrame, args: argparse.Namespace) -> dict[str, pd.DataFrame]:
    holdout = args.validation_fraction + args.test_fraction
    train, rest = train_test_split(table, test_size=holdout, stratify=table[LABEL], random_state=args.seed)
    test_share = args.test_fraction / holdout
    validation, test = train_test_split(rest, test_size=test_share, stratify=rest[LABEL], random_state=args.seed)
    if 0 < args.max_train_rows < len(train):
        train, _ = train_test_split(
            train, train_size=args.max_train_rows, stratify=train[LABEL], random_state=args.seed
        )
    return {"train": train, "validation": validation, "test": test}


def main() -> None:
    args = parse_args()
    if not (
        0 < args.validation_fraction < 1
        and 0 < args.test_fraction < 1
        and args.validation_fraction + args.test_fraction < 1
    ):
        raise StepError("validation and test fractions must be in (0, 1) and sum to less than 1")
    path = find_data_file(Path(args.input))
    table = read_table(path)
    min_per_class = max(
        3,
        int(
            np.ceil(
                1 / min(args.validation_fraction, args.test_fraction, 1 - args.validation_fraction - args.test_fraction)
            )
        ),
    )
    validate(table, args.target, min_per_class)

    classes = sorted(table[args.target].unique().tolist(), key=str)
    encode = {c: i for i, c in enumerate(classes)}
    features = [str(c) for c in table.columns if c != args.target]
    table = pd.DataFrame(
        np.column_stack(
            [table[args.target].map(encode).to_numpy(), table.drop(columns=[args.target]).to_numpy(np.float64)]
        ),
        columns=[LABEL, *features],
    )
    parts = split(table, args)

    mean = parts["train"][features].mean().to_numpy()
    scale = parts["train"][features].std(ddof=0).to_numpy(copy=True)
    scale[scale == 0] = 1.0
    output = Path(args.output_dir)
    for name in SPLITS:
        part = parts[name].copy()
        part[features] = (part[features].to_numpy() - mean) / scale
        part[LABEL] = part[LABEL].astype(int)
        (output / name).mkdir(parents=True, exist_ok=True)
        part.to_csv(output / name / f"{name}.csv", index=False, float_format="%.6g")

    schema = {
        "source": path.name,
        "target": args.target,
        "features": features,
        "classes": classes,
        "scaler": {"mean": mean.tolist(), "scale": scale.tolist()},
        "rows": {name: len(parts[name]) for name in SPLITS},
        "seed": args.seed,
    }
    (output / "train" / SCHEMA).write_text(json.dumps(schema, indent=2, default=str))
    print(
        f"preprocess: {len(table)} rows, {len(features)} features, {len(classes)} classes -> "
        + ", ".join(f"{n} {len(parts[n])}" for n in SPLITS)
    )

    metrics = MetricEmitter(args.metrics_namespace, {"Pipeline": args.pipeline_name}, {"Execution": args.execution_id})
    metrics.put_many(
        {"InputRows": len(table), "TrainRows": len(parts["train"]), "ValidationRows": len(parts["validation"])},
        unit="Count",
    )
    metrics.close()


if __name__ == "__main__":
    run(main, "preprocess")
