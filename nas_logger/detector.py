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
# Prediction-layer median NAS of outputs at chance: near-uniform outputs have logits of one size, NAS near 0.
CHANCE_NAS = 0.05
# A climb whose last window is slower than its pace since the slowest window by this many standard errors of
# the window's slope is slowing down: the way out of a dip (steep at first, then back to the layer's pace) or a
# learning rise levelling off. Memorisation speeds up; a slowing climb does not vote.
SLOWING_Z = 0.5
# Epochs in the trailing mean whose rise above its lowest tells whether a layer's NAS moves at all.
RISE_POINTS = 3


@dataclass(frozen=True)
class Alarm:
    """The alarm: the step it fired at, the layers that voted, and ``onset``, the step where their accelerating
    climb became significant (the median over the voting layers of the step their run of votes began at)."""

    step: int
    layers: tuple[str, ...]
    onset: int | None = None


@dataclass
class _Layer:
    """One feature layer's state: its medians so far, its fastest and slowest slope so far, and its rise
    rate: the fastest slope up to the epoch of the slowest."""

    values: list[float] = field(default_factory=list)
    fastest: float = 0.0
    slowest: float = math.inf
    rise: float = 0.0
    since: int = 0  # index of the middle of the slowest window: where the climb is measured from
    low: float = math.inf  # lowest trailing 3-epoch mean so far
    moved: bool = False  # rose beyond ``judge_rise`` and its noise above ``low`` at some epoch
    voting_since: int | None = None  # index of the step its current run of votes began at


@dataclass
class OverfitDetector:
    """NAS-only, online overfitting alarm: a feature layer's median NAS climbing faster again after it had slowed.

    Per feature layer (all but the last, the prediction layer): s(t), the slope of its median NAS over the
    last ``window`` epochs; L, its slowest slope so far (>= 0); R, its learning rise, the fastest slope up to
    the epoch of L (>= ``min_rate``). It votes while a climb c (s(t), or the slope since the middle of the
    slowest window) beats L by ``threshold`` x R and by ``noise_z`` standard errors, unless it is slowing down
    (s(t) below the slope since the slowest window by :data:`SLOWING_Z` standard errors: the way out of a dip). The alarm fires when a
    ``quorum`` share of the feature layers votes ``patience`` epochs in a row, after ``warmup`` epochs; it
    names the voters and the onset of their climb. While the prediction layer's NAS (the outputs'
    confidence) wakes up (idles, or rises from chance ever faster), each new fastest rise restarts every
    feature layer's L and R: a late start of learning is not memorisation. :meth:`status` says whether the detector can judge the network: a
    feature layer whose NAS never rises ``judge_rise`` above its lowest (normalised layers) gives it nothing
    to see, and so does a layer that feeds a normalisation layer (``normalised``): it neither votes nor counts.
    Epochs <= t only are used at epoch t. docs/early-warning.md has the method and its evaluation.
    """

    threshold: float = 0.35
    window: int = 5
    min_rate: float = 0.003
    quorum: float = 0.5
    patience: int = 2
    warmup: int = 3
    noise_z: float = 2.0
    judge_rise: float = 0.04
    judge_after: int = 8
    # Feature layers that feed a normalisation layer, with its class name (``nas_logger.layers.normalised_layers``):
    # their NAS is measured before the normalisation, where it does not show memorisation; they are not read.
    normalised: Mapping[str, str] = field(default_factory=dict)
    alarm: Alarm | None = None
    _layers: dict[str, _Layer] = field(default_factory=dict, repr=False)
    _outputs: list[float] = field(default_factory=list, repr=False)  # the prediction layer's medians
    _outputs_fastest: float = field(default=0.0, repr=False)
    _waking: bool | None = field(default=None, repr=False)  # outputs from chance, speeding up without a break
    _streak: int = field(default=0, repr=False)
    _steps: list[int] = field(default_factory=list, repr=False)  # the steps fed so far
    _epochs: int = field(default=0, repr=False)
    _unread: set[str] = field(default_factory=set, repr=False)  # feature layers seen that feed a normalisation layer

    def __post_init__(self) -> None:
        if (not self.threshold > 0 or self.window < 2 or not self.min_rate > 0
                or not 0 < self.quorum <= 1 or self.patience < 1 or self.warmup < 0 or not self.noise_z >= 0
                or not self.judge_rise >= 0 or self.judge_after < 1):
            raise ValueError(
                "OverfitDetector needs threshold > 0, window >= 2, min_rate > 0, 0 < quorum <= 1, "
                "patience >= 1, warmup >= 0, noise_z >= 0, judge_rise >= 0, judge_after >= 1; got "
                f"threshold={self.threshold}, window={self.window}, min_rate={self.min_rate}, quorum={self.quorum}, "
                f"patience={self.patience}, warmup={self.warmup}, noise_z={self.noise_z}, "
                f"judge_rise={self.judge_rise}, judge_after={self.judge_after}"
            )

    @property
    def epochs_to_judge(self) -> int:
        """Logged epochs before the alarm can first fire: a full window that sets the slowest pace, then
        ``patience`` windows that vote, past ``warmup``."""
        return max(self.window + self.patience, self.warmup + 1)

    def update(self, step: int, medians: Mapping[str, float]) -> Alarm | None:
        """Feed one epoch's median NAS per layer, in depth order (the prediction layer last, as
        ``Monitor.log`` returns them). Returns the alarm on the epoch it fires, else None."""
        self._steps.append(int(step))
        self._epochs += 1
        names = list(medians)
        if len(names) > 1 and math.isfinite(medians[names[-1]]) and self._outputs_learn(medians[names[-1]]):
            # Paces forgotten, values kept: each layer's next window sets its slowest pace and learning rise anew.
            self._layers = {name: _Layer(layer.values, low=layer.low, moved=layer.moved)
                            for name, layer in self._layers.items()}
        features = [n for n in (names[:-1] if len(names) > 1 else names)
                    if math.isfinite(medians[n]) and n not in self.normalised]
        self._unread.update(n for n in names[:-1] if n in self.normalised)
        voters = tuple(name for name in features if self._votes(name, medians[name]))
        for name in features:
            layer = self._layers[name]
            layer.voting_since = (len(self._steps) - 1 if layer.voting_since is None else layer.voting_since) \
                if name in voters else None
        enough = bool(features) and len(voters) >= self.quorum * len(features)
        self._streak = self._streak + 1 if enough else 0
        if self.alarm is None and self._streak >= self.patience and self._epochs > self.warmup:
            self.alarm = Alarm(int(step), voters, self._onset(voters))
            return self.alarm
        return None

    def _onset(self, voters: Sequence[str]) -> int | None:
        """The step where the voters' climb became significant: the lower median over them of the first step of
        their unbroken run of votes."""
        starts = sorted(self._layers[name].voting_since for name in voters)
        return self._steps[starts[(len(starts) - 1) // 2]] if starts else None

    def status(self, unit: str = "step") -> dict:
        """What the alarm can say now: ``{state, message, epochs_needed, onset, alarm}`` as in
        :func:`nas_logger.format.parse_alarm_status`. "warming_up" until :attr:`epochs_to_judge` epochs (and,
        while no feature layer has moved, ``judge_after``); then "watching" once some feature layer's NAS has
        risen ``judge_rise`` and its noise above its lowest, else "cannot_judge"; "fired" once it fired. ``unit``
        names the steps in the message ("epoch", "global step")."""
        if self.alarm is not None:
            onset = self.alarm.onset
            return {"state": "fired", "epochs_needed": None, "onset": onset, "alarm": self.alarm.step,
                    "message": f"NAS alarm fired at {unit} {self.alarm.step}"
                               + (f"; the climb became significant at {unit} {onset}" if onset is not None else "")}
        seen = self._epochs
        if self._unread and not self._layers:
            kinds = ", ".join(sorted({self.normalised[n] for n in self._unread}))
            return {"state": "cannot_judge", "epochs_needed": None, "onset": None, "alarm": None,
                    "message": f"NAS alarm: cannot judge this network: every feature layer feeds a normalisation "
                               f"layer ({kinds}), before which NAS does not show memorisation"}
        moved = any(layer.moved for layer in self._layers.values())
        needed = max(self.epochs_to_judge - seen, 0 if moved else self.judge_after - seen)
        if needed > 0:
            return {"state": "warming_up", "epochs_needed": needed, "onset": None, "alarm": None,
                    "message": f"NAS alarm: warming up, {needed} more epoch{'s' * (needed > 1)} before it can judge"}
        if moved:
            return {"state": "watching", "epochs_needed": None, "onset": None, "alarm": None,
                    "message": "NAS alarm: watching"}
        return {"state": "cannot_judge", "epochs_needed": None, "onset": None, "alarm": None,
                "message": f"NAS alarm: cannot judge this network: feature-layer NAS is flat (no layer rose "
                           f"{self.judge_rise:g} above its lowest; normalised layers?)"}

    def _outputs_learn(self, value: float) -> bool:
        """Feed the prediction layer's median; True when the outputs wake up: while still idle (never faster
        than ``min_rate``), or, for outputs that started at chance (median below :data:`CHANCE_NAS`), while
        every window has been faster than all before, its slope beats every earlier one and the noise."""
        self._outputs.append(float(value))
        if len(self._outputs) < self.window:
            return False
        slope = _slope(self._outputs[-self.window:])
        faster = slope > max(self._outputs_fastest, self.noise_z * _slope_error(self._outputs, self.window))
        idle = self._outputs_fastest < self.min_rate
        self._outputs_fastest = max(self._outputs_fastest, slope)
        self._waking = self._outputs[0] < CHANCE_NAS and (idle or faster) and self._waking is not False
        return faster and (idle or self._waking)

    def _votes(self, name: str, value: float) -> bool:
        """Update layer ``name`` with this epoch's median; True when it climbs faster than its slowest pace."""
        layer = self._layers.setdefault(name, _Layer())
        layer.values.append(float(value))
        self._track_rise(layer)
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
            if len(climbing) > self.window and slope < spans[-1][0] - SLOWING_Z * _slope_error(layer.values, self.window):
                return False  # slowing down: the climb out of a dip, or a learning rise levelling off
        return any(
            s - layer.slowest >= self.threshold * layer.rise
            and s - layer.slowest > self.noise_z * _slope_error(layer.values, n)
            for s, n in spans
        )

    def _track_rise(self, layer: _Layer) -> None:
        """Whether the layer's NAS moves: its trailing 3-epoch mean rose ``judge_rise`` above its lowest so far,
        and by more than ``noise_z`` standard errors of such a difference."""
        if len(layer.values) < RISE_POINTS:
            return
        mean = sum(layer.values[-RISE_POINTS:]) / RISE_POINTS
        layer.low = min(layer.low, mean)
        noise = _value_noise(layer.values) * math.sqrt(2 / RISE_POINTS)
        layer.moved |= mean - layer.low >= max(self.judge_rise, self.noise_z * noise)


def _value_noise(values: list[float]) -> float:
    """Noise of one value: the robust spread (1.4826 x MAD) of the second differences of ``values`` (which a
    linear trend leaves at zero) over sqrt(6). 0 with fewer than four values."""
    if len(values) < 4:
        return 0.0
    second = np.diff(values, 2)
    return 1.4826 * float(np.median(np.abs(second - np.median(second)))) / math.sqrt(6)


def _slope_error(values: list[float], n: int) -> float:
    """Standard error of an ``n``-point least-squares slope of ``values`` (:func:`_value_noise` times
    sqrt(12 / (n^3 - n)))."""
    return _value_noise(values) * math.sqrt(12.0 / (n**3 - n))


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
