"""What ``watch`` takes besides the model, the log dir and the probe, checked once when it is made."""
from __future__ import annotations

import numbers
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Union

from . import format as fmt
from .probe import MAX_PROBE
from .streaming import DEFAULT_BINS

if TYPE_CHECKING:
    from torch import nn

    from .detector import OverfitDetector

# Probe samples whose heatmaps and images are written by default: a few to choose from in the tab, at
# that many times one sample's heatmap bytes per log.
PROBE_IMAGES = 4

LayerChoice = Union[Iterable[Union[str, "nn.Module"]], str, None]


@dataclass(frozen=True)
class WatchOptions:
    """The monitor's settings; ValueError at construction for a value out of range, naming it.

    ``layers``: names, glob patterns or modules (None: every Conv1d/2d/3d and Linear layer that runs).
    ``heatmap_side``: the largest side a stored heatmap keeps. ``max_probe``: samples a probe keeps.
    ``probe_images``: samples whose heatmaps and images are written. ``detect``: True (or an
    ``OverfitDetector``) runs the NAS-only overfitting detector at every log. ``statistics``: ``"probe"``
    or ``"stream"`` (histograms of ``bins`` bins over every ``stream_every``-th training forward).
    ``ranks``: ``"0"`` (rank 0 measures) or ``"all"`` (histograms merged over torch.distributed ranks).
    ``name``: prefixes the monitor's layers and tags. ``step_unit``: what a step of ``log`` counts.
    """

    layers: LayerChoice = None
    heatmap_side: int = fmt.MAX_HEATMAP_SIDE
    max_probe: int = MAX_PROBE
    probe_images: int = PROBE_IMAGES
    detect: Union[bool, "OverfitDetector"] = False
    statistics: str = "probe"
    ranks: str = "0"
    bins: int = DEFAULT_BINS
    stream_every: int = 1
    name: str | None = None
    step_unit: str = fmt.DEFAULT_STEP_UNIT

    def __post_init__(self) -> None:
        for field, low in (("heatmap_side", 1), ("max_probe", 1), ("probe_images", 1), ("bins", 2),
                           ("stream_every", 1)):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise ValueError(f"{field} must be an int; got {type(value).__name__} {value!r}")
            if value < low:
                raise ValueError(f"{field} must be >= {low}; got {value}")
        if self.statistics not in ("probe", "stream"):
            raise ValueError(f"statistics must be 'probe' or 'stream'; got {self.statistics!r}")
        if self.ranks not in ("0", "all"):
            raise ValueError(f"ranks must be '0' (rank 0 measures) or 'all' (histograms merged); got {self.ranks!r}")
        if not isinstance(self.detect, bool) and not hasattr(self.detect, "update"):
            raise ValueError(f"detect must be True, False or an OverfitDetector; got {type(self.detect).__name__}")
        fmt.check_step_unit(self.step_unit)
