"""Training checkpoints: what a restarted training job (a spot interruption, a retry) resumes from.

SageMaker syncs a training job's checkpoint folder (CheckpointConfig.LocalPath, /opt/ml/checkpoints) with
CheckpointConfig.S3Uri while the job runs, and copies the S3 folder back into a restarted job. That S3 folder is
shared by every execution of the pipeline (CheckpointConfig is part of the step's cache key, so it cannot name the
execution): what a job finds there may be another run's checkpoint, or a damaged file. So a checkpoint carries the
fingerprint of the run that wrote it (the code, the hyperparameters and regularization, the input files, the number
of processes), and a job resumes only from its own; anything else is ignored, with a line saying why, never trusted.

Written atomically (a temporary file, then os.replace: a reader, or SageMaker's sync, sees the old file or the new
one, never half of one) and read with torch.load(weights_only=True): tensors and plain Python values only, no code
runs from a checkpoint.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch

CHECKPOINT_FILE = "checkpoint.pt"
FORMAT = 2  # the layout of a checkpoint: part of the fingerprint, so a new layout never reads an old file


def code_digest(files) -> str:
    """sha256 of the step code (the `steps` package's .py files and the entry script): a checkpoint of other code is
    another run's."""
    digest = hashlib.sha256()
    for path in sorted({Path(f).resolve() for f in files}, key=lambda p: (p.name, str(p))):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def differences(ours: dict, theirs: dict) -> list[str]:
    """The fingerprint's parts in which two runs differ, `part.key` within a part that is itself a dict."""
    different = []
    for part in sorted(ours.keys() | theirs.keys()):
        mine, other = ours.get(part), theirs.get(part)
        if isinstance(mine, dict) and isinstance(other, dict):
            different += [f"{part}.{k}" for k in sorted(mine.keys() | other.keys()) if mine.get(k) != other.get(k)]
        elif mine != other:
            different.append(part)
    return different


def error_line(error: Exception) -> str:
    """The line of a (long, multi-line) loading error that names the problem."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()] or [""]
    return next((line for line in lines if "error:" in line.lower()), lines[0])[:300]


def save(folder: Path, content: dict) -> Path:
    """Write `content` (with its "fingerprint") as the folder's checkpoint, replacing the one before."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / CHECKPOINT_FILE
    temporary = folder / f".{CHECKPOINT_FILE}.tmp"  # same folder: os.replace is atomic within a file system
    torch.save(content, temporary)
    os.replace(temporary, path)
    return path


def load(folder: Path, fingerprint: dict) -> tuple[dict | None, str]:
    """The folder's checkpoint when it is this run's (fingerprint equal): (content, ""); else (None, why not), the
    reason empty when there is no checkpoint at all."""
    path = folder / CHECKPOINT_FILE
    if not path.is_file():
        return None, ""
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - a damaged file raises whatever torch's reader meets
        return None, f"cannot read it ({type(error).__name__}: {error_line(error)})"
    if not isinstance(content, dict) or not isinstance(content.get("fingerprint"), dict):
        return None, "it is not a Regula training checkpoint"
    different = differences(fingerprint, content["fingerprint"])
    if different:
        return None, f"it is another run's (it differs in: {', '.join(different)})"
    return content, ""


# -- random number generators ------------------------------------------------------------------------------------
# Shuffling draws from the seeded `generator`, dropout from torch's global generator (and CUDA's on a GPU); numpy's
# is seeded too. All of them are saved, so a resumed run draws what an uninterrupted one draws.


def rng_state(generator: torch.Generator) -> dict:
    kind, keys, position, has_gauss, cached = np.random.get_state()
    return {
        "generator": generator.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
    }


def set_rng_state(state: dict, generator: torch.Generator) -> None:
    generator.set_state(state["generator"])
    torch.set_rng_state(state["torch"])
    if state["cuda"]:
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    keys = n["keys"].numpy().astype(np.uint32)
    np.random.set_state((n["kind"], keys, n["position"], n["has_gauss"], n["cached_gaussian"]))
