"""Prechelt's online early-stopping rules on the test loss (Prechelt 1998): the generalisation loss GL_alpha,
the quotient PQ_alpha of GL and training progress, and UP_s (s successive strips with a rising test loss).
They see the test loss, which the NAS alarm never does: ``python -m training.evaluate_detector`` judges the
alarm against them."""
from __future__ import annotations

import math
from collections.abc import Sequence


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


def _strip_ends(steps: Sequence[int], k: int) -> range:
    """Positions of the last epoch of each strip of ``k`` epochs."""
    return range(k - 1, len(steps), k)


def progress_quotient_stop(steps: Sequence[int], losses: Sequence[float], train_losses: Sequence[float],
                           alpha: float = 3.0, strip: int = 5) -> int | None:
    """Prechelt's PQ_alpha (1998): at the end of each strip of ``strip`` epochs, stop when
    GL(t) / P_k(t) > alpha, with GL(t) = 100 * (E(t) / min_{t'<=t} E(t') - 1) on the test loss E and the
    training progress P_k(t) = 1000 * (sum of the strip's training losses / (k * their minimum) - 1).
    Online; None when it never fires."""
    best = math.inf
    for i, (step, loss) in enumerate(zip(steps, losses)):
        if math.isfinite(loss):
            best = min(best, loss)
        if (i + 1) % strip or not math.isfinite(loss) or not best > 0:
            continue
        window = [v for v in train_losses[i + 1 - strip: i + 1] if math.isfinite(v)]
        if not window or min(window) <= 0:
            continue
        progress = 1000.0 * (sum(window) / (len(window) * min(window)) - 1.0)
        gl = 100.0 * (loss / best - 1.0)
        if gl > 0 and (progress <= 0 or gl / progress > alpha):
            return int(step)
    return None


def up_stop(steps: Sequence[int], losses: Sequence[float], s: int = 2, strip: int = 5) -> int | None:
    """Prechelt's UP_s (1998): stop at the end of the s-th successive strip of ``strip`` epochs at whose end
    the test loss is higher than at the end of the strip before. Online; None when it never fires."""
    ends = list(_strip_ends(steps, strip))
    rises = 0
    for previous, current in zip(ends, ends[1:]):
        rises = rises + 1 if losses[current] > losses[previous] else 0
        if rises >= s:
            return int(steps[current])
    return None
