"""ResNet50 (He et al. 2016) from torchvision's ``Bottleneck`` blocks, adapted to small inputs, with and
without batch normalisation.

    conv1 (64) -> layer1 (3 bottlenecks, 256 out) -> layer2 (4, 512) -> layer3 (6, 1024)
    -> layer4 (3, 2048) -> global average pool -> fc

Adaptation (the usual one for CIFAR): conv1 is 3x3 with stride 1 and there is no max pooling, so
32x32 inputs reach layer4 at 4x4 and 8x8 digits at 1x1. torchvision's ``resnet50`` hard-codes the
stage widths, so the stages are assembled here from its ``Bottleneck`` to let ``width`` scale them.
ResNet50-noBN replaces every batch norm by the identity (the convolutions keep torchvision's bias=False).
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torchvision.models.resnet import Bottleneck, conv1x1

from .common import scaled

# (planes, blocks, stride) per stage; a bottleneck outputs 4 * planes channels.
STAGES = ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2))


def _no_norm(channels: int) -> nn.Module:
    return nn.Identity()


class ResNet50(nn.Module):
    """``x: (B, in_channels, image_size, image_size)`` -> logits ``(B, classes)``."""

    def __init__(
        self, in_channels: int, image_size: int, classes: int, width: float = 1.0, batch_norm: bool = True
    ) -> None:
        super().__init__()
        norm: Callable[[int], nn.Module] = nn.BatchNorm2d if batch_norm else _no_norm
        stem = scaled(64, width)
        self.conv1 = nn.Conv2d(in_channels, stem, 3, padding=1, bias=not batch_norm)
        self.bn1 = norm(stem)
        channels = stem
        stages = []
        for planes, blocks, stride in STAGES:
            planes = scaled(planes, width)
            layers = []
            for i in range(blocks):
                downsample = None
                if i == 0 and (stride != 1 or channels != planes * Bottleneck.expansion):
                    out = planes * Bottleneck.expansion
                    downsample = nn.Sequential(conv1x1(channels, out, stride), norm(out))
                layers.append(Bottleneck(channels, planes, stride if i == 0 else 1, downsample, norm_layer=norm))
                channels = planes * Bottleneck.expansion
            stages.append(nn.Sequential(*layers))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.fc = nn.Linear(channels, classes)
        if batch_norm:  # torchvision's init; without batch norm it makes the residual sum explode,
            for m in self.modules():  # so ResNet50-noBN keeps PyTorch's smaller default init
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(x.mean(dim=(2, 3)))


def resnet50_nobn(in_channels: int, image_size: int, classes: int, width: float = 1.0) -> ResNet50:
    """ResNet50 without batch normalisation (the paper's ResNet50-noBN)."""
    return ResNet50(in_channels, image_size, classes, width, batch_norm=False)
