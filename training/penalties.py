"""Terms added to the cross-entropy loss: L1Net's and L2Net's weight penalties and NASReg's sparsity penalty.

The paper does not state the L1/L2 coefficients. We use 0.01 for both, the default of Keras'
``regularizers.l1()`` / ``l2()`` (the paper's layer names are Keras'), applied like Keras'
``kernel_regularizer`` to the weights (not the biases) of every Conv and Linear layer:

    L1Net:  0.01 * sum |w|        L2Net:  0.01 * sum w^2

NASReg adds ``nas_logger.NASReg``'s penalty, L_s = -sum_i lambda_i sum_k rho_k^i with lambda_i = 1/r_i
over all layers but the prediction layer (paper eq. 7).
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

L1_COEFFICIENT = 0.01
L2_COEFFICIENT = 0.01

Penalty = Callable[[], torch.Tensor]


def weight_penalty(model: nn.Module, norm: str, coefficient: float) -> Penalty:
    """``coefficient * sum |w|`` (norm ``"l1"``) or ``coefficient * sum w^2`` (``"l2"``) over the weights
    of all Conv/Linear layers, recomputed at each call."""
    weights = [m.weight for m in model.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear))]
    if norm == "l1":
        return lambda: coefficient * sum(w.abs().sum() for w in weights)
    if norm == "l2":
        return lambda: coefficient * sum(w.square().sum() for w in weights)
    raise ValueError(f"weight penalty norm must be 'l1' or 'l2'; got {norm!r}")


def make_penalty(kind: str | None, model: nn.Module, nas_strength: float = 1.0) -> Penalty | None:
    """The penalty of a :class:`~training.models.ModelSpec` (``None``, ``"l1"``, ``"l2"``, ``"nas"``) for
    ``model``; NASReg's multiplies lambda_i = 1/r_i by ``nas_strength``."""
    if kind is None:
        return None
    if kind == "l1":
        return weight_penalty(model, "l1", L1_COEFFICIENT)
    if kind == "l2":
        return weight_penalty(model, "l2", L2_COEFFICIENT)
    if kind == "nas":
        import nas_logger

        return nas_logger.NASReg(model, strength=nas_strength).penalty  # leaves out the prediction layer
    raise ValueError(f"unknown penalty {kind!r}; choose from None, 'l1', 'l2', 'nas'")
