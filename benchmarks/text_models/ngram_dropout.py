"""benchmarks/text.py --ngram-dropout: the built-in text model (steps/model.py's TextMLP) at a given dropout on its
input n-grams ("word dropout"): in training, each n-gram entry of a row's bag is dropped with probability P and the
rest scaled by 1 / (1 - P), so no row can be told apart by a few rare n-grams alone. Scoring sees every n-gram. P
comes from the environment (REGULA_NGRAM_DROPOUT; 0: none), so one file serves every setting a comparison tries.
The built-in model's own rate is steps/model.py's TEXT_NGRAM_DROPOUT (before it was chosen, the built-in model had
none, and this file added it on top)."""

import os

from steps.model import TextMLP

P = float(os.environ.get("REGULA_NGRAM_DROPOUT", "0.5"))


def build_model(spec, dropout):
    return TextMLP(spec.n_features, spec.extra["vocabulary"], spec.n_outputs, list(spec.hidden), dropout, P)
