"""Keeps a model's forwards and the monitor's probe pass apart when ``log`` runs on another thread.

The probe pass switches the whole model to eval mode and routes the layer hooks to itself; a training
forward that ran meanwhile on another thread would see both. A :class:`ForwardGate` is a readers-writer
lock: any number of forwards hold it at once (DataParallel replicas, nested calls), the probe pass
holds it alone, waiting for running forwards to end; forwards that start meanwhile wait for the pass.
Its cost on a training step is two uncontended lock round trips in hooks on the model's root, no
device work.
"""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import torch
from torch import nn


class ForwardGate:
    """Readers (forwards) share the gate; the writer (a probe pass) excludes them. Re-entrant per thread:
    a forward inside a forward, a forward inside the pass (the probe's own), and a pass started from
    inside a forward of the same thread (``log`` in a forward hook) all go through."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._condition = threading.Condition(self._lock)
        self._forwards = 0  # forwards running, all threads
        self._writer: int | None = None  # thread id of the probe pass running
        self._writers_waiting = 0
        self._mine = threading.local()  # .forwards: depth of this thread's forwards

    def __getstate__(self) -> dict:
        return {}  # a pickled model's copy starts with an open gate of its own

    def __setstate__(self, state: dict) -> None:
        self.__init__()

    def _count(self, what: str) -> int:
        return getattr(self._mine, what, 0)

    # enter/leave run twice per training forward: plain lock calls, no context managers.
    def enter_forward(self) -> None:
        mine = self._mine
        depth = getattr(mine, "forwards", 0)
        if depth or self._writer == threading.get_ident():
            mine.forwards = depth + 1  # nested in a forward or in the pass of this thread: not counted again
            return
        self._lock.acquire()
        try:
            while self._writer is not None or self._writers_waiting:
                self._condition.wait()
            self._forwards += 1
        finally:
            self._lock.release()
        mine.forwards = 1

    def leave_forward(self) -> None:
        mine = self._mine
        depth = getattr(mine, "forwards", 0)
        if depth == 0:  # an earlier pre-hook raised before ours ran: nothing was entered
            return
        mine.forwards = depth - 1
        if depth > 1 or self._writer == threading.get_ident():
            return
        self._lock.acquire()
        self._forwards -= 1
        if self._writers_waiting:  # a pass waits for the count to drop (to 1 if its own thread is in a forward)
            self._condition.notify_all()
        self._lock.release()

    @contextlib.contextmanager
    def probe_pass(self) -> Iterator[None]:
        """Holds the gate alone: no forward of another thread runs within the block."""
        me = threading.get_ident()
        if self._writer == me:
            yield
            return
        own = self._count("forwards") > 0  # log() called inside this thread's forward
        with self._condition:
            self._writers_waiting += 1
            try:
                while self._writer is not None or self._forwards > int(own):
                    self._condition.wait()
            finally:
                self._writers_waiting -= 1
            self._writer = me
        try:
            yield
        finally:
            with self._condition:
                self._writer = None
                self._condition.notify_all()


class _EnterForward:
    """Root pre-hook: the forward becomes a reader of the gate. An object, not a closure, so that a model
    carrying it still pickles (``torch.save(model)``); the copy gets a gate of its own."""

    def __init__(self, gate: ForwardGate) -> None:
        self.gate = gate

    # Under torch.compile these run eagerly between the compiled pieces (a lock is no graph op).
    @torch.compiler.disable
    def __call__(self, module: nn.Module, args: tuple) -> None:
        self.gate.enter_forward()


class _LeaveForward(_EnterForward):
    """Root forward hook, called even when the forward raises, so that the gate is never left held."""

    @torch.compiler.disable
    def __call__(self, module: nn.Module, args: tuple, output: object) -> None:
        self.gate.leave_forward()


class GuardedForwards:
    """Root-module hooks that make every forward of ``model`` a reader of ``gate``, for as many users as
    :meth:`add` was called (monitors on one model); the hooks go with the last :meth:`remove`."""

    def __init__(self, gate: ForwardGate) -> None:
        self.gate = gate
        self._users = 0
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    def add(self, model: nn.Module) -> None:
        if self._users == 0:
            # The gate's pre-hook runs first of all, so that the others run inside the forward it guards.
            self._handles = [model.register_forward_pre_hook(_EnterForward(self.gate), prepend=True),
                             model.register_forward_hook(_LeaveForward(self.gate), always_call=True)]
        self._users += 1

    def remove(self) -> None:
        self._users -= 1
        if self._users == 0:
            for handle in self._handles:
                handle.remove()
            self._handles = []
