"""What TensorBoard's data provider lists of the NAS records: each run's tags as a :class:`RunListing`,
the scalar tags for the overlays, the run names, and each run's version (its last logged step and when),
which keys everything the plugin keeps.

Listings are shared between requests (see :mod:`.sharing`) and on the Rust data server read from its
gRPC responses directly (see :mod:`.tensorboard_private`). Metadata that this reader cannot interpret (a
newer format version, foreign content) is logged once per run and tag and skipped.
"""
from __future__ import annotations

import concurrent.futures
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

from tensorboard.data import provider

from nas_logger import format as fmt

from .cache import CHECKED, METADATA, MISS, VersionedCache
from .sharing import SharedListings
from .tensorboard_private import GrpcCalls

logger = logging.getLogger("nas_tb_plugin.reading")  # where the skipped records are looked for

SCALARS_PLUGIN = "scalars"
IMAGES_PLUGIN = "images"
REQUIRED_FIELDS = ("min", "median", "max")  # the stat fields a line is drawn from

# The Python objects of a listed tag or run, or of a kept entry, beside its content bytes (tracemalloc: a listed
# tag of MultiplexerDataProvider with its RunListing entry takes ~950 bytes).
ENTRY_BYTES = 1024
# A gRPC listing's Python objects per byte of its wire size (its response, and what is made of its rows).
_GRPC_LISTING_FACTOR = 8
_METADATA_BYTES = 400  # a parsed Metadata or LayerInfo with its strings, as tracemalloc counts them
_CHECKED_BYTES = 200  # a run's checked version: its key, version and payload tuples
# Log lines remembered as said (see WarnOnce).
MAX_WARNED = 10_000

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
    # data does, so it keys what is made from the listing and the data it lists (see .cache.SERIES).
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



def monitor_order(monitor: str | None) -> tuple:
    """Sort key of monitor names: the run's unnamed monitor first, then by name."""
    return monitor is not None, monitor or ""


class WarnOnce:
    """Logs a warning once per key (a run and tag that hold something unreadable), for at most MAX_WARNED keys
    before saying them again."""

    def __init__(self) -> None:
        self._said: set[tuple] = set()
        self._lock = threading.Lock()

    def __call__(self, key: tuple, message: str, *args) -> None:
        with self._lock:
            if key in self._said:
                return
            if len(self._said) >= MAX_WARNED:  # said again after so many others: still bounded
                self._said.clear()
            self._said.add(key)
        logger.warning(message, *args)


class Lister:
    """The data provider's listings of NAS data, made into :class:`RunListing` and versions; one per plugin
    instance, safe to share between request threads. ``cache`` keeps the listings (shared for up to
    ``listing_max_age`` seconds) and what is made of them."""

    def __init__(self, data_provider, cache: VersionedCache | None = None, listing_max_age: float = 0.0) -> None:
        self._provider = data_provider
        self._cache = cache if cache is not None else VersionedCache()
        self._warn_once = WarnOnce()
        self._lock = threading.Lock()
        # TensorBoard's gRPC data provider (the Rust data server), whose responses are read here directly.
        self._grpc = GrpcCalls.of(data_provider)
        self._listings = SharedListings(self._cache, listing_max_age)
        # Stats tags that stand for a run in run_versions (its stats tables, else a layer's stats): few names
        # shared by every run, so one listing filtered to them covers the runs; the unnamed monitor's table
        # from the start, the others as listings show them.
        self._index_tags: set[str] = {fmt.TABLE_TAG}

    @property
    def data_provider(self):
        """The TensorBoard data provider this reader reads through."""
        return self._provider

    def _decode(self, run: str, tag: str, content: bytes) -> fmt.Metadata | None:
        """parse_plugin_metadata, kept per content; ``None`` (logged once) when unreadable."""
        result = self._cache.get(METADATA, content, None)
        if result is MISS:
            try:
                result = fmt.parse_plugin_metadata(content)
            except fmt.FormatError as e:
                result = e
            layers = len(result.layers) if isinstance(result, fmt.Metadata) else 0
            self._cache.put(METADATA, content, None, result, _METADATA_BYTES * (1 + layers) + len(content))
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
                                      lambda runs: ENTRY_BYTES * len(runs))
        req = self._grpc.request("ListRuns", eid)
        return self._listings.get(("runs", eid), lambda: self._grpc.call("ListRuns", req),
                                  lambda res: [run.name for run in res.runs], lambda res: ENTRY_BYTES * len(res.runs))

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
            complete = set(REQUIRED_FIELDS) <= set(meta.fields)
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
                                "lack one of %r", run, tag, meta.fields, REQUIRED_FIELDS)
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
        answer = self._cache.get(CHECKED, ("answer", eid), indexed)
        if answer is not MISS:  # the index listing is unchanged: so is the answer
            return answer
        known = self._cache.get(CHECKED, ("runs", eid), None)  # {run: (index version, checked version)}
        known = {} if known is MISS else known
        changed = [run for run, version in indexed.items() if known.get(run, (None,))[0] != version]
        stats = self._stats_versions(ctx, eid, changed) if changed else {}
        checked = dict(known)
        for run in changed:
            found = stats.get(run)
            checked[run] = (indexed[run], None if found is None else min(found, indexed[run]))
        checked = {run: checked[run] for run in indexed}  # runs no longer listed are forgotten
        answer = {run: version for run, (_, version) in checked.items() if version is not None}
        self._cache.put(CHECKED, ("runs", eid), None, checked, _CHECKED_BYTES * len(checked))
        self._cache.put(CHECKED, ("answer", eid), indexed, answer, _CHECKED_BYTES * len(answer))
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

    def _legacy_listed(self, ctx, eid: str, run: str) -> Listed | None:
        """The probe's image summary of files written before the probe PNG record, as listed, or None. Listed
        for every run at once: the heatmap routes ask for it for each run without probe records, and the
        answer holds only the runs that have such a summary (none, once every run has the record)."""
        return self._listed(ctx, eid, IMAGES_PLUGIN, provider.RunTagFilter(tags=[fmt.PROBE_IMAGE_TAG]), "probe images",
                            _image_tags_of, data="BlobSequences").get(run)



# The data provider's method of each kind of listing that Reader._listed makes.
_PROVIDER_LISTINGS = {"Tensors": "list_tensors", "Scalars": "list_scalars", "BlobSequences": "list_blob_sequences"}


def _scalar_tags_of(rows) -> dict[str, dict[str, Listed]]:
    return {run: {tag: Listed(tag, step, wall_time) for tag, _, step, wall_time in sorted(tags)} for run, tags in rows}


def _image_tags_of(rows) -> dict[str, Listed]:
    """{run: its listed probe image summary} (the listing asks for that tag only)."""
    return {run: Listed(tag, step, wall_time) for run, tags in rows for tag, _, step, wall_time in tags}


def _listing_bytes(listing: dict) -> int:
    """The bytes a data provider's list_* result and what is made of it hold, estimated (see ENTRY_BYTES)."""
    return sum(ENTRY_BYTES + len(getattr(ts, "plugin_content", b"")) for tags in listing.values() for ts in tags.values())


def _runs_filter(runs: list[str] | None) -> provider.RunTagFilter | None:
    return provider.RunTagFilter(runs=runs) if runs is not None else None


def _filter_key(run_tag_filter: provider.RunTagFilter | None) -> tuple | None:
    """A RunTagFilter as a key of shared listings (it has no equality of its own)."""
    return None if run_tag_filter is None else (run_tag_filter.runs, run_tag_filter.tags)


def _rows(listing: dict) -> list[tuple[str, list[tuple[str, bytes, int, float]]]]:
    """A data provider's list_tensors result as [(run, [(tag, metadata content, max step, max wall time)])]."""
    return [(run, [(tag, ts.plugin_content, ts.max_step, ts.max_wall_time) for tag, ts in tags.items()])
            for run, tags in listing.items()]


