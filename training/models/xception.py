"""Xception (Chollet 2017) with Keras' block names, adapted to small inputs.

    entry flow:  block1_conv1 (32), block1_conv2 (64), block2 (128), block3 (256), block4 (728)
    middle flow: block5..block12, each three separable convolutions of 728 plus the identity
    exit flow:   block13 (728 -> 1024), block14_sepconv1 (1536), block14_sepconv2 (2048),
                 global average pool, predictions

block2, block3, block4 and block13 end in a 3x3 stride-2 max pooling and add a strided 1x1
convolution of their input. Adaptation: block1_conv1 has stride 1 instead of 2 and 'same' padding
(Keras' Xception needs inputs of at least 71x71); 32x32 inputs reach the exit flow at 2x2, 8x8 at 1x1.

NAS is measured on each separable convolution as one layer, i.e. on its pointwise output, as Keras'
``SeparableConv2D`` is one layer: :meth:`Xception.nas_layers` leaves out the depthwise halves.
"""
from __future__ import annotations

import torch
from torch import nn

from .common import he_init, scaled


class SeparableConv2d(nn.Module):
    """A 3x3 depthwise convolution followed by a 1x1 pointwise one, without bias (Keras' SeparableConv2D)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(in_channels, in_channels, 3, padding=1, groups=in_channels, bias=False)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class DownBlock(nn.Module):
    """[relu] sepconv1 bn relu sepconv2 bn maxpool(3, stride 2), plus a strided 1x1 conv of the input."""

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int, relu_first: bool) -> None:
        super().__init__()
        self.relu_first = relu_first
        self.sepconv1 = SeparableConv2d(in_channels, mid_channels)
        self.sepconv1_bn = nn.BatchNorm2d(mid_channels)
        self.sepconv2 = SeparableConv2d(mid_channels, out_channels)
        self.sepconv2_bn = nn.BatchNorm2d(out_channels)
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        self.shortcut = nn.Conv2d(in_channels, out_channels, 1, stride=2, bias=False)
        self.shortcut_bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.shortcut_bn(self.shortcut(x))
        if self.relu_first:
            x = torch.relu(x)
        x = torch.relu(self.sepconv1_bn(self.sepconv1(x)))
        x = self.pool(self.sepconv2_bn(self.sepconv2(x)))
        return x + residual


class MiddleBlock(nn.Module):
    """Three times (relu, sepconv, bn), plus the identity."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.sepconv1, self.sepconv2, self.sepconv3 = (SeparableConv2d(channels, channels) for _ in range(3))
        self.sepconv1_bn, self.sepconv2_bn, self.sepconv3_bn = (nn.BatchNorm2d(channels) for _ in range(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x
        x = self.sepconv1_bn(self.sepconv1(torch.relu(x)))
        x = self.sepconv2_bn(self.sepconv2(torch.relu(x)))
        x = self.sepconv3_bn(self.sepconv3(torch.relu(x)))
        return x + residual


class Xception(nn.Module):
    """``x: (B, in_channels, image_size, image_size)`` -> logits ``(B, classes)``."""

    def __init__(self, in_channels: int, image_size: int, classes: int, width: float = 1.0) -> None:
        super().__init__()
        c32, c64, c128, c256, c728, c1024, c1536, c2048 = (
            scaled(c, width) for c in (32, 64, 128, 256, 728, 1024, 1536, 2048)
        )
        self.block1_conv1 = nn.Conv2d(in_channels, c32, 3, padding=1, bias=False)
        self.block1_conv1_bn = nn.BatchNorm2d(c32)
        self.block1_conv2 = nn.Conv2d(c32, c64, 3, padding=1, bias=False)
        self.block1_conv2_bn = nn.BatchNorm2d(c64)
        self.block2 = DownBlock(c64, c128, c128, relu_first=False)
        self.block3 = DownBlock(c128, c256, c256, relu_first=True)
        self.block4 = DownBlock(c256, c728, c728, relu_first=True)
        self.middle = nn.Sequential(*(MiddleBlock(c728) for _ in range(8)))  # blocks 5..12
        self.block13 = DownBlock(c728, c728, c1024, relu_first=True)
        self.block14_sepconv1 = SeparableConv2d(c1024, c1536)
        self.block14_sepconv1_bn = nn.BatchNorm2d(c1536)
        self.block14_sepconv2 = SeparableConv2d(c1536, c2048)
        self.block14_sepconv2_bn = nn.BatchNorm2d(c2048)
        self.predictions = nn.Linear(c2048, classes)
        he_init(self, self.predictions)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.block1_conv1_bn(self.block1_conv1(x)))
        x = torch.relu(self.block1_conv2_bn(self.block1_conv2(x)))
        x = self.block13(self.middle(self.block4(self.block3(self.block2(x)))))
        x = torch.relu(self.block14_sepconv1_bn(self.block14_sepconv1(x)))
        x = torch.relu(self.block14_sepconv2_bn(self.block14_sepconv2(x)))
        return self.predictions(x.mean(dim=(2, 3)))

    def nas_layers(self) -> list[str]:
        """Names of the layers NAS is measured on: every Conv2d/Linear except the depthwise halves."""
        return [
            name for name, m in self.named_modules()
            if isinstance(m, (nn.Conv2d, nn.Linear)) and not name.endswith(".depthwise")
        ]
