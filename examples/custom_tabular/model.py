"""A team's own tabular network under Regula's ladder: a small residual MLP with layer norm.

Run it on the bundled digits:  regula run --local --model-code examples/custom_tabular/model.py

Regula calls build_model once per round with the data's spec and the round's dropout; it owns the optimizer, L1,
L2 (weight decay), early stopping, checkpoints and the ladder. Nothing else is needed.
"""

from torch import nn


class Block(nn.Module):
    def __init__(self, width: int, dropout: float):
        super().__init__()
        self.body = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, width), nn.GELU(), nn.Dropout(dropout))

    def forward(self, x):
        return x + self.body(x)


class ResidualNet(nn.Module):
    def __init__(self, n_features: int, n_outputs: int, width: int, depth: int, dropout: float):
        super().__init__()
        self.stem = nn.Linear(n_features, width)
        self.blocks = nn.Sequential(*[Block(width, dropout) for _ in range(depth)])
        self.head = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, n_outputs))

    def forward(self, x):
        return self.head(self.blocks(self.stem(x)))


def build_model(spec, dropout):
    # spec.n_features inputs, spec.n_outputs outputs (class logits, or one standardized target for regression)
    return ResidualNet(spec.n_features, spec.n_outputs, width=64, depth=2, dropout=dropout)
