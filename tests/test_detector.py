import numpy as np
import pytest

from nas_logger.detector import (OverfitDetector, generalisation_loss_stop, loss_minimum_step, nas_alarm, smooth)


def curves(change_at: int, epochs: int = 30, slope: float = 0.03, seed: int = 0, noise: float = 0.003):
    """Three feature layers flat (at different levels) until ``change_at``, then rising; a noisy
    prediction layer that the detector must ignore."""
    rng = np.random.default_rng(seed)
    t = np.arange(epochs)
    rise = np.clip(t - change_at, 0, None) * slope
    layers = {}
    for name, base in (("conv1", 0.05), ("conv2", 0.3), ("fc1", 0.6)):
        layers[name] = base + rise * (1 - base) + rng.normal(0, noise, epochs)
    layers["fc2"] = 0.9 + rng.normal(0, 0.05, epochs)
    return list(t), layers


@pytest.mark.parametrize("change_at", [5, 10, 18])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fires_within_tolerance_after_a_known_change_point_and_never_before(change_at, seed):
    steps, layers = curves(change_at, seed=seed)
    alarm = nas_alarm(steps, layers)
    assert alarm is not None
    assert change_at < alarm.step <= change_at + 6
    assert "fc2" not in alarm.layers and len(alarm.layers) >= 2


@pytest.mark.parametrize("seed", range(5))
def test_flat_noisy_curves_raise_no_alarm(seed):
    steps, layers = curves(change_at=10**6, seed=seed, noise=0.01)
    assert nas_alarm(steps, layers) is None


def test_a_falling_curve_is_no_overfitting():
    steps = list(range(20))
    layers = {"a": list(np.linspace(0.8, 0.2, 20)), "b": list(np.linspace(0.5, 0.1, 20)), "out": [0.9] * 20}
    assert nas_alarm(steps, layers) is None


def test_online_feeding_equals_whole_curves_and_is_causal():
    steps, layers = curves(change_at=8, seed=3)
    detector = OverfitDetector()
    fired = [detector.update(s, {n: v[i] for n, v in layers.items()}) for i, s in enumerate(steps)]
    whole = nas_alarm(steps, layers)
    assert [a for a in fired if a is not None] == [whole]
    assert fired.index(whole) == steps.index(whole.step)  # fired on the epoch it names
    # Causality: data after the alarm changes nothing; data up to the epoch before raises nothing.
    cut = steps.index(whole.step)
    assert nas_alarm(steps[: cut + 1], {n: v[: cut + 1] for n, v in layers.items()}) == whole
    assert nas_alarm(steps[:cut], {n: v[:cut] for n, v in layers.items()}) is None
    scrambled = {n: list(v[: cut + 1]) + list(np.random.default_rng(9).random(len(v) - cut - 1)) for n, v in layers.items()}
    assert nas_alarm(steps, scrambled) == whole


def test_nan_layers_are_skipped_and_bad_options_rejected():
    steps, layers = curves(change_at=6)
    flat_conv1 = {**layers, "conv1": [0.05] * len(steps)}  # a layer that never votes
    layers["conv1"] = [float("nan")] * len(steps)
    alarm = nas_alarm(steps, layers)
    # A NaN layer casts no vote and still counts towards the quorum, like a flat one; it poisons no other layer.
    assert alarm is not None and 6 < alarm.step <= 12 and "conv1" not in alarm.layers
    assert alarm == nas_alarm(steps, flat_conv1)
    with pytest.raises(ValueError, match="threshold=1.5"):
        OverfitDetector(threshold=1.5)


def test_loss_minimum_uses_a_centred_moving_average():
    steps = [0, 1, 2, 3, 4, 5, 6]
    losses = [3.0, 2.0, 1.5, 1.4, 1.45, 1.9, 2.5]
    np.testing.assert_allclose(smooth(losses), [2.5, 6.5 / 3, 4.9 / 3, 4.35 / 3, 4.75 / 3, 5.85 / 3, 2.2])
    assert loss_minimum_step(steps, losses) == 3
    # A single dip is smoothed away: the raw minimum at 1 is an outlier.
    assert loss_minimum_step([0, 1, 2, 3, 4], [2.0, 0.5, 2.0, 1.0, 1.0]) == 4
    assert loss_minimum_step([], []) is None


def test_generalisation_loss_criterion():
    steps = list(range(6))
    losses = [2.0, 1.5, 1.0, 1.04, 1.06, 1.2]
    assert generalisation_loss_stop(steps, losses, alpha=5.0) == 4  # 6 % above the minimum 1.0
    assert generalisation_loss_stop(steps, losses, alpha=10.0) == 5
    assert generalisation_loss_stop(steps, losses, alpha=50.0) is None
    # Online: the answer at step t only depends on losses up to t.
    assert generalisation_loss_stop(steps[:5], losses[:5], alpha=5.0) == 4


def test_smooth_is_a_centred_window_3_mean_truncated_at_the_ends():
    rng = np.random.default_rng(0)
    for size in [1, 2, 3, 4, 7, 40]:
        v = rng.normal(scale=1e3, size=size)
        want = [np.mean(v[max(i - 1, 0): i + 2]) for i in range(v.size)]
        np.testing.assert_allclose(smooth(v), want, rtol=1e-12, atol=1e-9)


def test_loss_minimum_step_is_the_smoothed_minimum_over_finite_points():
    steps = np.array([0, 2, 4, 6, 8, 10])
    loss = np.array([3.0, 0.5, 3.0, 1.2, 1.1, 1.3])  # raw minimum 0.5 at step 2 is an outlier
    assert loss_minimum_step(steps, loss) == 8
    assert loss_minimum_step(steps, np.array([np.nan, 2, 1, 1, 2, np.inf])) == 4  # ties: earliest
    assert loss_minimum_step(steps[:1], np.array([0.3])) == 0
    assert loss_minimum_step(np.array([], int), np.array([])) is None
    assert loss_minimum_step(steps[:2], np.array([np.nan, np.nan])) is None
