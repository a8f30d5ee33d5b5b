import numpy as np
import pytest
import torch

from nas_logger import format as fmt
from nas_logger.streaming import NASHistogram


@pytest.mark.parametrize("bins", [256, 1024])
def test_quantiles_within_one_bin_of_exact_and_exact_min_max_mean(bins):
    torch.manual_seed(0)
    batches = [torch.rand(32, 16, 16) ** 3 for _ in range(10)]  # skewed towards 0, like dense layers
    hist = NASHistogram(bins)
    for b in batches:
        hist.add(b)
    got = hist.summary().double().numpy()
    flat = torch.cat([b.reshape(-1) for b in batches]).double().numpy()
    exact = np.quantile(flat, fmt.STAT_QUANTILES)
    assert np.abs(got[:-1] - exact).max() <= 1.0 / bins
    assert got[0] == pytest.approx(flat.min(), abs=1e-7) and got[6] == pytest.approx(flat.max(), abs=1e-7)
    assert got[-1] == pytest.approx(flat.mean(), abs=1e-7)


def test_memory_is_constant_in_the_number_of_values():
    hist = NASHistogram(512)
    sizes = lambda: sum(t.numel() for t in (hist.counts, hist.total, hist.low, hist.high))  # noqa: E731
    before = sizes()
    for _ in range(20):
        hist.add(torch.rand(64, 32, 32))
    assert sizes() == before == 512 + 3
    assert hist.count.item() == 20 * 64 * 32 * 32


def test_merging_equals_one_histogram_of_everything():
    torch.manual_seed(1)
    a, b = torch.rand(1000), torch.rand(500) * 0.2
    one, left, right = NASHistogram(), NASHistogram(), NASHistogram()
    one.add(torch.cat([a, b]))
    left.add(a)
    right.add(b)
    left.counts += right.counts  # what all_reduce does across ranks
    left.total += right.total
    torch.minimum(left.low, right.low, out=left.low)
    torch.maximum(left.high, right.high, out=left.high)
    assert torch.equal(left.summary(), one.summary())


def test_empty_or_non_finite_gives_nan_and_reset_clears():
    hist = NASHistogram()
    assert torch.isnan(hist.summary()).all()
    hist.add(torch.tensor([0.1, float("nan")]))
    assert torch.isnan(hist.summary()).all()
    hist.reset()
    hist.add(torch.tensor([0.25, 0.75]))
    assert hist.summary()[fmt.STAT_FIELDS.index("median")].item() == pytest.approx(0.5, abs=1 / 1024)
    with pytest.raises(ValueError, match="bins must be >= 2; got 1"):
        NASHistogram(1)


def test_bound_holds_for_small_sparse_samples():
    rng = np.random.default_rng(2)
    for _ in range(200):
        values = rng.random(int(rng.integers(1, 40))) ** rng.uniform(0.3, 4)
        hist = NASHistogram(128)
        hist.add(torch.tensor(values))
        got = hist.summary().double().numpy()[:-1]
        assert np.abs(got - np.quantile(values, fmt.STAT_QUANTILES)).max() <= 1 / 128 + 1e-6
