"""Reading NAS records, scalars and the probe image through TensorBoard's data provider.

Every read goes through ``context.data_provider`` (the Rust data server's gRPC provider by default,
``MultiplexerDataProvider`` with ``--load_fast=false``), so runs that grow while TensorBoard runs show
their new steps on the next request. Metadata that this reader cannot interpret (a newer format
version, foreign content) and tensors of the wrong shape are logged once per series and skipped.
"""
from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
from tensorboard import errors
from tensorboard.data import provider

from nas_logger import format as fmt

from .aggregate import dedupe_steps

logger = logging.getLogger(__name__)

KEEP_ALL = 10**9  # `downsample` for read calls: every stored point
SCALARS_PLUGIN = "scalars"
IMAGES_PLUGIN = "images"
_REQUIRED_FIELDS = ("min", "median", "max")


class _Listed:
    """A listed tag of one run, with the data provider's ``max_step`` and ``max_wall_time``."""

    @property
    def version(self) -> tuple:
        """Changes when data is added to the tag: the key of its cached conversion."""
        return (self.max_step, self.max_wall_time)


@dataclass(frozen=True)
class Series(_Listed):
    """One NAS tag of one run, as listed."""

    tag: str
    layer: fmt.LayerInfo
    fields: tuple[str, ...]
    max_step: int
    max_wall_time: float


@dataclass(frozen=True)
class Table(_Listed):
    """A run's stats table (every layer's stats of a step in one tensor), as listed."""

    tag: str
    layers: tuple[fmt.LayerInfo, ...]
    fields: tuple[str, ...]
    max_step: int
    max_wall_time: float


@dataclass
class RunListing:
    """The NAS series of one run, by layer name, and by tag its stats tables and the versions of its
    overfitting alarms (one of each per monitor that wrote the run)."""

    stats: dict[str, Series] = field(default_factory=dict)
    heatmaps: dict[str, Series] = field(default_factory=dict)
    alarms: dict[str, tuple] = field(default_factory=dict)
    tables: dict[str, Table] = field(default_factory=dict)
    probes: dict[str | None, tuple[str, tuple]] = field(default_factory=dict)  # monitor -> (tag, version)

    def layers(self) -> list[fmt.LayerInfo]:
        """Layers with statistics: each monitor's by depth, the run's unnamed monitor first."""
        return sorted((s.layer for s in self.stats.values()), key=fmt.layer_order)


@dataclass(frozen=True)
class Stats:
    """A layer's statistics in one run: steps (n,) and the min/median/max columns (n,), float64."""

    steps: np.ndarray
    min: np.ndarray
    median: np.ndarray
    max: np.ndarray


class SeriesCache:
    """LRU of converted series by (experiment, run, tag), valid while the series' listed
    (max_step, max_wall_time) is unchanged; holds at most ``budget`` array cells."""

    MISS = object()

    def __init__(self, budget: int) -> None:
        self._entries: OrderedDict = OrderedDict()  # key -> (version, payload, cells)
        self._cells = 0
        self._budget = budget
        self._lock = threading.Lock()

    def get(self, key: tuple, version: tuple):
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] != version:
                return self.MISS
            self._entries.move_to_end(key)
            return entry[1]

    def put(self, key: tuple, version: tuple, payload, cells: int) -> None:
        if cells > self._budget:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._cells -= old[2]
            self._entries[key] = (version, payload, cells)
            self._cells += cells
            while self._cells > self._budget:
                _, evicted = self._entries.popitem(last=False)
                self._cells -= evicted[2]


class Reader:
    """Data access for the routes; one per plugin instance, safe to share between request threads.

    Converted stats and heatmap series are cached (see :class:`SeriesCache`): a request whose series
    did not change since the last one costs a listing call, not a read.
    """

    def __init__(self, data_provider, cache_cells: int = 32_000_000) -> None:
        self._provider = data_provider
        self._decoded: dict[bytes, tuple] = {}
        self._warned: set[tuple] = set()
        self._lock = threading.Lock()
        self._cache = SeriesCache(cache_cells)

    def _warn_once(self, key: tuple, message: str, *args) -> None:
        with self._lock:
            if key in self._warned:
                return
            self._warned.add(key)
        logger.warning(message, *args)

    def _decode(self, run: str, tag: str, content: bytes):
        """decode_metadata, cached per content; ``None`` (logged once) when unreadable."""
        result = self._decoded.get(content)
        if result is None:
            try:
                result = fmt.decode_metadata(content)
            except fmt.FormatError as e:
                result = e
            self._decoded[content] = result
        if isinstance(result, fmt.FormatError):
            self._warn_once(("meta", run, tag), "nas: skipping run %r tag %r: %s", run, tag, result)
            return None
        return result

    # --- listings -------------------------------------------------------------------------------

    def run_names(self, ctx, eid: str) -> list[str]:
        """Every run of the experiment (with or without NAS data); cheap on every data provider."""
        return [run.run_name for run in self._provider.list_runs(ctx, experiment_id=eid)]

    def list_nas(self, ctx, eid: str, runs: list[str] | None = None) -> dict[str, RunListing]:
        """{run: RunListing} of the runs (all when ``runs`` is None) that hold NAS statistics."""
        if runs is not None and not runs:
            return {}
        listing = self._provider.list_tensors(
            ctx, experiment_id=eid, plugin_name=fmt.PLUGIN_NAME,
            run_tag_filter=provider.RunTagFilter(runs=runs) if runs is not None else None,
        )
        result: dict[str, RunListing] = {}
        for run, tags in listing.items():
            entry = RunListing()
            for tag, ts in tags.items():
                decoded = self._decode(run, tag, ts.plugin_content)
                if decoded is None:
                    continue
                record, layer, fields = decoded
                if record == fmt.ALARM:
                    entry.alarms[tag] = (ts.max_step, ts.max_wall_time)
                    continue
                if record == fmt.PROBE:
                    entry.probes[fmt.record_monitor(ts.plugin_content)] = (tag, (ts.max_step, ts.max_wall_time))
                    continue
                if record == fmt.TABLE:
                    try:
                        layers = fmt.table_layers(ts.plugin_content)
                    except fmt.FormatError as e:
                        self._warn_once(("table", run, tag), "nas: skipping run %r tag %r: %s", run, tag, e)
                        continue
                    if set(_REQUIRED_FIELDS) <= set(fields):
                        entry.tables[tag] = Table(tag, layers, fields, ts.max_step, ts.max_wall_time)
                    continue
                if layer is None:  # a record of a monitor that this reader does not use
                    continue
                if record == fmt.STATS and not set(_REQUIRED_FIELDS) <= set(fields):
                    self._warn_once(("fields", run, tag), "nas: skipping run %r tag %r: stat fields %r "
                                    "lack one of %r", run, tag, fields, _REQUIRED_FIELDS)
                    continue
                target = entry.stats if record == fmt.STATS else entry.heatmaps
                target[layer.name] = Series(tag, layer, fields, ts.max_step, ts.max_wall_time)
            if entry.stats:
                result[run] = entry
        return result

    def list_scalar_tags(self, ctx, eid: str, runs: list[str] | None = None) -> dict[str, dict[str, tuple]]:
        """{run: {scalar tag: version}} of TensorBoard's scalars plugin, tags sorted; the version
        (max_step, max_wall_time) keys :meth:`read_scalar`'s cache."""
        listing = self._provider.list_scalars(
            ctx, experiment_id=eid, plugin_name=SCALARS_PLUGIN,
            run_tag_filter=provider.RunTagFilter(runs=runs) if runs is not None else None,
        )
        return {run: {tag: (ts.max_step, ts.max_wall_time) for tag, ts in sorted(tags.items())}
                for run, tags in listing.items()}

    # --- cached series --------------------------------------------------------------------------

    def _read_series(self, ctx, eid: str, wanted: dict[str, list[Series]], convert) -> dict[str, dict]:
        """{run: {layer name: convert(run, series, points)}}; cache misses read in one call."""
        result: dict[str, dict] = {run: {} for run in wanted}
        missing: dict[str, list[Series]] = {}
        for run, series_list in wanted.items():
            for series in series_list:
                hit = self._cache.get((eid, run, series.tag), series.version)
                if hit is SeriesCache.MISS:
                    missing.setdefault(run, []).append(series)
                elif hit is not None:
                    result[run][series.layer.name] = hit
        if missing:
            data = self._provider.read_tensors(
                ctx, experiment_id=eid, plugin_name=fmt.PLUGIN_NAME, downsample=KEEP_ALL,
                run_tag_filter=provider.RunTagFilter(
                    runs=sorted(missing), tags=sorted({s.tag for ss in missing.values() for s in ss})),
            )
            for run, series_list in missing.items():
                run_data = data.get(run, {})
                for series in series_list:
                    # Only what was listed: points appended since are read with the next listing, so
                    # the payload matches its cache version and every series of a request is cut at
                    # the same moment (no step that one layer has and another not yet).
                    points = [p for p in run_data.get(series.tag, ()) if p.step <= series.max_step]
                    payload, cells = convert(run, series, points)
                    self._cache.put((eid, run, series.tag), series.version,
                                    payload, cells)
                    if payload is not None:
                        result[run][series.layer.name] = payload
        return result

    def read_stats(self, ctx, eid: str, wanted: dict[str, list[Series]]) -> dict[str, dict[str, Stats]]:
        """{run: {layer name: Stats}} for the given stats series of each run."""
        return self._read_series(ctx, eid, wanted, self._to_stats)

    def _to_stats(self, run: str, series: Series, points) -> tuple[Stats | None, int]:
        steps = np.fromiter((p.step for p in points), dtype=np.int64, count=len(points))
        try:
            values = np.array([p.numpy for p in points], dtype=np.float64)
            values = values.reshape(len(points), len(series.fields))
        except ValueError as e:
            self._warn_once(("shape", run, series.tag), "nas: skipping run %r tag %r: stats tensors "
                            "do not hold %d fields each (%s)", run, series.tag, len(series.fields), e)
            return None, 0
        steps, values = dedupe_steps(steps, values)
        col = {name: np.ascontiguousarray(values[:, i]) for i, name in enumerate(series.fields)}
        return Stats(steps, col["min"], col["median"], col["max"]), 4 * steps.size

    def read_run_stats(self, ctx, eid: str, listings: dict[str, RunListing]) -> dict[str, dict[str, Stats]]:
        """{run: {layer name: Stats}} of every layer with statistics: from the run's stats table where
        it has one (one tensor per step), from the per-layer series for the rest."""
        tables = self._read_tables(ctx, eid, listings)
        rest = {run: [s for name, s in listing.stats.items() if name not in tables.get(run, {})]
                for run, listing in listings.items()}
        per_layer = self.read_stats(ctx, eid, {run: series for run, series in rest.items() if series})
        return {run: {name: stats for name, stats in {**tables.get(run, {}), **per_layer.get(run, {})}.items()
                      if name in listing.stats}
                for run, listing in listings.items()}

    def _read_tables(self, ctx, eid: str, listings: dict[str, RunListing]) -> dict[str, dict[str, Stats]]:
        """{run: {layer name: Stats}} from every stats table of each run (one per monitor)."""
        result: dict[str, dict[str, Stats]] = {}
        missing: dict[str, list[Table]] = {}
        for run, listing in listings.items():
            for table in listing.tables.values():
                hit = self._cache.get((eid, run, table.tag), table.version)
                if hit is SeriesCache.MISS:
                    missing.setdefault(run, []).append(table)
                elif hit is not None:
                    result.setdefault(run, {}).update(hit)
        if missing:
            data = self._provider.read_tensors(
                ctx, experiment_id=eid, plugin_name=fmt.PLUGIN_NAME, downsample=KEEP_ALL,
                run_tag_filter=provider.RunTagFilter(
                    runs=sorted(missing), tags=sorted({t.tag for ts in missing.values() for t in ts})),
            )
            for run, tables in missing.items():
                for table in tables:
                    points = [p for p in data.get(run, {}).get(table.tag, ()) if p.step <= table.max_step]
                    payload, cells = self._split_table(run, table, points)
                    self._cache.put((eid, run, table.tag), table.version, payload, cells)
                    if payload is not None:
                        result.setdefault(run, {}).update(payload)
        return result

    def _split_table(self, run: str, table: Table, points) -> tuple[dict[str, Stats] | None, int]:
        steps = np.fromiter((p.step for p in points), dtype=np.int64, count=len(points))
        try:
            values = np.array([p.numpy for p in points], dtype=np.float64)
            values = values.reshape(len(points), len(table.layers), len(table.fields))
        except ValueError as e:
            self._warn_once(("shape", run, table.tag), "nas: using the per-layer series of run %r: its stats "
                            "table does not hold %d layers x %d fields (%s)", run, len(table.layers),
                            len(table.fields), e)
            return None, 0
        steps, values = dedupe_steps(steps, values)
        col = {name: i for i, name in enumerate(table.fields)}
        stats = {layer.name: Stats(steps, *(np.ascontiguousarray(values[:, row, col[f]]) for f in ("min", "median", "max")))
                 for row, layer in enumerate(table.layers)}
        return stats, 4 * steps.size * len(table.layers)

    def step_counts(self, ctx, eid: str, listings: dict[str, RunListing]) -> dict[str, int]:
        """{run: number of logged steps}, counted on each run's shallowest layer."""
        counts = {run: len(next(iter(t.values())).steps) for run, t in self._read_tables(ctx, eid, listings).items() if t}
        first = {run: [min(l.stats.values(), key=lambda s: fmt.layer_order(s.layer))]
                 for run, l in listings.items() if run not in counts}
        stats = self.read_stats(ctx, eid, first)
        counts.update({run: (int(next(iter(stats[run].values())).steps.size) if stats.get(run) else 0) for run in first})
        return counts

    def read_heatmaps(self, ctx, eid: str, run: str, series_list: list[Series]
                      ) -> dict[str, tuple[np.ndarray, list[np.ndarray]]]:
        """{layer name: (steps (n,), [2-D float arrays])} of one run."""
        return self._read_series(ctx, eid, {run: series_list}, _to_maps)[run]

    # --- scalars and probe ----------------------------------------------------------------------

    def read_scalar(self, ctx, eid: str, versions: dict[str, tuple], tag: str
                    ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """{run: (steps, values float64)} of one scalar tag in the runs of ``versions`` ({run: version
        of that tag, from :meth:`list_scalar_tags`}); cached like the NAS series."""
        result, missing = {}, []
        for run, version in versions.items():
            hit = self._cache.get((eid, run, SCALARS_PLUGIN, tag), version)
            if hit is SeriesCache.MISS:
                missing.append(run)
            else:
                result[run] = hit
        if missing:
            data = self._provider.read_scalars(
                ctx, experiment_id=eid, plugin_name=SCALARS_PLUGIN, downsample=KEEP_ALL,
                run_tag_filter=provider.RunTagFilter(runs=missing, tags=[tag]),
            )
            for run in missing:
                points = data.get(run, {}).get(tag, ())
                steps = np.fromiter((p.step for p in points), dtype=np.int64, count=len(points))
                values = np.fromiter((p.value for p in points), dtype=np.float64, count=len(points))
                result[run] = dedupe_steps(steps, values)
                self._cache.put((eid, run, SCALARS_PLUGIN, tag), versions[run], result[run], 2 * steps.size)
        return {run: series for run, series in result.items() if series[0].size}

    def read_alarms(self, ctx, eid: str, listings: dict[str, RunListing]) -> dict[str, list[tuple[int, list[str]]]]:
        """{run: [(alarm step, triggering layers)]} of the runs whose listing has alarms (one per monitor
        at most), by step; cached."""
        result: dict[str, list] = {}
        missing: dict[str, list[str]] = {}
        for run, listing in listings.items():
            for tag, version in listing.alarms.items():
                hit = self._cache.get((eid, run, tag), version)
                if hit is SeriesCache.MISS:
                    missing.setdefault(run, []).append(tag)
                elif hit is not None:
                    result.setdefault(run, []).append(hit)
        if missing:
            data = self._provider.read_tensors(
                ctx, experiment_id=eid, plugin_name=fmt.PLUGIN_NAME, downsample=KEEP_ALL,
                run_tag_filter=provider.RunTagFilter(runs=sorted(missing), tags=sorted({t for ts in missing.values() for t in ts})),
            )
            for run, tags in missing.items():
                for tag in tags:
                    points = data.get(run, {}).get(tag, ())
                    alarm = None
                    if points:
                        first = min(points, key=lambda p: p.step)
                        names = np.asarray(first.numpy).reshape(-1)
                        alarm = (int(first.step), [n.decode("utf-8", "replace") if isinstance(n, bytes) else str(n) for n in names])
                        result.setdefault(run, []).append(alarm)
                    self._cache.put((eid, run, tag), listings[run].alarms[tag], alarm, 1)
        return {run: sorted(alarms) for run, alarms in result.items()}

    def probe_monitor(self, ctx, eid: str, run: str, listing: RunListing) -> tuple[str | None] | None:
        """``(monitor,)`` of the first of the run's monitors (unnamed first) whose probe image this data
        provider can read, or ``None``."""
        if listing.probes:
            return (min(listing.probes, key=lambda m: (m is not None, m or "")),)
        try:  # a file written before the probe PNG record: the image summary alone
            return (None,) if self._legacy_probe(ctx, eid, run) is not None else None
        except ProbeUnreadable:
            return None

    def read_probe(self, ctx, eid: str, run: str, listing: RunListing, monitor: str | None = None) -> bytes | None:
        """The encoded probe image of ``monitor`` in ``run``, or ``None`` when it logged none. Raises
        :class:`ProbeUnreadable` for an image summary that the data provider cannot read back."""
        if monitor not in listing.probes:
            return self._legacy_probe(ctx, eid, run) if monitor is None else None
        tag, version = listing.probes[monitor]

        def load() -> bytes | None:
            points = self._provider.read_tensors(
                ctx, experiment_id=eid, plugin_name=fmt.PLUGIN_NAME, downsample=KEEP_ALL,
                run_tag_filter=provider.RunTagFilter(runs=[run], tags=[tag]),
            ).get(run, {}).get(tag)
            return np.asarray(points[-1].numpy).reshape(-1)[0] if points else None

        return self._cached((eid, run, tag), version, load)

    def _legacy_probe(self, ctx, eid: str, run: str) -> bytes | None:
        """The probe as files written before the probe PNG record hold it: an image summary (its last one)."""
        tag = fmt.PROBE_IMAGE_TAG
        listed = self._provider.list_blob_sequences(
            ctx, experiment_id=eid, plugin_name=IMAGES_PLUGIN,
            run_tag_filter=provider.RunTagFilter(runs=[run], tags=[tag]),
        ).get(run, {}).get(tag)
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
            self._cache.put(key, version, hit, 1)
        return hit


class ProbeUnreadable(Exception):
    """A logged probe image that the data provider cannot read back (the message says why)."""


def _to_maps(run: str, series: Series, points) -> tuple[tuple[np.ndarray, list[np.ndarray]], int]:
    steps = np.fromiter((p.step for p in points), dtype=np.int64, count=len(points))
    steps, order = dedupe_steps(steps, np.arange(len(points)))
    maps = [_as_map(points[i].numpy) for i in order]
    return (steps, maps), sum(m.size for m in maps)


def _as_map(array: np.ndarray) -> np.ndarray:
    """A 2-D map as stored (float32 keeps the cache small); higher ranks averaged down, as the writer does."""
    array = np.asarray(array, dtype=np.float32)
    while array.ndim > 2:
        array = array.mean(axis=0)
    return array.reshape((1,) * (2 - array.ndim) + array.shape)
