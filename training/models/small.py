"""Two small CIFAR-size networks for the everyday recipes the NAS alarm is judged on.

- ResNet10-BN: the kind of network most users train today, a residual net with batch normalisation after
  every convolution: conv1 (64) + bn -> one torchvision ``BasicBlock`` per stage, 64, 128, 256, 512 channels
  (strides 1, 2, 2, 2) -> global average pool -> fc. NAS is measured on the conv outputs, before their batch norm.
- VGG8-Drop: a VGG-style network without normalisation layers and with dropout:
  conv1_1, conv1_2 (64), pool, conv2_1, conv2_2 (128), pool, conv3_1, conv3_2 (256), pool, fc1 (512), prediction;
  dropout 0.25 after every pooling and 0.5 before the prediction layer.
"""
from __future__ import annotations

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, conv1x1

from .common import he_init, scaled
from .resnet import ResNet50

RESNET_STAGES = ((64, 1), (128, 2), (256, 2), (512, 2))  # (channels, stride); one BasicBlock each
VGG_BLOCKS = (64, 128, 256)  # two 3x3 convolutions per block, then a 2x2 pooling


class ResNet10BN(nn.Module):
    """``x: (B, in_channels, image_size, image_size)`` -> logits ``(B, classes)``."""

    def __init__(self, in_channels: int, image_size: int, classes: int, width: float = 1.0) -> None:
        super().__init__()
        stem = scaled(64, width)
        self.conv1 = nn.Conv2d(in_channels, stem, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        channels, stages = stem, []
        for planes, stride in RESNET_STAGES:
            planes = scaled(planes, width)
            downsample = None
            if stride != 1 or channels != planes:
                downsample = nn.Sequential(conv1x1(channels, planes, stride), nn.BatchNorm2d(planes))
            stages.append(BasicBlock(channels, planes, stride, downsample))
            channels = planes
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.fc = nn.Linear(channels, classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    forward = ResNet50.forward  # the same stem, four stages, global average pool and fc


class VGG8Drop(nn.Module):
    """``x: (B, in_channels, image_size, image_size)`` -> logits ``(B, classes)``; ``image_size`` a multiple of 8."""

    def __init__(self, in_channels: int, image_size: int, classes: int, width: float = 1.0) -> None:
        super().__init__()
        if image_size % 8:
            raise ValueError(f"VGG8-Drop needs an image size divisible by 8 (three 2x2 poolings); got {image_size}")
        self.features = nn.Sequential()
        channels = in_channels
        for b, filters in enumerate(VGG_BLOCKS, start=1):
            for c in (1, 2):
                self.features.add_module(f"conv{b}_{c}", nn.Conv2d(channels, scaled(filters, width), 3, padding=1))
                self.features.add_module(f"relu{b}_{c}", nn.ReLU())
                channels = scaled(filters, width)
            self.features.add_module(f"pool{b}", nn.MaxPool2d(2))
            self.features.add_module(f"drop{b}", nn.Dropout(0.25))
        hidden = scaled(512, width)
        self.fc1 = nn.Linear(channels * (image_size // 8) ** 2, hidden)
        self.drop_fc1 = nn.Dropout(0.5)
        self.prediction = nn.Linear(hidden, classes)
        he_init(self, self.prediction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.fc1(self.features(x).flatten(1)))
        return self.prediction(self.drop_fc1(x))
