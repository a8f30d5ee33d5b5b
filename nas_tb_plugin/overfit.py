"""Which scalar is the test loss, and the moment of overfitting derived from it."""
from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np

# Exact tag names tried in this order; then any tag matching _LOSS_LIKE (shortest name first).
TEST_LOSS_TAGS = (
    "test_loss", "loss/test", "test/loss", "test loss",
    "val_loss", "loss/val", "val/loss",
    "validation_loss", "loss/validation", "validation/loss",
    "valid_loss", "loss/valid", "valid/loss",
    "eval_loss", "loss/eval", "eval/loss",
)
_LOSS_LIKE = re.compile(r"(test|val|valid|validation|eval).*loss|loss.*(test|val|valid|validation|eval)", re.I)
_DISTORTED = re.compile(r"distort", re.I)

SMOOTHING_WINDOW = 3


def default_loss_tag(tags: Iterable[str]) -> str | None:
    """The scalar tag that names a test loss, or ``None``: first an exact name of ``TEST_LOSS_TAGS``
    in that order, then a tag that looks like one (``my_val_loss``), undistorted and shortest first."""
    tags = set(tags)
    for tag in TEST_LOSS_TAGS:
        if tag in tags:
            return tag
    candidates = [t for t in tags if _LOSS_LIKE.search(t)]
    if not candidates:
        return None
    return min(candidates, key=lambda t: (bool(_DISTORTED.search(t)), len(t), t))


def smooth(values: np.ndarray) -> np.ndarray:
    """Centred moving average of window 3, truncated at the ends:
    out[i] = mean(values[max(i-1, 0) : i+2])."""
    values = np.asarray(values, dtype=np.float64)
    n = values.size
    if n < 3:
        return values.copy() if n < 2 else np.full(2, values.mean())
    total = values.copy()
    total[1:] += values[:-1]
    total[:-1] += values[1:]
    count = np.full(n, 3.0)
    count[0] = count[-1] = 2.0
    return total / count


def overfit_step(steps: np.ndarray, values: np.ndarray) -> int | None:
    """Step of the minimal test loss after :func:`smooth` over the finite points (in step order);
    the earliest such step on ties; ``None`` without a finite point."""
    steps = np.asarray(steps)
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    if not finite.any():
        return None
    steps, values = steps[finite], values[finite]
    return int(steps[int(np.argmin(smooth(values)))])
