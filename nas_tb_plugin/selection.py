"""What a request is about: one run, or the runs of one group (a group regex over the run names), with
their NAS listings and, for the overlays, their scalar tags; 404 naming the parameter when there is none.
"""
from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from dataclasses import dataclass

from .grouping import Pattern, group_members
from .reading import PARALLEL_CALLS, Listed, Reader, RunListing, joint_unit
from .responses import ApiError

# Run names (over all groups) of the groups whose members are remembered for their next request
# (Selections._group_listings): a list entry each, the names themselves are the run list's.
MEMBERS_KEPT = 100_000


@dataclass(frozen=True)
class Selector:
    """The parsed ``run=`` or ``group=`` (with its ``group_regex``) of a request."""

    run: str | None = None
    group: str | None = None
    pattern: Pattern | None = None  # only with ``group``


@dataclass
class Selection:
    """What a request is about: one run, or the runs of one group."""

    kind: str  # "run" or "group"
    name: str
    runs: list[str]
    listings: dict[str, RunListing]
    scalars: dict[str, dict[str, Listed]] | None = None  # the runs' scalar tags, listed for the overlays

    @property
    def step_unit(self) -> str:
        """What the selection's steps count: its runs' unit, or their units joined when they differ."""
        return joint_unit(self.listings[run].step_unit for run in self.runs)

    @property
    def listed(self) -> tuple:
        """The runs and the listed version of each of their NAS tags (and scalar tags, when listed): changes
        whenever anything a response about the selection is made from does."""
        nas = tuple((run, self.listings[run].listed) for run in self.runs)
        if self.scalars is None:
            return nas
        return nas, tuple((run, tag, *listed.version) for run, tags in self.scalars.items() for tag, listed in tags.items())


class Selections:
    """Selects runs for requests through ``reader``; remembers each group's members for its next request."""

    def __init__(self, reader: Reader) -> None:
        self._reader = reader
        # {(experiment, group_regex, group): its members at its last request} (see _group_listings), least
        # recently asked first, MEMBERS_KEPT names at most.
        self._members_last: OrderedDict[tuple, list[str]] = OrderedDict()
        self._members_count = 0
        self._members_lock = threading.Lock()

    @property
    def members_bytes(self) -> int:
        """The bytes of the remembered members' lists (a list entry each; the names are the run list's)."""
        return 8 * self._members_count

    def run(self, ctx, eid, run: str) -> RunListing:
        """The NAS listing of ``run``; 404 when it holds no NAS data."""
        listing = self._reader.list_nas(ctx, eid, runs=[run]).get(run)
        if listing is None:
            raise ApiError(404, f"no NAS data for run {run!r}", "run")
        return listing

    def select(self, ctx, eid, selector: Selector, scalars: bool = False) -> Selection:
        """The selected run or group with its runs' NAS listings, and their scalar tags if ``scalars``
        (for the overlays)."""
        if selector.run is not None:
            tags = self._scalar_tags(ctx, eid, [selector.run], scalars)
            sel = Selection("run", selector.run, [selector.run], {selector.run: self.run(ctx, eid, selector.run)})
        else:
            members, listings, tags = self._group_listings(ctx, eid, selector, scalars)
            runs = [r for r in members if r in listings]
            if not runs:
                raise ApiError(404, f"no group {selector.group!r} among the runs with NAS data", "group")
            sel = Selection("group", selector.group, runs, {r: listings[r] for r in runs})
        if scalars:
            sel.scalars = {run: found for run, found in tags().items() if run in sel.listings}
        return sel

    def _scalar_tags(self, ctx, eid, runs: list[str], scalars: bool, early: bool = False):
        """A call that gives the runs' scalar tags (None without ``scalars``), listed now in a thread beside the
        caller's NAS listing, unless ``early`` is off and they are kept (a thread would then cost more than it saves)."""
        if not scalars:
            return None
        tags = functools.partial(self._reader.list_scalar_tags, ctx, eid, runs)
        if early or self._reader.kept_scalar_tags(eid, runs) is None:
            return PARALLEL_CALLS.submit(tags).result
        # Kept: asked for again when used, as the NAS listing may have found new data and dropped it (.sharing).
        return tags

    def _group_listings(self, ctx, eid, selector: Selector, scalars: bool) -> tuple:
        """(members, their NAS listings, a call that gives their scalar tags, see :meth:`_scalar_tags`) of the
        selected group, whose members are found by grouping the run names (a cheap call).

        When the run names are not kept, the listings of the members the group had at its last request are
        made beside the run names' call, so that their delayed ACKs (see reading.PARALLEL_CALLS) are waited for at once, not
        in a row, and used if the members are the same (runs seldom join or leave a group).
        """
        key = (eid, selector.pattern.pattern, selector.group)
        guess = self._members_last.get(key)
        early = None
        if guess and self._reader.kept_run_names(eid) is None:
            early = (PARALLEL_CALLS.submit(self._reader.list_nas, ctx, eid, runs=guess),
                     self._scalar_tags(ctx, eid, guess, scalars, early=True))
        members = group_members(self._reader.run_names(ctx, eid), selector.pattern, selector.group)
        self._remember_members(key, members)
        if early is not None and members == guess:
            return members, early[0].result(), early[1]
        tags = self._scalar_tags(ctx, eid, members, scalars)
        return members, self._reader.list_nas(ctx, eid, runs=members), tags

    def _remember_members(self, key: tuple, members: list[str]) -> None:
        with self._members_lock:
            old = self._members_last.pop(key, None)
            self._members_count += len(members) - (len(old) if old is not None else 0)
            self._members_last[key] = members
            while self._members_count > MEMBERS_KEPT and len(self._members_last) > 1:
                self._members_count -= len(self._members_last.popitem(last=False)[1])
