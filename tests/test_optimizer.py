"""steps/optimizer.AdamW: torch's AdamW without its torch.compile hooks. A canary for torch upgrades: the same
update and state bit for bit, and torch._dynamo (0.8 s) never imported by a training loop."""

from __future__ import annotations

import copy
import subprocess
import sys

import torch

from steps.optimizer import AdamW


def train(optimizer_class, steps=40):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.ReLU(), torch.nn.Dropout(0.2), torch.nn.Linear(32, 3))
    weights = [p for n, p in model.named_parameters() if n.endswith("weight")]
    biases = [p for n, p in model.named_parameters() if not n.endswith("weight")]
    optimizer = optimizer_class([{"params": weights, "weight_decay": 0.3}, {"params": biases, "weight_decay": 0.0}])
    generator = torch.Generator().manual_seed(1)
    for step in range(steps):
        x, y = torch.randn(16, 8, generator=generator), torch.randint(0, 3, (16,), generator=generator)
        loss = torch.nn.functional.cross_entropy(model(x), y) + 1e-4 * sum(w.abs().sum() for w in weights)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step == 20:  # a checkpoint's round trip, as a resumed job does
            optimizer.load_state_dict(copy.deepcopy(optimizer.state_dict()))
    return model, optimizer


def test_the_same_update_and_state_as_torchs_adamw_bit_for_bit():
    ours, our_optimizer = train(AdamW)
    theirs, their_optimizer = train(torch.optim.AdamW)
    assert all(torch.equal(a, b) for a, b in zip(ours.state_dict().values(), theirs.state_dict().values(), strict=True))
    mine, reference = our_optimizer.state_dict(), their_optimizer.state_dict()
    assert mine["param_groups"] == reference["param_groups"]
    assert mine["state"].keys() == reference["state"].keys()
    for index, state in reference["state"].items():
        assert all(torch.equal(mine["state"][index][name], value) for name, value in state.items())
    # a state saved by one loads into the other (checkpoints made before this class resume)
    loaded = AdamW([{"params": group["params"]} for group in their_optimizer.param_groups])
    loaded.load_state_dict(their_optimizer.state_dict())
    assert loaded.state_dict()["param_groups"] == reference["param_groups"]


def test_a_training_loop_never_imports_torch_dynamo():
    code = (
        "import sys, torch; from steps.optimizer import AdamW; m = torch.nn.Linear(3, 2); o = AdamW(m.parameters())\n"
        "for _ in range(3): o.zero_grad(); m(torch.randn(4, 3)).sum().backward(); o.step()\n"
        "o.load_state_dict(o.state_dict()); print('torch._dynamo' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
