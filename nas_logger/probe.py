"""The probe batch: the fixed inputs NAS is evaluated on at every ``log``."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Union

import torch

from . import torch_internals as internals

# A captured or given probe keeps at most this many samples.
MAX_PROBE = 64


@dataclass(frozen=True)
class ProbeCall:
    """A captured forward call with more than one tensor input, replayed as ``model(*args, **kwargs)``
    with its tensors on the devices they were captured on."""

    args: tuple
    kwargs: dict[str, Any]


# The model is called as model(probe) for a tensor, model(**probe) for keyword tensors, and as the
# call was made for a ProbeCall.
Probe = Union[torch.Tensor, dict[str, torch.Tensor], ProbeCall]


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


def _tensors(probe: Probe) -> list[torch.Tensor]:
    """The probe's tensors in call order (positional, then keyword; nested containers included)."""
    if isinstance(probe, ProbeCall):
        probe = (probe.args, probe.kwargs)
    return [t for t in internals.tree_leaves(probe) if isinstance(t, torch.Tensor)]


def capture_call(args: tuple, kwargs: dict[str, Any], max_samples: int = MAX_PROBE) -> Probe | None:
    """The probe that replays the forward call ``model(*args, **kwargs)``; None for a call without tensors.

    Every tensor is detached and cloned; those whose dim 0 is the batch size (dim 0 of the first
    tensor) are cut to ``max_samples``, the others (masks, scales) kept whole; anything else as given.
    A call of one tensor becomes that tensor, one of keyword tensors alone their dict, as ``probe=``
    gives them; any other call a :class:`ProbeCall`. Never raises: it runs inside a training forward,
    and a call that cannot be replayed is reported by ``log``.
    """
    tensors = _tensors(ProbeCall(args, kwargs))
    if not tensors:
        return None
    batch = tensors[0].shape[0] if tensors[0].dim() else None

    def keep(t: torch.Tensor) -> torch.Tensor:
        if t.dim() and t.shape[0] == batch and t.layout == torch.strided:
            t = t[:max_samples]
        return t.detach().clone()

    args, kwargs = internals.tree_map_only(torch.Tensor, keep, (args, kwargs))
    if len(args) == 1 and isinstance(args[0], torch.Tensor) and not kwargs:
        return args[0]
    if not args and kwargs and all(isinstance(v, torch.Tensor) for v in kwargs.values()):
        return kwargs
    return ProbeCall(tuple(args), dict(kwargs))


def _describe_value(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"tensor {tuple(value.shape)} {value.dtype}"
    return repr(value) if isinstance(value, (int, float, bool, str, type(None))) else type(value).__name__


def describe(probe: Probe) -> str:
    if isinstance(probe, torch.Tensor):
        return f"shape {tuple(probe.shape)} and dtype {probe.dtype}"
    if isinstance(probe, ProbeCall):
        args = [_describe_value(a) for a in probe.args] + [f"{k}={_describe_value(v)}" for k, v in probe.kwargs.items()]
        return "call (" + ", ".join(args) + ")"
    return "keys " + ", ".join(f"{k} {tuple(v.shape)}" for k, v in probe.items())


def run_probe(model: torch.nn.Module, probe: Probe, device: torch.device) -> None:
    if isinstance(probe, torch.Tensor):
        model(probe.to(device))
    elif isinstance(probe, ProbeCall):
        model(*probe.args, **probe.kwargs)
    else:
        model(**{k: v.to(device) for k, v in probe.items()})


def first_images(probe: Probe, count: int) -> torch.Tensor | None:
    """The first ``count`` samples of the probe's first tensor, (n, C, H, W) float in [0, 1] on the host
    (one copy), n <= count; None when the samples do not look like images."""
    tensors = _tensors(probe)
    if not tensors or tensors[0].dim() == 0 or tensors[0].shape[0] == 0 or not looks_like_image(tensors[0][0]):
        return None
    return to_display_images(tensors[0][:count])


def looks_like_image(x: Probe) -> bool:
    """A (C, H, W) sample with 1 or 3 channels and at least 4x4 pixels."""
    return isinstance(x, torch.Tensor) and x.dim() == 3 and x.shape[0] in (1, 3) and min(x.shape[1:]) >= 4


def to_display_images(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) float in [0, 1], each sample min-max scaled (probes are usually normalised inputs)."""
    x = x.detach().float().cpu()
    lo = x.amin(dim=(1, 2, 3), keepdim=True)
    span = x.amax(dim=(1, 2, 3), keepdim=True) - lo
    return torch.where(span > 0, (x - lo) / torch.where(span > 0, span, 1), torch.zeros_like(x))
