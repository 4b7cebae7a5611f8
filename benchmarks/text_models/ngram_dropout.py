"""benchmarks/text.py --ngram-dropout: the built-in text model (steps/model.py's TextMLP) with dropout on its input
n-grams ("word dropout"): in training, each n-gram entry of a row's bag is dropped with probability P and the rest
scaled by 1 / (1 - P), so no row can be told apart by a few rare n-grams alone. Scoring sees every n-gram. P comes
from the environment (REGULA_NGRAM_DROPOUT, default 0.5), so one file serves every setting a comparison tries."""

import os

import torch

from steps.model import TextMLP

P = float(os.environ.get("REGULA_NGRAM_DROPOUT", "0.5"))


class NgramDropout(TextMLP):
    def forward(self, batch: dict) -> torch.Tensor:
        if self.training and P > 0:
            keep = torch.rand_like(batch["weights"]) >= P
            batch = {**batch, "weights": batch["weights"] * keep / (1 - P)}
        return super().forward(batch)


def build_model(spec, dropout):
    return NgramDropout(spec.n_features, spec.extra["vocabulary"], spec.n_outputs, list(spec.hidden), dropout)
