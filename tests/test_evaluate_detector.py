import itertools

import numpy as np

from training.evaluate_detector import GRID, cost, judge, tune
from training.report import Curves


def curves(overfit_at: int | None, epochs: int = 30) -> Curves:
    """Test loss falling to a minimum at ``overfit_at`` then rising, NAS flat until then and rising
    after; or (None) a loss that keeps falling and flat NAS."""
    t = np.arange(1, epochs + 1)
    if overfit_at is None:
        loss = 2.0 / t
        rise = np.zeros(epochs)
    else:
        loss = 1.0 + 0.01 * (t - overfit_at) ** 2
        rise = np.clip(t - overfit_at, 0, None) * 0.03
    nas = {f"conv{i}": dict(zip(t.tolist(), (0.2 * i + rise * (1 - 0.2 * i)).tolist())) for i in (1, 2, 3)}
    nas["prediction"] = dict(zip(t.tolist(), [0.9] * epochs))
    distorted = dict(zip(t.tolist(), (2.0 / t).tolist()))  # a leaky test set keeps falling
    return Curves({"test_loss": dict(zip(t.tolist(), loss.tolist())), "distorted_test_loss": distorted}, nas)


def test_judge_reads_stops_and_labels():
    j = judge("a", curves(12))
    assert j.overfits and j.loss_min == 12
    assert j.gl_stop is not None and j.gl_stop > 12
    assert j.alarm is not None and 12 < j.alarm <= 18
    assert j.gl_distorted is None  # the distorted loss never shows overfitting
    clean = judge("b", curves(None))
    assert not clean.overfits and clean.alarm is None and clean.gl_stop is None


def test_cost_penalises_misses_and_false_alarms_and_tuning_picks_the_cheapest():
    over, clean = judge("a", curves(10), threshold=0.9), judge("b", curves(None))
    assert over.alarm is None and cost([over], 30) == 30  # missed
    assert cost([judge("a", curves(10))], 30) == abs(judge("a", curves(10)).alarm - 10)
    assert cost([clean], 30) == 0
    runs = {"a": curves(10), "b": curves(None), "c": curves(20)}
    options, best = tune(runs, 30)
    assert best <= cost([judge(n, c) for n, c in runs.items()], 30)
    # Every setting of the grid judged here: tune returns the cheapest and the cost those options give.
    costs = {values: cost([judge(n, c, **dict(zip(GRID, values))) for n, c in runs.items()], 30)
             for values in itertools.product(*GRID.values())}
    assert best == min(costs.values())
    assert costs[tuple(options[k] for k in GRID)] == best
