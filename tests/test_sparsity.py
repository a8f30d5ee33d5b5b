import math

import numpy as np
import pytest
import torch

from nas_logger import entropy, nas_sparsity, perplexity
from devices import DEVICES
from reference import nas_reference, perplexity_reference


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape,dim", [((4, 16, 5, 7), 1), ((6, 10), -1), ((3, 8, 9), 1), ((2, 5, 3, 4, 4), 1)])
def test_float32_matches_float64_reference(shape, dim, device):
    torch.manual_seed(0)
    a = torch.randn(shape) * 3
    got = nas_sparsity(a.to(device), dim=dim)  # the C kernel on the CPU, the Triton one on CUDA
    want = nas_reference(a.double().numpy(), axis=dim)
    assert got.dtype == torch.float32 and got.device.type == device
    assert got.shape == tuple(s for i, s in enumerate(shape) if i != dim % len(shape))
    np.testing.assert_allclose(got.cpu().numpy(), want, rtol=0, atol=3e-6)


def test_float64_input_stays_float64_and_matches_to_rounding():
    torch.manual_seed(1)
    a = torch.randn(8, 32, 4, 4, dtype=torch.float64) * 5
    got = nas_sparsity(a)
    assert got.dtype == torch.float64
    np.testing.assert_allclose(got.numpy(), nas_reference(a.numpy()), rtol=0, atol=1e-13)
    np.testing.assert_allclose(perplexity(a).numpy(), perplexity_reference(a.numpy()), rtol=1e-13)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_is_computed_in_float32(dtype):
    torch.manual_seed(2)
    a = (torch.randn(4, 64, 6, 6) * 4).to(dtype)
    got = nas_sparsity(a)
    assert got.dtype == torch.float32
    # The reference sees exactly the half-precision values the function was given.
    np.testing.assert_allclose(got.numpy(), nas_reference(a.double().numpy()), rtol=0, atol=3e-6)


@pytest.mark.parametrize("scale", [1e2, 1e3, 1e4])
def test_large_magnitudes_are_stable(scale):
    torch.manual_seed(3)
    a = torch.randn(5, 12) * scale
    got = nas_sparsity(a, dim=-1)
    assert torch.isfinite(got).all()
    np.testing.assert_allclose(got.numpy(), nas_reference(a.double().numpy(), axis=-1), atol=3e-6)


@pytest.mark.parametrize("d", [1, 2, 7, 512])
def test_all_equal_responses_give_exactly_zero(d):
    for value in (0.0, -3.5, 1e4):
        a = torch.full((3, d, 2, 2), value)
        assert torch.equal(nas_sparsity(a), torch.zeros(3, 2, 2))
        assert torch.equal(perplexity(a), torch.full((3, 2, 2), float(d)))


@pytest.mark.parametrize("d", [2, 10, 512])
def test_one_dominant_response_gives_exactly_one_minus_one_over_d(d):
    a = torch.zeros(2, d)
    a[:, d // 2] = 1e4
    got = nas_sparsity(a, dim=-1)
    assert torch.equal(got, 1.0 - torch.ones(2) / d)
    assert torch.equal(perplexity(a, dim=-1), torch.ones(2))


def test_single_filter_has_zero_sparsity():
    a = torch.randn(4, 1, 3, 3)
    assert torch.equal(nas_sparsity(a), torch.zeros(4, 3, 3))
    assert torch.equal(entropy(a), torch.zeros(4, 3, 3))


def test_range_holds_for_random_inputs():
    torch.manual_seed(4)
    for d in (2, 3, 50):
        a = torch.randn(200, d) * torch.logspace(-3, 3, 200)[:, None]
        s = nas_sparsity(a, dim=-1)
        assert (s >= 0).all() and (s <= 1 - 1 / d).all()
        assert (entropy(a, dim=-1) <= math.log(d)).all()


def test_non_finite_inputs_give_nan():
    a = torch.randn(3, 4)
    a[0, 1] = float("nan")
    a[1, 2] = float("inf")
    s = nas_sparsity(a, dim=-1)
    assert torch.isnan(s[:2]).all()
    assert torch.isfinite(s[2])


@pytest.mark.parametrize("device", DEVICES)
def test_gradient_matches_float64_finite_differences(device):
    torch.manual_seed(5)
    a = torch.randn(2, 5, 3, dtype=torch.float64, device=device, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: perplexity(x, dim=1), (a,))
    assert torch.autograd.gradcheck(lambda x: nas_sparsity(x, dim=1), (a,))


def test_zero_dim_input_is_rejected():
    with pytest.raises(ValueError, match="0-d"):
        nas_sparsity(torch.tensor(1.0))


def test_autograd_keeps_a_copy_on_write_clone_of_the_input_and_per_field_scalars():
    a = torch.randn(4, 32, 6, 6, requires_grad=True) * 1.0  # a layer output: not a leaf
    saved = []

    def pack(t):
        saved.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        rho = perplexity(a)
    big = [t for t in saved if t.numel() > rho.numel()]
    assert sum(t.numel() for t in saved) == a.numel() + 4 * rho.numel()
    # The saved activation shares a's memory: nothing was copied (reading a keeps it so).
    assert len(big) == 1 and torch._C._is_cow_tensor(big[0]) and torch._C._is_cow_tensor(a)
    a.sum().backward(retain_graph=True)
    assert torch._C._is_cow_tensor(a)
    rho.sum().backward()
    assert torch.equal(big[0], a.detach())


def test_gradient_is_exact_when_the_input_is_overwritten_in_place_after_the_forward():
    """ReLU(inplace=True) after a layer overwrites the layer output that backward reads."""
    torch.manual_seed(7)
    x = (torch.randn(3, 9, 4, dtype=torch.float64) * 3).requires_grad_(True)
    weights = torch.rand(3, 4, dtype=torch.float64)
    a = x * 1.0
    rho = perplexity(a)
    a.relu_()  # as the in-place activation after a Conv/Linear layer does
    (rho * weights).sum().backward()
    b = x.detach().clone().requires_grad_(True)
    h = -(torch.softmax(b, 1) * torch.log_softmax(b, 1)).sum(1)
    (h.exp() * weights).sum().backward()
    torch.testing.assert_close(x.grad, b.grad, rtol=1e-10, atol=1e-12)
    assert torch.equal(a, x.detach().clamp(min=0))  # the in-place write itself took effect


def test_analytic_gradient_matches_autograd_of_the_plain_formula():
    torch.manual_seed(6)
    a = (torch.randn(3, 9, 4, dtype=torch.float64) * 3).requires_grad_(True)
    weights = torch.rand(3, 4, dtype=torch.float64)
    (perplexity(a) * weights).sum().backward()
    b = a.detach().clone().requires_grad_(True)
    h = -(torch.softmax(b, 1) * torch.log_softmax(b, 1)).sum(1)
    (h.exp() * weights).sum().backward()
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-10, atol=1e-12)


def test_half_precision_gradient_comes_back_in_the_input_dtype():
    a = (torch.randn(2, 16, 3, 3) * 2).to(torch.bfloat16).requires_grad_(True)
    perplexity(a).sum().backward()
    assert a.grad.dtype == torch.bfloat16 and torch.isfinite(a.grad.float()).all()
