"""benchmarks/train_options.py: the built-in MLP (steps/model.py, the same layers) plus a linear path from the
inputs to the outputs ("wide and deep"): on small tables where a linear model beats the MLP (housing, vote92,
chile in the real-tables suite), the network need not learn the linear part through its hidden layers before early
stopping ends it. Both paths are regularized as the MLP is (dropout in the hidden layers, L1 and L2 on every
weight matrix)."""

from torch import nn

from steps.model import MLP


class LinearSkipMLP(nn.Module):
    def __init__(self, n_features: int, n_outputs: int, hidden: list[int], dropout: float):
        super().__init__()
        self.deep = MLP(n_features, n_outputs, hidden, dropout)
        self.linear = nn.Linear(n_features, n_outputs, bias=False)

    def forward(self, x):
        return self.deep(x) + self.linear(x)


def build_model(spec, dropout):
    return LinearSkipMLP(spec.n_features, spec.n_outputs, list(spec.hidden), dropout)
