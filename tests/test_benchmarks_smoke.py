"""The benchmarks that benchmarks/gpu.sh runs on a GPU, run here on the CPU at tiny sizes: each one runs
and prints its ratio lines (no timing is judged: benchmarks are never pass/fail). And gpu.sh itself
parses, and stops cleanly without a CUDA device."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
RATIO = r"\d+\.\d+x"
# A figure with its spread: median (lowest-highest, rounds).
SPREAD = r"\d+\.\d+x \(\d+\.\d+-\d+\.\d+x, \d+ rounds?\)"
# Each script with tiny arguments, and the lines its output must hold.
CASES = [
    (["benchmarks/nas_kernel.py", "--device", "cpu", "--shape", "2,8,4,4", "--shape", "4,16", "--rounds", "1",
      "--min-run-time", "0.005"],
     [rf"\[cpu\] \(2, 8, 4, 4\) dim=1: .* = {SPREAD} .*\(target <= 4x\)", rf"\[cpu\] \(4, 16\) dim=-1: .* = {SPREAD}",
      r"monitor\.log .* = \d+\.\d+ % \(\d+\.\d+-\d+\.\d+ %, \d+ rounds?\) of an epoch"]),
    (["benchmarks/nasreg_step.py", "--device", "cpu", "--width", "0.05", "--batch", "4", "--rounds", "2",
      "--steps", "1"],
     [rf"\[cpu\] VanillaNet \(torch.relu\): SGD step .* = {SPREAD} \(target <= 1.3x\)",
      rf"\[cpu\] VanillaNet layers, ReLU\(inplace=True\): SGD step .* = {SPREAD}", r"kept for backward"]),
    (["benchmarks/monitor_overhead.py", "--steps", "1", "--rounds", "2", "--amp", "bf16", "--channels-last"],
     [r"\[cpu\] resnet18, batch 4 of 3x32x32, autocast bfloat16, channels last; epoch = 1 steps; 21 layers",
      r"without monitor: .* = 1\.000x", rf"with monitor: .* per epoch = {SPREAD} \(target <= 1.02x\)",
      r"one monitor\.log: \d+\.\d ms"]),
    (["benchmarks/forward_gate.py", "--size", "8", "--batch", "2", "--rounds", "2"],
     [rf"\[cpu\] resnet18, batch 2 of 3x8x8: SGD step .* = {RATIO} .*CPU time {RATIO}",
      rf"\[cpu\] MLP 32-64-10, batch 8: SGD step .* = {RATIO}"]),
    (["benchmarks/streaming.py", "--steps", "1", "--rounds", "1", "--batch", "2"],
     [rf"\[cpu\] stream, every step: .* ms per step; wall {SPREAD}, CPU time {SPREAD}",
      r"statistics state \d+\.\d KiB for 6 layers"]),
]
# One process for all, so that torch is imported once.
RUN_ALL = ("import runpy, sys\n"
           "for argv in eval(sys.argv[1]):\n"
           "    sys.argv = argv\n"
           "    runpy.run_path(argv[0], run_name='__main__')\n")


def test_the_benchmarks_run_on_the_cpu_at_tiny_sizes_and_print_their_ratios():
    # One thread: at these sizes a second one only spins (twice the CPU time on a shared machine).
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "benchmarks")]), "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", RUN_ALL, repr([argv for argv, _ in CASES])], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    for _, patterns in CASES:
        for pattern in patterns:
            assert re.search(pattern, result.stdout), (pattern, result.stdout)


def test_gpu_script_parses():
    subprocess.run(["bash", "-n", str(ROOT / "benchmarks/gpu.sh")], check=True)


@pytest.mark.skipif(torch.cuda.is_available(), reason="with a GPU the script measures for minutes")
def test_gpu_script_without_cuda_says_so_and_exits_0():
    result = subprocess.run(["bash", str(ROOT / "benchmarks/gpu.sh")], env={**os.environ, "PY": sys.executable},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == "no CUDA device: nothing to measure"
