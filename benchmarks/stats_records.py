"""Stats written once (the stats table, as the monitor writes them) against twice (the table and a
per-layer stats tensor per layer): bytes on disk per logged step and `Monitor.log` time for a
6-layer and a 50-layer model, with a probe (stats and heatmaps) and streaming (stats only), then the `lines` route's warm and cold latency on each data provider for
runs of both forms, served side by side by one TensorBoard app. The variants alternate within each round;
the log-time ratio is the median of the per-round ratios with their lowest-highest.

    python benchmarks/stats_records.py [--rounds 3] [--logs 20] [--steps 300]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.tensorboard import SummaryWriter

import nas_logger
from nas_logger import format as fmt
from nas_logger import monitor as monitor_module
from nas_logger.summaries import nas_summary, step_summary
from nas_logger.writer import file_writer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from plugin_latency import client_for, python_provider, rust_provider, time_routes  # noqa: E402
from rounds import ratios, spread  # noqa: E402

DEPTHS = (6, 50)
RUNS_PER_FORM = 3


def twice(layers, records, table_layers, written, alarm_layers=None, monitor=None, step_unit=fmt.DEFAULT_STEP_UNIT):
    """``step_summary`` plus a per-layer stats tensor for every row of the table: the former output."""
    summary = step_summary(layers, records, table_layers, written, alarm_layers, monitor, step_unit)
    for name, (stats, _) in records.items():
        if name in table_layers:
            layer = layers[name].in_monitor(monitor)
            tag = fmt.tag_for(layer.name, fmt.STATS)
            summary.value.extend(nas_summary(layer, fmt.STATS, stats, tag not in written, step_unit).value)
            written.add(tag)
    return summary


FORMS = {"once": step_summary, "twice": twice}


def conv_stack(depth: int) -> nn.Module:
    return nn.Sequential(*[m for _ in range(depth) for m in (nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())])


def event_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.glob("events.out.tfevents.*"))


def measure_monitor(root: Path, depth: int, form: str, mode: str, logs: int) -> tuple[float, float]:
    """(bytes per logged step, median seconds per ``log``) of a monitor writing ``form`` with
    ``statistics=mode``; the first log (metadata, probe image) is left out of both. Streaming measures
    one forward of the batch before each log (not timed)."""
    monitor_module.step_summary = FORMS[form]
    try:
        path = Path(tempfile.mkdtemp(dir=root))
        torch.manual_seed(0)
        model, batch = conv_stack(depth), torch.randn(64, 8, 16, 16)
        probe = {"probe": batch} if mode == "probe" else {"statistics": "stream"}
        with nas_logger.watch(model, path, **probe) as monitor:
            model(batch)
            monitor.log(0, test_loss=1.0)
            start_bytes = event_bytes(path)
            seconds = []
            for step in range(1, logs + 1):
                model(batch)
                start = time.perf_counter()
                monitor.log(step, test_loss=1.0 / step)
                seconds.append(time.perf_counter() - start)
        return (event_bytes(path) - start_bytes) / logs, statistics.median(seconds)
    finally:
        monitor_module.step_summary = step_summary


def write_runs(logdir: Path, steps: int) -> dict[str, tuple[int, int]]:
    """Runs ``<form>/<depth>/seed<k>`` of random stats and 8x8 heatmaps; {run: (NAS tags, last step)}."""
    rng = np.random.default_rng(0)
    expected = {}
    for depth in DEPTHS:
        layers = {f"conv{d}": fmt.LayerInfo(f"conv{d}", "conv2d", 8, 64, d) for d in range(depth)}
        for seed in range(RUNS_PER_FORM):
            for form, summarise in FORMS.items():
                run = f"{form}/{depth}/seed{seed}"
                writer = SummaryWriter(str(logdir / run))
                written: set[str] = set()
                for step in range(steps):
                    stats = np.sort(rng.random((depth, len(fmt.STAT_FIELDS))), axis=1).astype(np.float32)
                    records = {name: (stats[i], rng.random((8, 8), dtype=np.float32)) for i, name in enumerate(layers)}
                    file_writer(writer).add_summary(summarise(layers, records, list(layers), written), step)
                    writer.add_scalar("test_loss", 1.0 / (step + 1), step)
                writer.close()
                expected[run] = ((2 if form == "twice" else 1) * depth + 1, steps - 1)
    return expected


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--logs", type=int, default=20, help="monitor.log calls per variant and round")
    parser.add_argument("--steps", type=int, default=300, help="steps of each served run")
    parser.add_argument("--repeats", type=int, default=9, help="requests per route (3 of them cold)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="nas_stats_records_"))

    print(f"monitor: conv stacks, probe 64 x 8 x 16 x 16, {args.logs} logs per variant and round, {args.rounds} rounds")
    print(f"{'mode':>6s} {'layers':>6s} {'form':>6s} {'bytes/step':>10s} {'log ms':>8s}")
    for mode in ("probe", "stream"):
        for depth in DEPTHS:
            found = {form: ([], []) for form in FORMS}
            for _ in range(args.rounds):
                for form in FORMS:
                    size, seconds = measure_monitor(root, depth, form, mode, args.logs)
                    found[form][0].append(size)
                    found[form][1].append(seconds)
            for form, (sizes, seconds) in found.items():
                print(f"{mode:>6s} {depth:6d} {form:>6s} {statistics.median(sizes):10.0f} "
                      f"{statistics.median(seconds) * 1e3:8.2f}")
            once, both = (found[f] for f in FORMS)
            log_time = ratios({"once": once[1], "twice": both[1]}, "twice")["once"]
            print(f"{mode:>6s} {depth:6d}  once/twice: bytes {statistics.median(once[0]) / statistics.median(both[0]):.2f}, "
                  f"log time {spread(log_time, digits=2)}")

    logdir = root / "served"
    start = time.perf_counter()
    expected = write_runs(logdir, args.steps)
    print(f"\nwrote {len(expected)} runs of {args.steps} steps in {time.perf_counter() - start:.1f} s")
    routes = {f"lines {form} {depth} layers": f"/data/plugin/nas/lines?run={form}%2F{depth}%2Fseed0"
              for depth in DEPTHS for form in FORMS}
    def loaded(dp, ctx) -> bool:
        tensors = dp.list_tensors(ctx, experiment_id="", plugin_name=fmt.PLUGIN_NAME)
        return all(len(tensors.get(run, {})) == count and all(t.max_step == last for t in tensors[run].values())
                   for run, (count, last) in expected.items())

    loaders = [("rust", lambda: rust_provider(logdir, ready=loaded)),
               ("python", lambda: (python_provider(logdir)[0], None))]
    for name, load in loaders:
        provider, ingester = load()
        try:
            timed = time_routes({"this": client_for(logdir, provider)}, routes, args.repeats, ("warm", "cold"))["this"]
        finally:
            if ingester is not None:
                ingester._stdin_handle.close()  # the data server runs with --die-after-stdin
        print(f"\n{name} provider: {'route':26s} {'warm ms':>8s} {'cold ms':>8s}")
        results = {route: [statistics.median(measured[level][0]) for level in ("warm", "cold")]
                   for route, measured in timed.items()}
        for route, (warm, cold) in results.items():
            print(f"{'':16s}{route:26s} {warm * 1e3:8.1f} {cold * 1e3:8.1f}")
        for depth in DEPTHS:
            once, both = results[f"lines once {depth} layers"], results[f"lines twice {depth} layers"]
            print(f"{'':16s}{depth} layers once/twice: warm {once[0] / both[0]:.2f}, cold {once[1] / both[1]:.2f}")


if __name__ == "__main__":
    main()
