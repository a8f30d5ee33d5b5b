"""The EB criterion of Mahsereci, Balles, Lassner, Hennig (2017), "Early Stopping without a Validation Set":
a validation-free stopping rule from the gradient's signal-to-noise ratio, the baseline the NAS alarm is
compared with.

    EB = 1 - (B / D) sum_k g_k^2 / Sigma_k;   stop when EB > 0

over the D parameters, with g the mini-batch mean gradient of the cross-entropy on a batch of B samples and
Sigma_k the sample variance of the B per-sample gradients of parameter k (from ``torch.func``, as Cockpit's
``EarlyStopping`` quantity gets them from BackPACK). EB > 0 means the mini-batch gradient is mostly noise:
the expected descent direction is lost in the per-sample scatter.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap

from nas_logger.hooks import tap_for

EPSILON = 1e-5  # added to Sigma_k (Cockpit's default), so that parameters no sample moves do not divide by 0


def eb_criterion(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """EB on the batch ``x: (B, ...)``, ``y: (B,)`` class indices (B >= 2). The model runs in eval mode
    (per-sample gradients need per-sample forwards: dropout off, batch norm on its running statistics)
    and is returned in the mode it came in; nas_logger's hooks (NAS statistics, NASReg) see nothing of it."""
    if len(y) < 2:
        raise ValueError(f"the EB criterion needs a batch of at least 2 samples for a variance; got {len(y)}")
    params = {name: p.detach() for name, p in model.named_parameters() if p.requires_grad}
    buffers = {name: b.detach() for name, b in model.named_buffers()}

    def sample_loss(p, xi, yi):
        return F.cross_entropy(functional_call(model, (p, buffers), (xi[None],)), yi[None])

    training = model.training
    model.eval()
    try:
        with tap_for(model).exclusive(lambda name, output: None, {}):  # hooks pass, consumers see nothing
            per_sample = vmap(grad(sample_loss), in_dims=(None, 0, 0))(params, x, y)
    finally:
        model.train(training)
    flat = torch.cat([g.reshape(len(y), -1) for g in per_sample.values()], dim=1).double()  # (B, D)
    mean = flat.mean(0)
    variance = flat.var(0, unbiased=True)
    return float(1.0 - len(y) * (mean**2 / (variance + EPSILON)).mean())
