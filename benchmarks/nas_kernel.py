"""Cost of NAS: the kernel against one reduction pass, and a monitor.log call against a training epoch.

Prints ratios of timings measured side by side in this run, in alternating rounds (medians): of wall
time, and of this process's CPU time (all its threads), which leaves out the time other jobs hold the
cores and so moves less with their load.
    python benchmarks/nas_kernel.py [--threads 1]
"""
import argparse
import os
import statistics
import tempfile
import time

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn

import nas_logger
from nas_logger import fused
from nas_logger.sparsity import _perplexity


def per_call_seconds(fn, min_run_time: float) -> tuple[float, float]:
    """Wall and process CPU seconds per call of ``fn``: medians over blocks of calls (each >= 10 ms) that
    fill ``min_run_time``, on torch's current threads (the ones training would use). The calls that size
    the blocks warm up."""
    number = 1
    while True:
        start = time.perf_counter()
        for _ in range(number):
            fn()
        if time.perf_counter() - start >= 0.01:
            break
        number *= 2
    walls, cpus = [], []
    end = time.perf_counter() + min_run_time
    while time.perf_counter() < end or not walls:
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(number):
            fn()
        walls.append((time.perf_counter() - wall) / number)
        cpus.append((time.process_time() - cpu) / number)
    return statistics.median(walls), statistics.median(cpus)


# The issue's shape, two layers of a small CNN, and linear layers (N, D).
SHAPES = [((32, 512, 16, 16), 1), ((32, 64, 32, 32), 1), ((32, 128, 8, 8), 1), ((32, 1024), -1), ((256, 512), -1)]


def interleaved_medians(fns: dict, rounds: int, min_run_time: float) -> tuple[dict, dict]:
    """Median wall and CPU seconds per call of each of ``fns``, measured round by round in turn so that
    load hits all alike."""
    wall, cpu = {name: [] for name in fns}, {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            w, c = per_call_seconds(fn, min_run_time / rounds)
            wall[name].append(w)
            cpu[name].append(c)
    return ({name: statistics.median(t) for name, t in wall.items()},
            {name: statistics.median(t) for name, t in cpu.items()})


def kernel(device: str, min_run_time: float) -> None:
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    path = "fused kernel" if device == "cpu" and fused.available() else "eager torch"
    for shape, dim in SHAPES:
        a = torch.randn(*shape, device=device)
        half = a.half() if device == "cuda" else a.bfloat16()
        fns = {
            "sum": lambda: a.sum(dim=dim),
            "eager": lambda: 1.0 - _perplexity(a, dim)[0] / a.shape[dim],
            "nas": lambda: nas_logger.nas_sparsity(a, dim=dim),
            "nas_half": lambda: nas_logger.nas_sparsity(half, dim=dim),
        }
        t, cpu = interleaved_medians({k: (lambda f=f: (f(), sync())) for k, f in fns.items()}, 5, 4 * min_run_time)
        base = t["sum"]
        print(f"[{device}] {tuple(shape)} dim={dim}: sum {base * 1e3:.3f} ms; nas_sparsity ({path}) float32 "
              f"{t['nas'] * 1e3:.3f} ms = {t['nas'] / base:.2f}x (CPU time {cpu['nas'] / cpu['sum']:.2f}x), "
              f"{half.dtype} {t['nas_half'] / base:.2f}x; eager float32 {t['eager'] / base:.1f}x one sum pass "
              "(target <= 4x)")
    print(f"load average {os.getloadavg()[0]:.1f}")


def monitor_cost(min_run_time: float) -> None:
    torch.manual_seed(0)
    data = load_digits()
    x = torch.tensor(data.images, dtype=torch.float32)[:, None] / 16.0
    y = torch.tensor(data.target)
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64 * 16, 128), nn.ReLU(), nn.Linear(128, 10),
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)

    def epoch():
        model.train()
        for i in range(0, len(x), 32):
            optimizer.zero_grad()
            F.cross_entropy(model(x[i : i + 32]), y[i : i + 32]).backward()
            optimizer.step()

    with tempfile.TemporaryDirectory() as logdir:
        monitor = nas_logger.watch(model, logdir, probe=x[:64])
        step = iter(range(10**9))
        t, cpu = interleaved_medians({"log": lambda: monitor.log(next(step), test_loss=1.0), "epoch": epoch}, 5,
                                     2 * min_run_time)
        log, train = t["log"], t["epoch"]
        monitor.close()
    print(f"training epoch, small CNN on {len(x)} digits, batch 32: {train * 1e3:.1f} ms")
    print(f"monitor.log with a 64-sample probe, 4 layers: {log * 1e3:.2f} ms = {100 * log / train:.2f} % of an epoch "
          f"(CPU time {100 * cpu['log'] / cpu['epoch']:.2f} %; target <= 2 %); load average {os.getloadavg()[0]:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--min-run-time", type=float, default=1.0, help="seconds per timed quantity")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch's intra-op threads (default: torch's own; 1 measures the kernels, not the pools)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    kernel("cpu", args.min_run_time)
    if torch.cuda.is_available():
        kernel("cuda", args.min_run_time)
    monitor_cost(args.min_run_time)


if __name__ == "__main__":
    main()
