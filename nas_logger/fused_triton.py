"""The fused NAS kernel for GPUs, in Triton: one read of the layer output, one exp per element.

Conv outputs (filters strided by the fields, ``inner > 1``): one program per sample and block of
neighbouring fields runs an online softmax over the filters (the sums are kept relative to the running
max and rescaled when it grows), so each element is read once. Linear outputs (filters contiguous): one
program per row, a max pass and an exp pass over blocks of the row. Imported only for CUDA tensors (or
by the tests, which run it on the CPU under ``TRITON_INTERPRET=1``).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

_FIELDS = 128  # fields per program (conv)
_FILTERS = 1024  # filters per block (linear)


@triton.jit
def _fields_kernel(a_ptr, out_ptr, D, INNER, BLOCK: tl.constexpr):
    o = tl.program_id(0)
    p = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    mask = p < INNER
    base = a_ptr + o * D * INNER + p
    m = tl.load(base, mask=mask, other=0.0).to(tl.float32)
    bad = m - m  # NaN where an input is inf or NaN, as the eager path gives
    z = tl.full([BLOCK], 1.0, tl.float32)
    t = tl.zeros([BLOCK], tl.float32)
    for j in range(1, D):
        v = tl.load(base + j * INNER, mask=mask, other=0.0).to(tl.float32)
        bad += v - v
        m_new = tl.maximum(m, v)
        shift = m - m_new
        scale = tl.exp(shift)
        t = scale * (t + shift * z)
        z = z * scale
        x = v - m_new
        e = tl.exp(x)
        z += e
        t += e * x
        m = m_new
    rho = tl.minimum(tl.maximum(z * tl.exp(-t / z), 1.0), D * 1.0)
    tl.store(out_ptr + o * INNER + p, tl.where(bad == 0.0, rho, float("nan")), mask=mask)


@triton.jit
def _rows_kernel(a_ptr, out_ptr, D, BLOCK: tl.constexpr):
    row = a_ptr + tl.program_id(0) * D
    offs = tl.arange(0, BLOCK)
    m = tl.full([BLOCK], float("-inf"), tl.float32)
    bad = tl.zeros([BLOCK], tl.float32)
    for start in range(0, D, BLOCK):
        mask = start + offs < D
        v = tl.load(row + start + offs, mask=mask, other=float("-inf")).to(tl.float32)
        m = tl.maximum(m, v)
        bad += tl.where(mask, v - v, 0.0)
    mx = tl.max(m, 0)
    z = tl.zeros([BLOCK], tl.float32)
    t = tl.zeros([BLOCK], tl.float32)
    for start in range(0, D, BLOCK):
        mask = start + offs < D
        x = tl.load(row + start + offs, mask=mask, other=0.0).to(tl.float32) - mx
        e = tl.exp(x)
        z += tl.where(mask, e, 0.0)
        t += tl.where(mask, e * x, 0.0)
    zs = tl.sum(z, 0)
    rho = tl.minimum(tl.maximum(zs * tl.exp(-tl.sum(t, 0) / zs), 1.0), D * 1.0)
    tl.store(out_ptr + tl.program_id(0), tl.where(tl.sum(bad, 0) == 0.0, rho, float("nan")))


def perplexity(a: torch.Tensor, dim: int) -> torch.Tensor:
    """rho along ``dim`` (float32, ``a``'s shape without ``dim``) of a float32/float16/bfloat16 tensor."""
    dim = dim % a.dim()
    a = a.contiguous()
    d = a.shape[dim]
    outer, inner = a.shape[:dim].numel(), a.shape[dim + 1 :].numel()
    out = torch.empty(a.shape[:dim] + a.shape[dim + 1 :], dtype=torch.float32, device=a.device)
    if inner == 1:
        _rows_kernel[(outer,)](a, out, d, BLOCK=min(_FILTERS, triton.next_power_of_2(d)))
    else:
        _fields_kernel[(outer, triton.cdiv(inner, _FIELDS))](a, out, d, inner, BLOCK=_FIELDS)
    return out
