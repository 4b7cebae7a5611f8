"""benchmarks/text.py --members: the built-in text model (steps/model.py's TextMLP) as the average of N of them,
each from its own initialization, trained side by side on the same batches (steps/model.py's Averaged does the
same for series). N comes from the environment (REGULA_TEXT_MEMBERS, default 5), so one file serves every count a
comparison tries. L1 reaches every member's n-gram layer; the n-grams used are those any member uses."""

import os

import torch
from torch import nn

from steps.model import TextMLP

MEMBERS = int(os.environ.get("REGULA_TEXT_MEMBERS", "5"))


class AveragedText(nn.Module):
    def __init__(self, spec, dropout: float, members: int):
        super().__init__()
        self.members = nn.ModuleList(
            TextMLP(spec.n_features, spec.extra["vocabulary"], spec.n_outputs, list(spec.hidden), dropout)
            for _ in range(members)
        )

    def forward(self, batch: dict) -> torch.Tensor:
        outputs = torch.stack([member(batch) for member in self.members])
        return outputs if self.training else outputs.mean(dim=0)

    def l1_proximal_parameters(self) -> dict:
        return {p: scale for member in self.members for p, scale in member.l1_proximal_parameters().items()}

    def feature_usage(self) -> dict:
        largest = torch.stack([m.text.weight.detach().abs().amax(1) for m in self.members]).amax(0)
        usage = self.members[0].feature_usage()
        return {**usage, "text_features_used": int((largest > usage["tolerance"]).sum())}


def build_model(spec, dropout):
    return AveragedText(spec, dropout, MEMBERS)
