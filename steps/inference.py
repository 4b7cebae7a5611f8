"""Inference handlers for the SageMaker PyTorch serving container: raw rows in, predictions out.

Packed as code/steps/inference.py in model.tar.gz beside model.py and table.py, the same code evaluation scores with and
`regula predict` runs. Accepts the team's own rows, columns matched by name in any order:

- text/csv with a header row;
- application/json: a list of objects, {"instances": [objects]}, or one object;
- application/jsonlines: one object per line.

The fitted table transform encodes them exactly as in training. Columns the training data had gaps in may be left
out (they are imputed); a missing required column or a value of the wrong type is a client error (HTTP 400) naming
every problem, never a silent prediction. Extra columns are ignored. Returns JSON: the predicted labels (and class
probabilities), or the predicted values for regression.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from steps import text
from steps.inputs import WithText, as_inputs
from steps.model import load
from steps.table import TableError, transform

CONTENT_TYPES = ("text/csv", "application/json", "application/jsonlines")
BATCH_ROWS = 65_536  # rows scored per forward pass: bounded memory on any table size

try:  # in the serving container, an error of this type becomes an HTTP 4xx response instead of a 500
    from sagemaker_inference.errors import BaseInferenceToolkitError

    class ClientError(BaseInferenceToolkitError, ValueError):
        """The request is wrong, not the model: HTTP 400 with the message."""

        def __init__(self, message: str):
            super().__init__(400, message, "Bad Request")
            self.text = message

        def __str__(self) -> str:
            return self.text

except ImportError:  # anywhere else: evaluation, regula predict

    class ClientError(ValueError):
        """The request is wrong, not the model."""


class Predictor:
    def __init__(self, model_dir: str | Path):
        self.model, self.config = load(Path(model_dir))
        self.schema = json.loads((Path(model_dir) / "schema.json").read_text())
        self.classification = self.schema["problem_type"] == "classification"
        self.classes = self.schema.get("classes")
        # ClassWeight=balanced: pick the class with the highest probability relative to its training share
        self.shares = None
        if self.classification and self.schema.get("class_weight") == "balanced":
            counts = np.asarray(self.schema["class_counts"], dtype=np.float64)
            self.shares = np.maximum(counts, 1) / counts.sum()

    @torch.no_grad()
    def outputs(self, features) -> np.ndarray:
        """Class probabilities (rows x classes) or predicted values (rows) of already-encoded inputs (an array of
        transformed table features, or the input kind's Inputs: steps/inputs.py)."""
        results = []
        data = as_inputs(features, self.schema)
        for start in range(0, len(data), BATCH_ROWS):
            out = self.model(data[start : start + BATCH_ROWS])
            if self.classification:
                results.append(torch.softmax(out.float(), dim=1).numpy())
            else:
                results.append(out[:, 0].double().numpy() * self.schema["target_std"] + self.schema["target_mean"])
        if not results:
            return np.zeros((0, len(self.classes)) if self.classification else 0)
        return np.concatenate(results)

    def labels(self, probabilities: np.ndarray) -> np.ndarray:
        """The predicted class index of each row."""
        return (probabilities if self.shares is None else probabilities / self.shares).argmax(1)

    def features(self, rows):
        """A request's rows (what read_rows parsed) encoded as the model's inputs, by the schema's input kind."""
        return ENCODERS[self.schema.get("kind", "table")](self, rows)

    def table_features(self, rows: pd.DataFrame) -> np.ndarray:
        """A table's raw rows through the fitted table transform."""
        if rows.empty:
            raise ClientError("no rows to score")
        known = self.schema["input_columns"]
        if not set(map(str, rows.columns)) & set(known):
            raise ClientError(
                f"the rows have none of the model's columns (got {', '.join(map(str, list(rows.columns)[:5]))}; "
                f"expected {', '.join(known[:5])}{', ...' if len(known) > 5 else ''}): a CSV body needs a header row"
            )
        spec, problems = self.schema["transform"], []
        try:
            dense = transform(rows, spec)
        except TableError as error:
            problems, dense = error.problems, None
        if text.text_columns(spec):  # free text: the bag of n-grams beside the dense features (steps/text.py)
            block, bad, notes = text.encode(rows, spec)
            problems += bad
            if not problems:
                return WithText(dense, block.offsets, block.ids, block.weights, text.vocabulary_size(spec), notes)
        if problems:
            raise ClientError(str(TableError(problems)))
        return dense

    def predict(self, rows: pd.DataFrame) -> dict:
        features = self.features(rows)
        outputs = self.outputs(features)
        # what reading the rows changed (a text cut to the limit): said in the response, never silent
        warnings = {"warnings": list(features.notes)} if getattr(features, "notes", None) else {}
        if not self.classification:
            return {"predictions": outputs.astype(np.float64).round(6).tolist(), **warnings}
        return {
            "predictions": [self.classes[i] for i in self.labels(outputs)],
            "probabilities": outputs.astype(np.float64).round(6).tolist(),
            "classes": self.classes,
            **warnings,
        }


# the input kinds' request encoders (steps/inputs.py holds their training side)
ENCODERS = {"table": Predictor.table_features}


def read_rows(body, content_type: str) -> pd.DataFrame:
    """A request body as a frame of raw rows; ClientError for anything that is not rows with named columns."""
    try:
        rows = _read_rows(body, content_type)
    except (RecursionError, ValueError, TypeError) as error:  # absurd nesting, huge numbers, odd bodies
        if isinstance(error, ClientError):
            raise
        raise ClientError(f"cannot read the body: {type(error).__name__}: {str(error)[:200]}") from None
    names = [str(c).strip() for c in rows.columns]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ClientError(f"duplicate column names: {', '.join(duplicates)}")
    rows.columns = names
    return rows


def _read_rows(body, content_type: str) -> pd.DataFrame:
    content_type = (content_type or "").split(";")[0].strip().lower()
    if isinstance(body, (bytes, bytearray, memoryview)):
        try:
            body = bytes(body).decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ClientError("the body is not UTF-8 text") from None
    if content_type == "text/csv":
        try:
            # index_col=False: a trailing delimiter must not turn the first column into the row index
            rows = pd.read_csv(io.StringIO(body), skipinitialspace=True, index_col=False)
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as error:
            raise ClientError(f"cannot read the CSV body: {str(error).strip().splitlines()[0]}") from None
        header = next(csv.reader(io.StringIO(body)), [])
        if len(header) == rows.shape[1]:  # pandas renames duplicates (age, age.1): the header says what was sent
            rows.columns = header
        return rows
    if content_type in ("application/json", "application/jsonlines"):
        try:
            if content_type == "application/jsonlines":
                records = [json.loads(line) for line in body.splitlines() if line.strip()]
            else:
                records = json.loads(body)
        except json.JSONDecodeError as error:
            raise ClientError(f"cannot read the JSON body: {error}") from None
        if isinstance(records, dict):
            records = records.get("instances", [records])
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise ClientError('JSON rows must be objects keyed by column name, e.g. [{"age": 41, "city": "Oslo"}]')
        return pd.DataFrame.from_records(records)
    raise ClientError(f"unsupported content type {content_type!r}; use one of {', '.join(CONTENT_TYPES)}")


# -- the SageMaker serving handlers ---------------------------------------------------------------------------------


def model_fn(model_dir: str) -> Predictor:
    return Predictor(model_dir)


def input_fn(body, content_type: str = "text/csv") -> pd.DataFrame:
    return read_rows(body, content_type)


def predict_fn(rows: pd.DataFrame, predictor: Predictor) -> dict:
    return predictor.predict(rows)


def output_fn(prediction: dict, accept: str = "application/json") -> str:
    return json.dumps(prediction)
