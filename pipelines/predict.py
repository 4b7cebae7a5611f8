"""`regula predict`: score a raw table locally with exactly the code and weights a model was registered with.

The model is a local run folder (the round it registered), a model package ARN, a version number of the group, or
`latest`. For the registry, the artifact is fetched from S3 and checked against the sha256 that evaluation recorded
in the package's metadata before anything in it runs. The rows are read and scored by the artifact's own
`code/steps/inference.py`, the code the SageMaker endpoint runs.

The output is the format `--out` names: CSV (also standard output), JSON (the endpoint's answer), JSON lines or
Parquet (the rows with their predictions); any other suffix is refused before scoring. The prediction columns never
replace the table's own: `prediction` and `probability_<class>` take a suffix (`prediction_2`) when the rows already
have those names. In CSV, a text cell that a spreadsheet would run as a formula (one beginning with =, +, -, @, a
tab or a carriage return) is written with a leading single quote and every text cell is quoted, as OWASP advises
against CSV injection.
"""

from __future__ import annotations

import csv
import json
import tarfile
from pathlib import Path

from pipelines import run_layout
from pipelines.errors import RegulaError
from pipelines.s3 import split_uri
from steps import serving_code
from steps.contract import file_sha256

CONTENT_TYPES = {".json": "application/json", ".jsonl": "application/jsonlines"}
OUT_FORMATS = (".csv", ".json", ".jsonl", ".parquet", ".pq")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # what spreadsheets evaluate (OWASP, CSV injection)


class PredictError(RegulaError):
    pass


def from_run_folder(run_dir: Path) -> tuple[Path, str]:
    """The model.tar.gz of the round a local run registered, and the sha256 its evaluation recorded."""
    report_file = run_layout.report_file(run_dir)
    if not report_file.exists():
        raise PredictError(f"{run_dir} is not a run folder: no report.json")
    report = json.loads(report_file.read_text())
    rounds = report.get("rounds", [])
    if not report.get("model_package_arn") or not rounds or rounds[-1].get("decision") != "register":
        raise PredictError(f"run {run_dir.name} registered no model: {report.get('failure_reason') or 'no decision'}")
    # the last evaluation selects the registered round: after a borderline round it may be an earlier one
    round_ = rounds[-1].get("selected_round") or rounds[-1]["round"]
    archive = run_layout.round_model(run_dir, round_)
    evaluation = run_layout.round_evaluation(run_dir, round_)
    if not archive.exists() or not evaluation.exists():
        raise PredictError(f"run {run_dir.name}: the round {round_} model or its evaluation is missing")
    return archive, json.loads(evaluation.read_text())["artifact_sha256"]


def from_registry(sagemaker, s3, group: str, ref: str, workdir: Path, echo=print) -> tuple[Path, str]:
    """Download the package's model.tar.gz; the expected sha256 is the one recorded at registration."""
    from pipelines.registry import find

    row = find(sagemaker, group, ref)
    if row["status"] != "Approved":
        echo(f"note: version {row['version']} is {row['status']}, not Approved")
    package = sagemaker.describe_model_package(ModelPackageName=row["arn"])
    uri = package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    expected = row["metadata"].get("regula:artifact_sha256")
    if not expected:
        raise PredictError(f"model package {row['arn']} records no artifact hash: it was not registered by Regula")
    archive = workdir / "model.tar.gz"
    bucket, key = split_uri(uri)
    s3.download_file(bucket, key, str(archive))
    return archive, expected


def unpack(archive: Path, expected_sha256: str, into: Path) -> Path:
    actual = file_sha256(archive)
    if actual != expected_sha256:
        raise PredictError(
            f"{archive.name} is not the artifact that was evaluated (sha256 {actual[:12]}..., recorded "
            f"{expected_sha256[:12]}...): refusing to run its code"
        )
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return into


def load_serving_code(model_dir: Path):
    """Import the artifact's steps/inference.py (and the modules beside it) as the endpoint would."""
    try:
        return serving_code.import_inference(model_dir / "code")
    except (FileNotFoundError, ImportError) as error:
        raise PredictError(str(error)) from None


def read_rows(inference, data: Path):
    """A .csv or .parquet file read as preprocessing reads tables (any dialect); JSON as the endpoint reads it, every
    key kept (the output echoes the rows: an id column the model does not use is still there)."""
    suffix = data.suffix.lower()
    if suffix in (".csv", ".parquet", ".pq"):
        from steps.tablefile import TableFileError, read_table

        try:
            return read_table(data)[0]
        except TableFileError as error:
            raise PredictError(str(error)) from None
    if suffix not in CONTENT_TYPES:
        raise PredictError(f"cannot read {data.name}: use .csv (with a header), .json, .jsonl or .parquet")
    return inference.read_rows(data.read_bytes(), CONTENT_TYPES[suffix])


def check_out(out: Path | None) -> None:
    if out is not None and out.suffix.lower() not in OUT_FORMATS:
        raise PredictError(f"cannot write {out.name}: --out takes .csv, .json, .jsonl or .parquet")


def free_name(name: str, taken: set[str]) -> str:
    """`name`, or `name_2`, `name_3`... when the table has it already."""
    candidate, number = name, 1
    while candidate in taken:
        number += 1
        candidate = f"{name}_{number}"
    taken.add(candidate)
    return candidate


def scored_table(rows, result: dict):
    """The input rows with a prediction column (and one probability per class), none replacing one of the rows'."""
    table = rows.copy()
    taken = {str(c) for c in table.columns}
    table[free_name("prediction", taken)] = result["predictions"]
    for index, label in enumerate(result.get("classes") or []):
        table[free_name(f"probability_{label}", taken)] = [p[index] for p in result["probabilities"]]
    return table


def defuse(value):
    """A text cell a spreadsheet would evaluate, with a leading single quote (OWASP); anything else as it is."""
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_START) else value


def csv_text(table) -> str:
    import pandas as pd

    safe = table.copy()
    for column in safe.columns:
        if not pd.api.types.is_numeric_dtype(safe[column]):  # a negative number is a number, not a formula
            safe[column] = safe[column].map(defuse)
    safe.columns = [defuse(str(c)) for c in safe.columns]
    # every text cell in double quotes (OWASP again): a carriage return in one would otherwise end the row
    return safe.to_csv(index=False, quoting=csv.QUOTE_NONNUMERIC)


def write_predictions(rows, result: dict, out: Path | None) -> str:
    """The format `out` names (CSV when None); the text for standard output ("" once written to a file)."""
    suffix = out.suffix.lower() if out is not None else ".csv"
    check_out(out)
    if suffix == ".json":
        text = json.dumps(result)
    elif suffix == ".jsonl":
        text = scored_table(rows, result).to_json(orient="records", lines=True)
    elif suffix in (".parquet", ".pq"):
        try:
            scored_table(rows, result).to_parquet(out, index=False)
        except (ValueError, TypeError, ImportError) as error:  # pyarrow refuses a column of mixed types
            out.unlink(missing_ok=True)
            raise PredictError(f"cannot write {out.name} as Parquet: {str(error).splitlines()[0]}") from None
        return ""
    else:
        text = csv_text(scored_table(rows, result))
    if out is not None:
        out.write_text(text)
        return ""
    return text


def predict(model_dir: Path, data: Path, out: Path | None) -> tuple[int, str]:
    """Score `data` with the unpacked model in `model_dir`; (rows scored, output text)."""
    check_out(out)  # before any scoring
    inference = load_serving_code(model_dir)
    predictor = inference.model_fn(str(model_dir))
    try:
        rows = read_rows(inference, data)
        result = predictor.predict(rows)
    except inference.ClientError as error:
        raise PredictError(f"{data.name}: {error}") from None
    return len(rows), write_predictions(rows, result, out)
