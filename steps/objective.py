"""The training objective of steps/train.py: the loss of the problem type, and the loss and quality measured
without dropout that the epoch lines and the generalization gap use."""

from __future__ import annotations

import torch
import torch.nn.functional as F


class Objective:
    """The loss of the problem type: cross-entropy over class logits, or squared error of the standardized target.
    `quality` is accuracy (classification) or R2 (regression), for the epoch lines."""

    def __init__(self, schema: dict):
        self.classification = schema["problem_type"] == "classification"
        self.outputs = len(schema["classes"]) if self.classification else 1
        self.quality_name = "accuracy" if self.classification else "r2"

    def train_loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if out.dim() == 3:  # members' outputs side by side (steps/model.py's Averaged, training): the sum of theirs
            return sum(self.train_loss(member, y) for member in out)
        if self.classification:
            return F.cross_entropy(out.float(), y)
        return F.mse_loss(out.float()[:, 0], y)

    @torch.no_grad()
    def measure(self, model, x: torch.Tensor, y: torch.Tensor, amp: dict, batch: int = 8192) -> tuple[float, float]:
        """(loss, quality) without dropout: the loss evaluation reports too."""
        model.eval()
        loss_sum, hits = torch.zeros((), device=y.device), torch.zeros((), device=y.device)
        batch = x.scoring_rows(batch)  # the input kind's rows per pass (steps/inputs.py)
        for i in range(0, len(x), batch):
            with torch.autocast(**amp):
                out = model(x[i : i + batch]).float()
            target = y[i : i + batch]
            if self.classification:
                loss_sum += F.cross_entropy(out, target, reduction="sum")
                hits += (out.argmax(1) == target).sum()
            else:
                loss_sum += F.mse_loss(out[:, 0], target, reduction="sum")
        loss = loss_sum.item() / len(x)
        if self.classification:
            return loss, hits.item() / len(x)
        spread = ((y - y.mean()) ** 2).mean().item()
        return loss, 1 - loss / spread if spread > 0 else 0.0
