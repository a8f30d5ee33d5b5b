"""One SGD step with NASReg as a ratio to the same step without, and the memory NASReg adds, in one run.

Two models of the same layers (VanillaNet's convs 256, 256, pool, 512, 512, pool, fc 1024, x width):
VanillaNet itself (out-of-place ``torch.relu``) and the same stack built torchvision's way
(``torchvision.models.vgg.make_layers``: every ReLU ``inplace=True``, as in AlexNet and VGG).
Batch 32 (--batch) of 3x32x32 inputs (CIFAR-shaped), plain SGD lr 0.01; --width shrinks every layer for CPU runs.
The plain and the NASReg step alternate step by step (in swapped order every other round), so that
the load of a shared machine hits both alike; the ratio is the median of the per-round ratios (of each
round's median steps) with their lowest-highest.
Memory: what the forward (with the penalty) leaves allocated for backward, and the peak of a whole
step, each minus the plain step's; on the CPU from the resident set size with glibc's mmap threshold
fixed so that freed tensors go back to the system at once.
    python benchmarks/nasreg_step.py [--width 0.25] [--rounds 7 --steps 5] [--device cuda]
"""
import argparse
import ctypes
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

import nas_logger
from training.models import build_model
from training.models.common import scaled

from rounds import ratios, spread

MIB = 2**20


def in_place_vanilla(width: float) -> nn.Module:
    """VanillaNet's layers, torchvision-style: Sequential features with ReLU(inplace=True)."""
    import torchvision

    c1, c2, c3, c4, f1 = (scaled(c, width) for c in (256, 256, 512, 512, 1024))
    features = torchvision.models.vgg.make_layers([c1, c2, "M", c3, c4, "M"])
    classifier = nn.Sequential(nn.Flatten(), nn.Linear(c4 * 8 * 8, f1), nn.ReLU(inplace=True), nn.Linear(f1, 100))
    return nn.Sequential(features, classifier)


class Memory:
    """Bytes allocated now and the peak since ``reset``: the CUDA allocator's counters, or on the CPU
    the process's resident set (VmRSS, VmHWM) once glibc returns every block over 64 KiB at free."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        if not self.cuda:
            libc = ctypes.CDLL("libc.so.6")
            libc.mallopt(-3, 64 * 1024)  # M_MMAP_THRESHOLD: fixed, so large blocks are mmapped and unmapped

    def _status(self, field: str) -> int:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        raise LookupError(field)

    def reset(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        else:
            Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS

    def now(self) -> int:
        if self.cuda:
            torch.cuda.synchronize()
            return torch.cuda.memory_allocated()
        return self._status("VmRSS")

    def peak(self) -> int:
        if self.cuda:
            torch.cuda.synchronize()
            return torch.cuda.max_memory_allocated()
        return self._status("VmHWM")


def layer_output_bytes(model: nn.Module, x: torch.Tensor, names: list[str]) -> int:
    """Bytes of the outputs of the layers ``names`` for input ``x``: one copy of what NASReg reads."""
    sizes = []
    modules = dict(model.named_modules())
    hooks = [modules[n].register_forward_hook(lambda m, i, o: sizes.append(o.numel() * o.element_size())) for n in names]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return sum(sizes)


def measure(name: str, model: nn.Module, x: torch.Tensor, y: torch.Tensor, args, memory: Memory) -> None:
    device = x.device
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    reg = nas_logger.NASReg(model)
    model(x)
    reg.penalty()  # finds the prediction layer; the others are chosen explicitly from here on
    layers = reg.layers
    reg.remove()
    state = {"reg": None}

    def forward(with_reg: bool) -> torch.Tensor:
        loss = F.cross_entropy(model(x), y)
        return loss + state["reg"].penalty() if with_reg else loss

    def step(with_reg: bool) -> None:
        loss = forward(with_reg)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def use(with_reg: bool) -> None:
        if with_reg and state["reg"] is None:
            state["reg"] = nas_logger.NASReg(model, layers=layers)
        elif not with_reg and state["reg"] is not None:
            state["reg"].remove()  # without: no hooks at all
            state["reg"] = None

    def timed(with_reg: bool) -> float:
        use(with_reg)
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        step(with_reg)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    def memory_of(with_reg: bool) -> tuple[int, int]:
        use(with_reg)
        step(with_reg)  # gradients and optimizer state exist before and after alike
        before = memory.now()
        memory.reset()
        loss = forward(with_reg)
        held = memory.now() - before
        optimizer.zero_grad(set_to_none=False)
        loss.backward()
        optimizer.step()
        del loss
        return held, memory.peak() - before

    for with_reg in (False, True):  # warm-up
        use(with_reg)
        step(with_reg)
    times = {False: [], True: []}  # per round: the median step of each variant
    for r in range(args.rounds):
        steps = {False: [], True: []}
        for _ in range(args.steps):
            for with_reg in ((False, True) if r % 2 == 0 else (True, False)):
                steps[with_reg].append(timed(with_reg))
        for k in (False, True):
            times[k].append(statistics.median(steps[k]))
    plain, regularised = (statistics.median(times[k]) for k in (False, True))
    mem = {k: sorted((memory_of(k) for _ in range(3)), key=lambda m: m[0])[1] for k in (False, True)}
    use(False)
    outputs = layer_output_bytes(model, x, layers)
    held, peak = (mem[True][i] - mem[False][i] for i in (0, 1))
    tag = f"[{device.type}] {name}"
    target = 1.1 if device.type == "cuda" else 1.3
    print(f"{tag}: SGD step without NASReg {plain * 1e3:.1f} ms, with {regularised * 1e3:.1f} ms = "
          f"{spread(ratios({'with': times[True], 'without': times[False]}, 'without')['with'])} "
          f"(target <= {target}x)")
    print(f"{tag}: NASReg on {len(layers)} layers whose outputs take {outputs / MIB:.2f} MiB: "
          f"+{held / MIB:.2f} MiB kept for backward ({held / outputs:.2f}x those outputs; plain step keeps "
          f"{mem[False][0] / MIB:.2f} MiB), +{peak / MIB:.2f} MiB peak ({peak / outputs:.2f}x)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--rounds", type=int, default=7, help="rounds; the two variants alternate within each")
    parser.add_argument("--steps", type=int, default=5, help="steps per variant and round")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device")
    device = torch.device(args.device)
    memory = Memory(device)
    torch.manual_seed(0)
    x = torch.randn(args.batch, 3, 32, 32, device=device)
    y = torch.randint(0, 100, (args.batch,), device=device)
    print(f"[{device.type}] width {args.width}, batch {args.batch}, 3x32x32, median over {args.rounds} rounds of {args.steps} "
          "alternating steps", flush=True)
    models = {
        "VanillaNet (torch.relu)": build_model("vanilla", 3, 32, 100, args.width),
        "VanillaNet layers, ReLU(inplace=True)": in_place_vanilla(args.width),
    }
    for name, model in models.items():
        measure(name, model.to(device), x, y, args, memory)


if __name__ == "__main__":
    main()
