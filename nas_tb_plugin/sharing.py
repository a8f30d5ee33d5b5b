"""Data-provider listings shared between requests.

Every NAS request lists what it shows (to know that nothing changed since its body was kept), and on
TensorBoard's Rust data server a listing is a gRPC call (~1 ms of the plugin's CPU, more in wait). Data only
changes when TensorBoard reloads its log dir (every ``--reload_interval`` seconds), so a listing is shared:

- identical calls in flight at once are made once (the other requests wait for that answer);
- an answer is reused for at most ``max_age`` seconds (a fraction of the reload interval, so a step that
  TensorBoard has loaded shows that much later at most);
- as soon as any answer differs from the one before it under the same key (TensorBoard reloaded something),
  every kept answer is dropped: a request that sees the new data in one listing (a run's new step in
  ``runs``) finds none of its other listings from before it (that step's ``lines``), so a client never keys
  an old body on a new version.
"""
from __future__ import annotations

import threading
from time import monotonic
from collections.abc import Callable, Hashable
from typing import NamedTuple

from .cache import LISTING, MISS, VersionedCache

# Most reload-interval fraction and seconds an answer is reused for: a loaded step shows this much later at most.
MAX_AGE_FRACTION = 0.5
MAX_AGE_S = 1.0


def max_age_for(reload_interval: float | None) -> float:
    """Seconds an answer may be reused for with TensorBoard reloading every ``reload_interval`` seconds
    (0 or None: it loads once, or the interval is unknown; answers are then only shared while in flight)."""
    if not reload_interval or reload_interval <= 0:
        return 0.0
    return min(MAX_AGE_S, MAX_AGE_FRACTION * reload_interval)


_NONE = object()  # no answer kept


class _Call:
    """One call in flight; the requests that ask for its key meanwhile wait on ``done``."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.made = None
        self.error: BaseException | None = None


class _Answer(NamedTuple):
    """A kept answer: the raw one (to tell a changed answer), what was made of it, the epoch it may be reused
    in (-1: none) and when it was fetched."""

    raw: object
    made: object
    epoch: int
    fetched: float


class SharedListings:
    """Listing answers by key, shared as the module says; thread-safe. Keeps the last raw answer of each key
    (to tell a changed answer) and what was made of it in ``cache``, weighed by :meth:`get`'s ``weigh``."""

    def __init__(self, cache: VersionedCache, max_age: float) -> None:
        self._cache = cache
        self._max_age = max_age
        self._lock = threading.RLock()  # get() asks kept() under it
        self._epoch = 0  # raised whenever an answer changed: kept answers of older epochs are not reused
        self._flying: dict[Hashable, _Call] = {}

    def kept(self, key: Hashable, default=None):
        """What :meth:`get` would answer for ``key`` at once, without a call; ``default`` when it would call."""
        kept = self._cache.get(LISTING, key, None)
        if kept is not MISS and kept.epoch == self._epoch and monotonic() - kept.fetched < self._max_age:
            return kept.made
        return default

    def get(self, key: Hashable, fetch: Callable[[], object], make: Callable[[object], object],
            weigh: Callable[[object], int] = lambda raw: 0):
        """``make(fetch())``, shared: fresh enough a kept one, else the one in flight, else a new call.
        ``make`` runs only when the raw answer differs from the last one under ``key`` (the result is
        shared: not to be changed). ``weigh(raw)``: the bytes that the raw answer and what is made of it hold."""
        with self._lock:
            kept = self.kept(key, _NONE)
            if kept is not _NONE:
                return kept
            call = self._flying.get(key)
            if call is None:
                call = self._flying[key] = _Call()
                epoch = self._epoch
                owner = True
            else:
                owner = False
        if not owner:
            call.done.wait()
            if call.error is not None:
                raise call.error
            return call.made
        try:
            fetched = monotonic()
            raw = fetch()
            last = self._cache.get(LISTING, key, None)
            changed = last is MISS or last.raw != raw
            call.made = make(raw) if changed else last.made
            with self._lock:
                if changed:
                    self._epoch += 1
                # Fetched before another answer changed: kept for telling a change, not for reuse.
                reusable = self._epoch if epoch == self._epoch - changed else -1
            self._cache.put(LISTING, key, None, _Answer(raw, call.made, reusable, fetched), weigh(raw))
            return call.made
        except BaseException as e:
            call.error = e
            raise
        finally:
            with self._lock:
                del self._flying[key]
            call.done.set()
