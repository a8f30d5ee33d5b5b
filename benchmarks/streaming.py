"""Streaming statistics against no monitor: time per training step and memory kept per layer.

    python benchmarks/streaming.py [--rounds 15] [--steps 10]
Every round trains ``--steps`` steps in each configuration, in an order that is reversed every other round,
after a warm-up round that is not counted; each configuration's ratio to "no monitor" is taken within its
round, of wall time and of this process's CPU time (which leaves out the time other jobs hold the cores).
Probe mode does no per-step work, so its ratio shows how far the measurement itself scatters.
"""
import argparse
import statistics
import tempfile
import time

import torch
import torch.nn.functional as F
from torch import nn

import nas_logger
from rounds import ratios, spread


def model_and_data(device, batch):
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), nn.Conv2d(128, 128, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(128 * 64, 256), nn.ReLU(), nn.Linear(256, 100),
    ).to(device)
    x, y = torch.randn(batch, 3, 32, 32, device=device), torch.randint(0, 100, (batch,), device=device)
    return model, x, y


def seconds_per_step(model, x, y, steps):
    """Wall and process CPU seconds per training step, after 3 steps that warm up."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)

    def step():
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()

    for _ in range(3):
        step()
    if x.is_cuda:
        torch.cuda.synchronize()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        step()
    if x.is_cuda:
        torch.cuda.synchronize()
    return (time.perf_counter() - wall) / steps, (time.process_time() - cpu) / steps


CONFIGS = {
    "no monitor": None,
    "probe mode": {},
    "stream, every step": {"statistics": "stream"},
    "stream, every 10th step": {"statistics": "stream", "stream_every": 10},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=10, help="training steps per configuration and round")
    parser.add_argument("--rounds", type=int, default=15, help="counted rounds; configurations alternate within each")
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model, x, y = model_and_data(device, args.batch)
    wall = {label: [] for label in CONFIGS}
    cpu = {label: [] for label in CONFIGS}
    notes = []
    with tempfile.TemporaryDirectory() as logdir:
        for r in range(args.rounds + 1):  # round 0 warms up and is not counted
            order = list(CONFIGS.items()) if r % 2 == 0 else list(reversed(CONFIGS.items()))
            for label, options in order:
                monitor = None
                if options is not None:
                    extra = {"probe": x} if not options else options
                    monitor = nas_logger.watch(model, f"{logdir}/{label}", **extra)
                w, c = seconds_per_step(model, x, y, args.steps)
                if r > 0:
                    wall[label].append(w)
                    cpu[label].append(c)
                if monitor is None:
                    continue
                seen = sum(int(h.count) for h in getattr(monitor._source, "histograms", {}).values())
                start = time.perf_counter()
                monitor.log(r)
                log_ms = (time.perf_counter() - start) * 1e3
                if r == 1:
                    notes.append(f"{label}: one log() {log_ms:.1f} ms")
                    if options.get("statistics") == "stream":
                        state = sum(t.numel() * t.element_size() for h in monitor._source.histograms.values()
                                    for t in (h.counts, h.total, h.low, h.high))
                        notes.append(f"{label}: statistics state {state / 1024:.1f} KiB for {len(monitor.layers)} "
                                     f"layers, whatever the window; keeping the {seen:,} values of this window for "
                                     f"exact quantiles would take {seen * 4 / 2**20:.1f} MiB")
                monitor.close()
    print("\n".join(notes))
    print(f"[{device}] batch {args.batch}, 3x32x32, 6 layers; {args.rounds} rounds of {args.steps} steps per configuration, "
          "ratios to no monitor within each round: median (lowest-highest)")
    wall_ratios, cpu_ratios = ratios(wall, "no monitor"), ratios(cpu, "no monitor")
    for label in CONFIGS:
        print(f"[{device}] {label}: {statistics.median(wall[label]) * 1e3:.2f} ms per step; wall "
              f"{spread(wall_ratios[label])}, CPU time {spread(cpu_ratios[label])}")


if __name__ == "__main__":
    main()
