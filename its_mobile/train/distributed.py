"""Data-parallel training over torch.distributed, started by torchrun:

    torchrun --nproc_per_node N -m its_mobile train ...        (add --nnodes/--rdzv-* across machines)

Every rank builds the same model from the same seed and draws the same global batch indices;
each loads and trains on its own slice of them (rank::world), and DistributedDataParallel
starts every rank from rank 0's weights and averages the gradients during backward, so N ranks
with batch B/N each follow the single-process run with batch B. gloo on CPU, NCCL on CUDA.
Only rank 0 writes checkpoints and shows progress; checkpoints hold no rank state, so a run
resumes with any number of ranks.

DDP wraps a whole training step (loop.StepLoss), not the bare network: an all-in-one tier step
runs the shared weights through two sub-networks before one backward, and DDP's reducer must
see that forward as one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn

# A rank that dies leaves the others blocked in a collective; torchrun then stops them all.
# This bounds the wait when a peer hangs instead.
TIMEOUT = timedelta(minutes=5)


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    def part(self, items):
        """This rank's slice of a global batch's items."""
        return items[self.rank :: self.world]


def init(device: str) -> Ranks:
    """Join the process group torchrun describes in the environment (one rank without it)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Ranks()
    ranks = Ranks(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(ranks.local_rank)
        dist.init_process_group(backend, timeout=TIMEOUT)
    return ranks


def device_for(device: str, ranks: Ranks) -> str:
    """Each rank on a machine takes its own GPU."""
    return f"cuda:{ranks.local_rank}" if device == "cuda" and ranks.world > 1 else device


def wrap(module: nn.Module, ranks: Ranks, device: str) -> nn.Module:
    """The module under DistributedDataParallel (itself in a single process)."""
    if ranks.world == 1:
        return module
    ids = [torch.device(device).index] if torch.device(device).type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=ids)


def mean(value: float, ranks: Ranks, device: str) -> float:
    """A number averaged over the ranks (the loss of the whole global batch)."""
    if ranks.world == 1:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t.item()) / ranks.world


def any_rank(flag: bool, ranks: Ranks, device: str) -> bool:
    """True on every rank when it is true on one (e.g. rank 0's time budget ran out)."""
    if ranks.world == 1:
        return flag
    t = torch.tensor([float(flag)], device=device)
    dist.all_reduce(t)
    return bool(t.item() > 0)


def barrier(ranks: Ranks) -> None:
    """Wait until every rank is here (e.g. until rank 0 has written the data)."""
    if ranks.world > 1:
        dist.barrier()
