"""training/eb.py against a float64 loop over samples with autograd."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from training.eb import EPSILON, eb_criterion


def reference(model, x, y):
    grads = []
    for xi, yi in zip(x, y):
        model.zero_grad()
        F.cross_entropy(model(xi[None]), yi[None]).backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]).double())
    g = torch.stack(grads)  # (B, D)
    mean, var = g.mean(0), ((g - g.mean(0)) ** 2).sum(0) / (len(y) - 1)
    return 1.0 - len(y) / g.shape[1] * float((mean**2 / (var + EPSILON)).sum())


def test_eb_matches_a_per_sample_loop_and_restores_the_mode():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Flatten(), nn.Dropout(0.5), nn.Linear(3 * 6 * 6, 4))
    x, y = torch.randn(8, 1, 8, 8), torch.randint(0, 4, (8,))
    model.train()
    value = eb_criterion(model, x, y)
    assert model.training
    model.eval()
    assert value == pytest.approx(reference(model, x, y), rel=1e-5, abs=1e-6)


def test_eb_is_negative_on_a_clear_signal_and_positive_on_noise():
    """All samples pull the same way (one sample repeated, tiny spread): EB << 0; a gradient whose mean
    is zero is all noise: EB = 1."""
    torch.manual_seed(1)
    model = nn.Linear(5, 3)
    x = torch.randn(1, 5).repeat(16, 1) + 1e-3 * torch.randn(16, 5)
    assert eb_criterion(model, x, torch.zeros(16, dtype=torch.long)) < -10
    model = nn.Linear(5, 2)
    nn.init.zeros_(model.weight), nn.init.zeros_(model.bias)  # p = (0.5, 0.5) for every input
    x = torch.randn(16, 5)
    x = torch.cat([x, x])  # each input twice, once with each label: the mean gradient is exactly 0
    y = torch.cat([torch.zeros(16, dtype=torch.long), torch.ones(16, dtype=torch.long)])
    assert eb_criterion(model, x, y) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least 2 samples"):
        eb_criterion(model, x[:1], y[:1])
