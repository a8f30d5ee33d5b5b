"""One SGD step of VanillaNet with NASReg as a ratio to the same step without, measured in one run.

Batch 32 of 3x32x32 inputs (CIFAR-shaped), plain SGD lr 0.01; --width shrinks every layer for CPU runs.
    python benchmarks/nasreg_step.py [--width 0.25] [--rounds 7 --steps 5]
"""
import argparse
import time

import torch
import torch.nn.functional as F

import nas_logger
from training.models import build_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--rounds", type=int, default=7, help="rounds; the two variants alternate within each")
    parser.add_argument("--steps", type=int, default=5, help="steps per variant and round")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(0)
    model = build_model("vanilla", 3, 32, 100, args.width).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = torch.randn(32, 3, 32, 32, device=device), torch.randint(0, 100, (32,), device=device)
    reg = nas_logger.NASReg(model)

    def step(with_reg: bool) -> None:
        loss = F.cross_entropy(model(x), y)
        if with_reg:
            loss = loss + reg.penalty()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def timed(with_reg: bool) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(args.steps):
            step(with_reg)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return (time.perf_counter() - start) / args.steps

    reg.remove()
    for with_reg in (False, True):  # warm-up
        if with_reg:
            reg = nas_logger.NASReg(model)
        step(with_reg)
    times = {False: [], True: []}
    for _ in range(args.rounds):
        reg.remove()  # without: no hooks at all
        times[False].append(timed(False))
        reg = nas_logger.NASReg(model)
        times[True].append(timed(True))
    plain, regularised = (sorted(times[k])[len(times[k]) // 2] for k in (False, True))
    print(f"[{device.type}] VanillaNet width {args.width}, batch 32, 3x32x32, median over {args.rounds} interleaved rounds")
    print(f"[{device.type}] SGD step without NASReg: {plain * 1e3:.1f} ms")
    print(f"[{device.type}] SGD step with NASReg: {regularised * 1e3:.1f} ms = {regularised / plain:.3f}x (target <= 1.3x)")


if __name__ == "__main__":
    main()
