"""Inference handlers for the SageMaker PyTorch serving container: raw rows in, predictions out.

Packed as code/steps/inference.py in model.tar.gz beside model.py and table.py, the same code evaluation scores with and
`regula predict` runs. Accepts the team's own rows, columns matched by name in any order:

- text/csv with a header row;
- application/json: a list of objects, {"instances": [objects]}, or one object;
- application/jsonlines: one object per line.

An image model (schema kind "image") takes one image per request as `application/x-image`, `image/png` or
`image/jpeg` (PNG, JPEG, WebP, BMP are read whatever the type says), or a batch as JSON objects with the image's bytes
in base64 under "image": {"instances": [{"image": "iVBORw0..."}, ...]}. An image that cannot be decoded, claims more
pixels than the limit (steps/image_decode.py: a decompression bomb is refused before it is decoded) or is not of the
model's channels (grayscale or colour) is a client error naming it.

The fitted table transform encodes them exactly as in training. Columns the training data had gaps in may be left
out (they are imputed); a missing required column or a value of the wrong type is a client error (HTTP 400) naming
every problem, never a silent prediction. Extra columns are ignored (JSON keys beyond the model's columns are
dropped while reading: `frame_records` bounds them). Returns JSON: the predicted labels (and class
probabilities), or the predicted values for regression.
"""

from __future__ import annotations

import collections
import csv
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from steps import image_decode, series, target_scale, text
from steps.inputs import Images, WithText, as_inputs
from steps.model import load
from steps.table import TableError, transform
from steps.table_values import field_beyond_header

CONTENT_TYPES = ("text/csv", "application/json", "application/jsonlines")
IMAGE_CONTENT_TYPES = ("application/x-image", "image/png", "image/jpeg")
MAX_REQUEST_COLUMNS = 10_000  # a request's columns (the model reads its own; a wider header is an attack or a mistake)
MAX_REQUEST_SERIES = 1_000  # series forecast by one request (steps/series.py encodes them one at a time)
BATCH_ROWS = 65_536  # rows scored per forward pass: bounded memory on any table size
# JSON records become a frame of rows x columns: records with distinct keys would make that quadratic in the body
# (16,000 one-key records of 192 KB: a 16,000 x 16,000 frame). Keys that are not the model's columns are ignored,
# but at most this many distinct ones per request; the frame's cells are bounded by the body's length.
MAX_EXTRA_KEYS = 4096
MAX_COLUMNS = 65_536  # distinct keys when the model's columns are not known (input_fn, evaluation's own rows)
CELLS_PER_CHARACTER = 1  # a dense record spends >= 5 characters a cell ("a":1,): this leaves room for sparse ones
MIN_CELLS = 1 << 20

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
        rows = data.scoring_rows(BATCH_ROWS) if hasattr(data, "scoring_rows") else BATCH_ROWS  # older Inputs: none
        for start in range(0, len(data), rows):
            out = self.model(data[start : start + rows])
            if self.classification:
                results.append(torch.softmax(out.float(), dim=1).numpy())
            else:
                results.append(target_scale.from_model(self.schema, out[:, 0].double().numpy()))
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
        if isinstance(rows, ImageRequest):
            raise ClientError("this model scores table rows (text/csv or JSON objects), not images")
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

    def series_features(self, rows: pd.DataFrame) -> series.Forecasts:
        """A time series' recent history rows -> the features of its next Horizon values (steps/series.py)."""
        if rows.empty:
            raise ClientError("no rows to forecast from")
        keys = self.schema["series"]["series_columns"]
        present = [k for k in keys if k in rows.columns]
        many = len(rows.drop_duplicates(present)) if present else 1
        if many > MAX_REQUEST_SERIES:  # each series is encoded on its own: bound a request's work and its answer
            raise ClientError(f"the rows hold {many} series; a request may forecast at most {MAX_REQUEST_SERIES}")
        try:
            return series.encode(rows, self.schema)
        except TableError as error:
            raise ClientError(str(error)) from None

    def read_rows(self, body, content_type: str) -> pd.DataFrame:
        """A request body as raw rows, JSON records read against the model's columns only (`read_rows`)."""
        kind = self.schema.get("kind", "table")
        columns = ["image"] if kind == "image" else self.schema.get("input_columns")  # JSON batches: base64 "image"
        return read_rows(body, content_type, columns)

    def predict(self, rows: pd.DataFrame) -> dict:
        features = self.features(rows)
        outputs = self.outputs(features)
        if hasattr(features, "answer"):  # an input kind that answers in its own terms (series: forecasts, times)
            return features.answer(outputs)
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

    def image_features(self, rows) -> Images:
        """Images (an image body, or JSON objects with base64 "image") decoded as the model's inputs."""
        if isinstance(rows, ImageRequest):
            bodies = rows.bodies
        elif "image" in getattr(rows, "columns", ()):
            bodies = [base64_image(value, i) for i, value in enumerate(rows["image"])]
        else:
            raise ClientError(
                "this model scores images: send one as application/x-image, image/png or image/jpeg, or a batch as "
                'JSON {"instances": [{"image": "<base64 bytes>"}, ...]}'
            )
        if not bodies:
            raise ClientError("no images to score")
        image = self.schema["image"]
        pixels = np.empty((len(bodies), image["channels"], image["size"], image["size"]), dtype=np.uint8)
        for i, body in enumerate(bodies):
            try:
                pixels[i] = image_decode.decode(body, image["channels"], image["size"])
            except image_decode.ImageError as error:
                raise ClientError(f"image {i + 1} of {len(bodies)}: {error}") from None
        return Images(pixels, image["mean"], image["std"])


class ImageRequest:
    """The images of a request, as bytes: one image body, or the decoded base64 images of a JSON batch."""

    def __init__(self, bodies: list[bytes]):
        self.bodies = bodies

    def __len__(self) -> int:
        return len(self.bodies)


def base64_image(value, index: int) -> bytes:
    import base64
    import binascii

    if not isinstance(value, str) or not value:
        raise ClientError(
            f'image {index + 1}: "image" must be the image\'s bytes in base64, got {type(value).__name__}'
        )
    if value.startswith("data:") and "," in value:  # a data URL: data:image/png;base64,....
        value = value.split(",", 1)[1]
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ClientError(f'image {index + 1}: "image" is not valid base64') from None


# the input kinds' request encoders (steps/inputs.py holds their training side)
ENCODERS = {
    "table": Predictor.table_features,
    "image": Predictor.image_features,
    "series": Predictor.series_features,
}


def read_rows(body, content_type: str, columns: list[str] | None = None) -> pd.DataFrame:
    """A request body as a frame of raw rows (or, for an image content type, the image: ImageRequest); ClientError
    for anything that is not rows with named columns. `columns`: the model's input columns; JSON keys outside them
    are dropped while reading (`frame_records`)."""
    if (content_type or "").split(";")[0].strip().lower() in IMAGE_CONTENT_TYPES:
        return ImageRequest([bytes(body)])
    try:
        rows = _read_rows(body, content_type, columns)
    except (RecursionError, ValueError, TypeError) as error:  # absurd nesting, huge numbers, odd bodies
        if isinstance(error, ClientError):
            raise
        raise ClientError(f"cannot read the body: {type(error).__name__}: {str(error)[:200]}") from None
    names = [str(c).strip() for c in rows.columns]
    if len(names) > MAX_REQUEST_COLUMNS:
        raise ClientError(f"the body has {len(names)} columns; a request may have at most {MAX_REQUEST_COLUMNS}")
    counts = collections.Counter(names)  # linear: a wide header must not cost its square
    duplicates = sorted(n for n, k in counts.items() if k > 1)
    if duplicates:
        raise ClientError(f"duplicate column names: {', '.join(duplicates)}")
    rows.columns = names
    return rows


def frame_records(records: list[dict], columns: list[str] | None, length: int) -> pd.DataFrame:
    """JSON records as a frame in time and memory linear in the body's `length`: one column per key that is one of
    the model's `columns` (any key when they are unknown), at most MAX_EXTRA_KEYS distinct others (ignored), and
    no more cells than CELLS_PER_CHARACTER x `length`. A missing key is a missing value, as in pandas."""
    wanted = None if columns is None else set(columns)
    names: dict[str, None] = {}  # the frame's columns in first-seen order
    extra: set[str] = set()
    for record in records:
        for key in record:
            if key in names or key in extra:
                continue
            if wanted is None or key in wanted:
                names[key] = None
                if len(names) > MAX_COLUMNS:
                    raise ClientError(f"the JSON records carry over {MAX_COLUMNS} distinct keys")
            else:
                extra.add(key)
                if len(extra) > MAX_EXTRA_KEYS:
                    raise ClientError(
                        f"the JSON records carry over {MAX_EXTRA_KEYS} distinct keys that are not the model's "
                        f"columns (e.g. {', '.join(sorted(extra)[:3])}): send the model's columns"
                    )
    cells = len(records) * len(names)
    if cells > max(MIN_CELLS, CELLS_PER_CHARACTER * length):
        raise ClientError(
            f"the JSON records are too sparse: {len(records)} records x {len(names)} distinct keys for a body of "
            f"{length} characters; send records with the same keys"
        )
    data = {name: [record.get(name, np.nan) for record in records] for name in names}
    return pd.DataFrame(data, index=pd.RangeIndex(len(records)))


def _read_rows(body, content_type: str, columns: list[str] | None = None) -> pd.DataFrame:
    content_type = (content_type or "").split(";")[0].strip().lower()
    if isinstance(body, (bytes, bytearray, memoryview)):
        body = bytes(body)
        try:
            body = body.decode("utf-8-sig")
        except UnicodeDecodeError as error:  # strictly: another encoding would change what the categories say
            line = body.count(b"\n", 0, error.start) + 1
            byte = error.start - body.rfind(b"\n", 0, error.start)
            raise ClientError(
                f"the body is not UTF-8 text: line {line}, byte {byte} (0x{body[error.start]:02x}); send UTF-8"
            ) from None
    if content_type == "text/csv":
        wrong = field_beyond_header(io.StringIO(body), ",", skipinitialspace=True)
        if wrong:  # pandas would drop (or shift) the field
            raise ClientError(f"the CSV body's {wrong}: a value holding a comma needs quotes")
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
        return frame_records(records, columns, len(body))
    kinds = ", ".join((*CONTENT_TYPES, *IMAGE_CONTENT_TYPES))
    raise ClientError(f"unsupported content type {content_type!r}; use one of {kinds}")


# -- the SageMaker serving handlers ---------------------------------------------------------------------------------


def model_fn(model_dir: str) -> Predictor:
    return Predictor(model_dir)


def input_fn(body, content_type: str = "text/csv") -> pd.DataFrame:
    return read_rows(body, content_type)


def predict_fn(rows: pd.DataFrame, predictor: Predictor) -> dict:
    return predictor.predict(rows)


def output_fn(prediction: dict, accept: str = "application/json") -> str:
    return json.dumps(prediction)
