"""Training-step throughput: steps/train.py against a bare PyTorch loop on the same model and data.

    python benchmarks/gpu_throughput.py [--rows 200000] [--epochs 5] [--out benchmarks/results/throughput.json]

Runs where it is started: on a GPU (AMP on) when one is there, else on the CPU. The bare loop is the
least a training step can do: the same MLP and objective (cross-entropy + L1), batch size, optimizer
and autocast, batches by random index, no validation, no early stopping, no metrics. train.py is timed
by its own loop clock, which includes what it does besides training each epoch (validation, the
training-set gap pass; CloudWatch is off here). Target: train.py >= 0.9x the bare loop's samples/s.
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import results_file  # noqa: E402  (benchmarks/, the script's own folder, is on the path)
from synthetic import write_splits  # noqa: E402
from training import train_command  # noqa: E402

from steps.contract import read_split, torch_threads  # noqa: E402
from steps.model import MLP  # noqa: E402

HIDDEN, BATCH, LR, L1 = [256, 256], 64, 1e-3, 1e-5


def regula_samples_per_second(root: Path, epochs: int, batch: int) -> float:
    hyperparameters = {
        "max_epochs": epochs,
        "patience": 1000,
        "batch_size": batch,
        "dropout": 0.1,
        "l1": L1,
        "l2": 0.01,
    }
    out = subprocess.run(
        train_command(root, root / "model", **hyperparameters),
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "REGULA_METRICS": "off"},
    ).stdout
    return float(re.search(r"\(([0-9.]+) samples/s\)", out).group(1))


def bare_samples_per_second(root: Path, epochs: int, batch: int) -> float:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    features, labels = read_split(root / "train", "train")
    x, y = torch.from_numpy(features).to(device), torch.from_numpy(labels).to(device)
    widths = [x.shape[1], *HIDDEN, 10]
    torch.set_num_threads(torch_threads(batch * sum(a * b for a, b in itertools.pairwise(widths))))  # as train.py
    model = MLP(x.shape[1], 10, HIDDEN, 0.1).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.01)
    amp_dtype = torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else torch.float16
    amp = {"device_type": device.type, "dtype": amp_dtype, "enabled": device.type == "cuda"}
    scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda" and amp_dtype == torch.float16)
    model.train()
    started = None
    for epoch in range(epochs + 1):  # epoch 0 warms up (allocator, kernels) and is not timed
        if epoch == 1:
            if device.type == "cuda":
                torch.cuda.synchronize()
            started = time.perf_counter()
        order = torch.randperm(len(x), device=device)
        for i in range(0, len(x), batch):
            index = order[i : i + batch]
            with torch.autocast(**amp):
                loss = F.cross_entropy(model(x[index]).float(), y[index]) + L1 * model.l1_norm()
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return epochs * len(x) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=BATCH)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "throughput.json"))
    args = parser.parse_args()
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_splits(root, args.rows)
        bare = bare_samples_per_second(root, args.epochs, args.batch_size)
        regula = regula_samples_per_second(root, args.epochs, args.batch_size)
    result = {
        "device": device,
        "rows": args.rows,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "bare_samples_per_second": round(bare),
        "regula_samples_per_second": round(regula),
        "ratio": round(regula / bare, 3),
        "target_ratio": 0.9,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    results_file.write(args.out, result)
    print(f"{'device':<10} {'bare samples/s':>15} {'train.py samples/s':>19} {'ratio':>6}  target")
    print(f"{device:<10} {bare:>15.0f} {regula:>19.0f} {regula / bare:>6.3f}  >= 0.9")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
