"""The monitor under FSDP2: the probe pass is a collective forward that every rank must join.

A sharded layer's parameters exist in full only inside the forward, where all ranks all-gather them
together, so each rank feeds a probe (rank 0's, shared at ``watch``, when it has none of its own) and
rank 0 writes what it measured.
"""
from __future__ import annotations

import torch
import torch.distributed as dist

from . import torch_internals as internals
from .probe import Probe, ProbeCall


def _moved(probe: Probe, device: torch.device) -> Probe:
    """``probe`` with every tensor on ``device`` (CPU to travel between ranks, the model's on arrival)."""
    move = lambda t: t.to(device)  # noqa: E731
    if isinstance(probe, ProbeCall):
        args, kwargs = internals.tree_map_only(torch.Tensor, move, (probe.args, probe.kwargs))
        return ProbeCall(tuple(args), dict(kwargs))
    return internals.tree_map_only(torch.Tensor, move, probe)


def share_probe(probe: Probe | None, device: torch.device) -> tuple[Probe | None, bool]:
    """Collective (every rank, at ``watch``): a rank without a probe takes rank 0's, on ``device``.

    Returns the rank's probe and whether rank 0 had one, that is whether every rank now has a probe
    (the same answer on all ranks); if not, ranks without one capture their first batch.
    """
    mine = _moved(probe, torch.device("cpu")) if probe is not None and dist.get_rank() == 0 else probe is not None
    everyone: list = [None] * dist.get_world_size()
    dist.all_gather_object(everyone, mine)  # rank 0 sends its probe, the others only whether they have one
    first = everyone[0]
    if probe is None and first is not None:
        probe = _moved(first, device)
    return probe, first is not None


def every_rank(flag: bool, device: torch.device) -> bool:
    """Collective: whether ``flag`` holds on every rank."""
    t = torch.tensor([int(flag)], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return bool(t.item())
