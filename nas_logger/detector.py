"""The NAS-only overfitting alarm (``OverfitDetector``), fed the per-layer median NAS after each epoch, and the
step of the minimum of the lightly smoothed test loss (offline: it needs the whole curve), the moment of
overfitting the plugin marks and the alarm is judged against. The test-loss stopping rules it is compared
with live in ``training/stopping.py``."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

# Centred moving average used before taking the minimum of a test-loss curve.
LOSS_SMOOTHING_WINDOW = 3
# Epochs a climb is measured over at least (from the middle of the slowest window on).
MIN_CLIMB_POINTS = 4


@dataclass(frozen=True)
class Alarm:
    step: int
    layers: tuple[str, ...]


@dataclass
class _Layer:
    """One feature layer's state: its medians so far, its fastest and slowest slope so far, and its rise
    rate: the fastest slope up to the epoch of the slowest."""

    values: list[float] = field(default_factory=list)
    fastest: float = 0.0
    slowest: float = math.inf
    rise: float = 0.0
    since: int = 0  # index of the middle of the slowest window: where the climb is measured from


@dataclass
class OverfitDetector:
    """NAS-only, online overfitting alarm: a layer's NAS climbing faster again after it had slowed down.

    While a network learns, its layers' median NAS may rise, but the rise slows down and levels off; when
    the network starts to memorise, NAS climbs again, faster (issue 12's CIFAR-10 picture; the paper's
    Fig. 2). So for every feature layer (all but the last, the prediction layer) the detector takes s(t),
    the least-squares slope of the median NAS over the last ``window`` epochs (NAS per epoch, from the first
    full window on), and keeps its slowest slope so far, L (a falling layer counts as flat: L >= 0), and its
    rise rate R, the fastest slope it had shown up to the epoch of L (its learning rise; at least
    ``min_rate``). A layer votes while it climbs faster again: c - L >= ``threshold`` x R, by more than
    ``noise_z`` standard errors of c (from the robust spread of the layer's second differences), where c is
    s(t) or the slope over every epoch since the middle of the slowest window (at least 4): a slow climb that
    a ``window``-epoch slope cannot tell from the noise shows over the longer span. A rise
    that slows down or keeps one pace never votes, however steep, and measuring each layer against its own
    learning rise makes one setting fit dense and sparse, shallow and deep layers. The alarm fires at the
    first epoch at which at least a ``quorum`` share of the feature layers (those with a finite median)
    votes, ``patience`` epochs in a row, never within the first ``warmup`` epochs; it names the voting
    layers.

    A network that starts to learn late (it idles at chance, then learns: dropout, poor initialisation) shows
    the same shape, flat then climbing, while it is still learning. The prediction layer tells the two apart:
    its NAS measures how confident the outputs are, and it starts to rise when the network starts to learn.
    So while the outputs idle (the prediction layer's ``window``-epoch slope has never exceeded ``min_rate``),
    each new fastest rise of it (beyond ``noise_z`` standard errors) measures every feature layer's slowest
    pace and learning rise afresh from that epoch on: a layer that climbs as the outputs wake up is learning,
    not memorising. Only epochs <= t are used at epoch t; each epoch costs one ``window``-point regression and one
    median over the history per layer.
    """

    threshold: float = 0.35
    window: int = 5
    min_rate: float = 0.003
    quorum: float = 0.5
    patience: int = 2
    warmup: int = 3
    noise_z: float = 2.0
    alarm: Alarm | None = None
    _layers: dict[str, _Layer] = field(default_factory=dict, repr=False)
    _outputs: list[float] = field(default_factory=list, repr=False)  # the prediction layer's medians
    _outputs_fastest: float = field(default=0.0, repr=False)
    _streak: int = field(default=0, repr=False)
    _epochs: int = field(default=0, repr=False)

    def __post_init__(self) -> None:
        if (not self.threshold > 0 or self.window < 2 or not self.min_rate > 0
                or not 0 < self.quorum <= 1 or self.patience < 1 or self.warmup < 0 or not self.noise_z >= 0):
            raise ValueError(
                "OverfitDetector needs threshold > 0, window >= 2, min_rate > 0, 0 < quorum <= 1, "
                f"patience >= 1, warmup >= 0, noise_z >= 0; got threshold={self.threshold}, "
                f"window={self.window}, min_rate={self.min_rate}, quorum={self.quorum}, patience={self.patience}, "
                f"warmup={self.warmup}, noise_z={self.noise_z}"
            )

    def update(self, step: int, medians: Mapping[str, float]) -> Alarm | None:
        """Feed one epoch's median NAS per layer, in depth order (the prediction layer last, as
        ``Monitor.log`` returns them). Returns the alarm on the epoch it fires, else None."""
        self._epochs += 1
        names = list(medians)
        if len(names) > 1 and math.isfinite(medians[names[-1]]) and self._outputs_learn(medians[names[-1]]):
            # Paces forgotten, values kept: each layer's next window sets its slowest pace and learning rise anew.
            self._layers = {name: _Layer(layer.values) for name, layer in self._layers.items()}
        features = [n for n in (names[:-1] if len(names) > 1 else names) if math.isfinite(medians[n])]
        voters = tuple(name for name in features if self._votes(name, medians[name]))
        enough = bool(features) and len(voters) >= self.quorum * len(features)
        self._streak = self._streak + 1 if enough else 0
        if self.alarm is None and self._streak >= self.patience and self._epochs > self.warmup:
            self.alarm = Alarm(int(step), voters)
            return self.alarm
        return None

    def _outputs_learn(self, value: float) -> bool:
        """Feed the prediction layer's median; True when, still idle (never faster than ``min_rate``), its slope
        beats every earlier one and the noise."""
        self._outputs.append(float(value))
        if len(self._outputs) < self.window:
            return False
        slope = _slope(self._outputs[-self.window:])
        idle = self._outputs_fastest < self.min_rate
        faster = slope > max(self._outputs_fastest, self.noise_z * _slope_error(self._outputs, self.window))
        self._outputs_fastest = max(self._outputs_fastest, slope)
        return idle and faster

    def _votes(self, name: str, value: float) -> bool:
        """Update layer ``name`` with this epoch's median; True when it climbs faster than its slowest pace."""
        layer = self._layers.setdefault(name, _Layer())
        layer.values.append(float(value))
        if len(layer.values) < self.window:
            return False
        slope = _slope(layer.values[-self.window:])
        layer.fastest = max(layer.fastest, slope, self.min_rate)
        if max(slope, 0.0) <= layer.slowest:
            layer.slowest, layer.rise = max(slope, 0.0), layer.fastest
            layer.since = len(layer.values) - 1 - self.window // 2
        climbing = layer.values[layer.since:]
        spans = [(slope, self.window)]
        if len(climbing) >= MIN_CLIMB_POINTS:
            spans.append((_slope(climbing), len(climbing)))
        return any(
            s - layer.slowest >= self.threshold * layer.rise
            and s - layer.slowest > self.noise_z * _slope_error(layer.values, n)
            for s, n in spans
        )


def _slope_error(values: list[float], n: int) -> float:
    """Standard error of an ``n``-point least-squares slope, the noise of one value estimated from the
    robust spread (1.4826 x MAD) of the second differences of ``values`` (which a linear trend leaves at
    zero) divided by sqrt(6), times sqrt(12 / (n^3 - n)). 0 with fewer than four values."""
    if len(values) < 4:
        return 0.0
    second = np.diff(values, 2)
    noise = 1.4826 * float(np.median(np.abs(second - np.median(second)))) / math.sqrt(6)
    return noise * math.sqrt(12.0 / (n**3 - n))


def _slope(values: list[float]) -> float:
    """Least-squares slope of ``values`` against 0, 1, 2, ... (units per step)."""
    t = np.arange(len(values), dtype=np.float64)
    t -= t.mean()
    return float(np.dot(t, values) / np.dot(t, t))


def nas_alarm(steps: Sequence[int], medians: Mapping[str, Sequence[float]], **options: float) -> Alarm | None:
    """Run :class:`OverfitDetector` over whole curves ``{layer: [median per step]}`` (depth order)."""
    detector = OverfitDetector(**options)
    for t, step in enumerate(steps):
        detector.update(step, {name: values[t] for name, values in medians.items()})
    return detector.alarm


def smooth(values: Sequence[float], window: int = LOSS_SMOOTHING_WINDOW) -> np.ndarray:
    """Centred moving average; the ends average over the part of the window that exists."""
    v = np.asarray(values, dtype=np.float64)
    half, i = window // 2, np.arange(v.size)
    low, high = np.maximum(i - half, 0), np.minimum(i + half + 1, v.size)
    total = np.concatenate([[0.0], np.cumsum(v)])
    return (total[high] - total[low]) / (high - low)


def loss_minimum_step(steps: Sequence[int], losses: Sequence[float], window: int = LOSS_SMOOTHING_WINDOW) -> int | None:
    """The overfitting moment from the test loss: the step of the minimum of its centred moving
    average (window 3) over the finite points, in step order; the earliest on ties. None without a
    finite point."""
    values = np.asarray(losses, dtype=np.float64)
    finite = np.isfinite(values)
    if not finite.any():
        return None
    kept = np.asarray(steps)[finite]
    return int(kept[int(np.argmin(smooth(values[finite], window)))])
