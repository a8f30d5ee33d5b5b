"""The monitor's cost on a training run: an epoch that ends with one ``monitor.log`` as a ratio to the same
epoch without it, measured side by side in alternating rounds (median of the per-round ratios, lowest-highest).

An epoch is --steps optimiser steps on one synthetic batch (no data loading) of --batch images of
--size x --size, under autocast (--amp; float16 with a GradScaler, bfloat16 without). ``watch`` is called
once, before the rounds, as a training script calls it: the first training batch becomes the probe, and
after that the monitor's only hooks on training forwards are its forward gate's two on the model's root
(benchmarks/forward_gate.py measures them), in both arms. The defaults are a CPU smoke run; the GPU
setting that benchmarks/gpu.sh runs:
    python benchmarks/monitor_overhead.py --device cuda --model resnet50 --size 224 --batch 128 --steps 50 \
        --amp auto --channels-last
"""
import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
import torchvision

import nas_logger
from rounds import ratios, spread

WITHOUT, WITH = "without monitor", "with monitor"


def alternate_epochs(train: Callable[[], None], log: Callable[[int], None], rounds: int,
                     sync: Callable[[], None] = lambda: None) -> tuple[dict[str, list[float]], list[float]]:
    """Seconds of an epoch without the monitor (``train``) and with it (``train``, then ``log``), one of each
    per round, and of the ``log`` alone, over ``rounds`` in which the two alternate, in swapped order every
    other round so that drift hits both alike. ``sync`` waits for queued GPU work (and other ranks)."""
    times = {WITHOUT: [], WITH: []}
    logs = []
    for r in range(rounds):
        for label in (WITHOUT, WITH) if r % 2 == 0 else (WITH, WITHOUT):
            sync()
            start = time.perf_counter()
            train()
            if label == WITH:
                sync()
                before_log = time.perf_counter()
                log(r)
                sync()
                logs.append(time.perf_counter() - before_log)
            sync()
            times[label].append(time.perf_counter() - start)
    return times, logs


def print_ratios(times: dict[str, list[float]], logs: list[float], target: float) -> None:
    """Each variant's median epoch and its ratio to the epoch without the monitor: the median of the
    per-round ratios with their lowest-highest."""
    for label, ratio in ratios(times, WITHOUT).items():
        print(f"{label}: {statistics.median(times[label]) * 1e3:.1f} ms per epoch = {spread(ratio)} "
              f"(target <= {target}x)")
    print(f"one monitor.log: {statistics.median(logs) * 1e3:.1f} ms; load average {os.getloadavg()[0]:.1f}", flush=True)


def amp_dtype(device: torch.device, amp: str) -> torch.dtype | None:
    """The autocast dtype: ``auto`` is bfloat16 where the GPU has it, else float16; none on the CPU."""
    if amp == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}[amp]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--model", default="resnet18", help="a torchvision.models name (default resnet18)")
    parser.add_argument("--size", type=int, default=32, help="input side in pixels")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=3, help="optimiser steps per epoch")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; an epoch with and one without in each")
    parser.add_argument("--amp", choices=["auto", "none", "bf16", "fp16"], default="auto")
    parser.add_argument("--channels-last", action="store_true", help="model and batch in channels-last memory")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device")
    device = torch.device(args.device)
    dtype = amp_dtype(device, args.amp)
    torch.manual_seed(0)
    torch.backends.cudnn.benchmark = True  # as a training script on a GPU sets it
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    model = torchvision.models.get_model(args.model, weights=None, num_classes=1000)
    model = model.to(device, memory_format=memory_format)
    x = torch.randn(args.batch, 3, args.size, args.size, device=device).to(memory_format=memory_format)
    y = torch.randint(0, 1000, (args.batch,), device=device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)

    def train() -> None:
        model.train()
        for _ in range(args.steps):
            with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()

    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    with tempfile.TemporaryDirectory() as logdir:
        monitor = nas_logger.watch(model, logdir)
        train()  # warm-up: captures the probe, and cuDNN picks its algorithms
        monitor.log(0)  # the first log also writes the layers' metadata and the probe images
        hooked = [n for n, m in model.named_modules() if m._forward_hooks or m._forward_pre_hooks]
        if hooked:
            print(f"note: hooks left on training forwards: {hooked[:3]}")
        times, logs = alternate_epochs(train, lambda r: monitor.log(r + 1), args.rounds, sync)
        monitor.close()
    print(f"[{device.type}] {args.model}, batch {args.batch} of 3x{args.size}x{args.size}, "
          f"{'autocast ' + str(dtype).removeprefix('torch.') if dtype else 'float32'}"
          f"{', channels last' if args.channels_last else ''}; epoch = {args.steps} steps; "
          f"{len(monitor.layers)} layers watched; medians over {args.rounds} alternating rounds")
    print_ratios(times, logs, 1.02)


if __name__ == "__main__":
    main()
