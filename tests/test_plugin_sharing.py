"""Listings shared between requests (nas_tb_plugin/sharing.py): one call for identical calls in flight,
an answer reused for at most max_age seconds, and every kept answer dropped once any answer changed."""
from __future__ import annotations

import threading

import pytest

from nas_tb_plugin import sharing
from nas_tb_plugin.cache import VersionedCache
from nas_tb_plugin.sharing import SharedListings, max_age_for


@pytest.fixture
def clock(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(sharing, "monotonic", lambda: now[0])
    return now


class Source:
    """A data provider's listing: ``answers[key]`` as it stands now; counts the calls and the conversions."""

    def __init__(self, **answers) -> None:
        self.answers, self.calls, self.made = dict(answers), [], []

    def get(self, listings: SharedListings, key: str):
        return listings.get(key, lambda: self.calls.append(key) or self.answers[key],
                            lambda raw: self.made.append(key) or [raw])


def test_max_age_is_a_fraction_of_the_reload_interval_and_none_without_reloads():
    assert max_age_for(None) == max_age_for(0) == max_age_for(-1) == 0.0
    assert max_age_for(1) == 0.5
    assert max_age_for(5) == max_age_for(30) == 1.0


def test_an_answer_is_reused_for_max_age_seconds_and_then_listed_again(clock):
    source, listings = Source(a="a1"), SharedListings(VersionedCache(), max_age=0.5)
    assert listings.kept("a") is None
    first = source.get(listings, "a")
    clock[0] += 0.49
    assert listings.kept("a") is first
    assert source.get(listings, "a") is first and source.calls == ["a"]
    clock[0] += 0.02
    assert listings.kept("a", "none") == "none"
    assert source.get(listings, "a") is first  # listed again; unchanged, so not made again
    assert source.calls == ["a", "a"] and source.made == ["a"]


def test_without_max_age_every_request_lists_again(clock):
    source, listings = Source(a="a1"), SharedListings(VersionedCache(), max_age=0.0)
    source.get(listings, "a")
    source.get(listings, "a")
    assert source.calls == ["a", "a"] and source.made == ["a"]


def test_a_changed_answer_drops_every_kept_one(clock):
    """Once one listing shows a reload's new data (a run's new step in `runs`), no other listing kept from
    before it is reused (that run's `lines` would show the old step under the new version)."""
    source, listings = Source(runs="step 1", lines="step 1"), SharedListings(VersionedCache(), max_age=1.0)
    source.get(listings, "lines")
    source.get(listings, "runs")  # a first answer counts as a change: "lines" is listed again, later
    clock[0] += 0.3
    source.get(listings, "lines")
    source.calls.clear()
    clock[0] += 0.2
    assert source.get(listings, "runs") == ["step 1"] and source.get(listings, "lines") == ["step 1"]
    assert source.calls == []
    source.answers = {"runs": "step 2", "lines": "step 2"}  # TensorBoard reloaded
    assert source.get(listings, "lines") == ["step 1"]  # kept: at most max_age old
    clock[0] += 0.6  # "runs" is 1.1 s old now and listed again, "lines" only 0.8 s
    assert source.get(listings, "runs") == ["step 2"]
    assert source.get(listings, "lines") == ["step 2"], "a kept listing outlived a changed one"
    assert source.calls == ["runs", "lines"]


def test_identical_calls_in_flight_are_made_once(monkeypatch):
    waiting = []

    class CountedCall(sharing._Call):  # counts the requests that wait for a call in flight
        def __init__(self) -> None:
            super().__init__()
            done = self.done

            class Done:
                set, is_set = done.set, done.is_set

                @staticmethod
                def wait(timeout=None):
                    waiting.append(1)
                    return done.wait(timeout)

            self.done = Done()

    monkeypatch.setattr(sharing, "_Call", CountedCall)
    started, release, calls = threading.Event(), threading.Event(), []

    def fetch():
        calls.append(1)
        started.set()
        release.wait(30)
        return "answer"

    listings, results = SharedListings(VersionedCache(), max_age=0.0), []
    threads = [threading.Thread(target=lambda: results.append(listings.get("k", fetch, lambda raw: [raw])))
               for _ in range(8)]
    threads[0].start()
    assert started.wait(30)
    for t in threads[1:]:
        t.start()
    while len(waiting) < 7 and all(t.is_alive() for t in threads):
        threading.Event().wait(0.01)
    release.set()
    for t in threads:
        t.join(30)
    assert calls == [1] and len(results) == 8 and all(r is results[0] for r in results)
    listings.get("k", fetch, lambda raw: [raw])  # no longer in flight, max_age 0: listed again
    assert calls == [1, 1]


def test_a_failed_call_fails_every_waiting_request_and_keeps_nothing(clock):
    listings = SharedListings(VersionedCache(), max_age=1.0)
    with pytest.raises(KeyError):
        listings.get("k", lambda: {}["missing"], list)
    assert listings.get("k", lambda: "ok", lambda raw: raw) == "ok"


def test_an_answer_listed_while_another_changed_is_not_reused(clock):
    """A call in flight across a reload may hold the data from before it: kept to tell a change, not reused."""
    listings = SharedListings(VersionedCache(), max_age=1.0)
    listings.get("other", lambda: "v1", lambda raw: raw)
    answers = iter(["slow v1", "slow v2"])

    def slow_fetch():
        listings.get("other", lambda: "v2", lambda raw: raw)  # changes meanwhile (its max_age is not over...)
        return next(answers)

    clock[0] += 1.5  # (... but it is old enough to be listed again)
    assert listings.get("slow", slow_fetch, lambda raw: raw) == "slow v1"
    assert listings.get("slow", lambda: next(answers), lambda raw: raw) == "slow v2"
