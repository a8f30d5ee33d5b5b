"""Helpers shared by the model files: channel widths scaled by ``--width``."""
from __future__ import annotations


def scaled(channels: int, width: float) -> int:
    """``channels * width`` rounded, at least 1: every model shrinks by one factor for CPU runs."""
    if width <= 0:
        raise ValueError(f"width must be > 0; got {width}")
    return max(1, round(channels * width))
