"""The input kinds' seam on the model side: what a split file holds for each kind, and the batches the model takes.

An input kind (schema.json's `kind`: "table" today) owns its split files and its batches; training, evaluation and
serving ask this module for a split's `Inputs` and never branch on the kind themselves. An Inputs is indexable:
`inputs[index]` (a tensor of row positions, or a slice) is the batch the model's forward takes, `subset(index)` the
same rows as Inputs, `to(device)` moves them, and `model_shape()` is what the model contract's spec says of them
(ModelSpec.n_features and extra). A new kind adds a class and a reader here, and its preprocessing and request
parsing beside the table's.

- table: float32 features, one row per example (steps/table.py's transform); a batch is a (rows, n_features) tensor.
  A table with text columns (steps/text.py) adds a sparse bag of n-grams per row: `WithText`, whose batch is a dict
  {"features": (rows, n_features) float32, "ids": (entries,) int64, "offsets": (rows,) int64, "weights": (entries,)
  float32}: row i's n-gram ids are ids[offsets[i]:offsets[i + 1]] (the last row's run to the end) with their TF-IDF
  weights, what nn.EmbeddingBag(vocabulary, width, mode="sum") takes as (ids, offsets, per_sample_weights);
  ModelSpec.extra holds {"vocabulary": the number of n-gram ids}. docs/text.md.
"""

from __future__ import annotations

import numpy as np
import torch

DEFAULT_KIND = "table"


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

    def to(self, device) -> Dense:
        return Dense(self.x.to(device))

    def model_shape(self) -> dict:
        return {"n_features": int(self.x.shape[1]), "extra": {}}

    def work_per_row(self) -> int:
        """The input's size per row: the thread policy weighs a training step with it."""
        return int(self.x.shape[1])


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

    def to(self, device) -> WithText:
        moved = WithText(
            self.x.to(device), self.offsets.to(device), self.ids.to(device), self.weights.to(device), self.vocabulary
        )
        moved.notes = self.notes
        return moved

    def model_shape(self) -> dict:
        return {"n_features": int(self.x.shape[1]), "extra": {"vocabulary": self.vocabulary}}

    def work_per_row(self) -> int:
        return int(self.x.shape[1]) + int(self.offsets[-1]) // max(len(self), 1)


def kind_of(schema: dict) -> str:
    return schema.get("kind", DEFAULT_KIND)


def read(directory, name: str, schema: dict) -> tuple[Dense | WithText, np.ndarray]:
    """A split's inputs and labels (int64 class indices, or float32 targets), for the schema's input kind."""
    kind = kind_of(schema)
    if kind not in READERS:
        raise ValueError(f"unknown input kind {kind!r} in the schema; this build reads {', '.join(READERS)}")
    return READERS[kind](directory, name, schema)


def as_inputs(features, schema: dict) -> Dense:
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


READERS = {"table": _read_table}
