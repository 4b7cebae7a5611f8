"""A synthetic classification table in the layout preprocessing writes, big enough to time training on."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from steps.contract import SCHEMA, write_split  # noqa: E402


def write_splits(root: Path, rows: int, features: int = 64, classes: int = 10) -> None:
    rng = np.random.default_rng(0)
    names = [f"f{i}" for i in range(features)]
    for name, n in (("train", rows), ("validation", rows // 10)):
        x = rng.standard_normal((n, features)).astype(np.float32)
        y = ((x[:, :classes].argmax(1) + (rng.random(n) < 0.1)) % classes).astype(np.int64)
        write_split(root / name, name, [(x, y)], names)
        if name == "train":
            counts = np.bincount(y, minlength=classes).tolist()
    schema = {
        "problem_type": "classification",
        "features": names,
        "classes": list(range(classes)),
        "class_counts": counts,
    }
    (root / "train" / SCHEMA).write_text(json.dumps(schema))
