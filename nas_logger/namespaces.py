"""Which monitors of this process write into which run, so that several monitors per run (a GAN's
generator and discriminator) never write the same tags.

A run is a directory: ``watch(model, "runs/gan")`` twice, or two monitors on one ``SummaryWriter``, write
into the same run. The first open monitor of a run may stay unnamed (its tags are those of a single-model
run); every other one gets a name that prefixes its layers and tags (see :mod:`nas_logger.format`): the
one given to ``watch(..., name=...)``, else its model's class name (``Discriminator``, ``SmallCNN_2``).
A monitor holds its name until it is closed or garbage-collected.
"""
from __future__ import annotations

import os
import threading
import weakref

_lock = threading.Lock()
_claims: dict[str, list[tuple[weakref.ref, str | None]]] = {}  # run directory -> (monitor, name)


def _run_key(run_dir) -> str:
    return os.path.realpath(os.fspath(getattr(run_dir, "log_dir", run_dir)))


def check(run_dir: str | os.PathLike | object, name: str | None) -> None:
    """``ValueError`` if ``name`` is no valid monitor name or another open monitor of the run has it.
    ``run_dir``: a directory or a ``SummaryWriter`` (its ``log_dir``)."""
    if name is not None and (not isinstance(name, str) or not name.strip() or "/" in name):
        raise ValueError(f"name must be a non-empty string without '/' (it prefixes the monitor's layers); got {name!r}")
    with _lock:
        _live(run_dir, name)


def _live(run_dir, name: str | None) -> list[tuple[weakref.ref, str | None]]:
    """The open monitors of the run (lock held); raises if ``name`` is one of their names."""
    live = [(ref, held) for ref, held in _claims.get(_run_key(run_dir), []) if ref() is not None]
    if name is not None and name in {held for _, held in live}:
        raise ValueError(
            f"name {name!r} is already used by another monitor of run {str(getattr(run_dir, 'log_dir', run_dir))!r}; "
            "give each monitor of a run its own name="
        )
    return live


def claim(monitor: object, run_dir: str | os.PathLike, name: str | None, default: str) -> str | None:
    """The name ``monitor`` writes ``run_dir`` under, held until :func:`release`: ``name`` if given (see
    :func:`check`), else None if no open monitor of the run is unnamed, else ``default`` (``default_2``,
    ``default_3``, ... when taken)."""
    check(run_dir, name)
    with _lock:
        live = _live(run_dir, name)
        taken = {held for _, held in live}
        if name is None and None in taken:
            name, k = default, 2
            while name in taken:
                name, k = f"{default}_{k}", k + 1
        live.append((weakref.ref(monitor), name))
        _claims[_run_key(run_dir)] = live
        return name


def release(monitor: object) -> None:
    """Give up ``monitor``'s name (at close): a later monitor of its run may take it."""
    with _lock:
        for key, held in list(_claims.items()):
            kept = [(ref, n) for ref, n in held if ref() is not None and ref() is not monitor]
            if kept:
                _claims[key] = kept
            else:
                del _claims[key]
