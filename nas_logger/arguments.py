"""Checks of ``Monitor.log``'s arguments, made before any work, so that a bad argument costs no probe pass,
no detector update and no half-written step."""
from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

# The largest integer a JavaScript Number (and so the NAS tab) holds exactly: Number.MAX_SAFE_INTEGER.
MAX_STEP = 2**53 - 1


def check_step(step: Any) -> int:
    """``step`` as an int; ValueError unless it is an int (Python or NumPy) in [0, MAX_STEP]."""
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 0:
        raise ValueError(f"step must be a non-negative int; got {step!r}")
    if step > MAX_STEP:
        raise ValueError(
            f"step {int(step)} is above 2**53 - 1 = {MAX_STEP}, the largest integer JavaScript (and so the "
            "NAS tab) represents exactly; count steps from 0, e.g. in epochs or optimiser steps"
        )
    return int(step)


def _describe(value: Any) -> str:
    if isinstance(value, (torch.Tensor, np.ndarray)):
        return f"a {type(value).__name__} of shape {tuple(value.shape)} and dtype {value.dtype}"
    return f"{type(value).__name__} {value!r}"[:200]


def _one_real_element(value: Any) -> bool:
    if isinstance(value, torch.Tensor):
        return value.numel() == 1 and not value.dtype.is_complex
    if isinstance(value, np.ndarray):
        return value.size == 1 and not np.iscomplexobj(value)
    return False


def scalar_value(name: str, value: Any) -> float:
    """``value`` as a float; ValueError naming ``name`` unless it is a real number or a one-element real
    tensor or array (a host copy for a tensor on a device: ``log`` is where that is paid)."""
    if isinstance(value, numbers.Real):
        return float(value)
    if _one_real_element(value):
        return float(value.item())
    raise ValueError(f"{name} must be a real number or a one-element tensor; got {_describe(value)}")


def scalar_values(test_loss: Any, scalars: Mapping[str, Any]) -> dict[str, float]:
    """``{"test_loss": test_loss, **scalars}`` (test_loss only when given) as floats, each checked."""
    values = {"test_loss": test_loss, **scalars} if test_loss is not None else dict(scalars)
    return {name: scalar_value(name, value) for name, value in values.items()}
