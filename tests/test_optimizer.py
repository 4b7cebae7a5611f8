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


def train_bag(lazy: bool, rows_per_step, steps=30, l1=0.01, round_trip_at=None):
    """An nn.EmbeddingBag trained by AdamW with L1 as a proximal step: lazily (sparse gradients, steps/lazy_rows.py)
    or densely (torch's update of every row, then steps/proximal.shrink), on the rows `rows_per_step(step)` gives."""
    from steps.proximal import shrink

    torch.manual_seed(0)
    bag = torch.nn.EmbeddingBag(40, 6, mode="sum", sparse=lazy)
    group = {"params": [bag.weight], "weight_decay": 0.1}
    optimizer = AdamW([{**group, "lazy": True, "l1": l1}] if lazy else [group], lr=0.01)
    generator = torch.Generator().manual_seed(1)
    for step in range(steps):
        ids = torch.as_tensor(rows_per_step(step))
        out = bag(ids, torch.tensor([0, len(ids) // 2]), per_sample_weights=torch.rand(len(ids), generator=generator))
        optimizer.zero_grad(set_to_none=True)
        (out * torch.randn(2, 6, generator=generator)).sum().backward()
        optimizer.step()
        if not lazy:
            shrink(optimizer, {bag.weight: 1.0}, l1)
        if step == round_trip_at:  # a checkpoint's round trip, as a resumed job does
            optimizer.load_state_dict(copy.deepcopy(optimizer.state_dict()))
    if lazy:
        optimizer.catch_up()
    return bag.weight.detach(), optimizer


def test_the_lazy_update_is_the_dense_one_on_rows_touched_every_step_and_rows_never_touched():
    def rows(step):  # rows 0-19 every step, rows 20-39 never
        return list(range(20))

    lazy, optimizer = train_bag(True, rows)
    dense, _ = train_bag(False, rows)
    assert torch.allclose(lazy, dense, atol=1e-6), (lazy - dense).abs().max()
    assert bool((lazy[20:] == 0).all()) and bool((lazy[:20] != 0).any())  # never seen: L1 zeroes them at once
    assert float(optimizer.state[optimizer.param_groups[0]["params"][0]]["step"]) == 30


def test_the_lazy_update_catches_a_row_up_on_the_steps_it_missed():
    """A row seen once, then never: dense AdamW decays and soft-thresholds it every step; the lazy update does it
    when the row is next seen or at catch_up, so its L1 still prunes a rare n-gram (both end at zero here), while a
    row seen at every step is still in use."""

    def rows(step):
        return list(range(10)) + ([10] if step == 0 else [])

    lazy, _ = train_bag(True, rows, steps=200, l1=0.05)
    dense, _ = train_bag(False, rows, steps=200, l1=0.05)
    assert bool((dense[10] == 0).all()) and bool((lazy[10] == 0).all())
    assert bool((lazy[:10] != 0).any())
    uncaught, _ = train_bag(True, rows, steps=200, l1=0.0)  # without L1, the missed steps' weight decay alone
    assert bool((uncaught[10] != 0).all())


def test_a_lazy_optimizer_resumes_from_its_state_dict_where_it_was():
    def rows(step):
        return [step % 7, (step * 3) % 11, 12, 13]

    straight, _ = train_bag(True, rows)
    resumed, optimizer = train_bag(True, rows, round_trip_at=10)
    assert torch.equal(straight, resumed)
    last = optimizer.state[optimizer.param_groups[0]["params"][0]]["last"]
    assert bool((last == 30).all())  # caught up: every row at the last step
