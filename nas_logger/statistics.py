"""Per-layer NAS statistics from a layer's output: pure functions, all on the output's device."""
from __future__ import annotations

import functools
import math

import numpy as np
import torch
import torch.nn.functional as F

from .format import MAX_HEATMAP_SIDE, STAT_QUANTILES
from .layers import filter_dim
from .sparsity import nas_sparsity


def field_sparsity(output: torch.Tensor, kind: str) -> torch.Tensor:
    """s_k for every sample and receptive field: (B, *fields) float32 from a layer output.

    Conv outputs are (B, D, *spatial); linear outputs are (B, ..., D), where each leading position
    (a token, say) is one receptive field.
    """
    return nas_sparsity(output.detach(), dim=filter_dim(kind))


def distribution(s: torch.Tensor) -> torch.Tensor:
    """Quantiles ``STAT_QUANTILES`` and the mean of all values of ``s``: (len(STAT_FIELDS),) float32.

    Any non-finite value makes the whole vector NaN, so a diverged layer is visible as such.
    """
    flat = s.reshape(-1).float()
    if flat.device.type != "cpu":
        q = torch.quantile(flat, torch.tensor(STAT_QUANTILES, device=flat.device))
        return torch.cat([q, flat.mean().reshape(1)])
    # On the CPU numpy's sort is ~10x torch's (18 vs 230 us for a 64-sample probe's 4096 fields): the
    # largest cost of a log after the probe forward. Linear interpolation, as torch.quantile's default.
    ordered = np.sort(flat.numpy())
    if ordered.size == 0:
        raise ValueError(f"no NAS values to summarise: s has shape {tuple(s.shape)}; a layer has at least one field")
    if not (math.isfinite(ordered[0]) and math.isfinite(ordered[-1])):  # NaN sorts last, -inf first
        return torch.full((len(STAT_QUANTILES) + 1,), float("nan"))
    below, above, fraction = _interpolation(len(ordered))
    out = np.empty(len(STAT_QUANTILES) + 1, dtype=np.float32)
    out[:-1] = ordered[below] + fraction * (ordered[above].astype(np.float64) - ordered[below])
    out[-1] = np.add.reduce(ordered, dtype=np.float64) / len(ordered)  # ndarray.mean's sum and division, less its checks
    return torch.from_numpy(out)


@functools.lru_cache(maxsize=64)
def _interpolation(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices below and above each quantile's rank among ``n`` sorted values, and its fraction between
    them: the same for every log of a layer, so made once (each numpy call is microseconds)."""
    rank = np.asarray(STAT_QUANTILES) * (n - 1)
    below = np.floor(rank).astype(np.int64)
    return below, np.minimum(below + 1, n - 1), rank - below


def heatmaps(s: torch.Tensor, max_side: int = MAX_HEATMAP_SIDE) -> torch.Tensor:
    """2-D maps of s_k, one per sample, average-pooled to at most ``max_side`` cells per side: (k, H, W).

    ``s``: (k, *fields), the first samples' s_k, all maps made at once (a few microseconds per torch call
    is a log's cost for a small model). No field axis (a linear layer) -> (k, 1, 1); 1-D (conv1d,
    tokens) -> (k, 1, L); 3-D (conv3d) -> mean over the first spatial axis.
    """
    grid = s.float()
    while grid.dim() > 3:
        grid = grid.mean(dim=1)
    grid = grid.reshape((grid.shape[0],) + (1,) * (3 - grid.dim()) + tuple(grid.shape[1:]))
    h, w = grid.shape[1:]
    if h > max_side or w > max_side:
        grid = F.adaptive_avg_pool2d(grid[:, None], (min(h, max_side), min(w, max_side)))[:, 0]
    return grid
