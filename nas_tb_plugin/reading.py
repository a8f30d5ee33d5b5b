"""Reading NAS records, scalars and the probe image through TensorBoard's data provider.

Every read goes through ``context.data_provider`` (the Rust data server's gRPC provider by default,
``MultiplexerDataProvider`` with ``--load_fast=false``), so runs that grow while TensorBoard runs show
their new steps on the next request. Metadata that this reader cannot interpret (a newer format
version, foreign content) and tensors of the wrong shape are logged once per series and skipped.
"""
from __future__ import annotations

import concurrent.futures
import logging
import math
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from tensorboard import errors
from tensorboard.compat.proto import tensor_pb2, types_pb2
from tensorboard.data import provider
from tensorboard.util import tensor_util

from nas_logger import format as fmt

from .aggregate import dedupe_steps
from .sharing import LISTING_CACHE_BYTES, SharedListings
from .tensorboard_private import GrpcCalls

logger = logging.getLogger(__name__)

_DT_FLOAT = 1  # tensorflow.DataType DT_FLOAT in a TensorProto
KEEP_ALL = 10**9  # `downsample` for read calls: every stored point
SCALARS_PLUGIN = "scalars"
IMAGES_PLUGIN = "images"
_REQUIRED_FIELDS = ("min", "median", "max")

# Bytes of converted series kept (a series' arrays counted as 8 bytes a cell).
SERIES_CACHE_BYTES = 256 * 2**20
# Bytes of parsed metadata kept, by content (what the log dir's files hold; a table's layers counted each).
DECODED_BYTES = 16 * 2**20
_METADATA_BYTES = 400  # a parsed Metadata or LayerInfo with its strings, as tracemalloc counts them
# The Python objects of a listed tag or run, or of a kept entry, beside its content bytes (tracemalloc: a listed
# tag of MultiplexerDataProvider with its RunListing entry takes ~950 bytes).
_ENTRY_BYTES = 1024
# A gRPC listing's Python objects per byte of its wire size (its response, and what is made of its rows).
_GRPC_LISTING_FACTOR = 8
# Log lines remembered as said (see Reader._warn_once).
MAX_WARNED = 10_000

# Runs whose index version is checked against their stats, remembered (a few hundred bytes each).
MAX_CHECKED_RUNS = 200_000

# Threads for a request's calls that do not wait on each other (the run names and the index records; the NAS
# and the scalar tags of its runs; the layers' and the overlays' reads): on TensorBoard's gRPC provider a call
# whose answer exceeds a few hundred bytes waits for the data server's second segment (up to ~40 ms of delayed
# ACK against Nagle: the data server writes without TCP_NODELAY), so calls in a row wait once each.
PARALLEL_CALLS = concurrent.futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="nas-parallel-calls")


@dataclass(frozen=True)
class Listed:
    """A listed tag of one run, with the data provider's ``max_step`` and ``max_wall_time``."""

    tag: str
    max_step: int
    max_wall_time: float

    @property
    def version(self) -> tuple:
        """Changes when data is added to the tag: the key of its cached conversion."""
        return (self.max_step, self.max_wall_time)


@dataclass(frozen=True)
class Series(Listed):
    """One NAS tag of one layer in one run (its stats or its heatmaps), as listed."""

    layer: fmt.LayerInfo
    fields: tuple[str, ...]


@dataclass(frozen=True)
class Table(Listed):
    """A run's stats table (every layer's stats of a step in one tensor), as listed."""

    layers: tuple[fmt.LayerInfo, ...]
    fields: tuple[str, ...]


def joint_unit(units) -> str:
    """One axis label for steps counted in ``units``: the unit they share, else the distinct ones in order
    joined by " / " (the monitors of a run, the runs of a group, that count differently)."""
    return " / ".join(dict.fromkeys(units)) or fmt.DEFAULT_STEP_UNIT


def index_tags(tables: Iterable[Table], stats: Iterable[Series]) -> list[Listed]:
    """Of a run's listed stats tables and per-layer stats series, those that stand for it in a cheap listing:
    its tables, else its shallowest layer's stats (a table or that layer is written at every logged step)."""
    tables, stats = list(tables), list(stats)
    return tables or [min(stats, key=lambda s: fmt.layer_order(s.layer))]


@dataclass
class RunListing:
    """The NAS tags of one run: its per-layer stats series (runs written before the stats table, and
    layers that first ran after a table's rows were fixed) and heatmap series by layer name; by tag its
    stats tables and overfitting alarms; by monitor its probe PNGs and step units (one of each per
    monitor that wrote the run)."""

    stats: dict[str, Series] = field(default_factory=dict)
    heatmaps: dict[str, Series] = field(default_factory=dict)
    alarms: dict[str, Listed] = field(default_factory=dict)
    tables: dict[str, Table] = field(default_factory=dict)
    probes: dict[str | None, Listed] = field(default_factory=dict)
    statuses: dict[str | None, Listed] = field(default_factory=dict)  # alarm status records by monitor
    units: dict[str | None, str] = field(default_factory=dict)
    # (tag, max_step, max_wall_time) of every NAS tag listed for the run: changes whenever any of its NAS
    # data does, so it keys what is made from the listing and the data it lists (see SeriesCache).
    listed: tuple[tuple[str, int, float], ...] = ()

    def index(self) -> list[Listed]:
        """The tags that stand for the run in a cheap listing (see :func:`index_tags`)."""
        return index_tags(self.tables.values(), self.stats.values())

    def last_logged(self) -> tuple[int, float]:
        """(max step, max wall time) of the run's index tags, as listed: changes when the run logs a step."""
        return max(t.version for t in self.index())

    def layers(self) -> list[fmt.LayerInfo]:
        """Layers with statistics (in a table or a series): each monitor's by depth, the unnamed monitor first."""
        found = {layer.name: layer for table in self.tables.values() for layer in table.layers}
        for name, series in self.stats.items():
            found.setdefault(name, series.layer)
        return sorted(found.values(), key=fmt.layer_order)

    @property
    def step_unit(self) -> str:
        """What the run's steps count (see :func:`joint_unit`), its unnamed monitor's unit first."""
        return joint_unit(self.units[m] for m in sorted(self.units, key=lambda m: (m is not None, m or "")))


@dataclass(frozen=True)
class Stats:
    """A layer's statistics in one run: steps (n,) and the min/median/max columns (n,), float64; the wall
    time of each step (n,) in seconds since the epoch, as its events say (None across the runs of a group)."""

    steps: np.ndarray
    min: np.ndarray
    median: np.ndarray
    max: np.ndarray
    wall_times: np.ndarray | None = None


class SeriesCache:
    """LRU of payloads by key, each valid while the version it was made from (the listed
    (max_step, max_wall_time) of a series, of every tag of a response) is unchanged; holds at most
    ``budget`` bytes, as given to :meth:`put`."""

    MISS = object()

    def __init__(self, budget: int) -> None:
        self._entries: OrderedDict = OrderedDict()  # key -> (version, payload, bytes)
        self._bytes = 0
        self._budget = budget
        self._lock = threading.Lock()

    @property
    def kept_bytes(self) -> int:
        """The bytes of the payloads kept, as given to :meth:`put`."""
        return self._bytes

    def get(self, key: tuple, version: tuple):
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] != version:
                return self.MISS
            self._entries.move_to_end(key)
            return entry[1]

    def put(self, key: tuple, version: tuple, payload, size: int) -> None:
        if size > self._budget:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old[2]
            self._entries[key] = (version, payload, size)
            self._bytes += size
            while self._bytes > self._budget:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= evicted[2]


class Reader:
    """Data access for the routes; one per plugin instance, safe to share between request threads.

    Converted stats and heatmap series are cached (see :class:`SeriesCache`): a request whose series
    did not change since the last one costs a listing, not a read; listings are shared between requests
    for up to ``listing_max_age`` seconds (see :mod:`.sharing`).
    """

    def __init__(self, data_provider, cache_bytes: int = SERIES_CACHE_BYTES, listing_max_age: float = 0.0,
                 listing_bytes: int = LISTING_CACHE_BYTES) -> None:
        self._provider = data_provider
        self._decoded: dict[bytes, fmt.Metadata | fmt.FormatError] = {}
        self._decoded_bytes = 0
        self._warned: set[tuple] = set()
        self._lock = threading.Lock()
        self._cache = SeriesCache(cache_bytes)
        # TensorBoard's gRPC data provider (the Rust data server), whose responses are read here directly.
        self._grpc = GrpcCalls.of(data_provider)
        self._listings = SharedListings(listing_max_age, listing_bytes)
        # Stats tags that stand for a run in run_versions (its stats tables, else a layer's stats): few names
        # shared by every run, so one listing filtered to them covers the runs; the unnamed monitor's table
        # from the start, the others as listings show them.
        self._index_tags: set[str] = {fmt.TABLE_TAG}
        # {(experiment, run): (its index version, the version its stats agree to)} (see _checked_index_versions).
        self._checked: dict[tuple[str, str], tuple] = {}
        # {experiment: (the index listing, its checked versions)} of the last call: the index listing is shared
        # (the same object while unchanged), so a run list of 10,000 unchanged runs checks nothing.
        self._checked_last: dict[str, tuple] = {}

    @property
    def cached_bytes(self) -> dict[str, int]:
        """{cache: the bytes it holds, as accounted against its budget}."""
        return {"listings": self._listings.kept_bytes, "series": self._cache.kept_bytes, "metadata": self._decoded_bytes}

    @property
    def data_provider(self):
        """The TensorBoard data provider this reader reads through."""
        return self._provider

    def _warn_once(self, key: tuple, message: str, *args) -> None:
        with self._lock:
            if key in self._warned:
                return
            if len(self._warned) >= MAX_WARNED:  # said again after so many others: still bounded
                self._warned.clear()
            self._warned.add(key)
        logger.warning(message, *args)

    def _decode(self, run: str, tag: str, content: bytes) -> fmt.Metadata | None:
        """parse_plugin_metadata, cached per content; ``None`` (logged once) when unreadable."""
        result = self._decoded.get(content)
        if result is None:
            try:
                result = fmt.parse_plugin_metadata(content)
            except fmt.FormatError as e:
                result = e
            with self._lock:
                if self._decoded_bytes > DECODED_BYTES:  # distinct contents come from the files: seldom
                    self._decoded.clear()
                    self._decoded_bytes = 0
                self._decoded[content] = result
                self._decoded_bytes += _METADATA_BYTES * (1 + len(result.layers) if isinstance(result, fmt.Metadata)
                                                         else 1) + len(content)
        if isinstance(result, fmt.FormatError):
            self._warn_once(("meta", run, tag), "nas: skipping run %r tag %r: %s", run, tag, result)
            return None
        return result

    # --- listings -------------------------------------------------------------------------------

    def kept_run_names(self, eid: str) -> list[str] | None:
        """What :meth:`run_names` answers at once from a listing kept from an earlier request; None without one."""
        return self._listings.kept(("runs", eid))

    def run_names(self, ctx, eid: str) -> list[str]:
        """Every run of the experiment (with or without NAS data); cheap on every data provider. Shared with
        later calls: not to be changed."""
        if not self._grpc:
            return self._listings.get(("runs", eid), lambda: self._provider.list_runs(ctx, experiment_id=eid),
                                      lambda runs: [run.run_name for run in runs],
                                      lambda runs: _ENTRY_BYTES * len(runs))
        req = self._grpc.request("ListRuns", eid)
        return self._listings.get(("runs", eid), lambda: self._grpc.call("ListRuns", req),
                                  lambda res: [run.name for run in res.runs], lambda res: _ENTRY_BYTES * len(res.runs))

    def list_nas(self, ctx, eid: str, runs: list[str] | None = None) -> dict[str, RunListing]:
        """{run: RunListing} of the runs (all when ``runs`` is None) that hold NAS statistics. Shared with
        later calls: not to be changed."""
        if runs is not None and not runs:
            return {}
        return self._listed(ctx, eid, fmt.PLUGIN_NAME, provider.RunTagFilter(runs=runs) if runs is not None else None,
                            "nas", self._listings_of)

    def _listings_of(self, rows) -> dict[str, RunListing]:
        result: dict[str, RunListing] = {}
        for run, tags in rows:
            entry = self._run_listing(run, tags)
            if entry is not None:
                result[run] = entry
                self._learn_index(entry)
        return result

    def _run_listing(self, run: str, tags: list[tuple[str, bytes, int, float]]) -> RunListing | None:
        """The RunListing of one run's listed NAS tags [(tag, metadata content, max step, max wall time)];
        None without statistics."""
        entry = RunListing(listed=tuple((tag, max_step, max_wall_time) for tag, _, max_step, max_wall_time in tags))
        for tag, content, max_step, max_wall_time in tags:
            meta = self._decode(run, tag, content)
            if meta is None:
                continue
            where = (tag, max_step, max_wall_time)
            entry.units.setdefault(meta.monitor, meta.step_unit)
            complete = set(_REQUIRED_FIELDS) <= set(meta.fields)
            if meta.record == fmt.ALARM:
                entry.alarms[tag] = Listed(*where)
            elif meta.record == fmt.PROBE:
                entry.probes[meta.monitor] = Listed(*where)
            elif meta.record == fmt.ALARM_STATUS:
                entry.statuses[meta.monitor] = Listed(*where)
            elif meta.record == fmt.TABLE:
                if complete:  # else the per-layer series serve
                    entry.tables[tag] = Table(*where, meta.layers, meta.fields)
            elif meta.record == fmt.HEATMAP:
                entry.heatmaps[meta.layer.name] = Series(*where, meta.layer, meta.fields)
            elif meta.record != fmt.STATS:  # a record this reader does not use
                continue
            elif complete:
                entry.stats[meta.layer.name] = Series(*where, meta.layer, meta.fields)
            else:
                self._warn_once(("fields", run, tag), "nas: skipping run %r tag %r: stat fields %r "
                                "lack one of %r", run, tag, meta.fields, _REQUIRED_FIELDS)
        return entry if entry.stats or entry.tables else None

    def _learn_index(self, entry: RunListing) -> None:
        tags = {t.tag for t in entry.index()}
        if not tags <= self._index_tags:
            with self._lock:
                self._index_tags |= tags

    def run_versions(self, ctx, eid: str) -> dict[str, tuple[int, float]]:
        """{run: (max step, max wall time) of its index records} of every run with NAS statistics: changes
        whenever the run logs a step.

        One listing of the ``nas_index`` plugin (a tag per monitor and run, whose metadata is a few bytes)
        covers the runs written since the index record, checked against their stats as
        :meth:`_checked_index_versions` says; the other runs (written before it, or without NAS data) are
        listed as :meth:`_stats_versions` says.
        """
        kept = self.kept_run_names(eid)
        names = PARALLEL_CALLS.submit(self.run_names, ctx, eid) if kept is None else None  # beside the index listing
        indexed = self._index_versions(ctx, eid)
        rest = [run for run in (kept if names is None else names.result()) if run not in indexed]
        versions = self._stats_versions(ctx, eid, rest) if rest else {}
        return {**self._checked_index_versions(ctx, eid, indexed), **versions}

    def _checked_index_versions(self, ctx, eid: str, indexed: dict[str, tuple[int, float]]
                                ) -> dict[str, tuple[int, float]]:
        """{run: version} of the runs with index records, each the earlier of its index's and its stats'
        (the last step with NAS data, which every route of the run serves: an index record beyond the stats,
        or stats beyond a restart that the loader kept, do not count); runs whose stats are unreadable left
        out. A run's stats are listed again only when its index version changed."""
        last = self._checked_last.get(eid)
        if last is not None and last[0] is indexed:  # the shared index listing is unchanged: so is the answer
            return last[1]
        changed = [run for run, version in indexed.items() if self._checked.get((eid, run), (None,))[0] != version]
        if changed:
            stats = self._stats_versions(ctx, eid, changed)
            if len(self._checked) + len(changed) > MAX_CHECKED_RUNS:
                self._checked.clear()
            for run in changed:
                found = stats.get(run)
                self._checked[(eid, run)] = (indexed[run], None if found is None else min(found, indexed[run]))
        checked = ((run, self._checked.get((eid, run), (None, None))[1]) for run in indexed)
        answer = {run: version for run, version in checked if version is not None}
        self._checked_last = {eid: (indexed, answer)}
        return answer

    def _listed(self, ctx, eid: str, plugin: str, run_tag_filter, kind: str, make, data: str = "Tensors"):
        """``make(rows)`` of a listing of ``data`` ("Tensors", "Scalars" or "BlobSequences"), rows [(run, [(tag,
        metadata content, max step, max wall time)])], shared (see :class:`SharedListings`): ``make`` runs
        only when the listing differs from the last one of this ``kind`` and filter. On TensorBoard's gRPC
        provider the rows come straight from the response."""
        key = (kind, eid, plugin, _filter_key(run_tag_filter))
        if not self._grpc:
            method = getattr(self._provider, _PROVIDER_LISTINGS[data])
            return self._listings.get(key, lambda: method(ctx, experiment_id=eid, plugin_name=plugin,
                                                          run_tag_filter=run_tag_filter), lambda raw: make(_rows(raw)),
                                      _listing_bytes)
        # The response is handed to SharedListings, which makes Python objects of it only when it differs
        # from the last one (on 10,000 runs the comparison costs a few milliseconds, the Python objects tens).
        req = self._grpc.request(f"List{data}", eid, plugin, run_tag_filter)
        return self._listings.get(key, lambda: self._grpc.call(f"List{data}", req), lambda res: make(
            [(entry.run_name, [(tag.tag_name, tag.metadata.summary_metadata.plugin_data.content,
                                tag.metadata.max_step, tag.metadata.max_wall_time) for tag in entry.tags])
             for entry in res.runs]), lambda res: _GRPC_LISTING_FACTOR * res.ByteSize())

    def _index_versions(self, ctx, eid: str) -> dict[str, tuple[int, float]]:
        """{run: (max step, max wall time) over its readable index records} of the runs that have one; shared
        with later calls while nothing changed: not to be changed."""
        return self._listed(ctx, eid, fmt.INDEX_PLUGIN_NAME, None, "index", self._index_versions_of)

    def _index_versions_of(self, rows) -> dict[str, tuple[int, float]]:
        versions = {}
        for run, tags in rows:
            found = None
            for tag, content, step, wall_time in tags:
                # An index of a newer format version is skipped (logged once): the run's other records are
                # of that version too, and the run is listed as one without an index would be.
                meta = self._decode(run, tag, content)
                if meta is not None and meta.record == fmt.INDEX and (found is None or (step, wall_time) > found):
                    found = (step, wall_time)
            if found is not None:
                versions[run] = found
        return versions

    def _stats_versions(self, ctx, eid: str, runs: list[str]) -> dict[str, tuple[int, float]]:
        """{run: RunListing.last_logged()} of those of ``runs`` that hold NAS statistics.

        Lists only the stats tags that stood for the runs listed so far (see :meth:`_learn_index`), and the
        whole NAS listing of the runs that have none of them (new runs, other formats, runs without NAS
        data), from which new such tags are learned: on many runs a fraction of :meth:`list_nas`, whose
        tag metadata dominates.
        """
        with self._lock:
            index = sorted(self._index_tags)
        versions = dict(self._listed(ctx, eid, fmt.PLUGIN_NAME, provider.RunTagFilter(runs=runs, tags=index),
                                     "stats index", self._stats_versions_of)) if index else {}
        for run, listing in self.list_nas(ctx, eid, runs=[run for run in runs if run not in versions]).items():
            versions[run] = listing.last_logged()
        return versions

    def _stats_versions_of(self, rows) -> dict[str, tuple[int, float]]:
        listings = ((run, self._run_listing(run, tags)) for run, tags in rows)
        return {run: entry.last_logged() for run, entry in listings if entry is not None}

    def list_scalar_tags(self, ctx, eid: str, runs: list[str] | None = None) -> dict[str, dict[str, Listed]]:
        """{run: {scalar tag: Listed}} of TensorBoard's scalars plugin, tags sorted. Shared with later calls:
        not to be changed."""
        return self._listed(ctx, eid, SCALARS_PLUGIN, _runs_filter(runs), "scalars", _scalar_tags_of, data="Scalars")

    def kept_scalar_tags(self, eid: str, runs: list[str] | None = None) -> dict[str, dict[str, Listed]] | None:
        """What :meth:`list_scalar_tags` answers at once from a listing kept from an earlier request; None without one."""
        return self._listings.kept(("scalars", eid, SCALARS_PLUGIN, _filter_key(_runs_filter(runs))))

    # --- cached reads ---------------------------------------------------------------------------

    def _read_cached(self, ctx, eid: str, plugin: str, wanted: dict[str, list[Listed]], convert,
                     lazy: bool = False) -> dict[str, list[tuple[Listed, object]]]:
        """{run: [(listed tag, convert(tag, points))]} of the ``wanted`` tags of each run, in order.

        A conversion is cached while its tag's listed version holds; the misses of every run are read in
        one call. ``convert(listed, points, warn)`` returns ``(payload, cells)`` (cells: its size, for the
        cache budget), calling ``warn(problem)`` for points it skips (logged once per tag), or raises
        ``ValueError`` naming what is wrong with the data: that tag is then logged once and left out.
        ``lazy``: tensors may come undecoded (see :meth:`_read_tensors_lazily`).
        """
        result: dict[str, list] = {run: [] for run in wanted}
        missing: dict[str, list[Listed]] = {}
        for run, tags in wanted.items():
            for listed in tags:
                hit = self._cache.get((eid, plugin, run, listed.tag), listed.version)
                if hit is SeriesCache.MISS:
                    missing.setdefault(run, []).append(listed)
                elif hit is not None:
                    result[run].append((listed, hit))
        if missing:
            if plugin == SCALARS_PLUGIN:
                read = self._provider.read_scalars
            else:
                read = self._read_tensors_lazily if lazy else self._provider.read_tensors
            data = read(ctx, experiment_id=eid, plugin_name=plugin, downsample=KEEP_ALL,
                        run_tag_filter=provider.RunTagFilter(
                            runs=sorted(missing), tags=sorted({t.tag for ts in missing.values() for t in ts})))
            for run, tags in missing.items():
                for listed in tags:
                    # Only what was listed: points appended since are read with the next listing, so
                    # the payload matches its cache version and every series of a request is cut at
                    # the same moment (no step that one layer has and another not yet).
                    points = data.get(run, {}).get(listed.tag, ())
                    if isinstance(points, _LazyPoints):
                        points = points.upto(listed.max_step)
                    else:
                        points = [p for p in points if p.step <= listed.max_step]
                    def warn(problem, run=run, tag=listed.tag):
                        self._warn_once(("data", run, tag), "nas: skipping run %r tag %r: %s", run, tag, problem)

                    try:
                        payload, cells = convert(listed, points, warn)
                    except ValueError as e:
                        warn(e)
                        payload, cells = None, 0
                    self._cache.put((eid, plugin, run, listed.tag), listed.version, payload, _ENTRY_BYTES + 8 * cells)
                    if payload is not None:
                        result[run].append((listed, payload))
        return result

    def _read_tensors_lazily(self, ctx, *, experiment_id, plugin_name, downsample, run_tag_filter):
        """``read_tensors``, whose points' ``numpy`` may decode on first use: on TensorBoard's gRPC data
        provider (the Rust data server) the response is read here and each tag's points come as
        :class:`_LazyPoints`, a tensor decoded only when asked for (a heatmap request needs one step of
        the series it reads); other providers as they are."""
        if not self._grpc:
            return self._provider.read_tensors(ctx, experiment_id=experiment_id, plugin_name=plugin_name,
                                               downsample=downsample, run_tag_filter=run_tag_filter)
        # As GrpcDataProvider.read_tensors builds the request, less its eager decoding of every tensor.
        req = self._grpc.request("ReadTensors", experiment_id, plugin_name, run_tag_filter)
        req.downsample.num_points = downsample
        res = self._grpc.call("ReadTensors", req)
        return {run_entry.run_name: {tag_entry.tag_name: _LazyPoints.of(tag_entry.data) for tag_entry in run_entry.tags}
                for run_entry in res.runs}

    def read_stats(self, ctx, eid: str, wanted: dict[str, list[Series]]) -> dict[str, dict[str, Stats]]:
        """{run: {layer name: Stats}} of the given per-layer stats series of each run."""
        found = self._read_cached(ctx, eid, fmt.PLUGIN_NAME, wanted, _to_stats)
        return {run: {series.layer.name: stats for series, stats in pairs} for run, pairs in found.items()}

    def _read_tables(self, ctx, eid: str, listings: dict[str, RunListing]) -> dict[str, dict[str, Stats]]:
        """{run: {layer name: Stats}} from every stats table of each run (one per monitor)."""
        wanted = {run: list(listing.tables.values()) for run, listing in listings.items()}
        found = self._read_cached(ctx, eid, fmt.PLUGIN_NAME, wanted, _split_table, lazy=True)
        return {run: {name: stats for _, table in pairs for name, stats in table.items()}
                for run, pairs in found.items()}

    def read_run_stats(self, ctx, eid: str, listings: dict[str, RunListing],
                       only: dict[str, str] | None = None) -> dict[str, dict[str, Stats]]:
        """{run: {layer name: Stats}} of every layer with statistics (``only[run]``: just that layer): from
        the run's stats tables where it has them (one tensor per step), from the per-layer series for the rest."""
        tables = self._read_tables(ctx, eid, listings)
        rest = {run: [s for name, s in listing.stats.items()
                      if name not in tables[run] and (only is None or name == only[run])]
                for run, listing in listings.items()}
        per_layer = self.read_stats(ctx, eid, {run: series for run, series in rest.items() if series})
        return {run: {**tables[run], **per_layer.get(run, {})} for run in listings}

    def logged_steps(self, ctx, eid: str, listings: dict[str, RunListing]) -> dict[str, Stats | None]:
        """{run: the Stats of its shallowest layer (its steps and their wall times), None without any}: the
        steps a run logged NAS data at, which every route of it serves."""
        shallowest = {run: listing.layers()[0].name for run, listing in listings.items()}
        stats = self.read_run_stats(ctx, eid, listings, only=shallowest)
        return {run: stats[run].get(name) for run, name in shallowest.items()}

    def read_heatmaps(self, ctx, eid: str, run: str, series_list: list[Series]
                      ) -> dict[str, tuple[np.ndarray, list[np.ndarray]]]:
        """{layer name: (steps (n,), the (k, H, W) float maps by step index (:class:`Maps`))} of one run."""
        found = self._read_cached(ctx, eid, fmt.PLUGIN_NAME, {run: series_list},
                                  lambda _, points, warn: _to_maps(points, warn), lazy=True)[run]
        return {series.layer.name: maps for series, maps in found}

    def read_scalar(self, ctx, eid: str, listed: dict[str, Listed]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """{run: (steps, values float64)} of one scalar tag in each run of ``listed`` ({run: that tag as
        :meth:`list_scalar_tags` listed it}), the runs without points left out."""
        found = self._read_cached(ctx, eid, SCALARS_PLUGIN, {run: [t] for run, t in listed.items()},
                                  lambda _, points, warn: _to_curve(points))
        return {run: curve for run, pairs in found.items() for _, curve in pairs if curve[0].size}

    def read_alarms(self, ctx, eid: str, listings: dict[str, RunListing]) -> dict[str, list[tuple[int, list[str]]]]:
        """{run: [(alarm step, triggering layers)]} of the runs whose listing has alarms (one per monitor
        at most), by step."""
        wanted = {run: list(listing.alarms.values()) for run, listing in listings.items() if listing.alarms}
        found = self._read_cached(ctx, eid, fmt.PLUGIN_NAME, wanted, lambda _, points, warn: _to_alarm(points))
        return {run: sorted(alarm for _, alarm in pairs) for run, pairs in found.items() if pairs}

    def read_alarm_statuses(self, ctx, eid: str, listings: dict[str, RunListing]) -> dict[str, dict]:
        """{run: its alarm status (see :func:`nas_logger.format.parse_alarm_status`)} of the runs whose listing
        has an alarm status record: its unnamed monitor's, else its first named one's; the record of its last
        step. A record that is no valid status is logged once and the run left out."""
        wanted = {run: [listing.statuses[min(listing.statuses, key=_monitor_order)]]
                  for run, listing in listings.items() if listing.statuses}
        found = self._read_cached(ctx, eid, fmt.PLUGIN_NAME, wanted, lambda _, points, warn: _to_status(points, warn))
        return {run: pairs[0][1] for run, pairs in found.items() if pairs}

    def probe_monitor(self, ctx, eid: str, run: str, listing: RunListing) -> tuple[str | None] | None:
        """``(monitor,)`` of the first of the run's monitors (unnamed first) whose probe image this data
        provider can read, or ``None``."""
        if listing.probes:
            return (min(listing.probes, key=_monitor_order),)
        try:  # a file written before the probe PNG record: the image summary alone
            return (None,) if self._legacy_probe(ctx, eid, run) is not None else None
        except ProbeUnreadable:
            return None

    def read_probe(self, ctx, eid: str, run: str, listing: RunListing, monitor: str | None = None
                   ) -> list[bytes] | None:
        """The encoded probe images (one per probe sample) of ``monitor`` in ``run``, or ``None`` when it
        logged none. Raises :class:`ProbeUnreadable` for an image summary that the data provider cannot
        read back."""
        if monitor not in listing.probes:
            legacy = self._legacy_probe(ctx, eid, run) if monitor is None else None
            return None if legacy is None else [legacy]
        found = self._read_cached(ctx, eid, fmt.PLUGIN_NAME, {run: [listing.probes[monitor]]},
                                  lambda _, points, warn: _to_png(points, warn))[run]
        return found[0][1] if found else None

    def probe_count(self, ctx, eid: str, run: str, listing: RunListing, monitor: str | None) -> int:
        """How many images the probe record of ``monitor`` in ``run`` holds (0 without one), counted once per
        version of the record: the heatmap routes ask on every request of a probe image other than the first."""
        listed = listing.probes.get(monitor)
        if listed is None:
            return 0
        return self._cached((eid, run, "probe count", listed.tag), listed.version,
                            lambda: len(self.read_probe(ctx, eid, run, listing, monitor) or ()))

    def probe_version(self, ctx, eid: str, run: str, listing: RunListing) -> tuple | None:
        """The listed version of what the run's probe images are read from, beyond its NAS listing (for
        response caches): nothing when it has probe records, else its image summary's (files written
        before those records), None when it has none either (probes that are no images)."""
        if listing.probes:
            return ()
        listed = self._legacy_listed(ctx, eid, run)
        return None if listed is None else (listed.max_step, listed.max_wall_time)

    def _legacy_listed(self, ctx, eid: str, run: str) -> Listed | None:
        """The probe's image summary of files written before the probe PNG record, as listed, or None. Listed
        for every run at once: the heatmap routes ask for it for each run without probe records, and the
        answer holds only the runs that have such a summary (none, once every run has the record)."""
        return self._listed(ctx, eid, IMAGES_PLUGIN, provider.RunTagFilter(tags=[fmt.PROBE_IMAGE_TAG]), "probe images",
                            _image_tags_of, data="BlobSequences").get(run)

    def _legacy_probe(self, ctx, eid: str, run: str) -> bytes | None:
        """The probe as files written before the probe PNG record hold it: an image summary (its last one)."""
        tag = fmt.PROBE_IMAGE_TAG
        listed = self._legacy_listed(ctx, eid, run)
        if listed is None:
            return None

        def load() -> bytes | ProbeUnreadable | None:
            points = self._provider.read_blob_sequences(
                ctx, experiment_id=eid, plugin_name=IMAGES_PLUGIN, downsample=1,
                run_tag_filter=provider.RunTagFilter(runs=[run], tags=[tag]),
            ).get(run, {}).get(tag)
            if not points or len(points[-1].values) < 3:
                return None
            try:  # an image summary's blob sequence is (width, height, encoded image, ...)
                return self._provider.read_blob(ctx, blob_key=points[-1].values[2].blob_key)
            except errors.PublicError as e:  # the Rust data server's blob keys of odd run names
                unreadable = ProbeUnreadable(
                    f"TensorBoard's data server cannot read the probe image of run {run!r} ({e}); "
                    "TensorBoard with --load_fast=false can, and nas_logger now also writes it as a NAS record")
                self._warn_once(("probe", run), "nas: %s", unreadable)
                return unreadable

        image = self._cached((eid, run, IMAGES_PLUGIN, tag), (listed.max_step, listed.max_wall_time), load)
        if isinstance(image, ProbeUnreadable):
            raise ProbeUnreadable(str(image))
        return image

    def _cached(self, key: tuple, version: tuple, load):
        """``load()``, cached under ``key`` while the listed ``version`` is unchanged (a small payload)."""
        hit = self._cache.get(key, version)
        if hit is SeriesCache.MISS:
            hit = load()
            self._cache.put(key, version, hit, _ENTRY_BYTES + len(hit) if isinstance(hit, bytes) else _ENTRY_BYTES)
        return hit


def local_reader(logdir) -> tuple[Reader, object]:
    """(Reader, request context) over the event files below ``logdir`` as TensorBoard loads them with
    ``--load_fast=false``, every point kept: for scripts and tests (experiment id ``""``; the run of files
    directly in ``logdir`` is ``"."``)."""
    from tensorboard import context
    from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer

    multiplexer = plugin_event_multiplexer.EventMultiplexer(tensor_size_guidance={fmt.PLUGIN_NAME: 0})
    multiplexer.AddRunsFromDirectory(str(logdir))
    multiplexer.Reload()
    return Reader(data_provider.MultiplexerDataProvider(multiplexer, str(logdir))), context.RequestContext()


# The data provider's method of each kind of listing that Reader._listed makes.
_PROVIDER_LISTINGS = {"Tensors": "list_tensors", "Scalars": "list_scalars", "BlobSequences": "list_blob_sequences"}


def _scalar_tags_of(rows) -> dict[str, dict[str, Listed]]:
    return {run: {tag: Listed(tag, step, wall_time) for tag, _, step, wall_time in sorted(tags)} for run, tags in rows}


def _image_tags_of(rows) -> dict[str, Listed]:
    """{run: its listed probe image summary} (the listing asks for that tag only)."""
    return {run: Listed(tag, step, wall_time) for run, tags in rows for tag, _, step, wall_time in tags}


def _listing_bytes(listing: dict) -> int:
    """The bytes a data provider's list_* result and what is made of it hold, estimated (see _ENTRY_BYTES)."""
    return sum(_ENTRY_BYTES + len(getattr(ts, "plugin_content", b"")) for tags in listing.values() for ts in tags.values())


def _runs_filter(runs: list[str] | None) -> provider.RunTagFilter | None:
    return provider.RunTagFilter(runs=runs) if runs is not None else None


def _filter_key(run_tag_filter: provider.RunTagFilter | None) -> tuple | None:
    """A RunTagFilter as a key of shared listings (it has no equality of its own)."""
    return None if run_tag_filter is None else (run_tag_filter.runs, run_tag_filter.tags)


def _rows(listing: dict) -> list[tuple[str, list[tuple[str, bytes, int, float]]]]:
    """A data provider's list_tensors result as [(run, [(tag, metadata content, max step, max wall time)])]."""
    return [(run, [(tag, ts.plugin_content, ts.max_step, ts.max_wall_time) for tag, ts in tags.items()])
            for run, tags in listing.items()]


class ProbeUnreadable(Exception):
    """A logged probe image that the data provider cannot read back (the message says why)."""


# --- conversions of the points of one listed tag: (payload, its size in array cells) ----------------

def _steps(points) -> np.ndarray:
    return np.fromiter((p.step for p in points), dtype=np.int64, count=len(points))


def _wall_times(points) -> np.ndarray:
    """The wall time of each point (a list, or :class:`_LazyPoints`), seconds since the epoch (n,)."""
    if isinstance(points, _LazyPoints):
        return points.wall_times
    return np.fromiter((p.wall_time for p in points), dtype=np.float64, count=len(points))


def _to_stats(series: Series, points, warn) -> tuple[Stats, int]:
    """A layer's per-layer stats series, less the points whose tensor does not hold its fields (warned)."""
    points = _well_shaped(points, lambda shape: math.prod(shape) == len(series.fields), warn,
                          f"{len(series.fields)} stat fields")
    if not points:
        raise ValueError(f"no step of the stats series holds its {len(series.fields)} fields")
    values = np.array([np.ravel(p.numpy) for p in points], dtype=np.float64)
    steps, order = dedupe_steps(_steps(points), np.arange(len(points)))
    values, wall_times = values[order], _wall_times(points)[order]
    col = {name: np.ascontiguousarray(values[:, i]) for i, name in enumerate(series.fields)}
    return Stats(steps, col["min"], col["median"], col["max"], wall_times), 5 * steps.size


def _split_table(table: Table, points, warn) -> tuple[dict[str, Stats], int]:
    """{layer name: Stats} of a stats table's rows, less the steps whose tensor does not hold its layers x
    fields (warned: a step another model wrote into the run, a torn one)."""
    size = len(table.layers) * len(table.fields)
    points = _well_shaped(points, lambda shape: math.prod(shape) == size, warn,
                          f"{len(table.layers)} layers x {len(table.fields)} fields")
    if not len(points):
        raise ValueError(f"no step of the stats table holds its {len(table.layers)} layers")
    lazy = isinstance(points, _LazyPoints)
    values = _float_rows(points) if lazy else np.array([np.ravel(p.numpy) for p in points], dtype=np.float64)
    values = values.reshape(len(points), len(table.layers), len(table.fields))
    steps, order = dedupe_steps(points.steps if lazy else _steps(points), np.arange(len(points)))
    values, wall_times = values[order], _wall_times(points)[order]
    col = [table.fields.index(f) for f in _REQUIRED_FIELDS]
    stats = {layer.name: Stats(steps, *(np.ascontiguousarray(values[:, row, c]) for c in col), wall_times)
             for row, layer in enumerate(table.layers)}
    return stats, (3 * len(table.layers) + 2) * steps.size


# The tensor types that hold numbers a NAS value can be made of.
_NUMERIC = frozenset((types_pb2.DT_FLOAT, types_pb2.DT_DOUBLE, types_pb2.DT_HALF, types_pb2.DT_BFLOAT16,
                      types_pb2.DT_INT8, types_pb2.DT_INT16, types_pb2.DT_INT32, types_pb2.DT_INT64,
                      types_pb2.DT_UINT8, types_pb2.DT_UINT16, types_pb2.DT_UINT32, types_pb2.DT_UINT64))


def _numeric_shape(point, rank_only: bool) -> tuple[int, ...] | int | None:
    """The shape (or with ``rank_only`` the rank) of a point's tensor (a TensorProto, or a point with
    ``numpy``), None when it holds no numbers. A rank is read ~10x faster from a TensorProto than a shape,
    which counts for the thousands of tensors of a heatmap listing."""
    if isinstance(point, tensor_pb2.TensorProto):
        if point.dtype not in _NUMERIC:
            return None
        return len(point.tensor_shape.dim) if rank_only else tuple(d.size for d in point.tensor_shape.dim)
    array = np.asarray(point.numpy)
    return None if array.dtype.kind not in "fiu" else array.ndim if rank_only else array.shape


def _well_shaped(points, fits, warn, wanted: str, rank_only: bool = False):
    """``points`` (a list, or :class:`_LazyPoints`) less those whose tensor holds no numbers or has a shape
    (with ``rank_only``, a rank) that ``fits`` refuses; the skipped steps named in ``warn``."""
    lazy = isinstance(points, _LazyPoints)
    items = [points.values[int(i)] for i in points.index] if lazy else points
    keep = np.array([shape is not None and fits(shape) for shape in (_numeric_shape(p, rank_only) for p in items)],
                    dtype=bool)
    if keep.all():
        return points
    steps = points.steps if lazy else _steps(points)
    bad = steps[~keep].tolist()
    warn(f"{len(bad)} step{'s' if len(bad) > 1 else ''} ({', '.join(map(str, bad[:5]))}{', ...' if len(bad) > 5 else ''})"
         f" whose tensor does not hold {wanted}, skipped")
    return points.subset(keep) if lazy else [p for p, k in zip(points, keep) if k]


class _LazyPoints:
    """The points of one tag as :meth:`Reader._read_tensors_lazily` reads them from the gRPC response: the
    steps, and the tensor protos undecoded (``index`` into ``values``)."""

    def __init__(self, steps: np.ndarray, wall_times: np.ndarray, values, index: np.ndarray, cells: int) -> None:
        self.steps, self.wall_times, self.values, self.index, self.cells = steps, wall_times, values, index, cells

    @classmethod
    def of(cls, data) -> "_LazyPoints":
        steps = np.array(data.step, dtype=np.int64)
        # Cells for the cache budget, estimated from the last tensor (a series' tensors share a shape, or grow
        # with the probe count): ByteSize of the whole series walks every tensor (~0.7 ms for 300 heatmaps).
        cells = steps.size * data.value[-1].ByteSize() // 4 if steps.size else 0
        return cls(steps, np.array(data.wall_time, dtype=np.float64), data.value, np.arange(steps.size), cells)

    def upto(self, max_step: int) -> "_LazyPoints":
        keep = self.steps <= max_step
        return self if keep.all() else self.subset(keep)

    def subset(self, keep: np.ndarray) -> "_LazyPoints":
        """The points where ``keep`` (a bool mask) holds."""
        return _LazyPoints(self.steps[keep], self.wall_times[keep], self.values, self.index[keep], self.cells)

    def __len__(self) -> int:
        return self.steps.size


class Maps:
    """The (k, H, W) maps (one per probe sample) of a heatmap series by step index, each made on first use
    (a request shows one step of a series; on the gRPC provider each costs a decoding)."""

    def __init__(self, size: int, make) -> None:
        self._make = make
        self._maps: list[np.ndarray | None] = [None] * size

    def __len__(self) -> int:
        return len(self._maps)

    def __getitem__(self, index: int) -> np.ndarray:
        index = range(len(self._maps))[index]
        found = self._maps[index]
        if found is None:
            found = self._maps[index] = _as_maps(self._make(index))
        return found

    def __iter__(self):
        return (self[i] for i in range(len(self)))


def _to_maps(points, warn) -> tuple[tuple[np.ndarray, Maps], int]:
    """(steps (n,), Maps) of a heatmap series (a list of points, or :class:`_LazyPoints`), less the steps
    whose tensor is no map of numbers (warned)."""
    points = _well_shaped(points, lambda rank: rank <= 3, warn, "(probe, H, W) numbers", rank_only=True)
    if isinstance(points, _LazyPoints):
        steps, order = dedupe_steps(points.steps, points.index)
        values = points.values
        return (steps, Maps(steps.size, lambda i: tensor_util.make_ndarray(values[int(order[i])]))), points.cells
    steps, order = dedupe_steps(_steps(points), np.arange(len(points)))
    kept = [points[i].numpy for i in order]
    return (steps, Maps(len(kept), kept.__getitem__)), sum(np.size(m) for m in kept)


def _float_rows(points: _LazyPoints) -> np.ndarray:
    """The tensors of ``points`` as float64 rows, one per point: float32 tensors of one shape from their
    bytes at once, anything else through ``make_ndarray`` (ValueError when they differ in size)."""
    protos = [points.values[int(i)] for i in points.index]
    if protos and all(p.dtype == _DT_FLOAT and p.tensor_content and p.tensor_shape == protos[0].tensor_shape
                      for p in protos):
        return np.frombuffer(b"".join(p.tensor_content for p in protos), dtype="<f4").astype(np.float64
                                                                                           ).reshape(len(protos), -1)
    return np.array([np.ravel(tensor_util.make_ndarray(p)) for p in protos], dtype=np.float64)


def _to_curve(points) -> tuple[tuple[np.ndarray, np.ndarray], int]:
    """(steps (n,), values (n,) float64) of a scalar series."""
    values = np.fromiter((p.value for p in points), dtype=np.float64, count=len(points))
    steps, values = dedupe_steps(_steps(points), values)
    return (steps, values), 2 * steps.size


def _to_alarm(points) -> tuple[tuple[int, list[str]] | None, int]:
    """(step, triggering layer names) of an alarm (its first, written once), None without points."""
    if not points:
        return None, 0
    first = min(points, key=lambda p: p.step)
    names = np.asarray(first.numpy).reshape(-1)
    return (int(first.step), [n.decode("utf-8", "replace") if isinstance(n, bytes) else str(n) for n in names]), 1


def _monitor_order(monitor: str | None) -> tuple:
    """Sort key of monitor names: the run's unnamed monitor first, then by name."""
    return monitor is not None, monitor or ""


def _to_status(points, warn) -> tuple[dict | None, int]:
    """The alarm status of the last step of an alarm status series (the last one written for it), None
    without points or when that record is no valid status (warned)."""
    if not points:
        return None, 0
    last = max(range(len(points)), key=lambda i: (points[i].step, i))
    value = np.asarray(points[last].numpy)
    parsed = fmt.parse_alarm_status(value.item()) if value.size == 1 and isinstance(value.item(), bytes) else None
    if parsed is None:
        warn(f"the alarm status at step {points[last].step} is no valid status")
    return parsed, 1


def _to_png(points, warn) -> tuple[list[bytes] | None, int]:
    """The encoded images of a probe PNG record (its last one; one per probe sample, one in files written
    before k probes), None without points or when it holds no PNG bytes (warned)."""
    if not points:
        return None, 1
    images = list(np.asarray(points[-1].numpy).reshape(-1))
    if not images or not all(isinstance(image, bytes) and image.startswith(_PNG) for image in images):
        warn("the probe record holds no PNG images")
        return None, 1
    return images, 1


_PNG = b"\x89PNG\r\n\x1a\n"


def _as_maps(array: np.ndarray) -> np.ndarray:
    """(k, H, W) maps, one per probe sample, as stored (float32 keeps the cache small): a 2-D map of a file
    written before k probes is k = 1."""
    array = np.asarray(array, dtype=np.float32)
    if array.ndim > 3:
        raise ValueError(f"a heatmap tensor has at most 3 dimensions (probe, H, W); got shape {array.shape}")
    return array.reshape((1,) * (3 - array.ndim) + array.shape)
