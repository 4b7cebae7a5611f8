"""AdamW with the proximal L1 step (steps/proximal.py) on the rows a sparse gradient touches, for embedding weights
whose module computes sparse gradients (`nn.EmbeddingBag(..., sparse=True)`: the built-in text model's n-gram
layer). steps/optimizer.AdamW runs it for its param groups marked `lazy`.

Why: a step's batch holds a few thousand of the vocabulary's n-grams, but a dense gradient makes AdamW, its weight
decay and the L1 soft-threshold read and write every row of the vocabulary x width weight every step; that, not the
forward and backward pass, was most of a text model's training time on CPU (benchmarks/results/
text_update_speed_synthetic.json and text_update_speed_rotten_tomatoes.json: the dense update against this one).

The update is lazy, as TensorFlow's LazyAdam: a row's moments and weight change only at the steps whose batch holds
its n-gram. The steps it missed are caught up when the row is next touched, or for every row by `catch_up` (training
calls it at the end of every epoch, before the weights are measured or saved): the moments decay as Adam's do under
a zero gradient, the weight takes the momentum's fading steps (in closed form), decays by (1 - lr x weight decay)
per missed step and is soft-thresholded by the missed steps' L1 thresholds (computed with the second moment decayed
half-way through the gap). Without the fading steps a rare n-gram would learn about 1 / (1 - beta1) = 10 times
slower than under the dense update (TensorFlow's LazyAdam leaves them out); without the catch-up, L1 would prune it
only at the few steps it was seen. The catch-up applies the missed steps together rather than interleaved, so a
row seen now and then differs from the dense update by that reordering; a row seen at every step, or never, is
updated exactly as by the dense update (tests/test_optimizer.py).
"""

from __future__ import annotations

import torch


def sparse_parameters(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """The weights of the model's embedding layers that compute sparse gradients (sparse=True)."""
    return [
        m.weight
        for m in model.modules()
        if isinstance(m, torch.nn.Embedding | torch.nn.EmbeddingBag) and m.sparse and m.weight.requires_grad
    ]


def make_dense(model: torch.nn.Module) -> None:
    """Embedding layers compute dense gradients (sparse=False): for DistributedDataParallel, which reduces dense
    gradients across processes."""
    for m in model.modules():
        if isinstance(m, torch.nn.Embedding | torch.nn.EmbeddingBag):
            m.sparse = False


@torch.no_grad()
def step(optimizer: torch.optim.Optimizer, group: dict) -> None:
    """One AdamW step with L1 (group["l1"]) on the touched rows of each parameter of a lazy group, after catching
    those rows up on the steps they missed."""
    beta1, beta2 = group["betas"]
    lr, l1 = group["lr"], group["l1"]
    for p in group["params"]:
        if p.grad is None:
            continue
        state = optimizer.state[p]
        if not state:
            state["step"] = torch.tensor(0.0)
            state["exp_avg"] = torch.zeros_like(p)
            state["exp_avg_sq"] = torch.zeros_like(p)
            state["last"] = torch.zeros(p.shape[0], dtype=p.dtype, device=p.device)  # the step each row is up to
        state["step"] += 1
        t = float(state["step"])
        grad = (p.grad if p.grad.is_sparse else p.grad.to_sparse(1)).coalesce()
        rows, values = grad.indices()[0], grad.values()
        w, m, v = _caught_up(p, state, group, rows, t - 1)
        w.mul_(1 - lr * group["weight_decay"])
        m.lerp_(values, 1 - beta1)
        v.mul_(beta2).addcmul_(values, values, value=1 - beta2)
        denom = (v / (1 - beta2**t)).sqrt_().add_(group["eps"])
        w.addcdiv_(m, denom, value=-lr / (1 - beta1**t))
        if l1:
            _soft_threshold(w, denom.reciprocal_().mul_(lr * l1))
        p[rows], state["exp_avg"][rows], state["exp_avg_sq"][rows] = w, m, v
        state["last"][rows] = t


@torch.no_grad()
def catch_up(optimizer: torch.optim.Optimizer) -> None:
    """Every row of every lazy parameter brought up to the optimizer's last step (the missed steps' decay and L1)."""
    for group in optimizer.param_groups:
        if not group.get("lazy"):
            continue
        for p in group["params"]:
            state = optimizer.state.get(p)
            if state:
                rows = torch.nonzero(state["last"] < state["step"]).flatten()
                p[rows], state["exp_avg"][rows], state["exp_avg_sq"][rows] = _caught_up(
                    p, state, group, rows, float(state["step"])
                )
                state["last"][rows] = float(state["step"])


def _caught_up(p: torch.Tensor, state: dict, group: dict, rows: torch.Tensor, t: float) -> tuple:
    """Copies of rows `rows` of the weight and its moments as they would be at step `t` had the steps since each
    row's last one had a zero gradient (a row with none missed comes back unchanged)."""
    beta1, beta2 = group["betas"]
    lr, l1 = group["lr"], group["l1"]
    w, m, v = p[rows], state["exp_avg"][rows], state["exp_avg_sq"][rows]
    missed = (t - state["last"][rows]).unsqueeze(1)
    denom = (v / (1 - beta2 ** max(t, 1.0))).sqrt_().add_(group["eps"])
    # the momentum's fading steps: sum over the missed steps j of beta1^j x the last step's move (the second moment
    # decays far slower than the first, so its change over the steps that count is left out)
    fading = beta1 * (1 - beta1**missed) / (1 - beta1)
    w.addcdiv_(m * fading, denom, value=-lr / (1 - beta1 ** max(t, 1.0)))
    w.mul_((1 - lr * group["weight_decay"]) ** missed)
    if l1:
        middle = denom.sub_(group["eps"]).mul_(beta2 ** (missed / 4)).add_(group["eps"])  # sqrt of v half-way
        _soft_threshold(w, missed * (lr * l1) / middle)
    return w, m.mul_(beta1**missed), v.mul_(beta2**missed)


def _soft_threshold(w: torch.Tensor, threshold: torch.Tensor) -> None:
    """w moved towards 0 by `threshold`, stopping at 0 (the proximal step of L1), in place."""
    w.sub_(torch.clamp(w, min=-threshold, max=threshold))
