"""Reading the listed NAS records, scalars and the probe image through TensorBoard's data provider.

Every read goes through ``context.data_provider`` (the Rust data server's gRPC provider by default,
``MultiplexerDataProvider`` with ``--load_fast=false``), so runs that grow while TensorBoard runs show
their new steps on the next request. A read is of what a listing (:mod:`.listing`) showed, converted by
:mod:`.conversion` and kept in the plugin's cache while that listing holds.
"""
from __future__ import annotations

import numpy as np
from tensorboard import errors
from tensorboard.data import provider

from nas_logger import format as fmt

from .cache import MISS, SERIES
from .conversion import (LazyPoints, Stats, split_table, to_alarm, to_curve, to_maps, to_png, to_stats,
                         to_status)
from .listing import (ENTRY_BYTES, IMAGES_PLUGIN, SCALARS_PLUGIN, Listed, Lister, RunListing, Series,
                      monitor_order)

KEEP_ALL = 10**9  # `downsample` for read calls: every stored point


class ProbeUnreadable(Exception):
    """A logged probe image that the data provider cannot read back (the message says why)."""


class Reader(Lister):
    """Data access for the routes: the listings (:class:`.listing.Lister`) and reads of what they list; one
    per plugin instance, safe to share between request threads.

    Converted series are kept in the plugin's cache under their tag's listed version: a request whose series
    did not change since the last one costs a listing, not a read.
    """

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
                hit = self._cache.get(SERIES, (eid, plugin, run, listed.tag), listed.version)
                if hit is MISS:
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
                    if isinstance(points, LazyPoints):
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
                    self._cache.put(SERIES, (eid, plugin, run, listed.tag), listed.version, payload, ENTRY_BYTES + 8 * cells)
                    if payload is not None:
                        result[run].append((listed, payload))
        return result

    def _read_tensors_lazily(self, ctx, *, experiment_id, plugin_name, downsample, run_tag_filter):
        """``read_tensors``, whose points' ``numpy`` may decode on first use: on TensorBoard's gRPC data
        provider (the Rust data server) the response is read here and each tag's points come as
        :class:`LazyPoints`, a tensor decoded only when asked for (a heatmap request needs one step of
        the series it reads); other providers as they are."""
        if not self._grpc:
            return self._provider.read_tensors(ctx, experiment_id=experiment_id, plugin_name=plugin_name,
                                               downsample=downsample, run_tag_filter=run_tag_filter)
        # As GrpcDataProvider.read_tensors builds the request, less its eager decoding of every tensor.
        req = self._grpc.request("ReadTensors", experiment_id, plugin_name, run_tag_filter)
        req.downsample.num_points = downsample
        res = self._grpc.call("ReadTensors", req)
        return {run_entry.run_name: {tag_entry.tag_name: LazyPoints.of(tag_entry.data) for tag_entry in run_entry.tags}
                for run_entry in res.runs}

    def read_stats(self, ctx, eid: str, wanted: dict[str, list[Series]]) -> dict[str, dict[str, Stats]]:
        """{run: {layer name: Stats}} of the given per-layer stats series of each run."""
        found = self._read_cached(ctx, eid, fmt.PLUGIN_NAME, wanted, to_stats)
        return {run: {series.layer.name: stats for series, stats in pairs} for run, pairs in found.items()}

    def _read_tables(self, ctx, eid: str, listings: dict[str, RunListing]) -> dict[str, dict[str, Stats]]:
        """{run: {layer name: Stats}} from every stats table of each run (one per monitor)."""
        wanted = {run: list(listing.tables.values()) for run, listing in listings.items()}
        found = self._read_cached(ctx, eid, fmt.PLUGIN_NAME, wanted, split_table, lazy=True)
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
                                  lambda _, points, warn: to_maps(points, warn), lazy=True)[run]
        return {series.layer.name: maps for series, maps in found}

    def read_scalar(self, ctx, eid: str, listed: dict[str, Listed]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """{run: (steps, values float64)} of one scalar tag in each run of ``listed`` ({run: that tag as
        :meth:`list_scalar_tags` listed it}), the runs without points left out."""
        found = self._read_cached(ctx, eid, SCALARS_PLUGIN, {run: [t] for run, t in listed.items()},
                                  lambda _, points, warn: to_curve(points))
        return {run: curve for run, pairs in found.items() for _, curve in pairs if curve[0].size}

    def read_alarms(self, ctx, eid: str, listings: dict[str, RunListing]) -> dict[str, list[tuple[int, list[str]]]]:
        """{run: [(alarm step, triggering layers)]} of the runs whose listing has alarms (one per monitor
        at most), by step."""
        wanted = {run: list(listing.alarms.values()) for run, listing in listings.items() if listing.alarms}
        found = self._read_cached(ctx, eid, fmt.PLUGIN_NAME, wanted, lambda _, points, warn: to_alarm(points))
        return {run: sorted(alarm for _, alarm in pairs) for run, pairs in found.items() if pairs}

    def read_alarm_statuses(self, ctx, eid: str, listings: dict[str, RunListing]) -> dict[str, dict]:
        """{run: its alarm status (see :func:`nas_logger.format.parse_alarm_status`)} of the runs whose listing
        has an alarm status record: its unnamed monitor's, else its first named one's; the record of its last
        step. A record that is no valid status is logged once and the run left out."""
        wanted = {run: [listing.statuses[min(listing.statuses, key=monitor_order)]]
                  for run, listing in listings.items() if listing.statuses}
        found = self._read_cached(ctx, eid, fmt.PLUGIN_NAME, wanted, lambda _, points, warn: to_status(points, warn))
        return {run: pairs[0][1] for run, pairs in found.items() if pairs}

    def probe_monitor(self, ctx, eid: str, run: str, listing: RunListing) -> tuple[str | None] | None:
        """``(monitor,)`` of the first of the run's monitors (unnamed first) whose probe image this data
        provider can read, or ``None``."""
        if listing.probes:
            return (min(listing.probes, key=monitor_order),)
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
                                  lambda _, points, warn: to_png(points, warn))[run]
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
                    "TensorBoard with --load_fast=false can, and nas_logger also writes it as a NAS record")
                self._warn_once(("probe", run), "nas: %s", unreadable)
                return unreadable

        image = self._cached((eid, run, IMAGES_PLUGIN, tag), (listed.max_step, listed.max_wall_time), load)
        if isinstance(image, ProbeUnreadable):
            raise ProbeUnreadable(str(image))
        return image

    def _cached(self, key: tuple, version: tuple, load):
        """``load()``, cached under ``key`` while the listed ``version`` is unchanged (a small payload)."""
        hit = self._cache.get(SERIES, key, version)
        if hit is MISS:
            hit = load()
            self._cache.put(SERIES, key, version, hit, ENTRY_BYTES + len(hit) if isinstance(hit, bytes) else ENTRY_BYTES)
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


