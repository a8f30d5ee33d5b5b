from training.stopping import generalisation_loss_stop, progress_quotient_stop, up_stop


def test_generalisation_loss_criterion():
    steps = list(range(6))
    losses = [2.0, 1.5, 1.0, 1.04, 1.06, 1.2]
    assert generalisation_loss_stop(steps, losses, alpha=5.0) == 4  # 6 % above the minimum 1.0
    assert generalisation_loss_stop(steps, losses, alpha=10.0) == 5
    assert generalisation_loss_stop(steps, losses, alpha=50.0) is None
    # Online: the answer at step t only depends on losses up to t.
    assert generalisation_loss_stop(steps[:5], losses[:5], alpha=5.0) == 4


def test_progress_quotient_criterion_by_hand():
    """PQ_alpha at strip ends (k = 2 here): GL(t) / P_k(t), P_k = 1000 (mean strip train loss / its min - 1)."""
    steps = [1, 2, 3, 4, 5, 6]
    test = [2.0, 1.0, 1.02, 1.1, 1.2, 1.3]
    train = [2.0, 1.5, 1.0, 0.9, 0.895, 0.894]
    # epoch 2: GL 0; epoch 4: GL 10, P = 1000 * (0.95 / 0.9 - 1) = 55.6 -> 0.18; epoch 6: GL 30,
    # P = 1000 * (0.8945 / 0.894 - 1) = 0.559 -> 53.7
    assert progress_quotient_stop(steps, test, train, alpha=0.1, strip=2) == 4
    assert progress_quotient_stop(steps, test, train, alpha=1.0, strip=2) == 6
    assert progress_quotient_stop(steps, test, train, alpha=100.0, strip=2) is None
    assert progress_quotient_stop(steps[:5], test[:5], train[:5], alpha=1.0, strip=2) is None  # online


def test_up_criterion_counts_successive_rising_strips():
    steps = list(range(1, 13))
    #       strip ends (k = 2) at epochs 2, 4, 6, 8, 10, 12
    test = [3, 2.0, 2, 1.5, 2, 1.7, 2, 1.8, 2, 1.9, 2, 1.6]
    assert up_stop(steps, test, s=1, strip=2) == 6  # 1.7 > 1.5
    assert up_stop(steps, test, s=2, strip=2) == 8  # 1.5 < 1.7 < 1.8
    assert up_stop(steps, test, s=3, strip=2) == 10
    assert up_stop(steps, test, s=4, strip=2) is None  # 1.6 < 1.9 resets the run
