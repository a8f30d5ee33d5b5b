"""Helpers shared by the model files: channel widths scaled by ``--width``, and the initialisation."""
from __future__ import annotations

from torch import nn


def scaled(channels: int, width: float) -> int:
    """``channels * width`` rounded, at least 1: every model shrinks by one factor for CPU runs."""
    if width <= 0:
        raise ValueError(f"width must be > 0; got {width}")
    return max(1, round(channels * width))


def he_init(model: nn.Module, prediction: nn.Module) -> nn.Module:
    """He-uniform weights (fan in, ReLU gain) and zero biases for every Conv and Linear layer but the
    ``prediction`` layer, which no ReLU follows: it keeps Keras' Glorot-uniform (so the untrained model's
    loss is near ln(classes) rather than several times that).

    The paper's Keras models had Keras' default Glorot-uniform init; with it, our shrunken networks sat on
    a loss plateau under plain SGD at lr 0.01 for 30-60 epochs of the digits data before learning, so we
    use the ReLU-preserving He init instead (PyTorch's own default is smaller still)."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            if m is prediction:
                nn.init.xavier_uniform_(m.weight)
            else:
                nn.init.kaiming_uniform_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return model
