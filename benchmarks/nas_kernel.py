"""Cost of NAS: the kernel against one reduction pass, and a monitor.log call against a training epoch.

Prints ratios of timings measured side by side in this run, in alternating rounds: the median of the
per-round ratios with their lowest-highest, of wall time and of this process's CPU time (all its threads),
which leaves out the time other jobs hold the cores and so moves less with their load. On CUDA the kernels'
ratio is of GPU time, by CUDA events.
    python benchmarks/nas_kernel.py [--threads 1] [--device cuda] [--shape 32,512,16,16]
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
from rounds import ratios, spread


def timed_block(fn, number: int, cuda: bool) -> tuple[float, float]:
    """Wall and process CPU seconds of ``number`` calls of ``fn``. On CUDA the wall time is the GPU's, by
    CUDA events around calls queued back to back: a synchronize per call would time its round trip
    (tens of microseconds), not the kernel."""
    cpu = time.process_time()
    if cuda:
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(number):
            fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3, time.process_time() - cpu
    wall = time.perf_counter()
    for _ in range(number):
        fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def per_call_seconds(fn, min_run_time: float, cuda: bool = False) -> tuple[float, float]:
    """Wall and process CPU seconds per call of ``fn``: medians over blocks of calls (each >= 10 ms) that
    fill ``min_run_time``, on torch's current threads (the ones training would use). The calls that size
    the blocks warm up."""
    number = 1
    while timed_block(fn, number, cuda)[0] < 0.01:
        number *= 2
    walls, cpus = [], []
    end = time.perf_counter() + min_run_time
    while time.perf_counter() < end or not walls:
        wall, cpu = timed_block(fn, number, cuda)
        walls.append(wall / number)
        cpus.append(cpu / number)
    return statistics.median(walls), statistics.median(cpus)


# A wide conv layer (the kernel target is set on it), two layers of a small CNN, and linear layers (N, D).
SHAPES = [((32, 512, 16, 16), 1), ((32, 64, 32, 32), 1), ((32, 128, 8, 8), 1), ((32, 1024), -1), ((256, 512), -1)]


def interleaved(fns: dict, rounds: int, min_run_time: float, cuda: bool = False) -> tuple[dict, dict]:
    """Wall (on CUDA: GPU) and CPU seconds per call of each of ``fns``, one value per round, measured round
    by round in turn so that load hits all alike."""
    wall, cpu = {name: [] for name in fns}, {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            w, c = per_call_seconds(fn, min_run_time / rounds, cuda)
            wall[name].append(w)
            cpu[name].append(c)
    return wall, cpu


def kernel(device: str, shapes: list, rounds: int, min_run_time: float) -> None:
    cuda = device == "cuda"
    path = "Triton kernel" if cuda and fused._triton() is not None else \
        "fused kernel" if not cuda and fused.available() else "eager torch"
    for shape, dim in shapes:
        a = torch.randn(*shape, device=device)
        half = a.half() if cuda else a.bfloat16()
        fns = {
            "sum": lambda: a.sum(dim=dim),
            "eager": lambda: 1.0 - _perplexity(a, dim)[0] / a.shape[dim],
            "nas": lambda: nas_logger.nas_sparsity(a, dim=dim),
            "nas_half": lambda: nas_logger.nas_sparsity(half, dim=dim),
        }
        wall, cpu = interleaved(fns, rounds, 4 * min_run_time, cuda)
        t = {name: statistics.median(v) for name, v in wall.items()}
        base = t["sum"]
        r, r_cpu = ratios(wall, "sum"), ratios(cpu, "sum")
        if cuda:
            # Calls queued back to back are what a training loop sees, launch costs included; Triton's do_bench
            # (L2 flushed before each call, events around it) times the kernels alone. The process CPU time
            # is the host's cost of a launch.
            cpu_note = f"host CPU {statistics.median(cpu['nas']) * 1e6:.0f} us per call"
            if fused._triton() is not None:
                from triton.testing import do_bench

                alone = {k: do_bench(fns[k], return_mode="median") for k in ("sum", "nas")}
                cpu_note = f"kernel alone {alone['nas'] / alone['sum']:.2f}x by do_bench; {cpu_note}"
        else:
            cpu_note = f"CPU time {spread(r_cpu['nas'], digits=2)}"
        print(f"[{device}] {tuple(shape)} dim={dim}: sum {base * 1e3:.3f} ms; nas_sparsity ({path}) float32 "
              f"{t['nas'] * 1e3:.3f} ms = {spread(r['nas'], digits=2)} ({cpu_note}), "
              f"{half.dtype} {statistics.median(r['nas_half']):.2f}x; eager float32 "
              f"{statistics.median(r['eager']):.1f}x one sum pass (target <= {2 if cuda else 4}x)", flush=True)
    print(f"load average {os.getloadavg()[0]:.1f}")


def monitor_cost(rounds: int, min_run_time: float) -> None:
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
        wall, cpu = interleaved({"log": lambda: monitor.log(next(step), test_loss=1.0), "epoch": epoch}, rounds,
                                2 * min_run_time)
        monitor.close()
    share = {name: [100 * v for v in values] for name, values in ratios(wall, "epoch").items()}
    share_cpu = {name: [100 * v for v in values] for name, values in ratios(cpu, "epoch").items()}
    print(f"training epoch, small CNN on {len(x)} digits, batch 32: {statistics.median(wall['epoch']) * 1e3:.1f} ms")
    print(f"monitor.log with a 64-sample probe, 4 layers: {statistics.median(wall['log']) * 1e3:.2f} ms = "
          f"{spread(share['log'], ' %', 2)} of an epoch (CPU time {spread(share_cpu['log'], ' %', 2)}; target <= 2 %); "
          f"load average {os.getloadavg()[0]:.1f}")


def shape_and_dim(text: str) -> tuple[tuple[int, ...], int]:
    """'32,512,16,16' -> ((32, 512, 16, 16), 1): filters along dim 1, or along the last dim of a 2-d (N, D)."""
    shape = tuple(int(n) for n in text.split(","))
    return shape, -1 if len(shape) == 2 else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--min-run-time", type=float, default=1.0, help="seconds per timed quantity")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (medians over them)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch's intra-op threads (default: torch's own; 1 measures the kernels, not the pools)")
    parser.add_argument("--device", choices=["all", "cpu", "cuda"], default="all",
                        help="all: the CPU kernels, the CUDA ones where a GPU is present and monitor.log's cost; "
                             "cpu: no CUDA; cuda: the CUDA kernels alone")
    parser.add_argument("--shape", type=shape_and_dim, action="append", metavar="N,D[,H,W]",
                        help="a layer output to time, repeatable (default: a wide conv layer and four more)")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device")
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    shapes = args.shape or SHAPES
    if args.device != "cuda":
        kernel("cpu", shapes, args.rounds, args.min_run_time)
    if args.device != "cpu" and torch.cuda.is_available():
        kernel("cuda", shapes, args.rounds, args.min_run_time)
    if args.device != "cuda":
        monitor_cost(args.rounds, args.min_run_time)


if __name__ == "__main__":
    main()
