"""The fused CPU kernel for perplexity: one read of the layer output and one exp per element.

Eager torch needs a max pass, a subtraction, an exp and two reductions, each a pass over the tensor
(16x the fused time, measured idle). ``nas_fused.c`` does it in one pass over a cache-sized tile of fields,
in plain C with explicit vectors. It is compiled on first use (:mod:`nas_logger.native`) and called
through ctypes, which releases the GIL, so chunks run on torch's intra-op thread count. Without a
compiler, with a library that fails its checks (see :mod:`nas_logger.native`), or with
``NAS_LOGGER_FUSED=0``, :func:`perplexity` returns None and the eager path runs; the reason is logged once.
"""
from __future__ import annotations

import ctypes
import functools
import logging
import math
import os
from concurrent.futures import ThreadPoolExecutor

import torch

from . import native

logger = logging.getLogger(__name__)

_MIN_PARALLEL = 1 << 17  # elements below which threads cost more than they save (~40 us of kernel)


@functools.lru_cache(maxsize=None)
def _library() -> ctypes.CDLL | None:
    if os.environ.get("NAS_LOGGER_FUSED", "1") == "0":
        logger.info("fused NAS kernel off (NAS_LOGGER_FUSED=0): eager torch computes NAS")
        return None
    library = native.load("nas_fused.c", "fused NAS kernel", "eager torch computes NAS", symbols=(
        "nas_strided", "nas_rows", "nas_strided_backward", "nas_rows_backward", "nas_tile"))
    if library is None:
        return None
    i64, ptr = ctypes.c_int64, ctypes.c_void_p
    library.nas_strided.argtypes = [ptr] * 5 + [i64] * 6
    library.nas_rows.argtypes = [ptr] * 5 + [i64] * 5
    library.nas_strided_backward.argtypes = [ptr] * 5 + [i64] * 5
    library.nas_rows_backward.argtypes = [ptr] * 5 + [i64] * 4
    library.nas_tile.restype = i64
    library.tile = library.nas_tile()
    return library


@functools.lru_cache(maxsize=None)
def _pool(threads: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(threads, thread_name_prefix="nas_fused")


# A forked child (a DataLoader worker) inherits the pool but not its threads: it builds its own.
os.register_at_fork(after_in_child=_pool.cache_clear)


def available() -> bool:
    """Whether the fused kernel is compiled and loaded (compiles it on the first call)."""
    return _library() is not None


def _takes(a: torch.Tensor, dim: int) -> bool:
    """Whether the kernels (C and Triton) compute ``a`` along ``dim``: float32 or half, not empty, a valid
    ``dim`` (a bad one is the eager path's error to raise)."""
    return a.dtype in (torch.float32, torch.float16, torch.bfloat16) and a.numel() > 0 and -a.dim() <= dim < a.dim()


def _run(backward: bool, a: torch.Tensor, dim: int, *args: int | None) -> None:
    """Call the forward or backward kernel on float32 contiguous ``a`` with ``args`` (the pointers, and the
    forward's NAS flag) in chunks over torch's intra-op threads. Kept lean: a small layer's whole call
    is a few microseconds of kernel, so every Python step here shows in its ratio."""
    library = _library()
    shape = a.shape
    d, outer, inner = shape[dim], math.prod(shape[:dim]), math.prod(shape[dim + 1 :])
    if inner == 1:
        units, kernel, sizes = outer, library.nas_rows_backward if backward else library.nas_rows, (outer, d)
    else:
        units = outer * -(-inner // library.tile)
        kernel, sizes = library.nas_strided_backward if backward else library.nas_strided, (outer, d, inner)
    threads = torch.get_num_threads()
    if threads <= 1 or outer * d * inner < _MIN_PARALLEL:
        kernel(a.data_ptr(), *args, *sizes, 0, units)
    else:
        threads = min(threads, units)
        call = functools.partial(kernel, a.data_ptr(), *args, *sizes)
        bounds = [units * i // threads for i in range(threads + 1)]
        # The calling thread takes the first chunk itself rather than waiting idle for the pool.
        rest = [_pool(threads - 1).submit(call, lo, hi) for lo, hi in zip(bounds[1:-1], bounds[2:])]
        call(bounds[0], bounds[1])
        for future in rest:
            future.result()


def _forward(a: torch.Tensor, dim: int, for_backward: bool, as_nas: bool) -> tuple[torch.Tensor, ...] | None:
    """:func:`partition`, or with ``as_nas`` the NAS in place of rho (see :func:`sparsity`)."""
    if not a.is_cpu or not _takes(a, dim) or _library() is None:
        return None
    dim = dim % a.dim()
    a = a.float().contiguous()
    shape = a.shape[:dim] + a.shape[dim + 1 :]
    if not for_backward:
        out = torch.empty(size=shape, dtype=torch.float32)  # size= by name: parsed in 1.5 us, not 3-10
        _run(False, a, dim, out.data_ptr(), None, None, None, as_nas)
        return (out,)
    # rho, z, u and m in one allocation: a torch.empty costs microseconds, as much as a small layer's kernel
    outs = torch.empty(size=(4, *shape), dtype=torch.float32)
    _run(False, a, dim, *(outs.data_ptr() + 4 * i * outs.stride(0) for i in range(4)), as_nas)
    return outs.unbind()


def partition(a: torch.Tensor, dim: int, for_backward: bool = False) -> tuple[torch.Tensor, ...] | None:
    """rho of a CPU float32/float16/bfloat16 tensor along ``dim`` (float32, ``a``'s shape without ``dim``),
    and with ``for_backward`` also z, u and the max m of the same shape; None where the kernel does not
    apply (other devices and dtypes, no compiler)."""
    return _forward(a, dim, for_backward, as_nas=False)


def sparsity(a: torch.Tensor, dim: int) -> torch.Tensor | None:
    """The NAS 1 - rho / D of a tensor :func:`partition` takes, written by the kernel itself (the same
    bits as computing it from rho in torch, without two more passes and their dispatch); None where
    :func:`partition` would be."""
    parts = _forward(a, dim, False, as_nas=True)
    return None if parts is None else parts[0]


@functools.lru_cache(maxsize=None)
def _triton():
    try:
        from . import fused_triton
    except ImportError as e:
        logger.info("Triton NAS kernel unavailable (%s); eager torch computes NAS on the GPU", e)
        return None
    return fused_triton


def perplexity(a: torch.Tensor, dim: int) -> torch.Tensor | None:
    """rho alone (see :func:`partition`); on CUDA through the Triton kernel where Triton is installed."""
    if a.is_cuda and _takes(a, dim) and _triton() is not None:
        return _triton().perplexity(a, dim)
    parts = partition(a, dim)
    return None if parts is None else parts[0]


def perplexity_backward(a: torch.Tensor, m: torch.Tensor, u: torch.Tensor, scale: torch.Tensor,
                        dim: int) -> torch.Tensor:
    """d rho / d a times the incoming gradient, ``scale = grad * rho / z`` per field: float32, ``a``'s
    shape; for an ``a`` that :func:`partition` took."""
    dim = dim % a.dim()
    a = a.float().contiguous()
    grad = torch.empty_like(a)
    fields = [t.float().contiguous() for t in (m, u, scale)]
    _run(True, a, dim, *(t.data_ptr() for t in fields), grad.data_ptr())
    return grad
