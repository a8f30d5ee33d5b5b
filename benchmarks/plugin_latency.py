"""Latency of the NAS plugin's `lines` and `stripes` routes against TensorBoard's own scalars route.

Builds a log dir of 9 runs (3 groups x 3 seeds) x 50 layers x 300 steps (stats + heatmaps, written
directly with `nas_logger.summaries.step_summary`, as the monitor writes them), plus one scalar series of 50 x 300 = 15,000 points.
Then, in this process, serves it through TensorBoard's WSGI app with the NAS and scalars plugins on
each data provider TensorBoard uses: the Rust data server's gRPC provider (the default path; the data
server runs as a subprocess, as under `tensorboard`) and MultiplexerDataProvider (`--load_fast=false`).
It prints the median latency of each NAS route as a ratio to `/data/plugin/scalars/scalars` serving
the same number of points (15,000), warm (the plugin's cache filled: the same request again), cold
(its listings, series and response bodies forgotten before the request, as after new data arrived in every
run) and view (its bodies forgotten: another view of data already read), and the response sizes; between
checkouts, also the ratios of the CPU time a request costs this process and the data server.

Then the run list at many runs (`--many-runs`, default 10,000 tiny runs of 2 layers x 2 steps in 50
groups): the NAS `runs` route against TensorBoard's own `/data/runs` on the Rust data server, warm (the
same plugin asked again, as every open tab does on each refresh) and cold (a fresh plugin, as after a
restart of TensorBoard). Beside it, `lines` of one of those groups (a
grouping of every run name, and the listings of its runs). `--many-layers` gives those runs more layers (a stats table's metadata lists them
all, an index record's none). `--many-before-index` writes those runs as nas_logger did before the index
record (listed by their stats tables); `--skip-routes` runs only this part.

`--compare-with CHECKOUT` adds another checkout's plugin (e.g. the main branch's) on the same data server,
in the same alternating rounds, to both parts; `--without KIND` (repeatable) adds this checkout's plugin
whose cache keeps no entry of that kind (`nas_tb_plugin.cache.KINDS`: "listings", "series", "bodies", ...),
to measure what each kind saves; `--reload-interval S` tells the plugins TensorBoard's reload interval, so that
they reuse listings between requests for a part of it, and adds one not told it.

    python benchmarks/plugin_latency.py [--logdir DIR] [--repeats 9] [--only rust|python]
                                        [--many-runs 10000] [--many-logdir DIR] [--many-layers 2]
                                        [--many-before-index]
                                        [--compare-with CHECKOUT] [--without KIND ...] [--reload-interval S]
                                        [--skip-routes]
"""
from __future__ import annotations

import argparse
import gzip
import importlib
import importlib.util
import statistics
import tempfile
import time
from pathlib import Path

import sys

import numpy as np
from tensorboard import context
from tensorboard.backend import application
from tensorboard.data import server_ingester
from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
from tensorboard.plugins import base_plugin
from tensorboard.plugins.core import core_plugin
from tensorboard.plugins.scalar import scalars_plugin
from tensorboard.util import grpc_util
from torch.utils.tensorboard import SummaryWriter
from werkzeug import test as werkzeug_test

from nas_logger import format as fmt
from nas_logger.summaries import step_summary
from nas_logger.writer import file_writer
from nas_tb_plugin import cache
from nas_tb_plugin.plugin import NASPlugin
from rounds import ratios, spread

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from reliability_support import write_synthetic_runs  # noqa: E402

RUNS = [f"{group}/seed{seed}" for group in ("vanilla", "dropnet", "nasreg") for seed in range(3)]
LAYERS, STEPS = 50, 300
POINTS = LAYERS * STEPS
BASELINE_RUN, BASELINE_TAG = "baseline", "points"


def heatmap_side(depth: int) -> int:
    return max(1, 32 >> (depth // 10))  # 32x32 for the first 10 layers ... 2x2 for the last 10


def write_logdir(path: Path) -> None:
    rng = np.random.default_rng(0)
    for r, run in enumerate(RUNS):
        layers = {f"block{d // 5}.conv{d % 5}": fmt.LayerInfo(f"block{d // 5}.conv{d % 5}", "conv2d", 64,
                                                              heatmap_side(d) ** 2, d) for d in range(LAYERS)}
        writer = SummaryWriter(str(path / run))
        events = file_writer(writer)
        written: set[str] = set()
        for step in range(STEPS):
            records = {}
            for name, layer in layers.items():
                stats = np.sort(rng.random(len(fmt.STAT_FIELDS) - 1)).astype(np.float32)
                stats = np.append(stats, stats.mean()).astype(np.float32)
                side = heatmap_side(layer.depth)
                records[name] = (stats, rng.random((side, side), dtype=np.float32))
            events.add_summary(step_summary(layers, records, list(layers), written), step)
            writer.add_scalar("test_loss", (step - 100) ** 2 / 1e4 + r * 0.01, step)
        writer.close()
    writer = SummaryWriter(str(path / BASELINE_RUN))
    for step in range(POINTS):
        writer.add_scalar(BASELINE_TAG, float(step % 97), step)
    writer.close()


def python_provider(logdir: Path):
    """TensorBoard's --load_fast=false loading with NASLoader's `nas=0` and every scalar kept."""
    multiplexer = plugin_event_multiplexer.EventMultiplexer(
        tensor_size_guidance={fmt.PLUGIN_NAME: 0, "scalars": 0})
    multiplexer.AddRunsFromDirectory(str(logdir))
    multiplexer.Reload()
    return data_provider.MultiplexerDataProvider(multiplexer, str(logdir)), None


def loaded(dp, ctx) -> bool:
    """Whether the data server has read every run of write_logdir: per run the heatmap of every layer and
    the stats table, to the last step, and the baseline scalars."""
    tensors = dp.list_tensors(ctx, experiment_id="", plugin_name=fmt.PLUGIN_NAME)
    scalars = dp.list_scalars(ctx, experiment_id="", plugin_name="scalars")
    series = [tensors.get(run, {}) for run in RUNS]
    baseline = scalars.get(BASELINE_RUN, {}).get(BASELINE_TAG)
    return (all(len(tags) == LAYERS + 1 and all(t.max_step == STEPS - 1 for t in tags.values()) for tags in series)
            and baseline is not None and baseline.max_step == POINTS - 1)


def rust_provider(logdir: Path, ready=loaded):
    """The Rust data server (a subprocess, as `tensorboard` starts it) with `nas` and scalars kept, once
    ``ready(provider, ctx)``."""
    ingester = server_ingester.SubprocessServerDataIngester(
        server_ingester.get_server_binary(), str(logdir), reload_interval=0,
        channel_creds_type=grpc_util.ChannelCredsType.LOCAL,
        samples_per_plugin={fmt.PLUGIN_NAME: 0, fmt.INDEX_PLUGIN_NAME: 1, "scalars": 0})  # as NASLoader asks
    ingester.start()
    dp, ctx = ingester.data_provider, context.RequestContext()
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and not ready(dp, ctx):  # the data server loads in the background
        time.sleep(1)
    return dp, ingester


def without(kind: str):
    """NASPlugin whose cache never keeps entries of ``kind`` (a :data:`nas_tb_plugin.cache.KINDS` name)."""
    (dropped,) = [k for k in cache.KINDS if k.name == kind]

    def drop_puts(plugin) -> None:
        kept = plugin.routes.cache
        put = kept.put
        kept.put = lambda kind_, *args: None if kind_ == dropped else put(kind_, *args)

    def make(context_):
        plugin = NASPlugin(context_)
        drop_puts(plugin)
        plugin.made_anew = drop_puts  # see forget
        return plugin
    return make


def told_reload_interval(make, seconds: float):
    """``make`` given a context whose flags say TensorBoard reloads every ``seconds`` (the plugin then reuses
    listings for a part of it, see nas_tb_plugin/sharing.py)."""
    def made(context_):
        return make(base_plugin.TBContext(logdir=context_.logdir, data_provider=context_.data_provider,
                                          sampling_hints=context_.sampling_hints,
                                          flags=argparse.Namespace(reload_interval=seconds)))
    return made


def plugin_classes(args) -> dict:
    """{label: plugin class or factory} of the plugins timed side by side: this checkout's, ``--compare-with``'s,
    and this checkout's without each ``--without`` kind; with ``--reload-interval`` each told it, and this
    checkout's not told it (listings then not reused between requests) beside them."""
    classes = {"": NASPlugin}
    if args.compare_with is not None:
        classes[str(args.compare_with)] = plugin_class_of(args.compare_with)
    classes.update({f"without {kind}": without(kind) for kind in args.without})
    if args.reload_interval:
        classes = {label: told_reload_interval(make, args.reload_interval) for label, make in classes.items()}
        classes["reload interval not told"] = NASPlugin
    return classes


def forget_cold(plugin, view: bool = False) -> None:
    """Forget the listings, converted series and kept bodies, as after new data arrived for every run; with
    ``view`` only the bodies, as for another view of data already read."""
    routes = plugin._routes
    package = sys.modules[type(plugin).__module__.rpartition(".")[0] + ".cache"] if hasattr(routes, "cache") else None
    if package is not None:
        routes.cache.drop(*((package.BODY,) if view else (package.LISTING, package.SERIES, package.BODY)))
        return
    reader = routes._reader  # a checkout with a cache per kind: made anew by the classes of its own checkout
    if not view:
        reader._listings = type(reader._listings)(0.0)
        reader._cache = type(reader._cache)(10**8)
    routes._bodies = type(routes._bodies)(96 * 2**20)


def client_for(logdir: Path, provider, plugin_class=NASPlugin):
    """fetch(url, level="warm") through TensorBoard's WSGI app with the NAS (``plugin_class``) and scalars
    plugins; level "cold" or "view" forgets first what :func:`forget_cold` says."""
    context_ = base_plugin.TBContext(logdir=str(logdir), data_provider=provider,
                                     sampling_hints={"scalars": 10**6})
    plugin = plugin_class(context_)
    app = application.TensorBoardWSGI([plugin, scalars_plugin.ScalarsPlugin(context_)], data_provider=provider)
    client = werkzeug_test.Client(app)

    def fetch(url: str, level: str = "warm") -> bytes:
        if level != "warm":
            forget_cold(plugin, view=level == "view")
        response = client.get(url, headers={"Accept-Encoding": "gzip"})
        assert response.status_code == 200, (url, response.status_code, response.get_data()[:300])
        return response.get_data()

    return fetch


def cpu_seconds() -> float:
    """CPU time of this process (every thread) and of its children (the Rust data server, every thread, from
    /proc's schedstat, in nanoseconds): what a request costs the machine, less the time other jobs hold it."""
    children = 0
    for task in Path("/proc/self/task").iterdir():
        for child in (task / "children").read_text().split():
            for stat in Path(f"/proc/{child}/task").glob("*/schedstat"):
                try:
                    children += int(stat.read_text().split()[0])
                except (OSError, ValueError):  # a thread that ended meanwhile
                    pass
    return time.process_time() + children / 1e9


LEVEL_ORDER = ("cold", "view", "warm")


def time_routes(fetchers: dict, routes: dict[str, str], repeats: int, levels: tuple[str, ...]) -> dict:
    """{checkout: {name: {level: ([wall seconds], [CPU seconds]) per round, "sizes": (gzip bytes, raw bytes)}}}
    of each checkout's ``fetchers[checkout]`` (the first one's serves the baseline, warm only); requests
    interleaved, route by route, checkout by checkout (a different one first in each round) and level by
    level, so that drift hits every one alike.
    Levels: "warm" (the same request again), "cold" and "view" (see client_for)."""
    results = {}
    for checkout, fetch in fetchers.items():
        named = routes if not results else {n: u for n, u in routes.items() if n != BASELINE}
        results[checkout] = {name: {"sizes": sizes(fetch(url))} for name, url in named.items()}
    for round_ in range(repeats):
        turn = round_ % len(fetchers)  # each checkout first in its turn: no place in the round favours one
        order = list(fetchers.items())[turn:] + list(fetchers.items())[:turn]
        for name, url in routes.items():
            for checkout, fetch in order:
                timed = results[checkout].get(name)
                # Cold first: warm is then the same request again, whatever the route before left forgotten.
                for level in sorted(levels, key=LEVEL_ORDER.index) if name != BASELINE else ("warm",):
                    if timed is None:
                        break
                    cpu, start = cpu_seconds(), time.perf_counter()
                    fetch(url, level)
                    wall = time.perf_counter() - start
                    walls, cpus = timed.setdefault(level, ([], []))
                    walls.append(wall)
                    cpus.append(cpu_seconds() - cpu)
    return results


def sizes(body: bytes) -> tuple[int, int]:
    """(bytes sent, bytes once unzipped) of a response body."""
    return len(body), len(gzip.decompress(body)) if body[:2] == b"\x1f\x8b" else len(body)


def report(title: str, results: dict, levels: tuple[str, ...]) -> None:
    """The routes' median wall times of each checkout and level, as ratios to the first checkout's baseline
    (warm), then each other checkout's per-round ratios to the first one's, wall and CPU (median,
    lowest-highest)."""
    first = next(iter(results.values()))
    base = statistics.median(first[BASELINE]["warm"][0])
    print(f"\n{title}")
    print(f"{'route':46s}" + "".join(f" {level + ' ms':>9s} {'x base':>7s}" for level in levels)
          + f" {'gzip KiB':>9s} {'raw KiB':>8s}")
    for checkout, timed in results.items():
        for name, measured in timed.items():
            label = f"{checkout}: {name}" if checkout else name
            cells = ""
            for level in levels:
                walls = measured.get(level)
                cells += (f" {statistics.median(walls[0]) * 1e3:9.1f} {statistics.median(walls[0]) / base:7.2f}"
                          if walls else f" {'-':>9s} {'-':>7s}")
            zipped, raw = measured["sizes"]
            print(f"{label:46s}{cells} {zipped / 1024:9.1f} {raw / 1024:8.1f}")
    for checkout, timed in list(results.items())[1:]:
        print(f"{checkout} / this checkout, per round (wall; CPU of this process and the data server):")
        for name, measured in timed.items():
            for level in levels:
                mine, theirs = first[name][level], measured[level]
                wall = spread(ratios({"c": theirs[0], "m": mine[0]}, "m")["c"], digits=2)
                cpu = spread(ratios({"c": theirs[1], "m": mine[1]}, "m")["c"], digits=2)
                print(f"  {name:44s} {level:5s} wall {wall}; CPU {cpu}")


BASELINE = "scalars (baseline)"
ROUTES = {
    BASELINE: f"/data/plugin/scalars/scalars?run={BASELINE_RUN}&tag={BASELINE_TAG}",
    "lines run (15k points)": "/data/plugin/nas/lines?run=vanilla%2Fseed0",
    "stripes run (15k points)": "/data/plugin/nas/stripes?run=vanilla%2Fseed0",
    "lines group (3 runs -> 15k points)": "/data/plugin/nas/lines?group=vanilla",
    "stripes group (3 runs -> 15k points)": "/data/plugin/nas/stripes?group=vanilla",
    "runs (9 runs)": "/data/plugin/nas/runs",
    "heatmaps run, one step (50 layers)": "/data/plugin/nas/heatmaps?run=vanilla%2Fseed0&step=150",
}


MANY_GROUPS = 50


def many_runs(count: int) -> list[str]:
    return [f"group{k % MANY_GROUPS:02d}/seed{k // MANY_GROUPS}" for k in range(count)]


def plugin_class_of(checkout: Path):
    """NASPlugin of another checkout's ``nas_tb_plugin`` (imported as ``other_nas_tb_plugin``; it reads
    the event files through this checkout's ``nas_logger.format``)."""
    package = checkout / "nas_tb_plugin"
    spec = importlib.util.spec_from_file_location("other_nas_tb_plugin", package / "__init__.py",
                                                  submodule_search_locations=[str(package)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return importlib.import_module("other_nas_tb_plugin.plugin").NASPlugin


def forget(plugin) -> None:
    """What a restarted TensorBoard knows of its runs: nothing (its routes made anew, in place, as the app holds
    them)."""
    routes = plugin._routes
    routes.__init__(routes._reader.data_provider, routes._frontend)
    getattr(plugin, "made_anew", lambda plugin: None)(plugin)
    grouping = sys.modules[type(plugin).__module__.rpartition(".")[0] + ".grouping"]
    if hasattr(grouping, "_memo"):  # a checkout that memoises group keys per module
        grouping._memo.cache_clear()


def time_run_list(logdir: Path, count: int, repeats: int, classes: dict, layers: int = 2,
                  before_index: bool = False) -> None:
    """The NAS `runs` route against TensorBoard's `/data/runs` on ``count`` runs (Rust data server), of the
    plugins ``classes`` ({label: class}, see plugin_classes)."""
    runs = many_runs(count)
    if not (logdir / runs[-1]).exists():
        start = time.perf_counter()
        write_synthetic_runs(logdir, runs, layers=layers, index=not before_index)
        print(f"\nwrote {count} runs of {layers} layers x 2 steps{' without index records' if before_index else ''} "
              f"to {logdir} in {time.perf_counter() - start:.1f} s")
    provider, ingester = rust_provider(
        logdir, ready=lambda dp, ctx: len(dp.list_tensors(ctx, experiment_id="", plugin_name=fmt.PLUGIN_NAME)) >= count)
    try:
        context_ = base_plugin.TBContext(logdir=str(logdir), data_provider=provider)
        plugins = {label: make(context_) for label, make in classes.items()}
        clients = {name: werkzeug_test.Client(application.TensorBoardWSGI(
            [plugin, core_plugin.CorePlugin(context_)], data_provider=provider)) for name, plugin in plugins.items()}

        def fetcher(checkout: str):
            def fetch(url: str, level: str = "warm") -> bytes:
                if level == "cold":
                    forget(plugins[checkout])
                response = clients[checkout].get(url, headers={"Accept-Encoding": "gzip"})
                assert response.status_code == 200, (url, response.status_code, response.get_data()[:300])
                return response.get_data()
            return fetch

        fetchers = {checkout: fetcher(checkout) for checkout in plugins}
        routes = {BASELINE: "/data/runs", f"runs ({count} runs)": "/data/plugin/nas/runs",
                  f"lines group ({count // MANY_GROUPS} of {count} runs)": "/data/plugin/nas/lines?group=group00"}
        for fetch in fetchers.values():
            listed = fetch(routes[f"runs ({count} runs)"])
            assert listed[:2] == b"\x1f\x8b" and gzip.decompress(listed).count(b'"max_step"') == count
        results = time_routes(fetchers, routes, repeats, ("warm", "cold"))
        written = "written before the index record" if before_index else "with index records"
        report(f"run list, {count} runs of {layers} layers in {MANY_GROUPS} groups, {written} (Rust data server); "
               "baseline: TensorBoard's /data/runs; cold: a fresh plugin", results, ("warm", "cold"))
    finally:
        ingester._stdin_handle.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--logdir", type=Path, help="reuse or create this log dir (default: a temp dir)")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--only", choices=["rust", "python"], help="measure one data provider only")
    parser.add_argument("--many-runs", type=int, default=10_000, help="runs of the run-list benchmark (0: skip it)")
    parser.add_argument("--many-logdir", type=Path, help="reuse or create this log dir for it (default: a temp dir)")
    parser.add_argument("--many-layers", type=int, default=2, help="layers of each of the many runs")
    parser.add_argument("--many-before-index", action="store_true",
                        help="write the many runs without index records, as nas_logger did before them")
    parser.add_argument("--compare-with", type=Path, metavar="CHECKOUT",
                        help="also time this checkout's plugin (e.g. a main worktree) in the same rounds")
    parser.add_argument("--without", action="append", default=[], choices=[kind.name for kind in cache.KINDS],
                        metavar="KIND", help="also time this checkout's plugin without this kind of cache entry "
                        f"(repeatable; one of {', '.join(repr(kind.name) for kind in cache.KINDS)})")
    parser.add_argument("--reload-interval", type=float, metavar="S",
                        help="tell the plugins TensorBoard's --reload_interval (default: not told, as before a flag is "
                        "known), and time one not told beside them")
    parser.add_argument("--skip-routes", action="store_true", help="only the run-list benchmark")
    args = parser.parse_args()
    if args.many_runs:
        time_run_list(args.many_logdir or Path(tempfile.mkdtemp(prefix="nas_bench_runs_")), args.many_runs,
                      args.repeats, plugin_classes(args), args.many_layers, args.many_before_index)
    if args.skip_routes:
        return
    logdir = args.logdir or Path(tempfile.mkdtemp(prefix="nas_bench_"))
    if not (logdir / BASELINE_RUN).exists():
        start = time.perf_counter()
        write_logdir(logdir)
        print(f"wrote {len(RUNS)} runs x {LAYERS} layers x {STEPS} steps to {logdir} "
              f"in {time.perf_counter() - start:.1f} s")
    providers = [("rust", rust_provider, "Rust data server, gRPC provider (default `tensorboard` path)"),
                 ("python", python_provider, "MultiplexerDataProvider (`--load_fast=false` path)")]
    for name, make, title in providers:
        if args.only and args.only != name:
            continue
        start = time.perf_counter()
        provider, ingester = make(logdir)
        print(f"\n{name}: loaded in {time.perf_counter() - start:.1f} s")
        try:
            fetchers = {label: client_for(logdir, provider, make) for label, make in plugin_classes(args).items()}
            levels = ("warm", "cold", "view")
            report(title, time_routes(fetchers, ROUTES, args.repeats, levels), levels)
        finally:
            if ingester is not None:
                ingester._stdin_handle.close()  # the data server runs with --die-after-stdin


if __name__ == "__main__":
    main()
