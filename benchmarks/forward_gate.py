"""The forward gate's cost on a training step: an SGD step of a model whose forwards pass the gate a
monitor puts on the model's root (so that ``log`` on another thread never overlaps a forward), as a ratio
to the same step without the gate, in one run.

Two models: --model (a torchvision name, default resnet18, batch --batch of 3x--size x--size) and a
two-layer MLP (batch 8 of 32 features) whose step is short enough that the gate's fixed cost per forward
shows, in microseconds. The step without and with the gate alternate step by step (in swapped order every
other round) so that the load of a shared machine hits both alike; medians of wall and CPU time, and the
spread (min-max of the per-round ratios).
    python benchmarks/forward_gate.py [--device cuda] [--rounds 200] [--model resnet18 --size 32 --batch 32]
"""
import argparse
import os
import statistics
import time

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from nas_logger.hooks import tap_for

WITHOUT, WITH = "without gate", "with gate"


def sgd_step(model: nn.Module, optimiser: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> None:
    optimiser.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    optimiser.step()


def measure(label: str, model: nn.Module, x: torch.Tensor, y: torch.Tensor, rounds: int) -> None:
    optimiser = torch.optim.SGD(model.parameters(), lr=1e-3)
    guard = tap_for(model).guarded_forwards
    sync = torch.cuda.synchronize if x.device.type == "cuda" else (lambda: None)
    for _ in range(3):  # warm-up, not timed
        sgd_step(model, optimiser, x, y)
    wall = {WITHOUT: [], WITH: []}
    cpu = {WITHOUT: [], WITH: []}
    for r in range(rounds):
        for gated in (False, True) if r % 2 == 0 else (True, False):
            if gated:
                guard.add(model)
            sync()
            start, start_cpu = time.perf_counter(), time.process_time()
            sgd_step(model, optimiser, x, y)
            sync()
            key = WITH if gated else WITHOUT
            wall[key].append(time.perf_counter() - start)
            cpu[key].append(time.process_time() - start_cpu)
            if gated:
                guard.remove()
    base, base_cpu = statistics.median(wall[WITHOUT]), statistics.median(cpu[WITHOUT])
    gated, gated_cpu = statistics.median(wall[WITH]), statistics.median(cpu[WITH])
    ratios = sorted(w / b for w, b in zip(wall[WITH], wall[WITHOUT]))
    spread = f"{ratios[len(ratios) // 10]:.3f}-{ratios[-1 - len(ratios) // 10]:.3f}"
    print(f"[{x.device.type}] {label}: SGD step {base * 1e3:.3f} ms without gate, {gated * 1e3:.3f} ms with = "
          f"{gated / base:.3f}x (per-round ratios, 10-90 %: {spread}); CPU time {gated_cpu / base_cpu:.3f}x; "
          f"{(gated - base) * 1e6:+.1f} us per step", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--model", default="resnet18", help="a torchvision.models name (default resnet18)")
    parser.add_argument("--size", type=int, default=32, help="input side in pixels")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=100, help="rounds; a step with and one without in each")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = getattr(torchvision.models, args.model)(num_classes=10).to(device)
    x = torch.randn(args.batch, 3, args.size, args.size, device=device)
    y = torch.randint(0, 10, (args.batch,), device=device)
    measure(f"{args.model}, batch {args.batch} of 3x{args.size}x{args.size}", model, x, y, args.rounds)
    mlp = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 10)).to(device)
    small_x, small_y = torch.randn(8, 32, device=device), torch.randint(0, 10, (8,), device=device)
    measure("MLP 32-64-10, batch 8", mlp, small_x, small_y, args.rounds * 5)
    print(f"load average {os.getloadavg()[0]:.1f}", flush=True)


if __name__ == "__main__":
    main()
