"""Which scalar is the test loss, and the moment of overfitting derived from it: the SDK's
:func:`nas_logger.detector.loss_minimum_step`, unless the curve may still be falling."""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import numpy as np

from nas_logger.detector import LOSS_SMOOTHING_WINDOW, loss_minimum_step

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


def overfit_step(steps: Sequence[int], losses: Sequence[float], window: int = LOSS_SMOOTHING_WINDOW) -> int | None:
    """The step of the minimum of the smoothed test loss (:func:`loss_minimum_step`), or ``None`` while
    that minimum lies within the last ``window`` finite points: a loss still at (or next to) its minimum
    at the last logged step has not overfitted yet, and the moving average cannot tell yet."""
    step = loss_minimum_step(steps, losses, window)
    if step is None:
        return None
    kept = np.asarray(steps)[np.isfinite(np.asarray(losses, dtype=np.float64))]
    return None if int(np.searchsorted(kept, step)) >= kept.size - window else step
