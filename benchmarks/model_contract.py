"""What the model contract costs: steps/train.py's throughput with a team's model file against the built-in MLP of
the same shape, on the same synthetic table.

    python benchmarks/model_contract.py [--rows 50000] [--epochs 3] [--pairs 5]

The team's file (written here) defines exactly the built-in MLP's layers, so the only difference is the path: the
model comes through --model_code (imported under its own name, built by build_model, L1 over l1_parameters'
default) instead of steps/model.py. Runs alternate (built-in, team, built-in, ...) so that a change in the
machine's load hits both; the figure is the median over pairs of team / built-in samples/s (train.py's own loop
clock). Target: >= 0.97 (at most 3% slower). Writes benchmarks/results/model_contract.json with the commit, the
command, the date and the machine's load.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

import results_file  # noqa: E402
from synthetic import write_splits  # noqa: E402
from training import train_command  # noqa: E402

TEAM_MODEL = """
from torch import nn

def build_model(spec, dropout):
    layers, width = [], spec.n_features
    for size in spec.hidden:
        layers += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(dropout)]
        width = size
    return nn.Sequential(*layers, nn.Linear(width, spec.n_outputs))
"""


def samples_per_second(root: Path, epochs: int, model_code: str = "") -> float:
    hyperparameters = {"max_epochs": epochs, "patience": 1000, "batch_size": 64, "dropout": 0.1, "l1": 1e-5}
    if model_code:
        hyperparameters["model_code"] = model_code
    out = subprocess.run(
        train_command(root, root / "model", **hyperparameters),
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "REGULA_METRICS": "off", "REGULA_TORCH_THREADS": "1"},
    ).stdout
    return float(re.search(r"\(([0-9.]+) samples/s\)", out).group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "model_contract.json"))
    args = parser.parse_args()
    results_file.start()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_splits(root, args.rows)
        team = root / "team_mlp.py"
        team.write_text(TEAM_MODEL)
        pairs = []
        for i in range(args.pairs):
            builtin = samples_per_second(root, args.epochs)
            own = samples_per_second(root, args.epochs, str(team))
            pairs.append({"builtin": builtin, "team": own, "ratio": round(own / builtin, 4)})
            print(f"pair {i + 1}: built-in {builtin:.0f} samples/s, team model {own:.0f} ({own / builtin:.3f}x)")
    ratio = statistics.median(p["ratio"] for p in pairs)
    result = {
        "rows": args.rows,
        "epochs": args.epochs,
        "pairs": pairs,
        "median_ratio": ratio,
        "target_ratio": 0.97,
    }
    results_file.write(args.out, result)
    print(f"team model / built-in MLP, median of {len(pairs)} pairs: {ratio:.3f}x (target >= 0.97)")


if __name__ == "__main__":
    main()
