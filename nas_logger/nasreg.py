"""NASReg: the paper's activation-sparsity regulariser L_s = -sum_i lambda_i sum_k rho_k^i as a loss term."""
from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping

import torch
from torch import nn

from .hooks import tap_for
from .layers import filter_dim, is_sharded, layer_kind, select_layers, unwrap
from .sparsity import perplexity


class NASReg:
    """Perplexity reward on a model's layers, captured during the normal forward pass.

        reg = nas_logger.NASReg(model, strength=0.1, normalize=True)
        loss = F.cross_entropy(model(x), y) + reg.penalty()

    ``penalty()`` returns -strength * sum_i lambda_i * sum_k rho_k^i for the last forward pass, averaged
    over the batch: a differentiable scalar (a layer called twice in one forward counts twice).
    lambda_i = 1 / r_i (r_i receptive fields per sample of layer i, the paper's choice) unless
    ``weights={name: lambda}`` overrides it.

    Scale: rho_k^i lies in [1, D_i] (D_i filters of layer i), so with lambda_i = 1 / r_i each layer adds
    its mean perplexity, up to D_i, and the term grows with the filters and the layers: near D_i for a
    dense layer at initialisation, about -2,850 for resnet18 at ``strength=1`` against a cross-entropy
    of 2.3. ``normalize=True`` sets lambda_i = 1 / (r_i D_i L) over the L regularised layers instead:
    each layer's term is its mean rho / D_i in [1/D_i, 1], and the penalty, their mean, lies in
    [-strength, 0) whatever the width and depth. Choosing the strength: with ``normalize=True`` the
    penalty is at most ``strength`` in size, so ``strength`` = the share of the task loss the reward
    may reach (0.1 x a cross-entropy of 2.3 is 0.23); without, measure ``reg.penalty()`` at
    ``strength=1`` on one batch at initialisation (P0) and take ``strength`` = share x task loss / |P0|.

    With ``layers=None`` every Conv/Linear layer but the prediction layer (the last one executed) is
    regularised; ``exclude`` (names, globs or modules) removes more. Only forwards with gradients
    enabled are captured, so ``torch.no_grad()`` evaluation passes neither cost nor count.
    Hooks keep only each layer's scalar term; autograd frees what it saved for it at ``backward``.
    Under FSDP2 (``fully_shard``) each rank's penalty is that of its own batch, as under DDP.
    """

    def __init__(
        self,
        model: nn.Module,
        strength: float = 1.0,
        exclude: Iterable[str | nn.Module] | str | None = None,
        layers: Iterable[str | nn.Module] | str | None = None,
        weights: Mapping[str, float] | None = None,
        normalize: bool = False,
    ) -> None:
        if not strength >= 0:
            raise ValueError(f"strength must be >= 0; got {strength!r}")
        if normalize and weights:
            raise ValueError(
                f"normalize=True sets lambda_i itself (1 / (r_i D_i L)); got weights={dict(weights)!r} too: pass one"
            )
        self.normalize = bool(normalize)
        self.model = unwrap(model)
        is_sharded(self.model)  # FSDP2 is fine (the hooks see full outputs); ValueError for FSDP1, tensor parallel
        self.strength = float(strength)
        chosen = select_layers(self.model, layers)
        if exclude is not None:
            for name in select_layers(self.model, exclude, allow_empty=True):
                chosen.pop(name, None)
        self._exclude_prediction = layers is None
        if not chosen or (self._exclude_prediction and len(chosen) == 1):
            raise ValueError(
                f"{type(self.model).__name__} has no Conv/Linear layer left to regularise "
                "besides the prediction layer and the excluded ones"
            )
        unknown = set(weights or {}) - set(chosen)
        if unknown:
            raise ValueError(f"weights name layers that are not regularised: {sorted(unknown)}; choose from {sorted(chosen)}")
        self.weights = {name: float(w) for name, w in (weights or {}).items()}
        self._modules = chosen
        self._kinds = {name: layer_kind(m) for name, m in chosen.items()}
        self._terms: dict[str, torch.Tensor] = {}
        self._perplexities: dict[str, torch.Tensor] = {}
        self.prediction_layer: str | None = None
        self.receptive_fields: dict[str, int] = {}
        self.filters: dict[str, int] = {}
        tap_for(self.model).subscribe(self._capture, self._modules)
        self._reset_hook = self.model.register_forward_pre_hook(self._new_forward)

    @property
    def layers(self) -> list[str]:
        """Names of the regularised layers (the prediction layer drops out after the first penalty)."""
        return list(self._modules)

    @torch.compiler.disable
    def _new_forward(self, module: nn.Module, args: tuple) -> None:
        if torch.is_grad_enabled():
            self._terms = {}

    def _capture(self, name: str, output: torch.Tensor) -> None:
        if not torch.is_grad_enabled():
            return
        dim = filter_dim(self._kinds[name])
        rho = perplexity(output, dim=dim)
        fields = rho[0].numel()
        self.receptive_fields[name] = fields
        self.filters[name] = output.shape[dim]
        total = rho.sum() / rho.shape[0]  # sum over fields, mean over the batch
        self._terms[name] = self._terms[name] + total if name in self._terms else total
        self._perplexities[name] = total.detach() / fields

    def penalty(self) -> torch.Tensor:
        """L_s of the last forward; raises RuntimeError if no forward was captured since the last call."""
        if not self._terms:
            raise RuntimeError(
                "NASReg.penalty() needs a forward pass of the model with gradients enabled first; "
                "call it after model(x) in the training step"
            )
        terms, self._terms = self._terms, {}
        if self._exclude_prediction and self.prediction_layer is None:
            self.prediction_layer = next(reversed(terms))  # dicts keep execution order
            del self._modules[self.prediction_layer]
            tap_for(self.model).subscribe(self._capture, self._modules)
        terms.pop(self.prediction_layer, None)
        self._perplexities.pop(self.prediction_layer, None)
        if self.normalize:
            fields, filters = self.receptive_fields, self.filters
            total = sum(t / (fields[n] * filters[n]) for n, t in terms.items()) / max(len(terms), 1)
        else:
            total = sum(self.weights.get(n, 1.0 / self.receptive_fields[n]) * t for n, t in terms.items())
        return -self.strength * total

    def values(self) -> dict[str, float]:
        """Per regularised layer, the mean perplexity rho over fields and batch of the last forward, as
        floats: a logging helper, to call outside the training step (one device-to-host copy for all)."""
        if not self._perplexities:
            return {}
        names, tensors = list(self._perplexities), list(self._perplexities.values())
        dtype, device = functools.reduce(torch.promote_types, (t.dtype for t in tensors)), tensors[0].device
        return dict(zip(names, torch.stack([t.to(device, dtype) for t in tensors]).cpu().tolist()))

    def remove(self) -> None:
        """Detach the hooks; the regulariser stops capturing."""
        tap_for(self.model).unsubscribe(self._capture)
        self._reset_hook.remove()
