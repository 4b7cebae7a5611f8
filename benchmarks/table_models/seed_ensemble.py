"""benchmarks/train_options.py: five copies of the built-in MLP (steps/model.py, the same layers), each from its own
initialization, trained side by side on the same batches and averaged when scoring (log of the mean class
probabilities, or the mean value): an ensemble over initializations, which lowers the variance of a network on a
small table at five times the training cost. The training loss is the sum of the members' own losses, so each
member trains as it would alone (its L1 and L2 as the MLP's); early stopping and the gap see the ensemble."""

import math

import torch
import torch.nn.functional as F
from torch import nn

from steps.model import MLP

MEMBERS = 5


class SeedEnsemble(nn.Module):
    def __init__(self, spec, dropout: float):
        super().__init__()
        self.classification = spec.problem_type == "classification"
        self.members = nn.ModuleList(
            MLP(spec.n_features, spec.n_outputs, list(spec.hidden), dropout) for _ in range(MEMBERS)
        )

    def forward(self, x):
        outputs = torch.stack([m(x) for m in self.members])  # (members, rows, outputs)
        if self.training:  # each member's own output, for the sum of their losses
            return outputs
        if self.classification:
            return torch.logsumexp(F.log_softmax(outputs.float(), dim=-1), dim=0) - math.log(MEMBERS)
        return outputs.mean(dim=0)


def build_model(spec, dropout):
    return SeedEnsemble(spec, dropout)


def loss(output, target):
    if target.dtype in (torch.int64, torch.int32):
        return sum(F.cross_entropy(member.float(), target) for member in output)
    return sum(F.mse_loss(member.float()[:, 0], target) for member in output)
