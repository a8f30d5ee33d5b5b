"""VGG16 (Simonyan & Zisserman 2015, configuration D) with Keras' layer names, adapted to small inputs.

    block1_conv1..2 (64), pool, block2_conv1..2 (128), pool, block3_conv1..3 (256), pool,
    block4_conv1..3 (512), pool, block5_conv1..3 (512), pool, fc1 (4096), fc2 (4096), predictions

Adaptation: a 2x2 pooling is skipped once the feature map is 1x1, so 8x8 digits keep all 13
convolutions; on 32x32 CIFAR-100 all five poolings run and fc1 sees a 1x1x512 map, as in Keras'
``VGG16(input_shape=(32, 32, 3), classes=100)``. torchvision's VGG would average-pool to 7x7 first
(25,088 inputs to fc1), which is why the blocks are written out here.
"""
from __future__ import annotations

import torch
from torch import nn

from .common import he_init, scaled

# (filters, convolutions) per block.
BLOCKS = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))


class VGG16(nn.Module):
    """``x: (B, in_channels, image_size, image_size)`` -> logits ``(B, classes)``."""

    def __init__(self, in_channels: int, image_size: int, classes: int, width: float = 1.0) -> None:
        super().__init__()
        self.features = nn.Sequential()
        channels, side = in_channels, image_size
        for b, (filters, convs) in enumerate(BLOCKS, start=1):
            for c in range(1, convs + 1):
                self.features.add_module(f"block{b}_conv{c}", nn.Conv2d(channels, scaled(filters, width), 3, padding=1))
                self.features.add_module(f"block{b}_relu{c}", nn.ReLU())
                channels = scaled(filters, width)
            if side >= 2:
                self.features.add_module(f"block{b}_pool", nn.MaxPool2d(2))
                side //= 2
        hidden = scaled(4096, width)
        self.fc1 = nn.Linear(channels * side * side, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.predictions = nn.Linear(hidden, classes)
        he_init(self, self.predictions)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x).flatten(1)
        x = torch.relu(self.fc1(x))
        x = torch.relu(self.fc2(x))
        return self.predictions(x)
