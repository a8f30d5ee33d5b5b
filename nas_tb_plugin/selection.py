"""What a request is about: one run, or the runs of one group (a group regex over the run names), with
their NAS listings and, for the overlays, their scalar tags; 404 naming the parameter when there is none.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

from .cache import GROUPS, MEMBERS, MISS, VersionedCache
from .grouping import Group, Pattern, group_key, group_members, group_runs
from .listing import ENTRY_BYTES, PARALLEL_CALLS, Listed, RunListing, joint_unit
from .reading import Reader
from .responses import ApiError

# What a run's group key and its place in the grouping weigh in the cache (its name is the listing's).
_GROUPED_BYTES = 200


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
    """Selects runs for requests through ``reader``; keeps each group's members for its next request and
    the groups of the run names in ``cache``."""

    def __init__(self, reader: Reader, cache: VersionedCache) -> None:
        self._reader = reader
        self._cache = cache

    def groups(self, eid, runs: list[str], pattern: Pattern, of: str) -> dict[Group, list[str]]:
        """:func:`.grouping.group_runs` of ``runs``, ``of`` naming them ("run names": every run, "runs with NAS
        data": the run list's), kept while they are the same; each run's group key under a regex is kept too,
        so that a new run costs its own: RE2's Python binding costs ~40 us a run, 0.4 s for 10,000 runs."""
        key, names = (eid, pattern.pattern, of), tuple(runs)
        found = self._cache.get(GROUPS, key, names)
        if found is MISS:
            found = group_runs(names, pattern, self._group_keys(names, pattern))
            self._cache.put(GROUPS, key, names, found, ENTRY_BYTES + _GROUPED_BYTES * len(names))
        return found

    def _group_keys(self, runs: tuple[str, ...], pattern: Pattern) -> dict[str, Group]:
        """{run: its group key under ``pattern``} of ``runs`` and the runs seen before under it."""
        key = ("group keys", pattern.pattern)
        keys = self._cache.get(GROUPS, key, None)
        keys = {} if keys is MISS else keys
        missing = [run for run in runs if run not in keys]
        if missing:  # a new dict: the kept one may be in use by another request
            keys = {**keys, **{run: group_key(run, pattern) for run in missing}}
            self._cache.put(GROUPS, key, None, keys, ENTRY_BYTES + _GROUPED_BYTES * len(keys))
        return keys

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
        made beside the run names' call, so that their delayed ACKs (see listing.PARALLEL_CALLS) are waited for at once, not
        in a row, and used if the members are the same (runs seldom join or leave a group).
        """
        key = (eid, selector.pattern.pattern, selector.group)
        guess = self._cache.get(MEMBERS, key, None)
        early = None
        if guess is not MISS and guess and self._reader.kept_run_names(eid) is None:
            early = (PARALLEL_CALLS.submit(self._reader.list_nas, ctx, eid, runs=guess),
                     self._scalar_tags(ctx, eid, guess, scalars, early=True))
        groups = self.groups(eid, self._reader.run_names(ctx, eid), selector.pattern, "run names")
        members = group_members(groups, selector.group)
        self._cache.put(MEMBERS, key, None, members, ENTRY_BYTES + 8 * len(members))
        if early is not None and members == guess:
            return members, early[0].result(), early[1]
        tags = self._scalar_tags(ctx, eid, members, scalars)
        return members, self._reader.list_nas(ctx, eid, runs=members), tags
