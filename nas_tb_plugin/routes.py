"""HTTP handlers of the ``nas`` plugin (all under ``/data/plugin/nas/``; see README "HTTP API").

Bad or unknown parameters give 400/404 with ``{"error": message, "parameter": name}``; an unexpected
failure is logged with its traceback and answered with a JSON 500 that holds no traceback (the encoding
of every response: :mod:`.responses`).
"""
from __future__ import annotations

import csv
import io
import re
import urllib.parse
from dataclasses import asdict
from pathlib import Path

import numpy as np
from tensorboard.backend import http_util

from nas_logger import format as fmt

from . import assets, lines, parameters
from .aggregate import align
from .cache import BODY, CACHE_BYTES, MISS, VersionedCache
from .grouping import DEFAULT_GROUP_REGEX, Pattern
from .listing import PARALLEL_CALLS, RunListing
from .overfit import default_loss_tag
from .reading import ProbeUnreadable, Reader
from .responses import (JSON, ApiError, Body, csv_floats, encode, endpoint, image_type, json_floats, json_response,
                        step_json, steps_json)
from .selection import Selection, Selections, Selector

STATIC_PREFIX = f"/data/plugin/{fmt.PLUGIN_NAME}/static/"


class Routes:
    """The plugin's WSGI apps; ``frontend_dir`` holds ``index.js`` and the other static files.

    Each ``*_route`` parses and validates its request, selects what it shows (:mod:`.selection`, which lists
    it), and answers the body kept under the listed versions of everything it is made from, else the one its
    ``*_impl(ctx, eid, ...)`` makes without seeing the request (TensorBoard's scalars plugin's split): a view
    that every open tab asks for again costs its listing calls only. Everything kept between requests is in
    one :class:`.cache.VersionedCache` of ``cache_bytes``.
    """

    def __init__(self, data_provider, frontend_dir: Path | None, listing_max_age: float = 0.0,
                 cache_bytes: int = CACHE_BYTES) -> None:
        self._cache = VersionedCache(cache_bytes)
        self._reader = Reader(data_provider, self._cache, listing_max_age)
        self._selections = Selections(self._reader, self._cache)
        self._frontend = frontend_dir

    @property
    def cache(self) -> VersionedCache:
        """Everything the plugin keeps between requests (``cache.kept_bytes``: the bytes of each kind)."""
        return self._cache

    def apps(self) -> dict:
        return {
            "/index.js": self.index_js_route,
            "/static/*": self.static_route,
            "/runs": self.runs_route,
            "/run": self.run_route,
            "/lines": self.lines_route,
            "/stripes": self.stripes_route,
            "/heatmap": self.heatmap_route,
            "/heatmaps": self.heatmaps_route,
            "/steps": self.steps_route,
            "/probe": self.probe_route,
            "/export": self.export_route,
        }

    # --- routes: parse, validate, select, respond with the kept body or a new one ----------------

    @endpoint
    def runs_route(self, request):
        ctx, eid = parameters.where(request)
        pattern = parameters.pattern(request)
        versions = self._reader.run_versions(ctx, eid)
        key = ("runs", eid, pattern.pattern)
        body = self._kept(key, versions) or self._keep(key, versions, self.runs_impl(eid, versions, pattern))
        return body.respond(request, JSON)

    @endpoint
    def run_route(self, request):
        return json_response(request, self.run_impl(*parameters.where(request), parameters.arg(request, "run", required=True)))

    @endpoint
    def lines_route(self, request):
        ctx, eid, sel, loss_tags, key = self._selected(request, "lines")
        body = self._kept(key, sel.listed) or self._keep(key, sel.listed, self.lines_impl(ctx, eid, sel, loss_tags))
        return body.respond(request, JSON)

    @endpoint
    def stripes_route(self, request):
        ctx, eid, sel, loss_tags, key = self._selected(request, "stripes")
        body = self._kept(key, sel.listed) or self._keep(key, sel.listed, self.stripes_impl(ctx, eid, sel, loss_tags))
        return body.respond(request, JSON)

    def _selected(self, request, route: str) -> tuple:
        """(ctx, eid, selection with scalar tags, loss tags, key of the body) of a ``route`` request of a run or
        group with overlays."""
        ctx, eid = parameters.where(request)
        selector, loss_tags = parameters.selector(request), parameters.loss_tags(request)
        sel = self._selections.select(ctx, eid, selector, scalars=True)
        return ctx, eid, sel, loss_tags, (route, eid, sel.kind, sel.name, loss_tags)

    @endpoint
    def export_route(self, request):
        output = parameters.arg(request, "format") or "csv"
        if output != "csv":
            raise ApiError(400, f"format must be 'csv'; got {output!r}", "format")
        ctx, eid = parameters.where(request)
        sel = self._selections.select(ctx, eid, parameters.selector(request))
        key = ("export", eid, sel.kind, sel.name)
        text = self._kept(key, sel.listed) or self._keep(key, sel.listed, self.export_impl(ctx, eid, sel))
        headers = [("Content-Disposition", f'attachment; filename="{_export_filename(sel)}"')]
        return text.respond(request, "text/csv", headers=headers)

    @endpoint
    def heatmap_route(self, request):
        run, layer = parameters.arg(request, "run", required=True), parameters.arg(request, "layer", required=True)
        step, probe = parameters.int_arg(request, "step"), parameters.probe_arg(request)
        ctx, eid = parameters.where(request)
        listing = self._selections.run(ctx, eid, run)
        key, version = ("heatmap", eid, run, layer, step, probe), self._heatmap_version(ctx, eid, run, listing)
        body = self._kept(key, version) or self._keep(key, version, self.heatmap_impl(ctx, eid, run, listing, layer,
                                                                                     step, probe))
        return body.respond(request, JSON)

    @endpoint
    def heatmaps_route(self, request):
        run = parameters.arg(request, "run", required=True)
        step, probe = parameters.int_arg(request, "step"), parameters.probe_arg(request)
        ctx, eid = parameters.where(request)
        listing = self._selections.run(ctx, eid, run)
        key, version = ("heatmaps", eid, run, step, probe), self._heatmap_version(ctx, eid, run, listing)
        body = self._kept(key, version) or self._keep(key, version, self.heatmaps_impl(ctx, eid, run, listing, step,
                                                                                      probe))
        return body.respond(request, JSON)

    @endpoint
    def steps_route(self, request):
        run, loss_tags = parameters.arg(request, "run", required=True), parameters.loss_tags(request)
        ctx, eid = parameters.where(request)
        sel = self._selections.select(ctx, eid, Selector(run=run), scalars=True)
        key = ("steps", eid, run, loss_tags)
        body = self._kept(key, sel.listed) or self._keep(key, sel.listed, self.steps_impl(ctx, eid, sel, loss_tags))
        return body.respond(request, JSON)

    @endpoint
    def probe_route(self, request):
        run, monitor = parameters.arg(request, "run", required=True), parameters.arg(request, "monitor")
        image = self.probe_impl(*parameters.where(request), run, monitor, parameters.probe_arg(request))
        return http_util.Respond(request, image, image_type(image))

    @endpoint
    def index_js_route(self, request):
        return self._asset(request, "index.js")

    @endpoint
    def static_route(self, request):
        path = request.path
        if not path.startswith(STATIC_PREFIX):
            raise ApiError(404, "not found", "path")
        return self._asset(request, path[len(STATIC_PREFIX):])

    def _asset(self, request, relative: str):
        found = assets.resolve(self._frontend, relative)
        if found is None:
            raise ApiError(404, f"no frontend file {relative!r}", "path")
        path, content_type = found
        return http_util.Respond(request, path.read_bytes(), content_type)

    def _heatmap_version(self, ctx, eid, run: str, listing: RunListing) -> tuple:
        """What a heatmap response of the run is made from: its NAS listing and, for the probe image's URL,
        where its probe images are read from."""
        return listing.listed, self._reader.probe_version(ctx, eid, run, listing)

    def _kept(self, key: tuple, version) -> Body | None:
        """The body kept under ``key`` if made from ``version`` (the listed versions of everything it is made
        from, listed for this request), else None."""
        body = self._cache.get(BODY, key, version)
        return None if body is MISS else body

    def _keep(self, key: tuple, version, body: dict | str) -> Body:
        """``body`` (JSON, or text) encoded and kept under ``key`` as made from ``version``."""
        kept = Body((body if isinstance(body, str) else encode(body)).encode())
        # Its gzipped copy, made on the first request that accepts gzip, is counted as half its size.
        self._cache.put(BODY, key, version, kept, len(kept.data) * 3 // 2)
        return kept

    # --- implementations: (ctx, experiment id, parsed parameters) -> response body ---------------

    def runs_impl(self, eid: str, versions: dict[str, tuple[int, float]], pattern: Pattern) -> dict:
        """Every run with NAS data (its group; its last logged step and when, which change together whenever
        it logs a step: clients key their caches on them) and the groups, of the run versions that
        :meth:`.listing.Lister.run_versions` lists without a read; the rest of a run (layers, scalar tags,
        step count) is :meth:`run_impl`'s, asked for lazily."""
        groups = self._selections.groups(eid, list(versions), pattern, "runs with NAS data")
        runs = []
        for group, members in groups.items():
            for run in members:
                step, wall_time = versions[run]
                runs.append({"run": run, "group": group.name, "matched": group.matched,
                             "max_step": step_json(step), "wall_time": wall_time})
        runs.sort(key=lambda r: r["run"])
        return {"runs": runs, "groups": [{"group": g.name, "runs": rs, "matched": g.matched} for g, rs in groups.items()],
                "default_group_regex": DEFAULT_GROUP_REGEX}

    def run_impl(self, ctx, eid: str, run: str) -> dict:
        """One run's layers, scalar tags, default loss tag, logged step count, and the last logged step and its
        wall time (as in runs)."""
        listing = self._selections.run(ctx, eid, run)
        logged = self._reader.logged_steps(ctx, eid, {run: listing})[run]
        tags = list(self._reader.list_scalar_tags(ctx, eid, runs=[run]).get(run, {}))
        last = logged is not None and logged.steps.size > 0
        return {
            "run": run,
            "layers": [asdict(l) for l in listing.layers()],
            "scalar_tags": tags,
            "loss_tag": default_loss_tag(tags),
            "steps": logged.steps.size if last else 0,
            "max_step": step_json(logged.steps[-1]) if last else None,
            "wall_time": float(logged.wall_times[-1]) if last else None,
            "alarm_status": self._reader.read_alarm_statuses(ctx, eid, {run: listing}),
        }

    def lines_impl(self, ctx, eid: str, sel: Selection, loss_tags: tuple[str | None, str | None]) -> dict:
        """Per layer its min/median/max over steps, and the overlays (losses, overfitting step, alarms)."""
        overlay = PARALLEL_CALLS.submit(lines.overlay, self._reader, ctx, eid, sel, loss_tags)  # its reads beside the layers'
        shown, times = lines.layer_lines(self._reader, ctx, eid, sel)
        layers = [
            {"name": l.layer.name, "depth": l.layer.depth, "kind": l.layer.kind, "steps": steps_json(l.stats.steps),
             **{name: json_floats(getattr(l.stats, name)) for name in ("median", "min", "max")}}
            for l in shown
        ]
        return {"layers": layers, **overlay.result(), "runs": sel.runs, "times": times,
                "step_unit": sel.step_unit}

    def stripes_impl(self, ctx, eid: str, sel: Selection, loss_tags: tuple[str | None, str | None]) -> dict:
        """The layers' medians on the union of their steps (layers x steps), and the overlays."""
        overlay = PARALLEL_CALLS.submit(lines.overlay, self._reader, ctx, eid, sel, loss_tags)  # its reads beside the layers'
        shown, times = lines.layer_lines(self._reader, ctx, eid, sel)
        steps, medians = align([(l.stats.steps, l.stats.median) for l in shown])
        return {
            "layers": [l.layer.name for l in shown],
            "depths": [l.layer.depth for l in shown],
            "kinds": [l.layer.kind for l in shown],
            "steps": steps_json(steps),
            "medians": [json_floats(m) for m in medians],
            **overlay.result(),
            "times": times,
            "step_unit": sel.step_unit,
        }

    def export_impl(self, ctx, eid: str, sel: Selection) -> str:
        """CSV text of the layers' min/median/max per step; the step column is named by the step unit
        ("epoch", "global step", ...)."""
        out = io.StringIO()
        writer = csv.writer(out)  # RFC 4180: CRLF rows, so a CR or LF inside a name is quoted
        writer.writerow(["run_or_group", "layer", "depth", _csv_text(sel.step_unit), "min", "median", "max"])
        shown, _ = lines.layer_lines(self._reader, ctx, eid, sel)
        values = iter(csv_floats([a for l in shown for a in (l.stats.min, l.stats.median, l.stats.max)]))
        for line in shown:
            columns = [next(values), next(values), next(values)]
            for i, step in enumerate(line.stats.steps.tolist()):
                writer.writerow([_csv_text(sel.name), _csv_text(line.layer.name), line.layer.depth, step,
                                 *(c[i] for c in columns)])
        return out.getvalue()

    def heatmap_impl(self, ctx, eid: str, run: str, listing: RunListing, layer: str, step: int | None,
                     probe: int = 0) -> dict:
        """One layer's heatmap of probe sample ``probe`` at ``step`` (None: the last), its steps, the
        number of probe samples and the probe image's URL."""
        series = listing.heatmaps.get(layer)
        if series is None:
            raise ApiError(404, f"no heatmap of layer {layer!r} in run {run!r}", "layer")
        steps, maps = self._reader.read_heatmaps(ctx, eid, run, [series])[layer]
        index = _step_index(steps, step)
        grid = maps[index][parameters.pick_probe(len(maps[index]), probe, run)]
        return {"run": run, "layer": layer, "step": step_json(steps[index]), "shape": list(grid.shape),
                "values": json_floats(grid), "steps": steps_json(steps), "probes": len(maps[index]),
                "probe": self._probe_url(ctx, eid, run, listing, probe), "step_unit": listing.step_unit}

    def heatmaps_impl(self, ctx, eid: str, run: str, listing: RunListing, step: int | None, probe: int = 0) -> dict:
        """Every layer's heatmap of probe sample ``probe`` at ``step`` (None: the last of any layer), the
        steps, the number of probe samples (the fewest of any layer) and the probe image's URL."""
        series = sorted(listing.heatmaps.values(), key=lambda s: fmt.layer_order(s.layer))
        data = self._reader.read_heatmaps(ctx, eid, run, series)
        all_steps = np.unique(np.concatenate([data[s.layer.name][0] for s in series] or [np.zeros(0, np.int64)]))
        chosen = int(all_steps[_step_index(all_steps, step)])
        shown = []
        for s in series:
            steps, maps = data[s.layer.name]
            at = np.searchsorted(steps, chosen)
            if at < steps.size and steps[at] == chosen:
                shown.append((s.layer, maps[at]))
        count = min((len(grids) for _, grids in shown), default=1)
        parameters.pick_probe(count, probe, run)
        layers = [{"name": layer.name, "depth": layer.depth, "kind": layer.kind,
                   "shape": list(grids[probe].shape), "values": json_floats(grids[probe])}
                  for layer, grids in shown]
        return {"run": run, "step": step_json(chosen), "steps": steps_json(all_steps), "layers": layers,
                "probes": count, "probe": self._probe_url(ctx, eid, run, listing, probe), "step_unit": listing.step_unit}

    def steps_impl(self, ctx, eid: str, sel: Selection, loss_tags: tuple[str | None, str | None]) -> dict:
        """What the heatmap view draws beside the maps, without them: the run's heatmap steps, the number
        of probe samples at its last step (the fewest of any layer) and the overlays (losses,
        overfitting step, alarms)."""
        (run,) = sel.runs
        overlay = PARALLEL_CALLS.submit(lines.overlay, self._reader, ctx, eid, sel, loss_tags)  # its reads beside the heatmaps'
        data = self._reader.read_heatmaps(ctx, eid, run, list(sel.listings[run].heatmaps.values()))
        steps = np.unique(np.concatenate([s for s, _ in data.values()] or [np.zeros(0, np.int64)]))
        probes = min((len(maps[len(maps) - 1]) for _, maps in data.values() if len(maps)), default=1)
        return {"run": run, "steps": steps_json(steps), "probes": probes, **overlay.result(),
                "step_unit": sel.step_unit}

    def probe_impl(self, ctx, eid: str, run: str, monitor: str | None, probe: int = 0) -> bytes:
        """The encoded image of probe sample ``probe`` of ``monitor`` (None: the run's unnamed one) in ``run``."""
        try:
            images = self._reader.read_probe(ctx, eid, run, self._selections.run(ctx, eid, run), monitor)
        except ProbeUnreadable as e:
            raise ApiError(404, str(e), "run") from None
        if images is None:
            what = f" of monitor {monitor!r}" if monitor is not None else ""
            raise ApiError(404, f"no probe image{what} in run {run!r}", "monitor" if monitor is not None else "run")
        return images[parameters.pick_probe(len(images), probe, run)]

    # --- shared by the implementations ---------------------------------------------------------

    def _probe_url(self, ctx, eid, run: str, listing: RunListing, probe: int = 0) -> str | None:
        """URL of the run's image of probe sample ``probe`` (of its first monitor that logged one), or None
        (also when that monitor logged fewer images, as files from before k probes hold one)."""
        found = self._reader.probe_monitor(ctx, eid, run, listing)
        if found is None:
            return None
        (monitor,) = found
        # A file from before the probe record holds one image (its image summary); a probe record, those it
        # holds, counted only for a later sample: the first one's URL costs no read (a record without PNG
        # images answers the URL with a 404).
        if probe > 0 and probe >= self._reader.probe_count(ctx, eid, run, listing, monitor):
            return None
        # Probe 0 without its parameter: the URL that files from before k probes were linked with.
        return url_for("probe", run=run, monitor=monitor, probe=str(probe) if probe else None)


def _export_filename(sel: Selection) -> str:
    return "nas_" + (re.sub(r"[^A-Za-z0-9._-]+", "_", sel.name).strip("._") or sel.kind) + ".csv"


# First characters that make a spreadsheet read a cell as a formula (OWASP, "CSV Injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_text(text: str) -> str:
    """A text cell of an exported CSV, with a leading ``'`` when a spreadsheet would run it as a formula
    (OWASP's CSV-injection rule; the csv module does the quoting)."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def url_for(route: str, **params: str | None) -> str:
    """``route?k=v&...`` relative to the plugin's routes, every value quoted; None values left out."""
    return route + "?" + urllib.parse.urlencode({k: v for k, v in params.items() if v is not None},
                                                quote_via=urllib.parse.quote, safe="")


def _step_index(steps: np.ndarray, step: int | None) -> int:
    """Index of ``step`` in sorted ``steps`` (the last one for ``None``); 404 when absent."""
    if steps.size == 0:
        raise ApiError(404, "no heatmap steps logged", "step")
    if step is None:
        return steps.size - 1
    at = int(np.searchsorted(steps, step))
    if at == steps.size or steps[at] != step:
        raise ApiError(404, f"no heatmap at step {step}", "step")
    return at
