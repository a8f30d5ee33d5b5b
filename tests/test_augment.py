import numpy as np
import torch

from training.augment import crop_and_flip


def reference(x: np.ndarray, dy: int, dx: int, flip: bool, padding: int) -> np.ndarray:
    """One image (C, H, W) zero-padded, cropped at offset (dy, dx), mirrored left-right when ``flip``."""
    c, h, w = x.shape
    padded = np.zeros((c, h + 2 * padding, w + 2 * padding))
    padded[:, padding:padding + h, padding:padding + w] = x
    out = padded[:, dy:dy + h, dx:dx + w]
    return out[:, :, ::-1] if flip else out


def test_each_image_is_its_own_crop_and_flip_of_the_padded_image():
    x = torch.arange(2 * 3 * 6 * 5, dtype=torch.float64).reshape(2, 3, 6, 5) + 1
    out = crop_and_flip(x, torch.Generator().manual_seed(3), padding=2).numpy()
    for i in range(2):  # recover each image's offsets and flip by search: exactly one must match
        matches = [(dy, dx, f) for dy in range(5) for dx in range(5) for f in (False, True)
                   if np.array_equal(reference(x[i].numpy(), dy, dx, f, 2), out[i])]
        assert len(matches) == 1
    assert out.shape == (2, 3, 6, 5)


def test_offsets_and_flips_vary_and_repeat_with_the_generator():
    x = torch.randn(256, 1, 8, 8)
    a = crop_and_flip(x, torch.Generator().manual_seed(0))
    b = crop_and_flip(x, torch.Generator().manual_seed(0))
    assert torch.equal(a, b)
    unchanged = (a == x).flatten(1).all(1).float().mean().item()
    assert unchanged < 0.1  # most images moved or mirrored (offset 0 and no flip: 1 in 162)
