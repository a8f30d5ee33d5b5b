"""Random crop and horizontal flip of a batch on its device, the everyday CIFAR augmentation."""
from __future__ import annotations

import torch
import torch.nn.functional as F

CROP_PADDING = 4  # zero padding on each side before the random crop back to the image size


def crop_and_flip(x: torch.Tensor, generator: torch.Generator, padding: int = CROP_PADDING) -> torch.Tensor:
    """``x: (B, C, H, W)`` with each image shifted by a random offset in [-padding, padding] on each axis
    (zero padding, then a crop of the original size) and mirrored left-right with probability 1/2.
    One gather for the whole batch; the random numbers come from ``generator`` (on the CPU) for repeatability."""
    b, _, h, w = x.shape
    offsets = torch.randint(0, 2 * padding + 1, (2, b), generator=generator).to(x.device)
    flip = (torch.rand(b, generator=generator) < 0.5).to(x.device)
    rows = offsets[0][:, None] + torch.arange(h, device=x.device)  # (B, H)
    cols = offsets[1][:, None] + torch.arange(w, device=x.device)  # (B, W)
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    padded = F.pad(x, (padding, padding, padding, padding))
    index = torch.arange(b, device=x.device)[:, None, None, None]
    return padded[index, torch.arange(x.shape[1], device=x.device)[None, :, None, None], rows[:, None, :, None],
                  cols[:, None, None, :]]
