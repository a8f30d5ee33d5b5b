"""VanillaNet and its regularised variants (paper section 2.4).

    conv1 -> conv2 -> pool -> conv3 -> conv4 -> pool -> fc1 -> prediction
    widths 256, 256, 512, 512, 1024; ReLU after every layer but the prediction layer.

The paper gives no kernel size; we use 3x3 convolutions with 'same' padding and 2x2 max pooling
(the common Keras setup the paper's layer names come from). Variants:

- DropNet: dropout 0.3 after conv1, conv2, conv3, conv4 and fc1's input; 0.5 before the prediction layer.
- NormNet: batch normalisation between every conv/fc1 layer and its ReLU (NAS is measured on the
  conv output, before the batch norm).
- L1Net, L2Net, NASReg: this very network; their penalty is added to the loss (``training/penalties.py``).
"""
from __future__ import annotations

import torch
from torch import nn

from .common import he_init, scaled


class VanillaNet(nn.Module):
    """``x: (B, in_channels, image_size, image_size)`` -> logits ``(B, classes)``; ``image_size`` a multiple of 4."""

    def __init__(
        self,
        in_channels: int,
        image_size: int,
        classes: int,
        width: float = 1.0,
        dropout: bool = False,
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        if image_size % 4:
            raise ValueError(f"VanillaNet needs an image size divisible by 4 (two 2x2 poolings); got {image_size}")
        c1, c2, c3, c4, f1 = (scaled(c, width) for c in (256, 256, 512, 512, 1024))
        norm = nn.BatchNorm2d if batch_norm else (lambda c: nn.Identity())
        self.conv1 = nn.Conv2d(in_channels, c1, 3, padding=1)
        self.norm1 = norm(c1)
        self.conv2 = nn.Conv2d(c1, c2, 3, padding=1)
        self.norm2 = norm(c2)
        self.pool = nn.MaxPool2d(2)
        self.conv3 = nn.Conv2d(c2, c3, 3, padding=1)
        self.norm3 = norm(c3)
        self.conv4 = nn.Conv2d(c3, c4, 3, padding=1)
        self.norm4 = norm(c4)
        self.fc1 = nn.Linear(c4 * (image_size // 4) ** 2, f1)
        self.norm_fc1 = nn.BatchNorm1d(f1) if batch_norm else nn.Identity()
        self.prediction = nn.Linear(f1, classes)
        self.drop = nn.Dropout(0.3) if dropout else nn.Identity()
        self.drop_fc1 = nn.Dropout(0.5) if dropout else nn.Identity()
        he_init(self, self.prediction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop(torch.relu(self.norm1(self.conv1(x))))
        x = self.pool(torch.relu(self.norm2(self.conv2(x))))
        x = self.drop(x)
        x = self.drop(torch.relu(self.norm3(self.conv3(x))))
        x = self.pool(torch.relu(self.norm4(self.conv4(x))))
        x = self.drop(x).flatten(1)
        x = self.drop_fc1(torch.relu(self.norm_fc1(self.fc1(x))))
        return self.prediction(x)


def dropnet(in_channels: int, image_size: int, classes: int, width: float = 1.0) -> VanillaNet:
    """VanillaNet with dropout 0.3 from conv1 to fc1 and 0.5 before the prediction layer."""
    return VanillaNet(in_channels, image_size, classes, width, dropout=True)


def normnet(in_channels: int, image_size: int, classes: int, width: float = 1.0) -> VanillaNet:
    """VanillaNet with batch normalisation after conv1..conv4 and fc1."""
    return VanillaNet(in_channels, image_size, classes, width, batch_norm=True)
