"""Regula's own model, the MLP (the built-in `build_model` of the model contract, steps/model_code.py), and how
any round's model is saved into and loaded from its artifact.

Shared by the training script, the evaluation script and the inference code packed into model.tar.gz, so the three
cannot drift apart.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from steps import model_code


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


def build_model(spec, dropout: float) -> nn.Module:
    """The built-in model for the spec's input kind: the CNN for images (steps/cnn.py), else an MLP with
    HiddenLayers' widths over the transformed features."""
    if spec.input_kind == "image":
        from steps import cnn  # not at the top: an artifact packed before the image kind carries no cnn.py

        return cnn.build_model(spec, dropout)
    return MLP(spec.n_features, spec.n_outputs, list(spec.hidden), dropout)


def save(model: nn.Module, config: dict, model_dir: Path) -> None:
    model_dir.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), model_dir / "model.pt")
    (model_dir / "config.json").write_text(json.dumps(config, indent=2))


def load(model_dir: Path, device: str = "cpu") -> tuple[nn.Module, dict]:
    """The round's model as training saved it: built by the code it was trained with (the artifact's own, checked
    by its sha256), in eval mode."""
    config = json.loads((Path(model_dir) / "config.json").read_text())
    if "spec" in config:
        spec = model_code.ModelSpec.from_dict(config["spec"])
        record = config.get("model_code") or {"name": model_code.BUILTIN}
        if record.get("name") == model_code.BUILTIN:  # this module's MLP: the artifact's own copy of it
            model = build_model(spec, config["dropout"])
        else:  # the team's code, from the artifact's code/model_code/ alone
            code = model_code.load_packed(record, Path(model_dir) / "code")
            model = model_code.build(code, spec, config["dropout"])
    else:  # an artifact saved before the model contract: always the MLP
        model = MLP(config["n_features"], config["n_outputs"], config["hidden"], config["dropout"])
    state = torch.load(Path(model_dir) / "model.pt", map_location=device, weights_only=True)
    model.load_state_dict(state)
    return model.to(device).eval(), config
