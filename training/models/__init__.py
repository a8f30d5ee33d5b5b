"""The paper's models by command-line name. Each builder takes ``(in_channels, image_size, classes, width)``."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from .resnet import ResNet50, resnet50_nobn
from .small import ResNet10BN, VGG8Drop
from .vanillanet import VanillaNet, dropnet, normnet
from .vgg import VGG16
from .xception import Xception

Builder = Callable[[int, int, int, float], nn.Module]


@dataclass(frozen=True)
class ModelSpec:
    """A model of the paper: its name there, how to build it, and the penalty added to its loss
    (``None``, ``"l1"``, ``"l2"`` or ``"nas"``; see ``training/penalties.py``)."""

    paper_name: str
    build: Builder
    penalty: str | None = None


MODELS: dict[str, ModelSpec] = {
    "vanilla": ModelSpec("VanillaNet", VanillaNet),
    "l1net": ModelSpec("L1Net", VanillaNet, penalty="l1"),
    "l2net": ModelSpec("L2Net", VanillaNet, penalty="l2"),
    "dropnet": ModelSpec("DropNet", dropnet),
    "normnet": ModelSpec("NormNet", normnet),
    "nasreg": ModelSpec("NASReg", VanillaNet, penalty="nas"),
    "vgg16": ModelSpec("VGG16", VGG16),
    "resnet50": ModelSpec("ResNet50", ResNet50),
    "resnet50-nobn": ModelSpec("ResNet50-noBN", resnet50_nobn),
    "xception": ModelSpec("Xception", Xception),
    "resnet10-bn": ModelSpec("ResNet10-BN", ResNet10BN),
    "vgg8-drop": ModelSpec("VGG8-Drop", VGG8Drop),
}


def build_model(name: str, in_channels: int, image_size: int, classes: int, width: float = 1.0) -> nn.Module:
    """The model ``name`` (a key of :data:`MODELS`) for inputs ``(B, in_channels, image_size, image_size)``."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
    return MODELS[name].build(in_channels, image_size, classes, width)


def nas_layers(model: nn.Module) -> list[str] | None:
    """The layers to measure NAS on: the model's own choice (``model.nas_layers()``) or None for all."""
    return model.nas_layers() if hasattr(model, "nas_layers") else None


__all__ = ["MODELS", "ModelSpec", "build_model", "nas_layers"]
