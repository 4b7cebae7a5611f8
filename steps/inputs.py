"""The input kinds' seam on the model side: what a split file holds for each kind, and the batches the model takes.

An input kind (schema.json's `kind`: "table" today) owns its split files and its batches; training, evaluation and
serving ask this module for a split's `Inputs` and never branch on the kind themselves. An Inputs is indexable:
`inputs[index]` (a tensor of row positions, or a slice) is the batch the model's forward takes, `subset(index)` the
same rows as Inputs, `to(device)` moves them, and `model_shape()` is what the model contract's spec says of them
(ModelSpec.n_features and extra). A new kind adds a class and a reader here, and its preprocessing and request
parsing beside the table's.

- table: float32 features, one row per example (steps/table.py's transform); a batch is a (rows, n_features) tensor.
- series: the same dense format, one row per forecast (series, origin, step) of steps/series.py's features.
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


def kind_of(schema: dict) -> str:
    return schema.get("kind", DEFAULT_KIND)


def read(directory, name: str, schema: dict) -> tuple[Dense, np.ndarray]:
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
    from steps.contract import read_split  # not at the top: the serving code in an artifact does not carry it

    features, labels = read_split(directory, name)
    return Dense(features), labels


READERS = {"table": _read_table, "series": _read_table}  # series: lag features, a table's dense format
