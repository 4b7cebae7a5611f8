"""A forecaster over the raw window: a GRU reads the lags oldest first, a small MLP adds the other features.

For a time series (TimeColumn set): regula run --local --data sales.csv --target sales --param TimeColumn=date \
    --model-code examples/series_gru/model.py

The series kind tells the model where its window is: spec.extra["window"], the positions of the lag features
y[t + 1 - k] - y[t] (k = 2 .. max(season, 8)) among spec.n_features, oldest first (steps/inputs.py). The GRU
reads them as a sequence; the rest (the seasonal naive forecast, rolling means, the step, the calendar, the
covariates, the series' identity) joins its last state in the head. Regula owns the optimizer, L1, L2, early
stopping and the ladder, as for any model; the ladder's dropout reaches the head's nn.Dropout. Measured against the
built-in MLP in docs/forecasting.md (benchmarks/forecasting.py --variants).
"""

import torch
from torch import nn

STATE = 32  # the GRU's state: the window is at most a few hundred steps of one value
HEAD = 64


class WindowGRU(nn.Module):
    def __init__(self, n_features: int, window: list[int], n_outputs: int, dropout: float):
        super().__init__()
        others = [i for i in range(n_features) if i not in set(window)]
        self.register_buffer("window", torch.tensor(window, dtype=torch.long), persistent=False)
        self.register_buffer("others", torch.tensor(others, dtype=torch.long), persistent=False)
        self.gru = nn.GRU(1, STATE, batch_first=True)
        self.head = nn.Sequential(
            nn.Linear(STATE + len(others), HEAD), nn.ReLU(), nn.Dropout(dropout), nn.Linear(HEAD, n_outputs)
        )

    def forward(self, x):
        _, state = self.gru(x[:, self.window].unsqueeze(-1))
        return self.head(torch.cat([state[-1], x[:, self.others]], dim=1))


def build_model(spec, dropout):
    window = list(spec.extra.get("window") or [])
    if not window and spec.input_kind == "series":
        raise ValueError("the series has no lag features to read (spec.extra['window'] is empty)")
    # a table has no window (render's check builds on a dummy table spec): the features are read as one sequence
    return WindowGRU(spec.n_features, window or list(range(spec.n_features)), spec.n_outputs, dropout)
