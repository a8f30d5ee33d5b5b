import numpy as np
import pytest

from nas_logger.detector import OverfitDetector, loss_minimum_step, nas_alarm, smooth

# Feature layers as (NAS before training, rise while learning), and a prediction layer the detector ignores.
LAYERS = {"conv1": (0.35, 0.02), "conv2": (0.28, 0.08), "conv3": (0.37, 0.1), "conv4": (0.3, 0.12), "fc1": (0.75, 0.15)}


def curves(overfit_at: float | None = None, epochs: int = 30, climb: float = 0.025, learn: float = 3.0,
           noise: float = 0.004, seed: int = 0) -> tuple[list[int], dict[str, np.ndarray]]:
    """Learning then memorising: while the network learns, every layer's median NAS rises by ``gain``
    and levels off (time constant ``learn`` epochs); from ``overfit_at`` on (None: never) it climbs again
    by ``climb`` of its remaining headroom per epoch. Epochs 1..N, Gaussian noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(1, epochs + 1)
    layers = {}
    for name, (base, gain) in LAYERS.items():
        value = base + gain * (1 - np.exp(-t / learn))
        if overfit_at is not None:
            value = value + (1 - value) * np.clip(climb * (t - overfit_at), 0, 0.9)
        layers[name] = np.clip(value + rng.normal(0, noise, epochs), 0, 1)
    layers["prediction"] = np.clip(0.5 + rng.normal(0, 0.05, epochs), 0, 1)
    return list(t), layers


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("learn", [2.0, 3.0, 5.0])
def test_a_learning_rise_that_levels_off_raises_no_alarm(seed, learn):
    steps, layers = curves(None, epochs=40, learn=learn, seed=seed)
    assert nas_alarm(steps, layers) is None


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("overfit_at", [10, 14, 20])
def test_the_second_climb_after_the_plateau_fires_within_a_few_epochs(seed, overfit_at):
    """Learning rise, plateau, a second climb: the alarm follows the climb."""
    steps, layers = curves(overfit_at, seed=seed)
    alarm = nas_alarm(steps, layers)
    assert alarm is not None
    assert overfit_at < alarm.step <= overfit_at + 5
    assert "prediction" not in alarm.layers and len(alarm.layers) >= 3


def test_a_climb_as_slow_as_the_noise_is_not_an_alarm_but_a_clear_one_is():
    steps, slow = curves(12, climb=0.002, seed=1)
    assert nas_alarm(steps, slow) is None
    steps, clear = curves(12, climb=0.02, seed=1)
    assert nas_alarm(steps, clear) is not None


@pytest.mark.parametrize("seed", range(5))
def test_flat_noisy_curves_raise_no_alarm(seed):
    rng = np.random.default_rng(seed)
    layers = {name: base + rng.normal(0, 0.01, 40) for name, (base, _) in LAYERS.items()}
    layers["prediction"] = np.full(40, 0.9)
    assert nas_alarm(list(range(40)), layers) is None


@pytest.mark.parametrize("seed", range(8))
def test_a_slow_climb_in_noise_is_found_by_measuring_it_since_the_plateau(seed):
    """The digits and Fashion-MNIST runs with wrong labels: NAS flat while the network learns, then a slow
    climb (0.005 per epoch) in noise of 0.012. A 5-epoch slope cannot tell it from the noise (the rule that
    used only that missed 5 of these 8 curves); the slope over every epoch since the plateau can."""
    rng = np.random.default_rng(seed)
    t = np.arange(1, 41)
    layers = {name: base + 0.005 * np.clip(t - 12, 0, None) + rng.normal(0, 0.012, 40) for name, (base, _) in LAYERS.items()}
    layers["prediction"] = np.full(40, 0.5)
    alarm = nas_alarm(list(t), layers)
    assert alarm is not None and 12 < alarm.step <= 25


@pytest.mark.parametrize("noise", [0.012, 0.02])
def test_noisier_flat_and_learning_curves_raise_no_alarm(noise):
    for seed in range(20):
        rng = np.random.default_rng(seed)
        t = np.arange(1, 41)
        for learn in (0.0, 1.0):
            layers = {n: b + learn * g * (1 - np.exp(-t / 3)) + rng.normal(0, noise, 40) for n, (b, g) in LAYERS.items()}
            layers["prediction"] = np.full(40, 0.5)
            assert nas_alarm(list(t), layers) is None, (seed, learn)


def test_a_network_still_learning_steadily_raises_no_alarm():
    """NAS that keeps rising at one pace never climbs faster than its slowest pace."""
    steps = list(range(1, 31))
    layers = {name: base + 0.01 * np.arange(30) for name, (base, _) in LAYERS.items()}
    layers["prediction"] = np.full(30, 0.9)
    assert nas_alarm(steps, layers) is None


def test_a_falling_curve_is_no_overfitting():
    steps = list(range(20))
    layers = {"a": list(np.linspace(0.8, 0.2, 20)), "b": list(np.linspace(0.5, 0.1, 20)), "out": [0.9] * 20}
    assert nas_alarm(steps, layers) is None


def test_each_layer_is_measured_against_its_own_learning_rise():
    """A layer that rose fast while learning needs a fast second climb to vote; the same slow climb votes
    in a layer that rose slowly. Only the plateau-then-climb shape matters, not the layer's NAS level."""
    t = np.arange(1, 31)
    learning = 1 - np.exp(-t / 2.0)
    climb = 0.01 * np.clip(t - 15, 0, None)
    fast = {"a": 0.2 + 0.3 * learning + climb, "b": 0.2 + 0.3 * learning + climb, "out": np.full(30, 0.5)}
    slow = {"a": 0.2 + 0.03 * learning + climb, "b": 0.2 + 0.03 * learning + climb, "out": np.full(30, 0.5)}
    assert nas_alarm(list(t), fast) is None
    alarm = nas_alarm(list(t), slow)
    assert alarm is not None and 15 < alarm.step <= 20 and alarm.layers == ("a", "b")
    # The level of a layer does not matter: shifting it changes nothing.
    shifted = {n: v + 0.5 if n != "out" else v for n, v in slow.items()}
    assert nas_alarm(list(t), shifted) == alarm


def test_online_feeding_equals_whole_curves_and_is_causal():
    steps, layers = curves(12, seed=3)
    detector = OverfitDetector()
    fired = [detector.update(s, {n: v[i] for n, v in layers.items()}) for i, s in enumerate(steps)]
    whole = nas_alarm(steps, layers)
    assert whole is not None and [a for a in fired if a is not None] == [whole]
    assert detector.alarm == whole and fired.index(whole) == steps.index(whole.step)  # fired on its epoch
    # Causality: data after the alarm changes nothing; data up to the epoch before raises nothing.
    cut = steps.index(whole.step)
    assert nas_alarm(steps[: cut + 1], {n: v[: cut + 1] for n, v in layers.items()}) == whole
    assert nas_alarm(steps[:cut], {n: v[:cut] for n, v in layers.items()}) is None
    scrambled = {n: list(v[: cut + 1]) + list(np.random.default_rng(9).random(len(v) - cut - 1)) for n, v in layers.items()}
    assert nas_alarm(steps, scrambled) == whole


def test_nan_layers_are_skipped_and_bad_options_rejected():
    steps, layers = curves(10)
    layers["conv1"] = np.full(len(steps), np.nan)
    alarm = nas_alarm(steps, layers)
    assert alarm is not None and "conv1" not in alarm.layers
    with pytest.raises(ValueError, match="threshold=0"):
        OverfitDetector(threshold=0)
    with pytest.raises(ValueError, match="window=1"):
        OverfitDetector(window=1)


def test_a_climb_that_speeds_up_from_the_start_fires():
    """A network that starts to memorise right after a short learning phase: NAS climbs ever faster
    from the first epochs, with no plateau in between (CIFAR-10 on 3,000 images)."""
    t = np.arange(1, 21)
    layers = {name: base + 0.002 * (t - 1) ** 1.6 for name, (base, _) in LAYERS.items()}
    layers["prediction"] = np.full(20, 0.5)
    alarm = nas_alarm(list(t), layers)
    assert alarm is not None and alarm.step <= 8


@pytest.mark.parametrize("seed", range(3))
def test_a_ramp_that_speeds_up_by_two_fifths_of_its_learning_pace_fires(seed):
    """CIFAR-10 on 10,000 images: NAS ramps up from epoch 2 while the network learns and keeps ramping, about
    45 % faster, once it memorises (VanillaNet seed 0: conv3 0.028 then 0.041 NAS per epoch; the test loss
    doubled and the threshold 0.5 never fired). A layer that speeds up by 40 % of its learning pace votes."""
    rng = np.random.default_rng(seed)
    t = np.arange(1, 31)
    pace = np.where(t <= 8, 0.03, 0.042)
    layers = {name: np.clip(base + np.cumsum(pace) - 0.03 + rng.normal(0, 0.004, t.size), 0, 0.98)
              for name, (base, _) in LAYERS.items()}
    layers["prediction"] = np.full(30, 0.5)
    alarm = nas_alarm(list(t), layers)
    assert alarm is not None and 8 < alarm.step <= 15


def test_warmup_and_patience():
    """A climb from the first epochs on (no learning phase, e.g. a network that memorises at once) fires
    after warmup; patience delays the alarm by as many epochs."""
    t = list(range(1, 21))
    flat_then_steep = {"a": np.r_[np.full(5, 0.3), 0.3 + 0.05 * np.arange(1, 16)], "out": np.full(20, 0.5)}
    first = nas_alarm(t, flat_then_steep, patience=1).step
    assert first > 5
    assert nas_alarm(t, flat_then_steep, patience=3).step == first + 2


def test_loss_minimum_uses_a_centred_moving_average():
    steps = [0, 1, 2, 3, 4, 5, 6]
    losses = [3.0, 2.0, 1.5, 1.4, 1.45, 1.9, 2.5]
    np.testing.assert_allclose(smooth(losses), [2.5, 6.5 / 3, 4.9 / 3, 4.35 / 3, 4.75 / 3, 5.85 / 3, 2.2])
    assert loss_minimum_step(steps, losses) == 3
    # A single dip is smoothed away: the raw minimum at 1 is an outlier.
    assert loss_minimum_step([0, 1, 2, 3, 4], [2.0, 0.5, 2.0, 1.0, 1.0]) == 4
    assert loss_minimum_step([], []) is None


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


@pytest.mark.parametrize("seed", range(5))
def test_a_late_learner_is_told_from_memorisation_by_its_prediction_layer(seed):
    """DropNet on the noisy digits: NAS flat for 13 epochs at chance, then the feature layers climb and level
    off as the network starts to learn, while the prediction layer's NAS, near 0 (outputs near uniform),
    starts to rise, ever faster but slower than ``min_rate``. Alone, the features show the memorisation
    shape (flat, then climbing); every new fastest rise of the outputs restarts their paces, so they raise
    no alarm. The same features beside a prediction layer that learned in the first epochs are memorising:
    they fire."""
    rng = np.random.default_rng(seed)
    t = np.arange(1, 41)
    x = np.clip((t - 13) / 15, 0, 1)
    features = {name: base + 0.06 * x * x * (3 - 2 * x) + rng.normal(0, 0.003, 40) for name, (base, _) in LAYERS.items()}
    late = {**features, "prediction": 0.0003 * np.clip(t - 14, 0, None) ** 1.5 + rng.normal(0, 0.0003, 40)}
    assert nas_alarm(list(t), late) is None
    learned_early = {**features, "prediction": 0.4 + 0.3 * (1 - np.exp(-t / 3)) + rng.normal(0, 0.01, 40)}
    alarm = nas_alarm(list(t), learned_early)
    assert alarm is not None and 13 < alarm.step <= 25


def statuses(steps, layers, **options):
    detector = OverfitDetector(**options)
    out = []
    for t, step in enumerate(steps):
        detector.update(step, {name: values[t] for name, values in layers.items()})
        out.append(detector.status())
    return out


def test_a_short_run_says_how_many_epochs_the_alarm_needs():
    steps, layers = curves(None, epochs=3)
    status = statuses(steps, layers)[-1]
    # A window of 5 epochs sets the slowest pace, then 2 votes in a row: the alarm can fire at the 7th epoch at the
    # earliest; whether the features' NAS moves at all is known by the 8th (judge_after), 5 more here.
    assert OverfitDetector().epochs_to_judge == 7
    assert status == {"state": "warming_up", "epochs_needed": 5, "onset": None, "alarm": None,
                      "message": "NAS alarm: warming up, 5 more epochs before it can judge"}
    flat = {name: np.full(8, base) for name, (base, _) in LAYERS.items()} | {"prediction": np.full(8, 0.5)}
    assert [s["epochs_needed"] for s in statuses(list(range(8)), flat)] == [7, 6, 5, 4, 3, 2, 1, None]
    # A layer that has moved by then: the alarm can judge as soon as it can fire.
    assert [s["state"] for s in statuses(*curves(None, epochs=8, learn=2.0))][4:] == ["warming_up", "warming_up",
                                                                                          "watching", "watching"]


@pytest.mark.parametrize("seed", range(5))
def test_flat_feature_nas_under_a_learning_output_cannot_be_judged(seed):
    """A normalised network: the feature layers' NAS stays within its noise while the prediction layer's
    climbs from the first epoch (its test loss may rise); the alarm cannot see it, and says so."""
    rng = np.random.default_rng(seed)
    layers = {name: base + rng.normal(0, 0.006, 30) for name, (base, _) in LAYERS.items()}
    layers["prediction"] = np.linspace(0.4, 0.7, 30) + rng.normal(0, 0.02, 30)
    states = [s["state"] for s in statuses(list(range(1, 31)), layers)]
    assert states[:7] == ["warming_up"] * 7
    assert states[7:] == ["cannot_judge"] * 23
    assert "feature-layer NAS is flat" in statuses(list(range(1, 31)), layers)[-1]["message"]


@pytest.mark.parametrize("learn", [2.0, 5.0])
def test_a_learning_rise_is_watched_and_a_second_climb_fires_with_its_onset(learn):
    steps, layers = curves(None, epochs=30, learn=learn)
    assert [s["state"] for s in statuses(steps, layers)][7:] == ["watching"] * 23
    steps, layers = curves(14, epochs=30)
    final = statuses(steps, layers)[-1]
    alarm = nas_alarm(steps, layers)
    assert final["state"] == "fired" and final["alarm"] == alarm.step and final["onset"] == alarm.onset
    assert 10 <= alarm.onset <= 16 < alarm.step  # the climb starts at 14; the alarm needs a few epochs of it
    assert final["message"] == f"NAS alarm fired at step {alarm.step}; the climb became significant at step {alarm.onset}"
    detector = OverfitDetector()
    for t, step in enumerate(steps):
        detector.update(step, {name: values[t] for name, values in layers.items()})
    assert detector.status("epoch")["message"] == (f"NAS alarm fired at epoch {alarm.step}; "
                                                   f"the climb became significant at epoch {alarm.onset}")


def test_the_onset_is_the_median_start_of_the_voting_layers_climbs():
    """Three feature layers, flat, then climbing from epochs 8, 10 and 12: the onset is the middle one's start,
    within the half window the slowest window's middle is off by."""
    t = np.arange(1, 31)
    layers = {f"l{i}": 0.3 + 0.03 * np.clip(t - start, 0, None) for i, start in enumerate((8, 10, 12))}
    layers["prediction"] = np.full(30, 0.5)
    alarm = nas_alarm(list(t), layers, quorum=1.0)
    assert alarm is not None and set(alarm.layers) == {"l0", "l1", "l2"}
    assert abs(alarm.onset - 10) <= 2


def test_the_monitor_writes_its_alarm_status_at_every_log(tmp_path, small_cnn):
    import torch

    import nas_logger
    from events import read_alarm_status
    from nas_logger import format as fmt

    monitor = nas_logger.watch(small_cnn, tmp_path, probe=torch.randn(2, 1, 8, 8), detect=True)
    for step in range(3):
        monitor.log(step)
    assert monitor.alarm_status == fmt.parse_alarm_status(fmt.encode_alarm_status(**monitor.alarm_status))
    assert monitor.alarm_status["state"] == "warming_up" and monitor.alarm_status["epochs_needed"] == 5
    monitor.close()
    written = read_alarm_status(tmp_path)
    assert [step for step, _ in written] == [0, 1, 2]
    assert [s["epochs_needed"] for _, s in written] == [7, 6, 5]
    plain = nas_logger.watch(small_cnn, tmp_path / "plain", probe=torch.randn(2, 1, 8, 8))
    plain.log(0)
    assert plain.alarm_status is None
    plain.close()
    assert read_alarm_status(tmp_path / "plain") == []



@pytest.mark.parametrize("seed", range(5))
def test_a_network_that_learns_from_chance_after_a_slow_start_raises_no_alarm(seed):
    """The everyday recipe's slow start: outputs at chance (prediction NAS near 0) that wake up ever faster from
    the first epochs (past ``min_rate`` in the first window, so never idle), while the feature layers' NAS
    first falls, then climbs as the network learns (epochs 3-12) and levels off. Each new fastest rise of the
    waking outputs restarts the features' paces: their learning climb is no alarm."""
    rng = np.random.default_rng(seed)
    t = np.arange(1, 31)
    x = np.clip((t - 3) / 9, 0, 1)
    learning = x * x * (3 - 2 * x)
    layers = {name: base - 0.01 * np.clip(t - 1, 0, 2) + 0.1 * learning + rng.normal(0, 0.004, 30)
              for name, (base, _) in LAYERS.items()}
    layers["prediction"] = 0.4 / (1 + np.exp(-(t - 7) / 1.5)) + rng.normal(0, 0.005, 30)
    assert layers["prediction"][0] < 0.05 < (layers["prediction"][4] - layers["prediction"][0]) / 4 * 10
    assert nas_alarm(list(t), layers) is None


def test_layers_that_feed_a_normalisation_layer_neither_vote_nor_count_as_moving():
    """A normalised network whose convolutions' NAS (read before the batch norm) drifts up while the test loss
    rises: those layers are not read, so the status is "cannot judge" from the first epoch, naming why, and
    their climb raises no alarm. With one readable layer left, the alarm judges from it alone."""
    steps, layers = curves(12, epochs=30)
    fed = {name: "BatchNorm2d" for name in LAYERS}
    assert nas_alarm(steps, layers) is not None  # read as plain layers, the climb fires
    assert nas_alarm(steps, layers, normalised=fed) is None
    states = statuses(steps, layers, normalised=fed)
    assert {s["state"] for s in states} == {"cannot_judge"}
    assert states[-1]["message"] == ("NAS alarm: cannot judge this network: every feature layer feeds a "
                                     "normalisation layer (BatchNorm2d), before which NAS does not show memorisation")
    fed.pop("conv3")
    alarm = nas_alarm(steps, layers, normalised=fed)
    assert alarm is not None and alarm.layers == ("conv3",)
    assert statuses(steps, layers, normalised=fed)[-1]["state"] == "fired"


def test_the_monitor_finds_the_layers_that_feed_a_normalisation_layer(tmp_path):
    import torch
    from torch import nn

    import nas_logger

    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.GroupNorm(2, 4),
                          nn.ReLU(), nn.Flatten(), nn.Linear(64, 3))
    monitor = nas_logger.watch(model, tmp_path, probe=torch.randn(2, 1, 8, 8), detect=True)
    assert monitor.detector.normalised == {"0": "BatchNorm2d", "3": "GroupNorm"}
    monitor.log(0)
    assert monitor.alarm_status["state"] == "cannot_judge"
    assert "(BatchNorm2d, GroupNorm)" in monitor.alarm_status["message"]
    monitor.close()


def learning_with_dips(seed: int, noise: float = 0.003, memorise_at: int | None = None):
    """Healthy learning under momentum, augmentation and dropout: every feature layer's NAS rises while the
    network learns, then keeps climbing at a steady 0.006 per epoch as it goes on learning, and dips by 0.05 for
    two epochs, each layer at its own epoch (8, 11, 14, ...); the outputs grow more confident throughout. From
    ``memorise_at`` on (None: never) the layers also climb by 0.025 of their headroom per epoch."""
    rng = np.random.default_rng(seed)
    t = np.arange(1, 31)
    layers = {}
    for i, (name, (base, gain)) in enumerate(LAYERS.items()):
        dip = (t >= 8 + 3 * i) & (t < 10 + 3 * i)
        value = base + gain * (1 - np.exp(-t / 2.0)) + 0.006 * t - 0.05 * dip
        if memorise_at is not None:
            value = value + (1 - value) * np.clip(0.025 * (t - memorise_at), 0, 0.9)
        layers[name] = value + rng.normal(0, noise, 30)
    layers["prediction"] = 0.3 + 0.01 * t + rng.normal(0, 0.02, 30)
    return list(t), layers


@pytest.mark.parametrize("seed", range(8))
def test_a_steady_learning_climb_after_dips_raises_no_alarm(seed):
    """A dip sets a layer's slowest pace near zero, and the steady climb after it beats that pace for the rest of
    the run; but that climb is slowing down against its pace since the dip (steep out of the dip, then back to
    the layer's pace), and memorisation speeds up: no vote. The same run memorising from epoch 20 fires within
    5 epochs."""
    assert nas_alarm(*learning_with_dips(seed)) is None
    alarm = nas_alarm(*learning_with_dips(seed, memorise_at=20))
    assert alarm is not None and 20 < alarm.step <= 25


@pytest.mark.parametrize("seed", range(6))
def test_the_onset_is_where_the_climb_became_significant_not_where_the_curve_bent(seed):
    """A climb that speeds up from epoch 8 on (0.002 (t - 8)^2) stays within its noise for its first epochs,
    while the network is still learning; the onset is where the voting layers' votes began, inside the alarm's
    run of ``patience`` epochs, after the bend."""
    rng = np.random.default_rng(seed)
    t = np.arange(1, 31)
    layers = {f"l{i}": 0.3 + 0.002 * np.clip(t - 8, 0, None) ** 2 + rng.normal(0, 0.004, 30) for i in range(4)}
    layers["prediction"] = np.full(30, 0.5)
    alarm = nas_alarm(list(t), layers)
    assert alarm is not None and 9 < alarm.onset <= alarm.step
    assert alarm.onset >= alarm.step - OverfitDetector().patience
