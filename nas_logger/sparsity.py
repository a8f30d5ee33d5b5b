"""Neural Activation Sparsity (NAS) of pre-activations: the pure math.

For a receptive field with pre-activation vector a in R^D (the D filter responses at one position),
p = softmax(a), H = -sum p ln p, perplexity rho = exp(H) in [1, D] and NAS s = 1 - rho / D in
[0, 1 - 1/D]. See Huesmann, Garcia Rodriguez, Linsen, Risse, "The Impact of Activation Sparsity on Overfitting
in Convolutional Neural Networks" (2021), and the README's "What NAS is" section.
"""
from __future__ import annotations

import math

import torch

from . import fused as _fused
from . import torch_internals as internals

__all__ = ["entropy", "perplexity", "nas_sparsity"]


def _compute_dtype(a: torch.Tensor) -> torch.dtype:
    # Half-precision exp/sum loses the tail of the softmax; float64 callers keep their precision.
    return torch.float64 if a.dtype == torch.float64 else torch.float32


def _partition(a: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """z = sum(e), u = sum(e * x) / z and the max m, with x = a - m, e = exp(x), so that H = log z - u.

    One shifted exponential and two reductions: no log-probability is materialised and nothing
    overflows for any finite input.
    """
    if a.dim() == 0:
        raise ValueError("pre-activations must have a filter dimension; got a 0-d tensor")
    a = a.to(_compute_dtype(a))
    m = a.amax(dim=dim, keepdim=True)
    x = a - m
    e = x.exp()
    z = e.sum(dim=dim)
    return z, (e * x).sum(dim=dim) / z, m


def entropy(a: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Softmax entropy H (nats) of ``a`` along ``dim``, clamped to [0, ln D] against rounding."""
    z, u, _ = _partition(a, dim)
    return (z.log() - u).clamp(min=0.0, max=math.log(a.shape[dim]))


def _perplexity(a: torch.Tensor, dim: int) -> tuple[torch.Tensor, ...]:
    z, u, m = _partition(a, dim)
    return (z * (-u).exp()).clamp(min=1.0, max=float(a.shape[dim])), z, u, m


def _keep(a: torch.Tensor) -> torch.Tensor:
    """``a``'s values as backward will read them, whatever happens to ``a`` after the forward.

    A layer output is often overwritten in place next (``ReLU(inplace=True)`` in AlexNet and VGG), which
    a saved reference would see. A copy-on-write clone shares ``a``'s memory and copies nothing until
    someone writes to ``a``: then that writer gets the copy, one layer output, and these values stay.
    Torch builds without lazy clones (and traced code) copy at once.
    """
    return internals.lazy_clone(a)


class _PerplexityFunction(torch.autograd.Function):
    """rho with the analytic gradient d rho / d a_j = rho * p_j * (u - x_j), p = softmax(a).

    Saves a copy-on-write clone of ``a`` (:func:`_keep`: no copy unless ``a`` is later modified in place)
    and per-field scalars; the shifted exponentials are recomputed in backward instead of being kept
    from forward. Once differentiable: the saved scalars carry no graph of their own.
    """

    @staticmethod
    def forward(ctx, a: torch.Tensor, dim: int) -> torch.Tensor:
        fused = _fused.partition(a, dim, for_backward=True)
        rho, z, u, m = fused if fused is not None else _perplexity(a, dim)
        ctx.dim, ctx.fused = dim, fused is not None
        ctx.save_for_backward(_keep(a), rho, z, u, m)
        return rho

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        a, rho, z, u, m = ctx.saved_tensors
        if ctx.fused:  # one pass in C: scale * e * (u - x) per element
            return _fused.perplexity_backward(a, m, u, grad * rho / z, ctx.dim).to(a.dtype), None
        scale = (grad * rho / z).unsqueeze(ctx.dim)
        x = a.to(rho.dtype) - m
        # scale * e * (u - x), in three passes over the activation
        out = torch.addcmul(scale * u.unsqueeze(ctx.dim), scale, x, value=-1.0)
        return out.mul_(x.exp_()).to(a.dtype), None


def perplexity(a: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Perplexity rho = exp(H) in [1, D] of the softmax of ``a`` over its D entries along ``dim``.

    ``a``: pre-activations, e.g. (B, D, H, W) for a conv layer or (B, D) for a linear layer with
    ``dim=-1``. Returns float32 (float64 for float64 input) with ``a``'s shape without ``dim``.
    Differentiable, with an analytic backward that keeps no activation-sized
    intermediates; non-finite inputs give NaN. Computed as z * exp(-u), which is exactly D when all
    responses are equal and exactly 1 when one dominates.
    """
    if a.requires_grad and torch.is_grad_enabled():
        return _PerplexityFunction.apply(a, dim if dim >= 0 else dim + a.dim())
    fused = _fused.perplexity(a, dim) if a.dim() > 0 else None
    return fused if fused is not None else _perplexity(a, dim)[0]


def nas_sparsity(a: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """NAS s = 1 - rho / D in [0, 1 - 1/D] for pre-activations ``a`` with the D filters along ``dim``.

    0 when all D responses are equal (dense), 1 - 1/D when one response dominates (sparse).
    Same shape rules and dtype as :func:`perplexity`.
    """
    if not (a.requires_grad and torch.is_grad_enabled()) and a.dim() > 0:
        s = _fused.sparsity(a, dim)  # the CPU kernel writes s itself: a small layer's call is mostly overhead
        if s is not None:
            return s
    return 1.0 - perplexity(a, dim) / a.shape[dim]
