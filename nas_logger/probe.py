"""The probe batch: the fixed inputs NAS is evaluated on at every ``log``."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Union

import torch

# A captured or given probe keeps at most this many samples.
MAX_PROBE = 64

# The model is called as model(probe) for a tensor and model(**probe) for keyword tensors.
Probe = Union[torch.Tensor, dict[str, torch.Tensor]]


def _cut(x: torch.Tensor, max_samples: int, what: str) -> torch.Tensor:
    if x.layout != torch.strided:
        raise ValueError(f"{what} must be a dense (strided) tensor; got layout {x.layout}: call .to_dense() first")
    if x.dim() == 0 or x.shape[0] == 0:
        raise ValueError(f"{what} must hold at least one sample along dim 0; got shape {tuple(x.shape)}")
    return x[:max_samples].detach().clone()


def prepare_probe(probe: Any, max_samples: int = MAX_PROBE) -> Probe:
    """The model input of ``probe``: a tensor, an ``(inputs, targets, ...)`` batch, a DataLoader (its
    first batch) or a mapping of keyword tensors (``model(**probe)``, as Hugging Face models take).
    Detached, cut to ``max_samples``; raises ValueError for anything else."""
    if isinstance(probe, torch.utils.data.DataLoader):
        try:
            probe = next(iter(probe))
        except StopIteration:
            raise ValueError("probe DataLoader yields no batch; give it at least one sample") from None
    if isinstance(probe, (tuple, list)) and probe:
        probe = probe[0]
    if isinstance(probe, Mapping) and probe and all(isinstance(v, torch.Tensor) for v in probe.values()):
        return {k: _cut(v, max_samples, f"probe[{k!r}]") for k, v in probe.items()}
    if not isinstance(probe, torch.Tensor):
        raise ValueError(
            "probe must be a tensor, an (inputs, targets) batch, a DataLoader or a dict of tensors; "
            f"got {type(probe).__name__}"
        )
    return _cut(probe, max_samples, "probe")


def forward_input(args: tuple, kwargs: dict[str, Any]) -> Probe | None:
    """What a forward call was given: its first positional tensor, else its keyword tensors."""
    for arg in args:
        if isinstance(arg, torch.Tensor):
            return arg
    tensors = {k: v for k, v in kwargs.items() if isinstance(v, torch.Tensor)}
    return tensors or None


def describe(probe: Probe) -> str:
    if isinstance(probe, torch.Tensor):
        return f"shape {tuple(probe.shape)} and dtype {probe.dtype}"
    return "keys " + ", ".join(f"{k} {tuple(v.shape)}" for k, v in probe.items())


def run_probe(model: torch.nn.Module, probe: Probe, device: torch.device) -> None:
    if isinstance(probe, torch.Tensor):
        model(probe.to(device))
    else:
        model(**{k: v.to(device) for k, v in probe.items()})


def looks_like_image(x: Probe) -> bool:
    """A (C, H, W) sample with 1 or 3 channels and at least 4x4 pixels."""
    return isinstance(x, torch.Tensor) and x.dim() == 3 and x.shape[0] in (1, 3) and min(x.shape[1:]) >= 4


def to_display_image(x: torch.Tensor) -> torch.Tensor:
    """(C, H, W) float in [0, 1], min-max scaled, since probes are usually normalised inputs."""
    x = x.detach().float().cpu()
    lo, hi = x.min(), x.max()
    return (x - lo) / (hi - lo) if hi > lo else torch.zeros_like(x)
