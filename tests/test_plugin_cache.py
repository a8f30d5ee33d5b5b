"""The plugin's one cache (nas_tb_plugin/cache.py): an entry serves only the version it was made from, the
least recently used go first once the byte budget is full, and every kind's bytes are accounted."""
from __future__ import annotations

import threading

from nas_tb_plugin.cache import BODY, KINDS, LISTING, MISS, SERIES, VersionedCache


def test_an_entry_serves_only_the_version_it_was_made_from():
    cache = VersionedCache(1000)
    cache.put(SERIES, ("run", "tag"), (5, 1.5), "payload", 10)
    assert cache.get(SERIES, ("run", "tag"), (5, 1.5)) == "payload"
    assert cache.get(SERIES, ("run", "tag"), (6, 2.0)) is MISS  # the tag logged a step
    assert cache.get(BODY, ("run", "tag"), (5, 1.5)) is MISS  # another kind under the same key
    cache.put(SERIES, ("run", "tag"), (5, 1.5), None, 10)  # None is a payload (a series with nothing to show)
    assert cache.get(SERIES, ("run", "tag"), (5, 1.5)) is None


def test_the_least_recently_used_entries_go_first_once_the_budget_is_full():
    cache = VersionedCache(100)
    for name in "abc":
        cache.put(BODY, name, 1, name, 40)  # "a" goes: 120 > 100
    assert cache.get(BODY, "a", 1) is MISS and cache.get(BODY, "b", 1) == "b"  # "b" used last now
    cache.put(SERIES, "d", 1, "d", 40)
    assert cache.get(BODY, "c", 1) is MISS and cache.get(BODY, "b", 1) == "b" and cache.get(SERIES, "d", 1) == "d"
    assert cache.total_bytes == 80 and cache.kept_bytes["bodies"] == 40 and cache.kept_bytes["series"] == 40


def test_a_replaced_or_oversized_entry_is_accounted_once_and_an_oversized_one_not_kept():
    cache = VersionedCache(100)
    cache.put(LISTING, "k", None, "old", 30)
    cache.put(LISTING, "k", None, "new", 50)
    assert cache.get(LISTING, "k", None) == "new" and cache.total_bytes == 50
    cache.put(LISTING, "k", None, "huge", 101)
    assert cache.get(LISTING, "k", None) is MISS and cache.total_bytes == 0
    assert set(cache.kept_bytes) == {kind.name for kind in KINDS} and sum(cache.kept_bytes.values()) == 0


def test_drop_forgets_the_entries_of_the_given_kinds_only():
    cache = VersionedCache(1000)
    cache.put(SERIES, "s", 1, "s", 10)
    cache.put(BODY, "b", 1, "b", 20)
    cache.drop(BODY)
    assert cache.get(BODY, "b", 1) is MISS and cache.get(SERIES, "s", 1) == "s"
    assert cache.total_bytes == 10 and cache.kept_bytes["bodies"] == 0


def test_threads_putting_at_once_keep_the_accounting_exact():
    cache = VersionedCache(5000)

    def put(worker: int) -> None:
        for i in range(2000):
            cache.put(SERIES, (worker, i % 300), i, i, 7 + i % 5)

    threads = [threading.Thread(target=put, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    kept = [size for _, _, size in cache._entries.values()]
    assert sum(kept) == cache.total_bytes == cache.kept_bytes["series"] <= 5000
