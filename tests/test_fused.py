import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from nas_logger import fused, nas_sparsity
from nas_logger.sparsity import _perplexity
from devices import CUDA
from reference import perplexity_reference

pytestmark = pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None,
                                reason="no C compiler: the eager path is the only one")


def fused_rho(a, dim):
    out = fused.perplexity(a, dim)
    assert out is not None  # the kernel ran, not the eager fallback
    return out


def test_the_kernel_builds_here():
    assert fused.available()


@pytest.mark.parametrize("shape, dim", [
    ((4, 64, 16, 16), 1),    # conv, whole tiles of fields
    ((3, 37, 5, 7), 1),      # conv, a part tile only
    ((2, 9, 11, 13), 1),     # conv, a whole and a part tile
    ((5, 3, 100), 1),        # conv1d
    ((2, 4, 3, 6, 5), 1),    # conv3d
    ((257, 100), -1),        # linear: 16-lane blocks and a tail
    ((7, 5), -1),            # linear, fewer filters than lanes
    ((2, 3, 33), 2),         # tokens (linear over the last dim)
    ((6, 1, 4), 1),          # D = 1
    ((3, 10, 2, 3), 1),      # fewer fields than SIMD lanes: vectors read in part
    ((2, 5, 8), 1),          # exactly one vector of fields
    ((2, 5, 17), 1),         # one whole tile and one field: the last vector moved back over done fields
    ((4, 8), -1),            # linear, exactly one vector of filters
    ((9, 1), -1),            # linear, D = 1
    ((2, 512, 5, 7), 1),     # wide layers: float32 sums over many filters
    ((2, 2048, 3, 3), 1),
])
def test_matches_the_float64_reference(shape, dim):
    torch.manual_seed(0)
    a = torch.randn(shape) * 4
    np.testing.assert_allclose(fused_rho(a, dim).numpy(), perplexity_reference(a.numpy(), axis=dim), rtol=2e-6)


@pytest.mark.parametrize("d", [50_257, 1_000_000])
def test_error_stays_at_float32_rounding_for_a_vocabulary_sized_d(d):
    """A language model's logits (D = 50,257) and beyond: eager float32 is 3e-7 to 7e-7 off the float64
    reference here; the kernel's sums must not lose their small terms as the total grows."""
    torch.manual_seed(0)
    a = torch.randn(4, d) * 4
    reference = perplexity_reference(a.numpy(), axis=1)
    np.testing.assert_allclose(fused_rho(a, 1).numpy(), reference, rtol=1e-6)  # rows: filters contiguous
    fields = a.T.contiguous()[None]  # (1, D, 4): the same values as 4 fields of a conv layer
    np.testing.assert_allclose(fused_rho(fields, 1).numpy().ravel(), reference, rtol=1e-6)


@pytest.mark.parametrize("shape, dim", [((3, 40, 5, 7), 1), ((3, 40, 2, 3), 1), ((6, 77), -1), ((6, 5), -1)])
def test_wide_spreads_reach_exp_underflow_and_match_the_float64_reference(shape, dim):
    torch.manual_seed(2)
    a = torch.randn(shape) * 40  # differences to the max up to ~300: past the -88 where exp flushes to 0
    np.testing.assert_allclose(fused_rho(a, dim).numpy(), perplexity_reference(a.numpy(), axis=dim), rtol=2e-6)


def test_exact_at_the_ends_of_the_range_and_stable_for_huge_inputs():
    assert torch.equal(fused_rho(torch.full((2, 7, 70), 3.0), 1), torch.full((2, 70), 7.0))
    dominant = torch.zeros(3, 5, 70)
    dominant[:, 2] = 1e4
    assert torch.equal(fused_rho(dominant, 1), torch.ones(3, 70))
    big = torch.randn(2, 16, 70) * 1e30
    assert torch.isfinite(fused_rho(big, 1)).all()


def test_non_finite_inputs_spoil_only_their_own_field():
    a = torch.randn(2, 6, 70)
    a[0, 3, 5], a[1, 0, 69], a[1, 2, 0] = float("nan"), float("inf"), float("-inf")
    out, eager = fused_rho(a, 1), _perplexity(a, 1)[0]
    assert out.isnan().nonzero().tolist() == [[0, 5], [1, 0], [1, 69]]
    assert torch.equal(out.isnan(), eager.isnan())
    rows = torch.randn(3, 40)
    rows[1, 33] = float("nan")
    assert fused_rho(rows, -1).isnan().tolist() == [False, True, False]


@pytest.mark.parametrize("shape, dim", [((2, 6, 35), 1), ((2, 6, 5), 1), ((5, 37), -1), ((5, 6), -1)])
def test_non_finite_and_extreme_inputs_give_nan_exactly_where_the_eager_path_does(shape, dim):
    # every lane position, including those read twice by a moved-back last vector and a part vector
    torch.manual_seed(3)
    specials = torch.tensor([float("nan"), float("inf"), float("-inf"), 3e38, -3e38])
    for trial in range(20):
        a = torch.randn(shape)
        flat = a.view(-1)
        where = torch.randint(0, flat.numel(), (3,))
        flat[where] = specials[torch.randint(0, len(specials), (3,))]
        out, eager = fused_rho(a, dim), _perplexity(a, dim)[0]
        assert torch.equal(out.isnan(), eager.isnan()), (trial, a)
        np.testing.assert_allclose(out[~out.isnan()].numpy(), eager[~eager.isnan()].numpy(), rtol=1e-5)


@pytest.mark.parametrize("shape, dim", [((8, 64, 20, 20), 1), ((300, 512), -1)])
def test_threads_split_the_work_without_changing_a_value(shape, dim):
    a = torch.randn(shape)
    assert a.numel() >= fused._MIN_PARALLEL  # large enough to be split
    fields = a.shape[: dim % a.dim()] + a.shape[dim % a.dim() + 1 :]
    m, u, scale = (torch.rand(fields) for _ in range(3))
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(3)
        split = fused.partition(a, dim, for_backward=True), fused.perplexity_backward(a, m, u, scale, dim)
        torch.set_num_threads(1)
        single = fused.partition(a, dim, for_backward=True), fused.perplexity_backward(a, m, u, scale, dim)
    finally:
        torch.set_num_threads(threads)
    for got, want in zip([*split[0], split[1]], [*single[0], single[1]]):
        assert torch.equal(got, want)


def test_half_inputs_are_computed_in_float32_and_other_cases_fall_back():
    a = torch.randn(2, 8, 70)
    np.testing.assert_allclose(fused_rho(a.bfloat16(), 1).numpy(),
                               perplexity_reference(a.bfloat16().float().numpy(), axis=1), rtol=2e-6)
    assert fused.perplexity(a.double(), 1) is None  # float64 keeps its precision on the eager path
    assert fused.perplexity(a, 3) is None  # a bad dim is the eager path's error to raise
    assert fused.perplexity(torch.zeros(0, 8), -1) is None


@pytest.mark.parametrize("shape, dim", [((3, 37, 5, 7), 1), ((2, 7, 17), 1), ((50, 100), -1), ((6, 5), -1)])
def test_the_kernel_writes_nas_with_the_bits_of_one_minus_rho_over_d_in_torch(shape, dim):
    # D = 37, 7, 100, 5: not powers of 2, so a reciprocal or a fused multiply-add in the kernel would show
    torch.manual_seed(4)
    a = torch.randn(shape) * 3
    a.view(-1)[7] = float("nan")
    d = a.shape[dim]
    expected = 1 - fused_rho(a, dim) / d
    s = fused.sparsity(a, dim)
    assert s.dtype == torch.float32 and s.isnan().sum() == 1
    torch.testing.assert_close(s, expected, rtol=0, atol=0, equal_nan=True)
    torch.testing.assert_close(nas_sparsity(a, dim), expected, rtol=0, atol=0, equal_nan=True)


def test_nas_sparsity_uses_it_and_training_keeps_the_differentiable_path():
    a = torch.randn(2, 8, 70, requires_grad=True)
    with torch.no_grad():
        assert torch.equal(nas_sparsity(a), 1 - fused_rho(a, 1) / 8)
    s = nas_sparsity(a)
    assert s.grad_fn is not None


@pytest.mark.parametrize("env", [{"NAS_LOGGER_FUSED": "0"}, {"CC": "/nonexistent/cc"}])
def test_without_the_kernel_nas_is_computed_eagerly_and_the_reason_logged_once(tmp_path, env):
    code = (
        "import logging, torch\n"
        "logging.basicConfig(level=logging.INFO, format='%(name)s: %(message)s')\n"
        "from nas_logger import fused, nas_sparsity\n"
        "a = torch.full((2, 4, 70), 1.0)\n"
        "print(fused.available(), nas_sparsity(a).abs().max().item(), fused.perplexity(a, 1))\n"
        "nas_sparsity(a)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "XDG_CACHE_HOME": str(tmp_path), **env})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "0.0", "None"]
    assert result.stderr.count("fused NAS kernel") == 1, result.stderr


def test_a_compiler_that_rejects_the_optimising_flags_builds_the_portable_kernel_and_says_so_once(tmp_path):
    real = shutil.which("cc") or shutil.which("gcc")
    picky = tmp_path / "picky-cc"
    picky.write_text(f'#!/bin/sh\nfor f in "$@"; do [ "$f" = -O3 ] && {{ echo "unknown flag -O3" >&2; exit 1; }}; done\n'
                     f'exec {real} "$@"\n')
    picky.chmod(0o755)
    code = (
        "import logging, sys, numpy as np, torch\n"
        "logging.basicConfig(level=logging.INFO, format='%(name)s: %(message)s')\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "from reference import perplexity_reference\n"
        "from nas_logger import fused\n"
        "a = torch.randn(3, 37, 5, 7) * 4\n"
        "np.testing.assert_allclose(fused.perplexity(a, 1).numpy(), perplexity_reference(a.numpy(), axis=1), rtol=2e-6)\n"
        "print(fused.available())\n"
    )
    result = subprocess.run([sys.executable, "-c", code, os.path.dirname(__file__)], capture_output=True, text=True,
                            timeout=300, env={**os.environ, "XDG_CACHE_HOME": str(tmp_path), "CC": str(picky)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True"]
    assert result.stderr.count("fused NAS kernel built with -O2 -shared -fPIC only") == 1, result.stderr
    assert "unknown flag -O3" in result.stderr


@pytest.mark.parametrize("shape, dim", [((3, 37, 9, 11), 1), ((4, 8, 70), 1), ((50, 33), -1), ((2, 5, 21), -1),
                                        ((3, 6, 2, 3), 1), ((2, 4, 17), 1), ((9, 3), -1)])
def test_training_gradient_matches_float64_autograd(shape, dim):
    from nas_logger import perplexity

    torch.manual_seed(1)
    a = (torch.randn(shape) * 3).requires_grad_()
    weights = torch.rand(a.shape[:dim % a.dim()] + a.shape[dim % a.dim() + 1:])
    assert fused.partition(a.detach(), dim, for_backward=True) is not None  # the fused path is taken
    (perplexity(a, dim) * weights).sum().backward()
    exact = a.detach().double().requires_grad_()
    p = torch.softmax(exact, dim=dim)
    rho = torch.exp(-(p * torch.log_softmax(exact, dim=dim)).sum(dim=dim))
    (rho * weights.double()).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), exact.grad.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("device", ["interpreter", CUDA])
def test_triton_kernel_matches_the_float64_reference(device):
    """On the CPU under ``TRITON_INTERPRET=1``, and compiled on a GPU where one is present."""
    pytest.importorskip("triton")
    code = (
        "import sys, numpy as np, torch\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "from reference import perplexity_reference\n"
        "from nas_logger import fused_triton\n"
        "device = 'cuda' if sys.argv[2] == 'cuda' else 'cpu'\n"
        "def rho(a, dim): return fused_triton.perplexity(a.to(device), dim).cpu()\n"
        "torch.manual_seed(0)\n"
        "worst = 0.0\n"
        "for shape, dim in [((3, 37, 5, 70), 1), ((2, 9, 129), 1), ((50, 1500), -1), ((7, 5), -1), ((2, 1, 9), 1)]:\n"
        "    a = torch.randn(shape) * 4\n"
        "    ref = perplexity_reference(a.numpy(), axis=dim)\n"
        "    worst = max(worst, float(np.max(np.abs(rho(a, dim).numpy() - ref) / ref)))\n"
        "    worst = max(worst, float(np.max(np.abs(rho(a.bfloat16(), dim).numpy()\n"
        "        - perplexity_reference(a.bfloat16().float().numpy(), axis=dim)) / ref)))\n"
        "ends = rho(torch.full((2, 7, 70), 3.0), 1).unique().tolist()\n"
        "dominant = torch.zeros(1, 5, 9); dominant[:, 2] = 1e4\n"
        "bad = torch.randn(2, 6, 9); bad[0, 3, 5] = float('nan'); bad[1, 0, 8] = float('inf')\n"
        "rows = torch.randn(3, 40); rows[1, 33] = float('-inf')\n"
        "print(worst < 2e-6, ends, rho(dominant, 1).unique().tolist(),\n"
        "      rho(bad, 1).isnan().nonzero().tolist(), rho(rows, -1).isnan().tolist())\n"
    )
    tests = os.path.dirname(__file__)
    env = {**os.environ, "TRITON_INTERPRET": "1"} if device == "interpreter" else None
    result = subprocess.run([sys.executable, "-c", code, tests, device], capture_output=True, text=True, timeout=600,
                            env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split("\n")[0] == "True [7.0] [1.0] [[0, 5], [1, 8]] [False, True, False]"
