"""Forward hooks that hand layer outputs (pre-activations) to their consumers.

One :class:`PreActivationTap` per model holds at most one hook per module, shared by every consumer
(the monitor's probe pass and the NASReg penalty), so watching and regularising the same model does
not double the hooks. A hook exists only while some consumer needs its module: the monitor's probe
pass adds its hooks for that pass alone, so training steps pay nothing for it.
"""
from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable, Iterator

import torch
from torch import nn

Consumer = Callable[[str, torch.Tensor], None]

_taps: "weakref.WeakKeyDictionary[nn.Module, PreActivationTap]" = weakref.WeakKeyDictionary()


def tap_for(model: nn.Module) -> "PreActivationTap":
    """The tap shared by all consumers of ``model`` (an unwrapped module)."""
    if model not in _taps:
        _taps[model] = PreActivationTap()
    return _taps[model]


class PreActivationTap:
    def __init__(self) -> None:
        # Keyed by the consumer itself: bound methods of one object compare and hash equal.
        self._subscribers: dict[Consumer, dict[str, nn.Module]] = {}
        self._hooks: dict[str, torch.utils.hooks.RemovableHandle] = {}
        self._exclusive: Consumer | None = None
        self._exclusive_names: frozenset[str] = frozenset()

    def subscribe(self, consumer: Consumer, modules: dict[str, nn.Module]) -> None:
        """Call ``consumer(name, output)`` after every forward of each module in ``modules``."""
        self._subscribers[consumer] = modules
        self._sync_hooks()

    def unsubscribe(self, consumer: Consumer) -> None:
        self._subscribers.pop(consumer, None)
        self._sync_hooks()

    @contextlib.contextmanager
    def exclusive(self, consumer: Consumer, modules: dict[str, nn.Module]) -> Iterator[None]:
        """Within the block, outputs of ``modules`` go to ``consumer`` alone (other subscribers do not
        see the probe pass), with hooks added for the block where needed."""
        self._exclusive, self._exclusive_names = consumer, frozenset(modules)
        self._sync_hooks(extra=modules)
        try:
            yield
        finally:
            self._exclusive, self._exclusive_names = None, frozenset()
            self._sync_hooks()

    def _sync_hooks(self, extra: dict[str, nn.Module] | None = None) -> None:
        wanted: dict[str, nn.Module] = dict(extra or {})
        for modules in self._subscribers.values():
            wanted.update(modules)
        for name in list(self._hooks):
            if name not in wanted:
                self._hooks.pop(name).remove()
        for name, module in wanted.items():
            if name not in self._hooks:
                self._hooks[name] = module.register_forward_hook(self._hook(name))

    def _hook(self, name: str) -> Callable[..., None]:
        # Consumers keep state across calls (captured terms, histograms); under torch.compile the hook
        # runs eagerly between compiled pieces rather than being traced with those side effects.
        @torch.compiler.disable
        def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            if self._exclusive is not None:
                if name in self._exclusive_names:
                    self._exclusive(name, output)
                return
            for consumer, modules in self._subscribers.items():
                if name in modules:
                    consumer(name, output)

        return hook
