"""Where a monitor's per-layer NAS statistics come from: a probe pass, or the training batches.

Both have one interface for the monitor: ``needs_probe`` (whether ``collect`` measures a probe batch),
``collect(probe)`` and ``close()``. Both return, per executed layer in execution (depth) order, a :class:`LayerResult` whose tensors stay
on the model's device until the monitor copies them all to the host at once.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .hooks import tap_for
from .probe import Probe, run_probe
from .statistics import distribution, field_sparsity, heatmaps
from .streaming import NASHistogram


@dataclass
class LayerResult:
    stats: torch.Tensor  # (len(STAT_FIELDS),) quantiles and mean of s_k
    heatmap: torch.Tensor | None  # (k, H, W) s_k maps of the first k probe samples; None when streaming
    fields: int  # receptive fields per sample


def merge_across_ranks(histograms: dict[str, NASHistogram], names: list[str], bins: int, device: torch.device) -> None:
    """All-reduce one histogram per name, in ``names`` order on every rank (a rank that saw nothing
    of a layer contributes an empty histogram), so every rank must call this at the same log."""
    for name in names:
        if name not in histograms:
            histograms[name] = NASHistogram(bins, device)
        histograms[name].all_reduce()


class ProbeStatistics:
    """Runs the probe batch through the model (eval mode, no grad, modes restored) with hooks that
    exist for that pass only. Exact quantiles, or histograms merged over all ranks' probes."""

    def __init__(self, model: nn.Module, modules: dict[str, nn.Module], kinds: dict[str, str],
                 heatmap_side: int, merge_ranks: bool, bins: int, heatmap_probes: int = 1) -> None:
        self.model, self.modules, self.kinds = model, modules, kinds
        self.heatmap_side, self.merge_ranks, self.bins = heatmap_side, merge_ranks, bins
        self.heatmap_probes = heatmap_probes

    needs_probe = True

    def close(self) -> None:
        """Nothing to release: the probe pass's hooks exist for that pass only."""

    def device(self) -> torch.device:
        for p in self.model.parameters():
            return p.device
        return torch.device("cpu")

    def collect(self, probe: Probe | None) -> dict[str, LayerResult]:
        # Each layer is reduced inside its hook, so no layer's s-map outlives its own output.
        results: dict[str, tuple[torch.Tensor | NASHistogram, torch.Tensor, int]] = {}

        def consume(name: str, output: torch.Tensor) -> None:
            if name in results:  # a module called twice per forward: its first call counts
                return
            s = field_sparsity(output, self.kinds[name])
            if self.merge_ranks:
                summary: torch.Tensor | NASHistogram = NASHistogram(self.bins, s.device)
                summary.add(s)
            else:
                summary = distribution(s)
            maps = heatmaps(s[:self.heatmap_probes], self.heatmap_side)
            results[name] = (summary, maps, s[0].numel())

        failure: Exception | None = None
        if probe is not None:
            modes = {m: m.training for m in self.model.modules()}
            self.model.eval()
            try:
                with torch.no_grad(), tap_for(self.model).exclusive(consume, self.modules):
                    run_probe(self.model, probe, self.device())
            except Exception as e:
                if not self.merge_ranks:
                    raise
                failure = e  # raised after the merge, which the other ranks wait for
                results.clear()
            finally:
                for m, training in modes.items():
                    m.training = training
        if not self.merge_ranks:
            return {name: LayerResult(stats, hm, fields) for name, (stats, hm, fields) in results.items()}
        histograms = {name: hist for name, (hist, _, _) in results.items()}
        merge_across_ranks(histograms, list(self.modules), self.bins, self.device())
        if failure is not None:
            raise failure
        return {name: LayerResult(histograms[name].summary(), hm, fields) for name, (_, hm, fields) in results.items()}


class StreamStatistics:
    """Accumulates s_k of every ``every``-th training forward (gradients enabled) per layer in a
    fixed-bin histogram: no probe pass, O(bins) memory per layer, no heatmaps. ``collect`` returns
    the statistics since the previous call and starts a new window."""

    needs_probe = False

    def __init__(self, model: nn.Module, modules: dict[str, nn.Module], kinds: dict[str, str],
                 merge_ranks: bool, bins: int, every: int) -> None:
        if every < 1:
            raise ValueError(f"stream_every must be >= 1; got {every}")
        self.model, self.modules, self.kinds = model, modules, kinds
        self.merge_ranks, self.bins, self.every = merge_ranks, bins, every
        self.histograms: dict[str, NASHistogram] = {}
        self.fields: dict[str, int] = {}
        self._calls: dict[str, int] = {}
        tap_for(model).subscribe(self._accumulate, modules)

    def _accumulate(self, name: str, output: torch.Tensor) -> None:
        if not torch.is_grad_enabled():
            return
        calls = self._calls.get(name, 0)
        self._calls[name] = calls + 1
        if calls % self.every:
            return
        s = field_sparsity(output, self.kinds[name])
        if name not in self.histograms:  # insertion order = order of first execution
            self.histograms[name] = NASHistogram(self.bins, s.device)
            self.fields[name] = s[0].numel()
        self.histograms[name].add(s)

    def collect(self, probe: Probe | None = None) -> dict[str, LayerResult]:
        if self.merge_ranks:
            device = next(iter(self.histograms.values())).counts.device if self.histograms else torch.device("cpu")
            merge_across_ranks(self.histograms, list(self.modules), self.bins, device)
        results = {}
        for name, hist in self.histograms.items():
            if name in self.fields:
                results[name] = LayerResult(hist.summary(), None, self.fields[name])
            hist.reset()
        return results

    def close(self) -> None:
        """Stop accumulating: unsubscribe from the model's shared hook."""
        tap_for(self.model).unsubscribe(self._accumulate)
