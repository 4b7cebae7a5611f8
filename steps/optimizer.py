"""AdamW for an eager training loop, without importing torch._dynamo.

torch.optim marks Optimizer.add_param_group, zero_grad, state_dict and load_state_dict with `torch._disable_dynamo`,
and wraps Adam's step in `torch._dynamo.graph_break()` calls. Each imports torch._dynamo on first use (a large
share of a short training job's start, in every training job) only to tell torch.compile how to trace them. Regula never
compiles, so this subclass calls the functions underneath those wrappers (`inspect.unwrap`): the same update and the
same state_dict, bit for bit (tests/test_optimizer.py compares it with torch.optim.AdamW and checks the import is
gone). The graph breaks are no-ops in eager mode; the step keeps their wrapper's other effect, no autograd.
If a torch release drops the wrappers, unwrap returns the method itself: then this is torch's AdamW, as slow to start.

A param group marked `lazy` (embedding weights with sparse gradients) is updated row by row on the rows the batch
touched, with its own L1 as a proximal step (`l1`): steps/lazy_rows.py. The other groups get torch's update.
"""

from __future__ import annotations

import inspect

import torch

from steps import lazy_rows

_OPTIMIZER = torch.optim.Optimizer


class AdamW(torch.optim.AdamW):
    def add_param_group(self, param_group: dict) -> None:
        return inspect.unwrap(_OPTIMIZER.add_param_group)(self, param_group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        return inspect.unwrap(_OPTIMIZER.zero_grad)(self, set_to_none)

    def state_dict(self) -> dict:
        return inspect.unwrap(_OPTIMIZER.state_dict)(self)

    def load_state_dict(self, state_dict: dict) -> None:
        return inspect.unwrap(_OPTIMIZER.load_state_dict)(self, state_dict)

    @torch.no_grad()
    def step(self, closure=None):
        groups = self.param_groups
        lazy = [group for group in groups if group.get("lazy")]
        if not lazy:
            return inspect.unwrap(torch.optim.AdamW.step)(self, closure)
        for group in lazy:
            lazy_rows.step(self, group)
        self.param_groups = [group for group in groups if not group.get("lazy")]  # torch's update for the others
        try:
            return inspect.unwrap(torch.optim.AdamW.step)(self, closure)
        finally:
            self.param_groups = groups

    def catch_up(self) -> None:
        """The lazy groups' rows brought up to the last step (before the weights are measured or saved)."""
        lazy_rows.catch_up(self)
