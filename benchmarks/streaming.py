"""Streaming statistics against probe mode: time per training step and memory kept per layer.

    python benchmarks/streaming.py [--steps 40]
Prints ratios measured side by side in this run.
"""
import argparse
import tempfile
import time

import torch
import torch.nn.functional as F
from torch import nn

import nas_logger


def model_and_data(device):
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), nn.Conv2d(128, 128, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(128 * 64, 256), nn.ReLU(), nn.Linear(256, 100),
    ).to(device)
    x, y = torch.randn(32, 3, 32, 32, device=device), torch.randint(0, 100, (32,), device=device)
    return model, x, y


def seconds_per_step(model, x, y, steps):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)

    def step():
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()

    for _ in range(3):
        step()
    if x.is_cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if x.is_cuda:
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


CONFIGS = {
    "no monitor": None,
    "probe mode": {},
    "stream, every step": {"statistics": "stream"},
    "stream, every 10th step": {"statistics": "stream", "stream_every": 10},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=10, help="training steps per configuration and round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds; configurations alternate within each")
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model, x, y = model_and_data(device)
    timings = {label: [] for label in CONFIGS}
    with tempfile.TemporaryDirectory() as logdir:
        for r in range(args.rounds):
            for label, options in CONFIGS.items():
                monitor = None
                if options is not None:
                    extra = {"probe": x} if not options else options
                    monitor = nas_logger.watch(model, f"{logdir}/{label}", **extra)
                timings[label].append(seconds_per_step(model, x, y, args.steps))
                if monitor is None:
                    continue
                seen = sum(int(h.count) for h in getattr(monitor._source, "histograms", {}).values())
                start = time.perf_counter()
                monitor.log(r)
                log_ms = (time.perf_counter() - start) * 1e3
                if r == 0:
                    print(f"{label}: one log() {log_ms:.1f} ms")
                    if options.get("statistics") == "stream":
                        state = sum(t.numel() * t.element_size() for h in monitor._source.histograms.values()
                                    for t in (h.counts, h.total, h.low, h.high))
                        print(f"{label}: statistics state {state / 1024:.1f} KiB for {len(monitor.layers)} layers, "
                              f"whatever the window; keeping the {seen:,} values of this window for exact "
                              f"quantiles would take {seen * 4 / 2**20:.1f} MiB")
                monitor.close()
    median = {label: sorted(ts)[len(ts) // 2] for label, ts in timings.items()}
    base = median["no monitor"]
    print(f"[{device}] medians over {args.rounds} interleaved rounds of {args.steps} steps; batch 32, 3x32x32, 6 layers")
    for label, t in median.items():
        print(f"[{device}] {label}: {t * 1e3:.2f} ms per step = {t / base:.3f}x no monitor")


if __name__ == "__main__":
    main()
