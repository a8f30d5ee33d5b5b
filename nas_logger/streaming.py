"""Streaming NAS statistics: a fixed-bin histogram of s_k in [0, 1] per layer, kept on the device.

Memory is O(bins) whatever the number of receptive fields, and histograms of different batches or
ranks merge by addition. Each order statistic is read off the cumulative counts assuming values spread
evenly inside its bin, so it is within one bin width (1 / bins) of the exact one, and quantiles
interpolated between two of them are within one bin width of the exact (linear) quantile; min, max and
mean are exact.
"""
from __future__ import annotations

import torch

from .format import STAT_QUANTILES

DEFAULT_BINS = 1024


class NASHistogram:
    def __init__(self, bins: int = DEFAULT_BINS, device: torch.device | str | None = None) -> None:
        if bins < 2:
            raise ValueError(f"bins must be >= 2; got {bins}")
        self.bins = bins
        self.counts = torch.zeros(bins, dtype=torch.float64, device=device)
        self.total = torch.zeros((), dtype=torch.float64, device=device)  # NaN marks non-finite input
        self.low = torch.full((), float("inf"), dtype=torch.float64, device=device)
        self.high = torch.full((), float("-inf"), dtype=torch.float64, device=device)

    def add(self, s: torch.Tensor) -> None:
        """Count the values of ``s`` (any shape); no host-device synchronisation."""
        flat = s.detach().reshape(-1).to(self.counts.device, torch.float64)
        if flat.numel() == 0:
            return
        self.counts += torch.histc(flat, bins=self.bins, min=0.0, max=1.0)
        self.total += flat.sum()
        torch.minimum(self.low, flat.min(), out=self.low)
        torch.maximum(self.high, flat.max(), out=self.high)

    def all_reduce(self) -> None:
        """Merge the histograms of all ranks of the default process group into each rank's."""
        dist = torch.distributed
        for tensor, op in ((self.counts, dist.ReduceOp.SUM), (self.total, dist.ReduceOp.SUM),
                           (self.low, dist.ReduceOp.MIN), (self.high, dist.ReduceOp.MAX)):
            dist.all_reduce(tensor, op=op)

    @property
    def count(self) -> torch.Tensor:
        return self.counts.sum()

    def _order_statistic(self, j: torch.Tensor) -> torch.Tensor:
        """Estimate of the j-th smallest value (0-based): inside its bin, values spread evenly."""
        cum = self.counts.cumsum(0)
        idx = torch.searchsorted(cum, j, right=True).clamp(max=self.bins - 1)
        before = torch.where(idx > 0, cum[(idx - 1).clamp(min=0)], torch.zeros_like(j))
        inside = ((j - before + 0.5) / self.counts[idx].clamp(min=1)).clamp(0.0, 1.0)
        return torch.minimum(torch.maximum((idx + inside) / self.bins, self.low), self.high)

    def summary(self) -> torch.Tensor:
        """Quantiles ``STAT_QUANTILES`` (linear interpolation between order statistics, as numpy's
        default) and the mean: (len(STAT_FIELDS),) float32 on the device; NaN when nothing or
        something non-finite was added."""
        n = self.count
        rank = torch.tensor(STAT_QUANTILES, dtype=torch.float64, device=n.device) * (n - 1).clamp(min=0)
        lower, upper = self._order_statistic(rank.floor()), self._order_statistic(rank.ceil())
        values = lower + (rank - rank.floor()) * (upper - lower)
        values[0], values[-1] = self.low, self.high
        out = torch.cat([values, (self.total / n).reshape(1)]).float()
        bad = (n == 0) | ~torch.isfinite(self.total)
        return torch.where(bad, torch.full_like(out, float("nan")), out)

    def reset(self) -> None:
        self.counts.zero_()
        self.total.zero_()
        self.low.fill_(float("inf"))
        self.high.fill_(float("-inf"))
