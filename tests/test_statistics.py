import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nas_logger import format as fmt
from nas_logger.statistics import distribution, field_sparsity, heatmaps
from reference import nas_reference


def test_distribution_matches_numpy_quantiles():
    torch.manual_seed(0)
    s = torch.rand(7, 5, 3)
    got = distribution(s).numpy()
    flat = s.double().numpy().ravel()
    want = np.concatenate([np.quantile(flat, fmt.STAT_QUANTILES), [flat.mean()]])
    assert got.shape == (len(fmt.STAT_FIELDS),)
    np.testing.assert_allclose(got, want, atol=1e-6)


@pytest.mark.parametrize("n", [1, 2, 3, 21, 4096])
def test_distribution_matches_torch_quantile_and_float64_numpy_at_every_size(n):
    torch.manual_seed(n)
    s = torch.rand(n) ** 3
    got = distribution(s).numpy()
    flat = s.double().numpy()
    np.testing.assert_allclose(got[:-1], np.quantile(flat, fmt.STAT_QUANTILES), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(got[:-1], torch.quantile(s, torch.tensor(fmt.STAT_QUANTILES)).numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(got[-1], flat.mean(), rtol=1e-6)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_distribution_of_non_finite_values_is_nan(bad):
    s = torch.rand(10)
    s[3] = bad
    assert torch.isnan(distribution(s)).all()


def test_distribution_of_nothing_is_an_error_naming_the_shape():
    with pytest.raises(ValueError, match=r"shape \(0, 4\)"):
        distribution(torch.zeros(0, 4))


@pytest.mark.parametrize("kind,shape,field_shape", [
    ("conv2d", (2, 6, 5, 4), (2, 5, 4)),
    ("conv1d", (2, 6, 9), (2, 9)),
    ("conv3d", (2, 6, 3, 4, 5), (2, 3, 4, 5)),
    ("linear", (2, 6), (2,)),
    ("linear", (2, 7, 6), (2, 7)),
])
def test_field_sparsity_uses_the_filter_dimension_of_each_kind(kind, shape, field_shape):
    out = torch.randn(shape)
    s = field_sparsity(out, kind)
    assert s.shape == field_shape
    np.testing.assert_allclose(s.numpy(), nas_reference(out.numpy(), axis=-1 if kind == "linear" else 1), atol=3e-6)


def test_heatmap_shapes():
    assert heatmaps(torch.tensor([0.3, 0.4])).shape == (2, 1, 1)
    assert heatmaps(torch.rand(3, 9)).shape == (3, 1, 9)
    assert heatmaps(torch.rand(1, 5, 6)).shape == (1, 5, 6)
    volumes = torch.rand(2, 3, 4, 5)
    assert torch.allclose(heatmaps(volumes), volumes.mean(dim=1))


def test_heatmap_is_average_pooled_to_the_maximum_side():
    s = torch.rand(2, 100, 20)
    got = heatmaps(s, max_side=25)
    assert got.shape == (2, 25, 20)
    assert torch.allclose(got, s.reshape(2, 25, 4, 20).mean(dim=2))
    assert heatmaps(torch.rand(1, 40, 90), max_side=25).shape == (1, 25, 25)
    assert got.mean().item() == pytest.approx(s.mean().item(), abs=1e-6)  # 100 rows pool evenly into 25


def test_maps_made_at_once_are_the_maps_made_one_sample_at_a_time():
    for s in (torch.rand(4, 8, 8), torch.rand(3, 100, 70), torch.rand(4, 3, 5, 6), torch.rand(4, 17), torch.rand(4)):
        one_by_one = torch.stack([heatmaps(sample[None], max_side=64)[0] for sample in s])
        assert torch.equal(heatmaps(s, max_side=64), one_by_one)
