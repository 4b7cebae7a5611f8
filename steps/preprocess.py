"""Preprocessing step: a team's own table in, model-ready splits out.

SageMaker Processing entry point. Reads one CSV (delimiter detected) or Parquet file, or a folder holding one; checks
the whole table and reports every problem at once; decides the problem type; makes a seeded train/validation/test
split (stratified for classification); fits the table transform (steps/table.py) on the training split only; writes
each split as Parquet (float32 features, label first), the schema with the fitted transform, and a sample of raw test
rows that evaluation sends through the serving code.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from steps import images, series_prepare, table_roles, table_values, target_encoding, target_scale, text
from steps import table as columns
from steps.cloudwatch import MetricEmitter
from steps.contract import RAW_SAMPLE, SCHEMA, SPLITS, StepError, run, write_split
from steps.defaults import SEED, TEST_FRACTION, VALIDATION_FRACTION
from steps.labels import check_label, class_weight, problem_type, sort_classes
from steps.parameter_table import add_options
from steps.parameter_table import values as parameter_values
from steps.parameters import column_names
from steps.parameters import problems as parameter_problems
from steps.quality import quality_metric
from steps.tablefile import TableFileError, read_input_table

DATA_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq")  # any delimiter in the first three
RAW_SAMPLE_ROWS = 500
BLOCK_ROWS = 250_000  # split rows transformed and written per block: bounded peak memory


def max_z(text: str) -> float | None:
    """--max-z: a positive number, or "none" (no bound)."""
    if text.lower() == "none":
        return None
    value = float(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"a positive number or none, got {text!r}")
    return value


def bins(text: str) -> int:
    """--numeric-bins: a whole number from 0 (none) to 256."""
    value = int(text) if text.strip().isdigit() else -1
    if not 0 <= value <= 256:
        raise argparse.ArgumentTypeError(f"a whole number from 0 to 256, got {text!r}")
    return value


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--input", required=True, help="data file or folder holding one")
    parser.add_argument("--output-dir", required=True)
    add_options(parser, "preprocess")  # the pipeline parameters it gets (steps/parameter_table.py)
    parser.add_argument("--validation-fraction", type=float, default=VALIDATION_FRACTION)
    parser.add_argument("--test-fraction", type=float, default=TEST_FRACTION)
    parser.add_argument(
        "--target-transform",
        default=target_scale.DEFAULT,
        choices=target_scale.KINDS,
        help="regression: the network's scale (auto: log1p for a skewed target >= 0: steps/target_scale.py)",
    )
    # the numeric columns' bound and divisor (steps/table.py): not pipeline parameters, for benchmarks/train_options.py
    parser.add_argument("--max-z", type=max_z, default=columns.MAX_Z, help=argparse.SUPPRESS)
    parser.add_argument("--scaling", choices=columns.SCALINGS, default="std", help=argparse.SUPPRESS)
    parser.add_argument("--numeric-bins", type=bins, default=columns.NUMERIC_BINS, help=argparse.SUPPRESS)
    parser.add_argument(  # wide categories' target encoding, or not: for benchmarks/train_options.py
        "--wide-categories", choices=target_encoding.MODES, default=target_encoding.DEFAULT_MODE, help=argparse.SUPPRESS
    )
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--check", action="append", default=[], metavar="NAME=VALUE", help="a pipeline parameter")
    parser.add_argument("--pipeline-name", default="")
    parser.add_argument("--execution-id", default="")
    return parser.parse_args()


# -- reading --------------------------------------------------------------------------------------------------------


def find_data_file(path: Path) -> Path:
    if path.is_file():
        return path
    if not path.is_dir():
        raise StepError(f"input {path} does not exist")
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in DATA_SUFFIXES)
    if not files:
        raise StepError(f"no .csv, .tsv, .txt or .parquet file under {path}")
    if len(files) > 1:
        raise StepError(
            f"expected one data file under {path}, found {len(files)}: {', '.join(p.name for p in files[:5])}"
        )
    return files[0]


# -- the label: steps/labels.py; how many rows a class needs to be split -------------------------------------


def min_rows_per_class(args: argparse.Namespace) -> int:
    smallest = min(args.validation_fraction, args.test_fraction, 1 - args.validation_fraction - args.test_fraction)
    return max(3, math.ceil(1 / smallest))


# -- splitting and writing ------------------------------------------------------------------------------------------


def split(labels: np.ndarray, classification: bool, args: argparse.Namespace) -> dict[str, np.ndarray]:
    """Row positions of each split: seeded, stratified by class for classification."""
    rows = np.arange(len(labels))
    holdout = args.validation_fraction + args.test_fraction
    strata = labels if classification else None
    train, rest = train_test_split(rows, test_size=holdout, stratify=strata, random_state=args.seed)
    rest_strata = labels[rest] if classification else None
    validation, test = train_test_split(
        rest, test_size=args.test_fraction / holdout, stratify=rest_strata, random_state=args.seed
    )
    if 0 < args.max_train_rows < len(train):
        train, _ = train_test_split(
            train,
            train_size=args.max_train_rows,
            stratify=labels[train] if classification else None,
            random_state=args.seed,
        )
    return {"train": np.sort(train), "validation": np.sort(validation), "test": np.sort(test)}


def main() -> None:
    args = parse_args()
    # every pipeline parameter's limits, before any data is read: a bad value never reaches a (billed) training job;
    # this step's own options are pipeline parameters too, checked by the same rules (the --check value wins)
    values = parameter_values(args, "preprocess")
    values.update(item.partition("=")[::2] for item in args.check)
    problems = parameter_problems(values)
    if not (
        0 < args.validation_fraction < 1
        and 0 < args.test_fraction < 1
        and args.validation_fraction + args.test_fraction < 1
    ):
        problems.append("validation and test fractions must be in (0, 1) and sum to less than 1")
    if problems:
        raise columns.TableError(problems)
    kind = input_kind(args)
    counts = PREPARE[kind](args, problems)

    metrics = MetricEmitter(args.metrics_namespace, {"Pipeline": args.pipeline_name}, {"Execution": args.execution_id})
    metrics.put_many(counts, unit="Count")
    metrics.close()


# -- the input kinds: each reads and checks its input, splits it, fits its transform, writes the splits and the
# schema (with its `kind`: steps/inputs.py reads the splits back) and returns its row counts --------------------


def input_kind(args: argparse.Namespace) -> str:
    """Which input kind the run's data is: a table unless the options or the input say otherwise."""
    if args.time_column.strip():
        return "series"
    if args.image_column or images.is_class_folders(Path(args.input)):
        return "image"
    return "table"


def prepare_table(args: argparse.Namespace, problems: list[str]) -> dict[str, int]:
    """A table: one CSV or Parquet file, a row per example, the label in the target column."""
    path = find_data_file(Path(args.input))
    try:
        frame = read_input_table(path)
    except TableFileError as error:
        raise StepError(str(error)) from None

    if frame.attrs.get("duplicates"):  # pandas renamed the copies (a, a.1): reported, and never used
        problems.append(f"duplicate column names: {', '.join(frame.attrs['duplicates'])}")
    exclude, categorical = column_names(args.exclude_columns), column_names(args.categorical_columns)
    text_columns = column_names(getattr(args, "text_columns", ""))
    for option, listed in (
        ("ExcludeColumns", exclude),
        ("CategoricalColumns", categorical),
        ("TextColumns", text_columns),
    ):
        unknown = [n for n in listed if n not in frame.columns]
        if unknown:
            problems.append(f"{option} names columns the table does not have: {', '.join(unknown)}")
    if args.target not in frame.columns:
        shown = ", ".join(map(str, frame.columns[:10])) + (", ..." if frame.shape[1] > 10 else "")
        problems.append(f"target column '{args.target}' not found; columns are: {shown}")
        raise columns.TableError(problems)

    unlabelled = frame[args.target].isna()
    if unlabelled.all():
        problems.append(f"target column '{args.target}' has no values")
        raise columns.TableError(problems)
    if unlabelled.any():
        print(f"preprocess: dropped {int(unlabelled.sum())} rows with no value in '{args.target}'", flush=True)
        frame = frame[~unlabelled.to_numpy()]
    labels = frame[args.target]
    kind, reason = problem_type(labels, args.problem_type)
    problems += check_label(labels, kind, args.target, min_rows_per_class(args))
    metric = None
    try:
        metric = quality_metric(args.quality_metric, kind, labels.nunique())
    except ValueError as error:
        problems.append(str(error))

    features = frame.drop(columns=[args.target])
    roles, dropped, why_text = table_roles.explained_roles(features, exclude, categorical, text_columns)
    if features.shape[1] == 0:
        problems.append("table has no feature columns besides the target")
    elif not roles:
        problems.append(
            "no usable feature column: " + "; ".join(f"'{c}' is {why}" for c, why in list(dropped.items())[:10])
        )
    if problems:
        raise columns.TableError(problems)

    print(f"preprocess: {kind}, because {reason}", flush=True)
    for name, why in dropped.items():
        print(f"preprocess: dropped column '{name}': {why}", flush=True)
    for name, why in why_text.items():
        print(f"preprocess: text column '{name}': {why}", flush=True)
    kinds = ("numeric", "categorical", "datetime", "text")
    by_role = {r: [c for c, role in roles.items() if role == r] for r in kinds}
    print("preprocess: " + "; ".join(f"{r}: {', '.join(c)}" for r, c in by_role.items() if c), flush=True)

    classification = kind == "classification"
    if classification:
        classes = sort_classes(pd.unique(labels).tolist())
        encoded = pd.Categorical(labels, categories=classes).codes.astype(np.int64)
    else:
        encoded = table_values.parse_numbers(labels)[0].astype(np.float32)
    positions = split(encoded, classification, args)
    marks = table_roles.missing_marks(features, roles)
    gaps = table_roles.columns_with_gaps(features, roles, marks)
    train_rows = positions["train"]
    targets = None
    if getattr(args, "wide_categories", target_encoding.DEFAULT_MODE) == "target":
        targets = target_encoding.targets(encoded[train_rows], kind, classes if classification else None)
    wanted = getattr(args, "numeric_bins", columns.NUMERIC_BINS)
    bins = columns.bins_for(len(train_rows), roles, wanted)
    if wanted and not bins:
        print(
            f"preprocess: numeric columns without piecewise-linear bins: {len(train_rows):,} training rows, and "
            f"their features would take more than {columns.MAX_BIN_CELLS:,} cells",
            flush=True,
        )
    transform = columns.fit(
        features,
        roles,
        marks,
        rows=train_rows,
        gaps=gaps,
        max_z=args.max_z,
        scaling=args.scaling,
        targets=targets,
        bins=bins,
    )
    # the training rows' own target encodings are cross-fitted: no row's feature holds its own label
    own = columns.cross_fitted(features.iloc[train_rows], transform, targets, args.seed) if targets else []
    for column in transform["columns"]:
        if column["kind"] == "categorical" and column["other"]:
            values = len(column["frequencies"])
            encoding = column.get("target_encoding")
            if encoding is not None:
                stored, eligible = len(encoding["values"]), encoding["eligible"]
                counted = f"{stored} most frequent of {eligible}" if stored < eligible else str(stored)
                how = (
                    f"and its target mean per value ({counted} values in at least {target_encoding.MIN_ROWS} training"
                    " rows; cross-fitted on the training split)"
                )
            elif targets is None:
                how = "(no target encoding: --wide-categories frequency)"
            else:
                how = f"(no target encoding: no value is in {target_encoding.MIN_ROWS} training rows)"
            print(
                f"preprocess: column '{column['name']}': {values} values, one-hot for the {len(column['categories'])}"
                f" most frequent, the rest as 'other' with their frequency, {how}",
                flush=True,
            )

    output = Path(args.output_dir)
    has_text = bool(text.text_columns(transform))
    for name in SPLITS:
        text_blocks, notes = [], []

        def blocks(rows_of_split, text_blocks=text_blocks, notes=notes, training=name == "train"):
            done = 0
            for rows in np.array_split(rows_of_split, max(1, -(-len(rows_of_split) // BLOCK_ROWS))):
                dense = columns.transform(features.iloc[rows], transform)
                for start, values in own if training else ():
                    dense[:, start : start + values.shape[1]] = values[done : done + len(rows)]
                done += len(rows)
                if has_text:  # the text block beside the dense features (steps/text.py)
                    block, problems, cut = text.encode(features.iloc[rows], transform)
                    if problems:
                        raise columns.TableError(problems)
                    text_blocks.append(block)
                    notes.extend(cut)
                yield dense, encoded[rows]

        write_split(output / name, name, blocks(positions[name]), transform["features"])
        if has_text:
            text.write_block(output / name, name, text.TextBlock.concat(text_blocks))
            for note in notes:
                print(f"preprocess: {name}: {note}", flush=True)
    sample = positions["test"][:RAW_SAMPLE_ROWS]
    frame.iloc[sample].drop(columns=[args.target]).to_csv(output / "test" / RAW_SAMPLE, index=False)

    schema = {
        "kind": "table",
        "source": path.name,
        "target": args.target,
        "problem_type": kind,
        "problem_type_reason": reason,
        "input_columns": [str(c) for c in features.columns],
        "roles": roles,
        "dropped": dropped,
        "transform": transform,
        "features": transform["features"],
        "rows": {name: len(positions[name]) for name in SPLITS},
        "seed": args.seed,
    }
    if classification:
        train_labels = encoded[positions["train"]]
        schema["classes"] = classes
        schema["class_counts"] = np.bincount(train_labels, minlength=len(classes)).tolist()
        schema["class_weight"] = class_weight(args.class_weight, metric)
    else:
        train_labels = encoded[positions["train"]].astype(np.float64)
        schema["target_mean"] = float(train_labels.mean())  # the original scale: the baseline, the metrics
        schema["target_std"] = float(train_labels.std()) or 1.0
        try:
            requested = getattr(args, "target_transform", target_scale.DEFAULT)
            schema["target_scale"] = target_scale.choose(train_labels, requested)
        except ValueError as error:
            raise StepError(str(error)) from None
        scale = schema["target_scale"]
        print(f"preprocess: target modelled on scale {scale['kind']}: {scale['reason']}", flush=True)
    (output / "train" / SCHEMA).write_text(json.dumps(schema, indent=2, default=str))
    if has_text:
        sizes = ", ".join(f"'{c['name']}' {len(c['vocabulary'])}" for c in text.text_columns(transform))
        print(
            f"preprocess: text vocabularies (word 1-{text.NGRAMS} grams in at least {text.MIN_ROWS} training rows, "
            f"at most {text.MAX_VOCABULARY}): {sizes}",
            flush=True,
        )
    print(
        f"preprocess: {len(frame)} rows, {len(roles)} columns -> {len(transform['features'])} features"
        + (f", {len(classes)} classes" if classification else "")
        + " -> "
        + ", ".join(f"{n} {len(positions[n])}" for n in SPLITS),
        flush=True,
    )

    return {
        "InputRows": len(frame),
        "TrainRows": len(positions["train"]),
        "ValidationRows": len(positions["validation"]),
    }


def prepare_images(args: argparse.Namespace, problems: list[str]) -> dict[str, int]:
    """Labelled images: class folders, or a manifest (steps/images.py), split as tables are."""
    return images.prepare(args, problems, split, min_rows_per_class(args))


def prepare_series(args: argparse.Namespace, problems: list[str]) -> dict[str, int]:
    """Time series (TimeColumn set): steps/series_prepare.py."""
    args.time_column = args.time_column.strip()
    return series_prepare.prepare(args, problems, find_data_file(Path(args.input)))


PREPARE = {"table": prepare_table, "image": prepare_images, "series": prepare_series}


if __name__ == "__main__":
    run(main, "preprocess")
