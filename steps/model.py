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

from steps import cnn, model_code


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


class TextMLP(nn.Module):
    """The MLP over a table with text columns (steps/inputs.py's WithText batches): its first layer is a linear layer
    over the dense features plus an nn.EmbeddingBag over the rows' n-gram ids weighted by their TF-IDF weights (the
    same product as a linear layer over the sparse bag of n-grams, without the zeros); the layers after it are the
    MLP's. Row j of the text layer's weight is n-gram j's: where L1 has driven it to zero, the n-gram is not used."""

    def __init__(
        self,
        n_features: int,
        vocabulary: int,
        n_outputs: int,
        hidden: list[int],
        dropout: float,
        ngram_dropout: float | None = None,
    ):
        super().__init__()
        self.ngram_dropout = TEXT_NGRAM_DROPOUT if ngram_dropout is None else ngram_dropout
        width = hidden[0] if hidden else n_outputs
        # sparse gradients: training updates only the rows of a batch's n-grams (steps/lazy_rows.py)
        self.text = nn.EmbeddingBag(vocabulary, width, mode="sum", sparse=True)
        # a linear layer's initialization, over the bag's unit-norm rows (fan-in: the vocabulary)
        nn.init.uniform_(self.text.weight, -(vocabulary**-0.5), vocabulary**-0.5)
        self.dense = nn.Linear(n_features, width) if n_features else None
        self.bias = None if n_features else nn.Parameter(torch.zeros(width))
        layers: list[nn.Module] = []
        if hidden:
            layers += [nn.ReLU(), nn.Dropout(dropout)]
            for size in hidden[1:]:
                layers += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(dropout)]
                width = size
            layers.append(nn.Linear(width, n_outputs))
        self.net = nn.Sequential(*layers)

    def forward(self, batch: dict) -> torch.Tensor:
        weights = batch["weights"]
        if self.training and self.ngram_dropout > 0:  # each n-gram entry of a row dropped, the rest scaled up
            keep = torch.rand_like(weights) >= self.ngram_dropout
            weights = weights * keep / (1 - self.ngram_dropout)
        first = self.text(batch["ids"], batch["offsets"], per_sample_weights=weights)
        first = first + (self.dense(batch["features"]) if self.dense is not None else self.bias)
        return self.net(first)

    def l1_proximal_parameters(self) -> dict[nn.Parameter, float]:
        """L1 on the n-gram weights as a proximal step (steps/proximal.py), TEXT_L1_SCALE times the round's L1:
        exact zeros, n-grams one can count."""
        return {self.text.weight: TEXT_L1_SCALE}

    def feature_usage(self) -> dict:
        """How many n-grams the model still uses: rows of the text layer with a weight above TEXT_TOLERANCE."""
        largest = self.text.weight.detach().abs().amax(1)
        return {
            "text_features_used": int((largest > TEXT_TOLERANCE).sum()),
            "text_vocabulary": int(largest.numel()),
            "tolerance": TEXT_TOLERANCE,
        }


TEXT_TOLERANCE = 1e-3  # an n-gram whose weights are all at most this is not used (docs/text.md)
# In training, each n-gram entry of a row's bag is dropped with this probability ("word dropout"), so a row is not
# told apart by a few rare n-grams alone; scoring sees every n-gram. Chosen on validation over three corpora (round
# 1, two init seeds each): ahead on Rotten Tomatoes and the debates, behind on the synthetic messages
# (benchmarks/results/text_ngram_dropout_*.json, docs/text.md).
TEXT_NGRAM_DROPOUT = 0.5
# The n-gram layer's L1 is the round's L1 as it is: the ladder's levels apply to text as to tables. A text-only
# multiplier was measured (docs/text.md): x10 raised level 1's validation but collapsed level 10 to chance.
TEXT_L1_SCALE = 1.0


class Averaged(nn.Module):
    """SERIES_MEMBERS MLPs, each from its own initialization, trained side by side on the same batches and averaged
    when scoring: the built-in forecaster (chosen on validation over the benchmark's series, docs/forecasting.md).
    In training mode it returns every member's output, (members, rows, outputs), and the training loss is the sum of
    the members' own (steps/objective.py), so each trains as it would alone; early stopping, the gap and serving
    see the average."""

    def __init__(self, n_features: int, n_outputs: int, hidden: list[int], dropout: float, members: int):
        super().__init__()
        self.members = nn.ModuleList(MLP(n_features, n_outputs, hidden, dropout) for _ in range(members))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = torch.stack([member(x) for member in self.members])
        return outputs if self.training else outputs.mean(dim=0)


# Five averaged MLPs forecast series: over the nine benchmark series (two init seeds each) their validation MAE was
# 0.4% lower than one MLP's, lower on 7 series and higher on 2 (benchmarks/results/forecasting_ensemble.json); the
# series are small, so five networks cost 1-2.3 times one's seconds there. Tables keep one MLP: there the ensemble
# was ahead on fewer tables than behind (benchmarks/results/seed_ensemble_tuning.json).
SERIES_MEMBERS = 5


def build_model(spec, dropout: float) -> nn.Module:
    """The built-in model for the spec's input kind: the CNN for images (steps/cnn.py); SERIES_MEMBERS averaged
    MLPs for time series; else an MLP with HiddenLayers' widths over the transformed features, whose first layer also
    takes the bag of n-grams over a table with text columns (spec.extra["vocabulary"])."""
    if spec.input_kind == "image":
        return cnn.build_model(spec, dropout)
    if spec.input_kind == "series":
        return Averaged(spec.n_features, spec.n_outputs, list(spec.hidden), dropout, SERIES_MEMBERS)
    if spec.extra.get("vocabulary"):
        return TextMLP(spec.n_features, spec.extra["vocabulary"], spec.n_outputs, list(spec.hidden), dropout)
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
