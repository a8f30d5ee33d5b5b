"""The plugin's one cache: an LRU of what it keeps between requests, bounded in bytes.

Every entry is kept under a kind, a key and a version. The version is what the data provider listed for
the data the entry is made from, so an entry is made again as soon as a listing shows that data changed.
What makes an entry of each kind stale is said once, in its :class:`Kind` below (docs/architecture.md,
"Caches", has the table with what each kind saves, as measured).
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass

# Bytes of entries kept, as their makers weigh them: a few hundred views' bodies, the converted series of
# the runs they show and the listings they were made from.
CACHE_BYTES = 384 * 2**20


@dataclass(frozen=True)
class Kind:
    """A kind of cached thing: its name, and what its version is (what makes an entry stale)."""

    name: str
    stale_when: str


LISTING = Kind("listings", "older than the listing max age (half TensorBoard's reload interval, at most 1 s), or "
                           "any listing answered differently since it was fetched (see .sharing); the version is "
                           "None, the entry holds the raw answer and when it was fetched")
SERIES = Kind("series", "the listed (max step, max wall time) of its tag changed")
BODY = Kind("bodies", "the listed versions of everything the body is made from changed (a selection's NAS and "
                      "scalar tags, a heatmap's probe source, the run list's run versions)")
GROUPS = Kind("groups", "a grouping of run names under a regex: the names changed; a run's group key under a regex: "
                        "never (the regex and the name fix it)")
MEMBERS = Kind("group members", "never: a group's members at its last request, a guess that the request checks "
                                "against the run names (a changed group is put again)")
METADATA = Kind("parsed metadata", "never: the key is the metadata content, which fixes what it parses to")
CHECKED = Kind("checked versions", "per run: its index version changed (its stats are listed again); the answer "
                                   "for every run: the index listing changed")
KINDS = (LISTING, SERIES, BODY, GROUPS, MEMBERS, METADATA, CHECKED)

MISS = object()  # what get() answers without a fresh entry (None is a payload: a series with nothing to show)


class VersionedCache:
    """Payloads by (kind, key), each valid while the version it was made from holds; at most ``budget``
    bytes of them as weighed by :meth:`put`, the least recently used dropped first. Thread-safe."""

    def __init__(self, budget: int = CACHE_BYTES) -> None:
        self._entries: OrderedDict = OrderedDict()  # (kind, key) -> (version, payload, bytes)
        self._bytes = 0
        self._by_kind = dict.fromkeys(KINDS, 0)
        self._budget = budget
        self._lock = threading.Lock()

    @property
    def budget(self) -> int:
        return self._budget

    @property
    def kept_bytes(self) -> dict[str, int]:
        """{kind name: the bytes its entries hold, as weighed by put}, every kind named."""
        with self._lock:
            return {kind.name: size for kind, size in self._by_kind.items()}

    @property
    def total_bytes(self) -> int:
        """The bytes of every entry, as weighed by put: at most the budget."""
        return self._bytes

    def get(self, kind: Kind, key: Hashable, version):
        """The payload kept under ``key`` if made from ``version``, else :data:`MISS`."""
        with self._lock:
            entry = self._entries.get((kind, key))
            if entry is None or entry[0] != version:
                return MISS
            self._entries.move_to_end((kind, key))
            return entry[1]

    def put(self, kind: Kind, key: Hashable, version, payload, size: int) -> None:
        """Keep ``payload``, made from ``version``, under ``key``; ``size``: the bytes it holds (one beyond
        the whole budget is not kept)."""
        with self._lock:
            old = self._entries.pop((kind, key), None)
            if old is not None:
                self._forget(kind, old[2])
            if size > self._budget:
                return
            self._entries[(kind, key)] = (version, payload, size)
            self._bytes += size
            self._by_kind[kind] += size
            while self._bytes > self._budget:
                (evicted, _), (_, _, evicted_size) = self._entries.popitem(last=False)
                self._forget(evicted, evicted_size)

    def _forget(self, kind: Kind, size: int) -> None:
        self._bytes -= size
        self._by_kind[kind] -= size

    def drop(self, *kinds: Kind) -> None:
        """Forget every entry of ``kinds`` (benchmarks: a cold request)."""
        with self._lock:
            for entry in [entry for entry in self._entries if entry[0] in kinds]:
                self._forget(entry[0], self._entries.pop(entry)[2])
