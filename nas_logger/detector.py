"""Online overfitting signals: a NAS-only alarm and the test-loss baselines it is judged against.

NAS alarm (``OverfitDetector``), fed the per-layer median NAS after each epoch:
  for every feature layer i (all but the deepest, the prediction layer) keep the running minimum
  m*_i of its median NAS and its relative rise r_i(t) = (m_i(t) - m*_i) / (1 - m*_i), the share of
  the remaining headroom to full sparsity that the layer has climbed since its minimum. Normalising
  by headroom makes one threshold fit shallow (dense) and deep (sparse) layers alike. Layer i votes
  at epoch t when r_i(t) >= ``threshold``; the alarm fires at the first epoch at which at least a
  ``quorum`` share of the layers has voted for ``patience`` consecutive epochs, never within the
  first ``warmup`` epochs. Only epochs <= t are used at epoch t.
Test-loss baselines: the step of the minimum of the lightly smoothed test loss (offline: it needs the
whole curve) and Prechelt's generalisation-loss criterion GL_alpha (online).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

# Centred moving average used before taking the minimum of a test-loss curve.
LOSS_SMOOTHING_WINDOW = 3


@dataclass(frozen=True)
class Alarm:
    step: int
    layers: tuple[str, ...]


@dataclass
class OverfitDetector:
    threshold: float = 0.05
    quorum: float = 0.5
    patience: int = 1
    warmup: int = 3
    noise_z: float = 4.0
    alarm: Alarm | None = None
    _minimum: dict[str, float] = field(default_factory=dict)
    _history: dict[str, list[float]] = field(default_factory=dict)
    _streak: int = 0
    _epochs: int = 0

    def __post_init__(self) -> None:
        if (not 0 < self.threshold < 1 or not 0 < self.quorum <= 1 or self.patience < 1 or self.warmup < 0
                or not self.noise_z >= 0):
            raise ValueError(
                "OverfitDetector needs 0 < threshold < 1, 0 < quorum <= 1, patience >= 1, warmup >= 0, noise_z >= 0; "
                f"got threshold={self.threshold}, quorum={self.quorum}, patience={self.patience}, "
                f"warmup={self.warmup}, noise_z={self.noise_z}"
            )

    def update(self, step: int, medians: Mapping[str, float]) -> Alarm | None:
        """Feed one epoch's median NAS per layer, in depth order (the prediction layer last, as
        ``Monitor.log`` returns them). Returns the alarm on the epoch it fires, else None."""
        self._epochs += 1
        features = list(medians)[:-1] if len(medians) > 1 else list(medians)
        voters = []
        for name in features:
            value = medians[name]
            if not math.isfinite(value):
                continue
            low = min(self._minimum.get(name, value), value)
            self._minimum[name] = low
            history = self._history.setdefault(name, [])
            history.append(value)
            rise = value - low
            if low < 1 and rise / (1 - low) >= self.threshold and rise > self.noise_z * _spread(history):
                voters.append(name)
        enough = bool(features) and len(voters) >= self.quorum * len(features)
        self._streak = self._streak + 1 if enough else 0
        if self.alarm is None and self._streak >= self.patience and self._epochs > self.warmup:
            self.alarm = Alarm(int(step), tuple(voters))
            return self.alarm
        return None


def _spread(values: list[float]) -> float:
    """Robust standard deviation (1.4826 x MAD) of consecutive changes; 0 with fewer than three values."""
    if len(values) < 3:
        return 0.0
    changes = np.diff(values)
    return float(1.4826 * np.median(np.abs(changes - np.median(changes))))


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


def generalisation_loss_stop(steps: Sequence[int], losses: Sequence[float], alpha: float = 5.0) -> int | None:
    """Prechelt's GL_alpha (1998): the first step t with 100 * (E(t) / min_{t'<=t} E(t') - 1) > alpha.

    Online: the decision at t uses losses up to t only. None when the criterion never fires.
    """
    best = math.inf
    for step, loss in zip(steps, losses):
        if not math.isfinite(loss):
            continue
        best = min(best, loss)
        if best > 0 and 100.0 * (loss / best - 1.0) > alpha:
            return int(step)
    return None
