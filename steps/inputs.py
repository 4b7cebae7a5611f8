"""The input kinds' seam on the model side: what a split file holds for each kind, and the batches the model takes.

An input kind (schema.json's `kind`: "table" today) owns its split files and its batches; training, evaluation and
serving ask this module for a split's `Inputs` and never branch on the kind themselves. An Inputs is indexable:
`inputs[index]` (a tensor of row positions, or a slice) is the batch the model's forward takes, `subset(index)` the
same rows as Inputs, `joined(other)` the rows of both (a refit on training and validation rows), `to(device)` moves
them, and `model_shape()` is what the model contract's spec says of them
(ModelSpec.n_features and extra). A new kind adds a class and a reader here, and its preprocessing and request
parsing beside the table's.

- table: float32 features, one row per example (steps/table.py's transform); a batch is a (rows, n_features) tensor.
  A table with text columns (steps/text.py) adds a sparse bag of n-grams per row: `WithText`, whose batch is a dict
  {"features": (rows, n_features) float32, "ids": (entries,) int64, "offsets": (rows,) int64, "weights": (entries,)
  float32}: row i's n-gram ids are ids[offsets[i]:offsets[i + 1]] (the last row's run to the end) with their TF-IDF
  weights, what nn.EmbeddingBag(vocabulary, width, mode="sum") takes as (ids, offsets, per_sample_weights);
  ModelSpec.extra holds {"vocabulary": the number of n-gram ids}. docs/text.md.
- series: the same dense format, one row per forecast (series, origin, step) of steps/series.py's features;
  ModelSpec.extra holds {"window": the positions of the lag features, oldest first}, for a model over the raw window
  (examples/series_gru/model.py).
- image: uint8 pixels (rows, channels, size, size) (steps/images.py), normalized per channel with the training
  split's mean and std as each batch is taken; a batch is a float (rows, channels, size, size) tensor.

Each kind also says which raw test inputs evaluation sends through the serving code, as request bodies
(`raw_requests`): the table's raw CSV rows (as CSV and as JSON), the image's raw test files (one image per request,
and as one JSON batch of base64 images).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

DEFAULT_KIND = "table"
SCORING_PIXELS = 2**20  # input values per scoring pass of images: bounded memory for the activations


class Dense:
    """A table's inputs: float32 features, one row per example."""

    def __init__(self, features: np.ndarray | torch.Tensor):
        self.x = torch.as_tensor(features) if isinstance(features, np.ndarray) else features

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index) -> torch.Tensor:
        return self.x[index]

    def subset(self, index) -> Dense:
        return Dense(self.x[index])

    def joined(self, other: Dense) -> Dense:
        return Dense(torch.cat([self.x, other.x]))

    def to(self, device) -> Dense:
        return Dense(self.x.to(device))

    def model_shape(self) -> dict:
        return {"n_features": int(self.x.shape[1]), "extra": {}}

    def work_per_row(self) -> int:
        """The input's size per row: the thread policy weighs a training step with it."""
        return int(self.x.shape[1])

    def scoring_rows(self, rows: int) -> int:
        """Rows per forward pass when scoring without gradients (`rows`: the caller's choice for tables)."""
        return rows


class Images:
    """An image kind's inputs: uint8 pixels (rows, channels, size, size), normalized per channel as batches are
    taken (mean and std of pixel / 255 over the training split): a batch of 256 64x64 RGB images costs 12 MB of
    floats, the split stays a quarter of that as bytes."""

    def __init__(self, pixels: np.ndarray | torch.Tensor, mean, std, augmentation: str = "none"):
        self.augmentation = augmentation  # the model's training-time augmentation (steps/cnn.py), from the schema
        self.pixels = torch.as_tensor(pixels) if isinstance(pixels, np.ndarray) else pixels
        channels = self.pixels.shape[1]
        device = self.pixels.device
        self.scale = (1.0 / (255.0 * torch.as_tensor(std, dtype=torch.float32))).reshape(1, channels, 1, 1).to(device)
        self.shift = (torch.as_tensor(mean, dtype=torch.float32) * 255.0).reshape(1, channels, 1, 1).to(device)

    def __len__(self) -> int:
        return len(self.pixels)

    def __getitem__(self, index) -> torch.Tensor:
        return (self.pixels[index].float() - self.shift) * self.scale

    def _with(self, pixels: torch.Tensor) -> Images:
        other = Images.__new__(Images)
        other.pixels, other.scale, other.shift = pixels, self.scale.to(pixels.device), self.shift.to(pixels.device)
        other.augmentation = self.augmentation
        return other

    def subset(self, index) -> Images:
        return self._with(self.pixels[index])

    def joined(self, other: Images) -> Images:
        """Both splits' pixels, normalized as this one's (the training split's mean and std)."""
        return self._with(torch.cat([self.pixels, other.pixels]))

    def to(self, device) -> Images:
        return self._with(self.pixels.to(device))

    def model_shape(self) -> dict:
        shape = [int(n) for n in self.pixels.shape[1:]]
        return {"n_features": int(np.prod(shape)), "extra": {"input_shape": shape, "augmentation": self.augmentation}}

    def work_per_row(self) -> int:
        return int(np.prod(self.pixels.shape[1:]))

    def scoring_rows(self, rows: int) -> int:
        """Fewer images per forward pass than table rows: a convolution's activations are tens of times the input
        (at most SCORING_PIXELS input values per pass: 1,337 images of 28x28, 85 of 3x64x64)."""
        return max(1, min(rows, SCORING_PIXELS // self.work_per_row()))


class WithText:
    """A table's inputs with text columns: the dense features and, per row, a bag of n-gram ids with their weights
    (CSR: row i's entries are offsets[i]:offsets[i + 1])."""

    def __init__(self, features, offsets, ids, weights, vocabulary: int, notes: list[str] = ()):
        self.x = torch.as_tensor(features)
        self.offsets = torch.as_tensor(offsets).long()
        self.ids = torch.as_tensor(ids).long()
        self.weights = torch.as_tensor(weights).float()
        self.vocabulary = vocabulary
        self.notes = list(notes)  # what reading the text changed (texts cut to the limit): the response says it

    def __len__(self) -> int:
        return len(self.x)

    def _entries(self, index) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(row index, positions of the rows' entries, each row's first position in them)."""
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step == 1:  # contiguous rows: their entries are one run
                rows = torch.arange(start, max(start, stop), device=self.x.device)
                first, last = self.offsets[start], self.offsets[max(start, stop)]
                positions = torch.arange(int(first), int(last), device=self.x.device)
                return rows, positions, self.offsets[start : max(start, stop)] - first
            index = torch.arange(start, stop, step, device=self.x.device)
        index = torch.as_tensor(index, device=self.x.device).long()
        starts = self.offsets[index]
        lengths = self.offsets[index + 1] - starts
        firsts = torch.cumsum(lengths, 0) - lengths
        total = int(lengths.sum())
        positions = torch.repeat_interleave(starts - firsts, lengths, output_size=total)
        positions = positions + torch.arange(total, device=self.x.device)
        return index, positions, firsts

    def __getitem__(self, index) -> dict:
        rows, positions, firsts = self._entries(index)
        return {
            "features": self.x[rows],
            "ids": self.ids[positions],
            "offsets": firsts,
            "weights": self.weights[positions],
        }

    def subset(self, index) -> WithText:
        rows, positions, firsts = self._entries(index)
        ends = torch.cat([firsts, torch.tensor([len(positions)], device=firsts.device)])
        return WithText(self.x[rows], ends, self.ids[positions], self.weights[positions], self.vocabulary)

    def joined(self, other: WithText) -> WithText:
        offsets = torch.cat([self.offsets[:-1], other.offsets + self.offsets[-1]])
        ids, weights = torch.cat([self.ids, other.ids]), torch.cat([self.weights, other.weights])
        return WithText(torch.cat([self.x, other.x]), offsets, ids, weights, self.vocabulary)

    def to(self, device) -> WithText:
        moved = WithText(
            self.x.to(device), self.offsets.to(device), self.ids.to(device), self.weights.to(device), self.vocabulary
        )
        moved.notes = self.notes
        return moved

    def model_shape(self) -> dict:
        return {"n_features": int(self.x.shape[1]), "extra": {"vocabulary": self.vocabulary}}

    def scoring_rows(self, rows: int) -> int:
        """Rows per forward pass when scoring without gradients: as a table's."""
        return rows

    def work_per_row(self) -> int:
        return int(self.x.shape[1]) + int(self.offsets[-1]) // max(len(self), 1)


def kind_of(schema: dict) -> str:
    return schema.get("kind", DEFAULT_KIND)


def read(directory, name: str, schema: dict) -> tuple[Dense | WithText | Images, np.ndarray]:
    """A split's inputs and labels (int64 class indices, or float32 targets), for the schema's input kind."""
    kind = kind_of(schema)
    if kind not in READERS:
        raise ValueError(f"unknown input kind {kind!r} in the schema; this build reads {', '.join(READERS)}")
    return READERS[kind](directory, name, schema)


def as_inputs(features, schema: dict) -> Dense | Images:
    """Already-encoded inputs (what the serving transform returns) as the kind's Inputs."""
    if hasattr(features, "subset"):  # an Inputs already (of this module or of an artifact's copy of it)
        return features
    return Dense(np.ascontiguousarray(features, dtype=np.float32))


def _read_table(directory, name: str, schema: dict) -> tuple[Dense, np.ndarray]:
    from steps import text
    from steps.contract import read_split  # not at the top: the serving code in an artifact does not carry it

    features, labels = read_split(directory, name)
    transform = schema.get("transform") or {"columns": []}  # a hand-made schema may carry no transform
    if not text.text_columns(transform):
        return Dense(features), labels
    block = text.read_block(directory, name)
    vocabulary = text.vocabulary_size(transform)
    return WithText(features, block.offsets, block.ids, block.weights, vocabulary), labels


def _read_images(directory, name: str, schema: dict) -> tuple[Images, np.ndarray]:
    from steps.contract import StepError

    directory = Path(directory)
    try:
        pixels = np.load(directory / "images.npy")
        labels = np.load(directory / "labels.npy").astype(np.int64)
    except (OSError, ValueError) as error:
        raise StepError(f"cannot read the {name} split's images in {directory}: {error}") from None
    image = schema["image"]
    return Images(pixels, image["mean"], image["std"], image.get("augmentation", "none")), labels


class SeriesRows(Dense):
    """A time series' forecasts: the dense features, and where the raw window (the lags) is among them."""

    def __init__(self, features, window: list[int]):
        super().__init__(features)
        self.window = window

    def subset(self, index) -> SeriesRows:
        return SeriesRows(self.x[index], self.window)

    def joined(self, other: SeriesRows) -> SeriesRows:
        return SeriesRows(torch.cat([self.x, other.x]), self.window)

    def to(self, device) -> SeriesRows:
        return SeriesRows(self.x.to(device), self.window)

    def model_shape(self) -> dict:
        return {"n_features": int(self.x.shape[1]), "extra": {"window": self.window}}


def window_positions(names: list[str]) -> list[int]:
    """The positions of the features "lag k" (y[t + 1 - k] - y[t], steps/series.py), the largest k (oldest) first."""
    lags = {int(n.split()[1]): i for i, n in enumerate(names) if n.startswith("lag ") and n.split()[1].isdigit()}
    return [lags[k] for k in sorted(lags, reverse=True)]


def _read_series(directory, name: str, schema: dict) -> tuple[SeriesRows, np.ndarray]:
    dense, labels = _read_table(directory, name, schema)
    return SeriesRows(dense.x, window_positions(schema["features"])), labels


READERS = {"table": _read_table, "image": _read_images, "series": _read_series}


# -- the raw test inputs evaluation scores through the serving code: (how, [(body, content type), ...]) ----------


def _table_requests(test_dir: Path, inference) -> list[tuple[str, list]]:
    from steps.contract import RAW_SAMPLE, StepError

    path = test_dir / RAW_SAMPLE
    if not path.exists():
        raise StepError(f"missing {path}: preprocessing writes it")
    body = path.read_bytes()
    as_json = inference.read_rows(body, "text/csv").to_json(orient="records")  # the same rows as JSON records
    return [("CSV", [(body, "text/csv")]), ("JSON", [(as_json, "application/json")])]


def _image_requests(test_dir: Path, inference) -> list[tuple[str, list]]:
    import base64
    import json

    from steps.contract import StepError

    files = sorted((test_dir / "raw_images").glob("*"))
    if not files:
        raise StepError(f"no raw test images in {test_dir / 'raw_images'}: preprocessing writes them")
    bodies = [path.read_bytes() for path in files]
    batch = json.dumps({"instances": [{"image": base64.b64encode(b).decode()} for b in bodies]})
    return [("image", [(b, "application/x-image") for b in bodies]), ("base64 JSON", [(batch, "application/json")])]


RAW_REQUESTS = {"table": _table_requests, "image": _image_requests, "series": _table_requests}


def raw_requests(test_dir, schema: dict, inference) -> list[tuple[str, list]]:
    """The kind's raw test inputs as request bodies, by how they are sent; `inference` parses the table's CSV."""
    return RAW_REQUESTS[kind_of(schema)](Path(test_dir), inference)
