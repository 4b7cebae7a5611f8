"""benchmarks/train_options.py: five copies of the built-in MLP (steps/model.py, the same layers), each from its own
initialization, trained side by side on the same batches and averaged when scoring (log of the mean class
probabilities, or the mean value): an ensemble over initializations, which lowers the variance of a network on a
small table at five times the training cost. It is steps/model.py's `Averaged` (the built-in forecaster), with
classes averaged as probabilities: in training every member's output, so the training loss is the sum of the
members' own (steps/objective.py) and each member trains as it would alone (its L1 and L2 as the MLP's); early
stopping and the gap see the ensemble."""

import math

import torch
import torch.nn.functional as F

from steps.model import Averaged

MEMBERS = 5


class SeedEnsemble(Averaged):
    def __init__(self, spec, dropout: float):
        super().__init__(spec.n_features, spec.n_outputs, list(spec.hidden), dropout, MEMBERS)
        self.classification = spec.problem_type == "classification"

    def forward(self, x):
        if self.training or not self.classification:
            return super().forward(x)
        outputs = torch.stack([m(x) for m in self.members])  # (members, rows, classes)
        return torch.logsumexp(F.log_softmax(outputs.float(), dim=-1), dim=0) - math.log(MEMBERS)


def build_model(spec, dropout):
    return SeedEnsemble(spec, dropout)
