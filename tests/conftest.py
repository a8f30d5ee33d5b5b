import sys
from pathlib import Path

import pytest
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))


class SmallCNN(nn.Module):
    """conv1 -> relu -> conv2 -> relu -> pool -> fc1 -> relu -> fc2, for 1x8x8 inputs."""

    def __init__(self, width: int = 8, classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, 2 * width, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(2 * width * 16, 32)
        self.fc2 = nn.Linear(32, classes)

    def forward(self, x):
        x = self.pool(torch.relu(self.conv2(torch.relu(self.conv1(x)))))
        return self.fc2(torch.relu(self.fc1(x.flatten(1))))


@pytest.fixture
def small_cnn():
    torch.manual_seed(0)
    return SmallCNN()
