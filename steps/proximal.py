"""L1 as a proximal step: the weights a model marks as sparse (its `l1_proximal_parameters()`, e.g. the built-in text
model's n-gram layer) are soft-thresholded after every optimizer step instead of carrying L1 in the loss.

Why: under Adam an L1 term in the loss is rescaled like any gradient, so a weight the data does not need oscillates
around zero by about the learning rate and never reaches it: counting the n-grams a model uses by their weights
then says "all of them" at every L1 level (measured: docs/text.md). The proximal step in Adam's own metric
(threshold = learning rate x L1 / Adam's per-weight step size denominator) sets a weight to exactly zero where its
data gradient is weaker than L1, the optimality condition of an L1-penalized loss, so the ladder's rising L1 prunes
n-grams one can count.
"""

from __future__ import annotations

import torch


@torch.no_grad()
def shrink(optimizer: torch.optim.Optimizer, parameters: dict[torch.Tensor, float], l1: float) -> None:
    """Soft-threshold each of `parameters` by the optimizer's learning rate x `l1` x its scale, per weight divided by
    Adam's step size denominator (sqrt of the bias-corrected second moment, plus eps)."""
    if not parameters or not l1:
        return
    scales = {id(p): scale for p, scale in parameters.items()}
    for group in optimizer.param_groups:
        _, beta2 = group["betas"]
        for p in group["params"]:
            state = optimizer.state.get(p)
            if id(p) not in scales or not state or "exp_avg_sq" not in state:
                continue
            step = float(state["step"])
            denom = (state["exp_avg_sq"] / (1 - beta2**step)).sqrt_().add_(group["eps"])
            threshold = denom.reciprocal_().mul_(group["lr"] * l1 * scales[id(p)])
            p.copy_(p.sign() * (p.abs() - threshold).clamp_(min=0))
