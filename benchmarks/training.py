"""The training step's command line, as the benchmarks run it."""

from __future__ import annotations

import sys
from pathlib import Path

STEPS = Path(__file__).resolve().parent.parent / "steps"


def train_command(splits: Path, model_dir: Path, **hyperparameters) -> list[str]:
    """steps/train.py on the train/ and validation/ folders under `splits`, with `--key value` per hyperparameter."""
    command = [
        sys.executable,
        str(STEPS / "train.py"),
        "--train",
        str(splits / "train"),
        "--validation",
        str(splits / "validation"),
        "--model_dir",
        str(model_dir),
    ]
    for key, value in hyperparameters.items():
        command += [f"--{key}", str(value)]
    return command


def pack(model_dir: Path) -> Path:
    """model_dir packed as SageMaker packs it, into a sibling folder: what evaluate.py reads."""
    import tarfile

    packed = model_dir.with_name(model_dir.name + "-packed")
    packed.mkdir(exist_ok=True)
    with tarfile.open(packed / "model.tar.gz", "w:gz") as tar:
        for path in sorted(model_dir.iterdir()):
            tar.add(path, arcname=path.name)
    return packed
