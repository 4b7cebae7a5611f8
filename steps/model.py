"""The MLP that Regula trains, and how its artifact is saved and loaded.

Shared by the training script, the evaluation script and the inference code
packed into model.tar.gz, so the three cannot drift apart.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn


class MLP(nn.Module):
    def __init__(self, n_features: int, n_outputs: int, hidden: list[int], dropout: float):
        super().__init__()
        layers: list[nn.Module] = []
        width = n_features
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(dropout)]
            width = size
        layers.append(nn.Linear(width, n_outputs))  # class logits, or one standardized target
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def l1_norm(self) -> torch.Tensor:
        """Sum of absolute weights (biases are not penalized)."""
        return sum(m.weight.abs().sum() for m in self.net if isinstance(m, nn.Linear))


def save(model: MLP, config: dict, model_dir: Path) -> None:
    model_dir.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), model_dir / "model.pt")
    (model_dir / "config.json").write_text(json.dumps(config, indent=2))


def load(model_dir: Path, device: str = "cpu") -> tuple[MLP, dict]:
    config = json.loads((Path(model_dir) / "config.json").read_text())
    model = MLP(config["n_features"], config["n_outputs"], config["hidden"], config["dropout"])
    state = torch.load(Path(model_dir) / "model.pt", map_location=device, weights_only=True)
    model.load_state_dict(state)
    return model.to(device).eval(), config
