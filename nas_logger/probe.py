"""The probe batch: the fixed inputs NAS is evaluated on at every ``log``."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

# A captured or given probe keeps at most this many samples.
MAX_PROBE = 64


def probe_tensor(probe: Any, max_samples: int = MAX_PROBE) -> torch.Tensor:
    """The input tensor of ``probe``: a tensor, an ``(inputs, targets, ...)`` batch, or a DataLoader
    (its first batch). Detached, cut to ``max_samples``; raises ValueError for anything else."""
    if isinstance(probe, torch.utils.data.DataLoader):
        try:
            probe = next(iter(probe))
        except StopIteration:
            raise ValueError("probe DataLoader yields no batch; give it at least one sample") from None
    if isinstance(probe, (tuple, list)) and probe:
        probe = probe[0]
    if not isinstance(probe, torch.Tensor):
        raise ValueError(
            f"probe must be a tensor, an (inputs, targets) batch or a DataLoader; got {type(probe).__name__}"
        )
    if probe.dim() == 0 or probe.shape[0] == 0:
        raise ValueError(f"probe must hold at least one sample along dim 0; got shape {tuple(probe.shape)}")
    return probe[:max_samples].detach().clone()


def first_input(args: Iterable[Any]) -> torch.Tensor | None:
    """The first tensor among a forward call's positional arguments."""
    for arg in args:
        if isinstance(arg, torch.Tensor):
            return arg
    return None


def looks_like_image(x: torch.Tensor) -> bool:
    """A (C, H, W) sample with 1 or 3 channels and at least 4x4 pixels."""
    return x.dim() == 3 and x.shape[0] in (1, 3) and min(x.shape[1:]) >= 4


def to_display_image(x: torch.Tensor) -> torch.Tensor:
    """(C, H, W) float in [0, 1], min-max scaled, since probes are usually normalised inputs."""
    x = x.detach().float().cpu()
    lo, hi = x.min(), x.max()
    return (x - lo) / (hi - lo) if hi > lo else torch.zeros_like(x)
