"""A synthetic classification table in the layout preprocessing writes, big enough to time training on."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def write_splits(root: Path, rows: int, features: int = 64, classes: int = 10) -> None:
    rng = np.random.default_rng(0)
    for name, n in (("train", rows), ("validation", rows // 10)):
        x = rng.standard_normal((n, features)).astype(np.float32)
        y = (x[:, :classes].argmax(1) + (rng.random(n) < 0.1)) % classes
        (root / name).mkdir(parents=True, exist_ok=True)
        table = np.column_stack([y, x])
        header = "label," + ",".join(f"f{i}" for i in range(features))
        np.savetxt(root / name / f"{name}.csv", table, delimiter=",", header=header, comments="", fmt="%.5g")
    schema = {"features": [f"f{i}" for i in range(features)], "classes": list(range(classes))}
    (root / "train" / "schema.json").write_text(json.dumps(schema))
