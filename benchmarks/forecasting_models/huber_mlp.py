"""benchmarks/forecasting.py --variants: the built-in MLP (steps/model.py, the same layers) trained with a Huber
loss on the standardized change over the seasonal naive forecast instead of the squared error: a robust loss, which
large changes (a collapse, a spike) sway less. Early stopping and the gap still use the squared error."""

import torch.nn.functional as F
from torch import nn

DELTA = 1.0  # one standard deviation of the training labels: beyond it the loss grows linearly


class MLP(nn.Module):
    def __init__(self, n_features: int, n_outputs: int, hidden: list[int], dropout: float):
        super().__init__()
        layers, width = [], n_features
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(dropout)]
            width = size
        layers.append(nn.Linear(width, n_outputs))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


def build_model(spec, dropout):
    return MLP(spec.n_features, spec.n_outputs, list(spec.hidden), dropout)


def loss(output, target):
    return F.huber_loss(output.float()[:, 0], target, delta=DELTA)
