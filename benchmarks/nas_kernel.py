"""Cost of NAS: the kernel against one reduction pass, and a monitor.log call against a training epoch.

Prints ratios of timings measured side by side in this run (torch.utils.benchmark, medians).
    python benchmarks/nas_kernel.py
"""
import argparse
import tempfile

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.benchmark import Timer

import nas_logger
from nas_logger import fused
from nas_logger.sparsity import _perplexity


def median_seconds(fn, min_run_time: float) -> float:
    # Timer runs on one thread unless told otherwise; measure with the threads training would use.
    timer = Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
    return timer.blocked_autorange(min_run_time=min_run_time).median


def kernel(device: str, min_run_time: float) -> None:
    a = torch.randn(32, 512, 16, 16, device=device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def timed(f):
        return lambda: (f(), sync())

    base = median_seconds(timed(lambda: a.sum(dim=1)), min_run_time)
    eager = median_seconds(timed(lambda: 1.0 - _perplexity(a, 1)[0] / a.shape[1]), min_run_time)
    nas = median_seconds(timed(lambda: nas_logger.nas_sparsity(a, dim=1)), min_run_time)
    half = a.half() if device == "cuda" else a.bfloat16()
    nas_half = median_seconds(timed(lambda: nas_logger.nas_sparsity(half, dim=1)), min_run_time)
    path = "fused kernel" if device == "cpu" and fused.available() else "eager torch"
    print(f"[{device}] a.sum(dim=1) on (32, 512, 16, 16): {base * 1e3:.3f} ms")
    print(f"[{device}] eager torch nas_sparsity float32: {eager * 1e3:.3f} ms = {eager / base:.2f}x one sum pass")
    print(f"[{device}] nas_sparsity float32 ({path}): {nas * 1e3:.3f} ms = {nas / base:.2f}x one sum pass (target <= 4x)")
    print(f"[{device}] nas_sparsity {half.dtype} ({path}): {nas_half * 1e3:.3f} ms = {nas_half / base:.2f}x one sum pass")


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
        log = median_seconds(lambda: monitor.log(next(step), test_loss=1.0), min_run_time)
        train = median_seconds(epoch, min_run_time)
        monitor.close()
    print(f"training epoch, small CNN on {len(x)} digits, batch 32: {train * 1e3:.1f} ms")
    print(f"monitor.log with a 64-sample probe, 4 layers: {log * 1e3:.2f} ms = {100 * log / train:.2f} % of an epoch (target <= 2 %)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--min-run-time", type=float, default=1.0, help="seconds per timed quantity")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    kernel("cpu", args.min_run_time)
    if torch.cuda.is_available():
        kernel("cuda", args.min_run_time)
    monitor_cost(args.min_run_time)


if __name__ == "__main__":
    main()
