"""Load on a real TensorBoard serving the NAS plugin: throughput, latency, errors and peak memory.

Builds a log dir of 50 runs (10 groups x 5 seeds) x 12 layers x 100 steps (stats + 16x16 heatmaps,
written directly with `nas_logger.summaries.nas_summary`) plus a `test_loss` scalar per run, starts
`python -m tensorboard.main` on it (Rust data server, reload every second, loopback only) and runs 8
concurrent clients (threads, one HTTP request at a time each) against a realistic mix of the plugin's
routes. Before that, as a baseline measured in the same run, the same clients load TensorBoard's own
scalars route for a quarter of the time. Prints requests per second, p50/p99 latency, the error count
(target: 0) and the peak RSS of TensorBoard and its data server (VmHWM, summed).

    python benchmarks/plugin_load.py [--seconds 60] [--clients 8] [--runs 50] [--layers 12] [--steps 100]
                                     [--side 16] [--logdir DIR]
    python benchmarks/plugin_load.py --runs 10000 --layers 2 --steps 2 --side 2   # many tiny runs
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from reliability_support import peak_rss_mib, tensorboard_pid, write_synthetic_runs  # noqa: E402
from test_plugin_server import tensorboard  # noqa: E402

P = "/data/plugin/nas/"


def nas_mix(runs: list[str], groups: list[str], layers: int, steps: int) -> list[tuple[float, callable]]:
    """(weight, rng -> path) of what the NAS tab asks for: mostly line/stripe views and heatmaps."""
    q = lambda s: urllib.parse.quote(s, safe="")  # noqa: E731
    return [
        (0.10, lambda r: P + "runs"),
        (0.25, lambda r: P + "lines?run=" + q(r.choice(runs))),
        (0.15, lambda r: P + "lines?group=" + q(r.choice(groups))),
        (0.15, lambda r: P + "stripes?group=" + q(r.choice(groups))),
        (0.15, lambda r: P + "heatmaps?run=" + q(r.choice(runs)) + f"&step={r.randrange(steps)}"),
        (0.10, lambda r: P + "heatmap?run=" + q(r.choice(runs)) + f"&layer=layer{r.randrange(layers)}"),
        (0.05, lambda r: P + "export?group=" + q(r.choice(groups))),
        (0.05, lambda r: P + "index.js"),
    ]


def load(url: str, mix, clients: int, seconds: float, seed: int) -> dict:
    """Run ``clients`` threads for ``seconds``; latencies (s) of the successful requests, error count."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds
    weights = [w for w, _ in mix]

    def client(index: int) -> None:
        rng = random.Random(seed * 1000 + index)
        mine, bad = [], []
        while time.monotonic() < stop:
            path = rng.choices(mix, weights)[0][1](rng)
            start = time.perf_counter()
            try:
                with urllib.request.urlopen(url + path, timeout=60) as response:
                    response.read()
                    ok = response.status == 200
            except (urllib.error.URLError, OSError) as e:
                ok, path = False, f"{path}: {e}"
            if ok:
                mine.append(time.perf_counter() - start)
            else:
                bad.append(path)
        with lock:
            latencies.extend(mine)
            errors.extend(bad)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    began = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - began
    latencies.sort()
    return {
        "requests": len(latencies) + len(errors),
        "rps": (len(latencies) + len(errors)) / elapsed,
        "p50_ms": 1e3 * statistics.median(latencies) if latencies else float("nan"),
        "p99_ms": 1e3 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] if latencies else float("nan"),
        "errors": errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--side", type=int, default=16, help="heatmap side")
    parser.add_argument("--logdir", type=Path, help="write the log dir here (default: a temporary directory)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        logdir = args.logdir or Path(tmp)
        runs = [f"group{i // 5}/seed{i % 5}" for i in range(args.runs)]
        groups = sorted({r.split("/")[0] for r in runs})
        began = time.monotonic()
        write_synthetic_runs(logdir, runs, layers=args.layers, steps=args.steps, heatmap_side=args.side)
        print(f"log dir: {len(runs)} runs x {args.layers} layers x {args.steps} steps ({args.side}x{args.side} heatmaps), "
              f"written in {time.monotonic() - began:.1f} s")
        with tensorboard(logdir, "true") as url:
            pid = tensorboard_pid(logdir)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:  # until the data server has loaded every step of every run
                try:
                    with urllib.request.urlopen(url + P + "runs", timeout=60) as response:
                        listed = json.load(response)["runs"]
                    if len(listed) == len(runs) and all(r["max_step"] == args.steps - 1 for r in listed):
                        break
                except urllib.error.HTTPError:
                    pass
                time.sleep(0.5)
            print(f"TensorBoard up and loaded after {time.monotonic() - began:.1f} s; peak RSS so far "
                  f"{peak_rss_mib(pid):.0f} MiB")
            q = lambda s: urllib.parse.quote(s, safe="")  # noqa: E731
            baseline_mix = [(1.0, lambda r: f"/data/plugin/scalars/scalars?run={q(r.choice(runs))}&tag=test_loss")]
            results = {
                "scalars (baseline)": load(url, baseline_mix, args.clients, args.seconds / 4, seed=1),
                "NAS route mix": load(url, nas_mix(runs, groups, args.layers, args.steps), args.clients, args.seconds, seed=2),
            }
            peak = peak_rss_mib(pid)
    print(f"\n{args.clients} clients, loopback, {args.seconds:g} s of NAS mix:")
    print(f"{'load':<22}{'requests':>10}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
    for name, r in results.items():
        print(f"{name:<22}{r['requests']:>10}{r['rps']:>9.1f}{r['p50_ms']:>9.1f}{r['p99_ms']:>9.1f}{len(r['errors']):>8}")
    base, nas = results["scalars (baseline)"], results["NAS route mix"]
    print(f"NAS mix / scalars: p50 x{nas['p50_ms'] / base['p50_ms']:.2f}, req/s x{nas['rps'] / base['rps']:.2f}")
    print(f"peak RSS of TensorBoard + data server: {peak:.0f} MiB")
    for error in (base["errors"] + nas["errors"])[:10]:
        print("error:", error)


if __name__ == "__main__":
    main()
