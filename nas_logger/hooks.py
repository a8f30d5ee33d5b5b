"""Forward hooks that hand layer outputs (pre-activations) to their consumers.

One :class:`PreActivationTap` per model holds at most one hook per module, shared by every consumer
(the monitor's probe pass and the NASReg penalty), so watching and regularising the same model does
not double the hooks. A hook exists only while some consumer needs its module: the monitor's probe
pass adds its hooks for that pass alone, so training steps pay nothing for it. The probe pass's routing
is per thread, and its :class:`~nas_logger.forward_gate.ForwardGate` keeps other threads' forwards out
of it, so ``log`` on another thread than the training loop changes nothing a training forward sees.
"""
from __future__ import annotations

import contextlib
import inspect
import threading
import weakref
from collections.abc import Callable, Iterator

import torch
from torch import nn

from .forward_gate import ForwardGate, GuardedForwards

Consumer = Callable[[str, torch.Tensor], None]

_taps: "weakref.WeakKeyDictionary[nn.Module, PreActivationTap]" = weakref.WeakKeyDictionary()


def tap_for(model: nn.Module) -> "PreActivationTap":
    """The tap shared by all consumers of ``model`` (an unwrapped module)."""
    if model not in _taps:
        _taps[model] = PreActivationTap()
    return _taps[model]


def _held(consumer: Consumer) -> Consumer | weakref.WeakMethod:
    """How the tap holds a consumer: bound methods weakly. The tap lives as long as its model, and a
    NASReg or monitor holds its model, so a strong reference here would keep every model that was
    ever regularised or streamed alive (with its parameters on the device) after the user dropped it."""
    return weakref.WeakMethod(consumer) if inspect.ismethod(consumer) else consumer


class PreActivationTap:
    """Holds no strong reference to its model or to a consumer object, only layer names and hooks."""

    def __init__(self) -> None:
        # Keyed by the held consumer: bound methods of one object, and weak references to them, compare
        # and hash equal while the object lives.
        self._subscribers: dict[Consumer | weakref.WeakMethod, frozenset[str]] = {}
        self._hooks: dict[str, torch.utils.hooks.RemovableHandle] = {}
        # The hook function of each name, made once: the probe pass registers its hooks at every log, and
        # torch.compiler.disable costs ~50 us per function made (~0.2 ms of a small CNN's ~9 ms log).
        self._hook_fns: dict[str, Callable[..., None]] = {}
        self._exclusive: Consumer | None = None
        self._exclusive_names: frozenset[str] = frozenset()
        self._exclusive_thread: int | None = None  # only that thread's outputs go to the exclusive consumer
        self.gate = ForwardGate()
        self.guarded_forwards = GuardedForwards(self.gate)

    def subscribe(self, consumer: Consumer, modules: dict[str, nn.Module]) -> None:
        """Call ``consumer(name, output)`` after every forward of each module in ``modules``."""
        self._subscribers[_held(consumer)] = frozenset(modules)
        self._sync_hooks(modules)

    def unsubscribe(self, consumer: Consumer) -> None:
        self._subscribers.pop(_held(consumer), None)
        self._sync_hooks()

    @contextlib.contextmanager
    def exclusive(self, consumer: Consumer, modules: dict[str, nn.Module]) -> Iterator[None]:
        """Within the block, outputs of ``modules`` go to ``consumer`` alone (other subscribers do not
        see the probe pass), with hooks added for the block where needed. Only forwards of the calling
        thread are routed so; hold :attr:`gate`'s ``probe_pass`` to keep other threads' forwards out."""
        self._exclusive, self._exclusive_names = consumer, frozenset(modules)
        self._exclusive_thread = threading.get_ident()
        self._sync_hooks(modules)
        try:
            yield
        finally:
            self._exclusive, self._exclusive_names, self._exclusive_thread = None, frozenset(), None
            self._sync_hooks()

    def _live_subscribers(self) -> list[tuple[Consumer, frozenset[str]]]:
        """Subscribers whose object still exists; those of dropped objects are forgotten."""
        live = []
        for held, names in list(self._subscribers.items()):
            consumer = held() if isinstance(held, weakref.WeakMethod) else held
            if consumer is None:
                del self._subscribers[held]
            else:
                live.append((consumer, names))
        return live

    def _sync_hooks(self, new: dict[str, nn.Module] | None = None) -> None:
        """One hook on each module some subscriber or the exclusive pass wants; ``new`` are the modules
        of the call that may add names (the others are hooked already)."""
        wanted = set(self._exclusive_names)
        for _, names in self._live_subscribers():
            wanted |= names
        for name in list(self._hooks):
            if name not in wanted:
                self._hooks.pop(name).remove()
        for name, module in (new or {}).items():
            if name in wanted and name not in self._hooks:
                if name not in self._hook_fns:
                    self._hook_fns[name] = self._hook(name)
                self._hooks[name] = module.register_forward_hook(self._hook_fns[name])

    def _hook(self, name: str) -> Callable[..., None]:
        # Consumers keep state across calls (captured terms, histograms); under torch.compile the hook
        # runs eagerly between compiled pieces rather than being traced with those side effects.
        @torch.compiler.disable
        def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            if self._exclusive is not None and self._exclusive_thread == threading.get_ident():
                if name in self._exclusive_names:
                    self._exclusive(name, output)
                return
            for consumer, names in self._live_subscribers():
                if name in names:
                    consumer(name, output)

        return hook
