"""steps/train.py on one or more processes: torchrun's variables, the process group, and what the processes must
agree on before they train."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

from steps.contract import StepError


def setup_distributed() -> tuple[int, int, torch.device]:
    """torchrun sets WORLD_SIZE/RANK/LOCAL_RANK; a single process needs none of it."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if world > 1:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return rank, world, device


def check_same_start(first_epoch: int, device: torch.device) -> None:
    """Every process must resume from the same epoch: the smallest and the largest first epoch, in one all-reduce."""
    starts = torch.tensor([first_epoch, -first_epoch], device=device)
    dist.all_reduce(starts, op=dist.ReduceOp.MAX)
    if starts[0].item() != -starts[1].item():
        raise StepError(f"the processes found different checkpoints (epochs {starts.tolist()}): not resuming")


def sum_loss_and_stop(loss_sum: torch.Tensor, stop: bool, world: int) -> tuple[torch.Tensor, bool]:
    """The epoch's loss summed over the processes, and whether any was asked to stop: a stop request travels with the
    loss, so every process stops after the same epoch."""
    if world == 1:
        return loss_sum, stop
    reduced = torch.stack([loss_sum, torch.tensor(float(stop), device=loss_sum.device)])
    dist.all_reduce(reduced)
    return reduced[0], bool(reduced[1].item())


def finish(world: int) -> None:
    if world > 1:
        dist.destroy_process_group()
