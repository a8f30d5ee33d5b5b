"""Ratios of timings taken side by side: every round times each variant once, and a variant's ratio to the
baseline is taken within its round, so that load which comes and goes on a shared machine hits both alike.
A figure is printed as the median of those per-round ratios with their spread (lowest..highest), so that a
reader can tell a difference from the noise."""
from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence


def ratios(times: Mapping[str, Sequence[float]], base: str) -> dict[str, list[float]]:
    """Per-round ratios ``times[name][r] / times[base][r]`` of every variant."""
    return {name: [t / b for t, b in zip(values, times[base])] for name, values in times.items()}


def spread(values: Sequence[float], unit: str = "x", digits: int = 3) -> str:
    """``1.031x (0.982-1.074x, 9 rounds)``: the median and the lowest..highest of ``values``."""
    if not values:
        raise ValueError("no rounds to summarise")
    median = statistics.median(values)
    return (f"{median:.{digits}f}{unit} ({min(values):.{digits}f}-{max(values):.{digits}f}{unit}, "
            f"{len(values)} round{'s' if len(values) != 1 else ''})")
