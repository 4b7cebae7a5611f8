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
import zlib
from pathlib import Path

from pipelines.errors import NotFound, Refused, RegulaError
from pipelines.local import layout as run_layout
from pipelines.local.engine.s3 import split_uri
from steps import archive as archive_files
from steps import serving_code
from steps.contract import file_sha256

CONTENT_TYPES = {".json": "application/json", ".jsonl": "application/jsonlines"}
OUT_FORMATS = (".csv", ".json", ".jsonl", ".parquet", ".pq")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # what spreadsheets evaluate (OWASP, CSV injection)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")  # steps/image_decode.py SUFFIXES


class PredictError(RegulaError):
    """What `regula predict` cannot score (a usage error)."""


class ModelNotFound(PredictError, NotFound):
    """No model where `--model` or `--data` point: not a run folder, a run without a registered model, no file."""


class ModelRefused(PredictError, Refused):
    """A model whose code is not run: Rejected, not the evaluated artifact, unsafe to unpack, not Regula's."""


def from_run_folder(run_dir: Path) -> tuple[Path, str]:
    """The model.tar.gz of the round a local run registered, and the sha256 its evaluation recorded."""
    report_file = run_layout.report_file(run_dir)
    if not report_file.exists():
        if (run_dir / "jobs").is_dir() or (run_dir / "logs").is_dir():
            raise ModelNotFound(f"run {run_dir.name} has no report.json: it did not finish (still running, or killed)")
        raise ModelNotFound(f"{run_dir} is not a run folder: no report.json")
    try:
        report = json.loads(report_file.read_text())
    except ValueError as error:  # a damaged file, not Regula's bug
        raise ModelNotFound(f"run {run_dir.name}: report.json cannot be read ({error})") from None
    if report.get("status") == "Interrupted":
        raise ModelNotFound(
            f"run {run_dir.name} was {report.get('failure_reason') or 'interrupted'}; it registered no model"
        )
    rounds = report.get("rounds", [])
    if not report.get("model_package_arn") or not rounds or rounds[-1].get("decision") != "register":
        raise ModelNotFound(f"run {run_dir.name} registered no model: {report.get('failure_reason') or 'no decision'}")
    # the last evaluation names the registered round (the one it evaluated, for a `register` decision)
    round_ = rounds[-1].get("selected_round") or rounds[-1]["round"]
    try:  # the refit of that round where the run registered it (steps/refit.py)
        archive, evaluation = run_layout.registered_artifact(run_dir, rounds[-1]["round"], round_)
    except (OSError, ValueError, KeyError):
        raise ModelNotFound(f"run {run_dir.name}: the round {round_} evaluation is missing or unreadable") from None
    if not archive.exists():
        raise ModelNotFound(f"run {run_dir.name}: the round {round_} model is missing")
    return archive, evaluation["selected"]["artifact_sha256"]


def from_registry(
    sagemaker, s3, group: str, ref: str, workdir: Path, echo=print, allow_rejected: bool = False
) -> tuple[Path, str]:
    """Download the package's model.tar.gz; the expected sha256 is the one recorded at registration. A Rejected
    package's code does not run unless `allow_rejected`."""
    from pipelines.models.registry import find

    row = find(sagemaker, group, ref)
    if row["status"] == "Rejected" and not allow_rejected:
        raise ModelRefused(
            f"version {row['version']} of {group} is Rejected: refusing to run its code (--allow-rejected overrides; "
            "a version number or ARN names another package)"
        )
    if row["status"] != "Approved":
        echo(f"note: version {row['version']} is {row['status']}, not Approved")
    package = sagemaker.describe_model_package(ModelPackageName=row["arn"])
    uri = package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    expected = row["metadata"].get("regula:artifact_sha256")
    if not expected:
        raise ModelRefused(f"model package {row['arn']} records no artifact hash: it was not registered by Regula")
    archive = workdir / "model.tar.gz"
    bucket, key = split_uri(uri)
    s3.download_file(bucket, key, str(archive))
    return archive, expected


def unpack(archive: Path, expected_sha256: str, into: Path) -> Path:
    actual = file_sha256(archive)
    if actual != expected_sha256:
        raise ModelRefused(
            f"{archive.name} is not the artifact that was evaluated (sha256 {actual[:12]}..., recorded "
            f"{expected_sha256[:12]}...): refusing to run its code"
        )
    try:
        archive_files.extract(archive, into)  # refuses members outside `into`, links out, devices
    except (tarfile.TarError, EOFError, zlib.error) as error:  # FilterError is a TarError
        reason = "; ".join(line.strip() for line in str(error).splitlines() if line.strip())
        raise ModelRefused(f"{archive.name} cannot be unpacked safely: {type(error).__name__}: {reason}") from None
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
    if suffix in (".csv", ".tsv", ".txt", ".parquet", ".pq"):
        from steps.tablefile import TableFileError, read_table

        try:
            return read_table(data)[0]
        except TableFileError as error:
            raise PredictError(str(error)) from None
    if suffix not in CONTENT_TYPES:
        raise PredictError(f"cannot read {data.name}: use .csv or .tsv (with a header), .json, .jsonl or .parquet")
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
    elif "forecasts" in result:  # a time series model: one row per series and step, with its time
        import pandas as pd

        forecasts = pd.DataFrame(result["forecasts"])
        if suffix == ".jsonl":
            text = forecasts.to_json(orient="records", lines=True)
        elif suffix in (".parquet", ".pq"):
            forecasts.to_parquet(out, index=False)
            return ""
        else:
            text = csv_text(forecasts)
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


def predict(model_dir: Path, data: Path, out: Path | None, skip_bad_rows: bool = False, echo=print) -> tuple[int, str]:
    """Score `data` with the unpacked model in `model_dir`; (rows scored, output text). Notes go to `echo`: the
    decision rule, categories the model never saw, the model's warnings (texts cut to the limit: in JSON output also
    its `warnings`), rows skipped (`skip_bad_rows`), the output's dialect."""
    check_out(out)  # before any scoring
    inference = load_serving_code(model_dir)
    predictor = inference.model_fn(str(model_dir))
    if data.is_dir() or data.suffix.lower() in IMAGE_SUFFIXES:
        return predict_images(inference, predictor, data, out)
    try:
        rows = read_rows(inference, data)
        numbered(rows, data)
        for warning in unknown_categories(predictor.schema, rows):
            echo(warning)
        if skip_bad_rows:
            rows = without_bad_rows(predictor, rows, data, inference.ClientError, echo)
        result = predictor.predict(rows)
    except inference.ClientError as error:
        whole_table = "missing required column" in str(error)  # no row can be scored: skipping rows cannot help
        skip = "" if skip_bad_rows or whole_table else "; --skip-bad-rows scores the rows that can be"
        raise PredictError(f"{data.name}: {error}{numbering_note(data)}{skip}") from None
    for warning in result.get("warnings", []):  # what scoring changed (a text cut to the limit): JSON holds them too
        echo(f"warning: {warning}")
    rule = decision_rule(predictor)
    if rule:
        result["decision_rule"] = rule
        echo(f"decision rule: {rule['text']}")
    note = dialect_note(data)
    if note:
        echo(note)
    return len(rows), write_predictions(rows, result, out)


# -- what the predictions say about themselves (decision rule, unknown categories, line numbers, bad rows) ----------

CSV_SUFFIXES = (".csv", ".tsv", ".txt")
SHOWN_BAD_ROWS = 20


def numbered(rows, data: Path) -> None:
    """Number the rows as the user sees them in the file: CSV rows by file line (the header is line 1), other
    files' rows from 1; the messages of the model's checks name rows by this number."""
    first = 2 if data.suffix.lower() in CSV_SUFFIXES else 1
    rows.index = range(first, first + len(rows))


def numbering_note(data: Path) -> str:
    if data.suffix.lower() in CSV_SUFFIXES:
        return " (rows are numbered by their line in the file, the header being line 1)"
    return " (rows are numbered from 1)"


def decision_rule(predictor) -> dict | None:
    """How a class is chosen from the probabilities, with the per-class thresholds where there are two classes."""
    if not getattr(predictor, "classification", False):
        return None
    classes = [str(c) for c in predictor.classes]
    shares = getattr(predictor, "shares", None)
    if shares is None:
        rule = {"rule": "highest probability", "text": "the class with the highest probability"}
        if len(classes) == 2:
            rule["thresholds"] = {classes[1]: 0.5}
            rule["text"] += f": '{classes[1]}' when probability_{classes[1]} > 0.5"
        return rule
    weights = {c: round(float(w), 6) for c, w in zip(classes, shares, strict=True)}
    rule = {
        "rule": "highest probability / training share (ClassWeight=balanced)",
        "training_shares": weights,
        "text": "ClassWeight=balanced: the class with the highest probability divided by its training share ("
        + ", ".join(f"{c} {w:.3f}" for c, w in weights.items())
        + ")",
    }
    if len(classes) == 2:  # p1 / s1 > p0 / s0  <=>  p1 > s1, as p0 = 1 - p1
        rule["thresholds"] = {classes[1]: weights[classes[1]]}
        rule["text"] += (
            f": '{classes[1]}' when probability_{classes[1]} > {weights[classes[1]]:.3f}, so a row can be "
            f"'{classes[1]}' with a probability under 0.5"
        )
    return rule


def unknown_categories(schema: dict, rows) -> list[str]:
    """A warning per categorical column holding values the model never saw in training, with counts."""
    from steps.table_values import BOOLEAN_SPELLINGS, category_keys

    warnings = []
    for column in schema.get("transform", {}).get("columns", []):
        name = column["name"]
        if column["kind"] != "categorical" or name not in rows.columns:
            continue
        try:
            keys = category_keys(rows[name])
        except TypeError:
            continue  # lists or objects: the model's own check refuses them
        if set(column["categories"]) == {"true", "false"}:
            keys = keys.map(lambda k: BOOLEAN_SPELLINGS.get(k.lower(), k) if isinstance(k, str) else k)
        known = set(column["categories"])
        unseen = keys[keys.notna() & ~keys.isin(known)]
        if len(unseen):
            counts = unseen.value_counts()
            examples = ", ".join(f"{k!r} ({n})" for k, n in counts.head(5).items())
            more = f", and {len(counts) - 5} more" if len(counts) > 5 else ""
            scored = "as the 'other' category" if column["other"] else "as no known category"
            warnings.append(
                f"warning: column '{name}': {len(unseen)} rows hold categories the model never saw in training "
                f"({examples}{more}): scored {scored}"
            )
    return warnings


def without_bad_rows(predictor, rows, data: Path, client_error, echo):
    """The rows the model accepts; the others are named (by number) with why, and left out. A problem of the whole
    table (a missing column) still refuses it."""

    def problems(frame) -> str | None:
        try:
            predictor.features(frame)
        except client_error as error:
            return str(error)
        return None

    def bad_in(frame) -> dict:
        why = problems(frame)
        if why is None:
            return {}
        if len(frame) == 1:
            return {frame.index[0]: why}
        half = len(frame) // 2  # halves: a few bad rows among many cost a few checks each, not one per row
        return {**bad_in(frame.iloc[:half]), **bad_in(frame.iloc[half:])}

    bad = bad_in(rows)
    if not bad:
        return rows
    if len(bad) == len(rows):
        raise client_error(f"no row can be scored: {next(iter(bad.values()))}")
    what = "line" if data.suffix.lower() in CSV_SUFFIXES else "row"
    echo(f"skipped {len(bad)} of {len(rows)} rows (--skip-bad-rows); scored the other {len(rows) - len(bad)}:")
    for number, why in list(bad.items())[:SHOWN_BAD_ROWS]:
        echo(f"  {what} {number}: {why}")
    if len(bad) > SHOWN_BAD_ROWS:
        echo(f"  ... and {len(bad) - SHOWN_BAD_ROWS} more")
    return rows.drop(index=list(bad))


def dialect_note(data: Path) -> str | None:
    """Where the input CSV is not comma-separated with decimal points: the output is, and says so."""
    if data.suffix.lower() not in CSV_SUFFIXES:
        return None
    from steps.tablefile import DECIMAL_COMMA, sniff_delimiter

    head = data.read_bytes()[:65536].decode("utf-8-sig", errors="ignore")
    delimiter = sniff_delimiter(head)
    decimal_comma = delimiter == ";" and DECIMAL_COMMA.search(head)
    if delimiter == "," and not decimal_comma:
        return None
    read = f"{delimiter!r}-separated" + (" with decimal commas" if decimal_comma else "")
    return (
        f"note: {data.name} is {read}; the predictions are written comma-separated with decimal points (the "
        "format every tool reads back the same), not in the input's dialect"
    )


# -- images: a folder of image files, or one -------------------------------------------------------------------------


def image_files(data: Path) -> list[Path]:
    """The image files to score: `data` itself, or every image file under the folder (sorted, hidden ones left out)."""
    if data.is_file():
        return [data]
    if not data.is_dir():
        raise ModelNotFound(f"{data} does not exist")
    files = sorted(
        p
        for p in data.rglob("*")
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        and not any(part.startswith(".") for part in p.relative_to(data).parts)
    )  # fmt: skip
    if not files:
        raise PredictError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) under {data}")
    return files


def predict_images(inference, predictor, data: Path, out: Path | None) -> tuple[int, str]:
    """Each image sent to the artifact's serving code as the endpoint receives one (application/x-image): one row
    per image, the file first. A file the server would refuse is an error naming it."""
    files = image_files(data)
    names = [p.name if data.is_file() else p.relative_to(data).as_posix() for p in files]
    results = []
    for path, name in zip(files, names, strict=True):
        try:
            results.append(predictor.predict(inference.read_rows(path.read_bytes(), "application/x-image")))
        except inference.ClientError as error:
            raise PredictError(f"{name}: {error}") from None
        except OSError as error:
            raise PredictError(f"{name}: cannot be read ({error.strerror or error})") from None
    return len(files), write_image_predictions(names, results, out)


def write_image_predictions(names: list[str], results: list[dict], out: Path | None) -> str:
    """CSV (file, prediction, a probability per class), or JSON for a .json --out."""
    import pandas as pd

    classes = results[0].get("classes") or []
    if out is not None and out.suffix.lower() == ".json":
        text = json.dumps(
            {
                "files": names,
                "predictions": [r["predictions"][0] for r in results],
                "probabilities": [r["probabilities"][0] for r in results] if classes else None,
                "classes": classes or None,
            }
        )
    else:
        table = pd.DataFrame({"file": names, "prediction": [r["predictions"][0] for r in results]})
        for index, label in enumerate(classes):
            table[f"probability_{label}"] = [r["probabilities"][0][index] for r in results]
        text = table.to_csv(index=False)
    if out is not None:
        out.write_text(text)
        return ""
    return text
