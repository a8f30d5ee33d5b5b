"""Helpers of the reliability tests (tests/test_reliability.py, tests/test_fuzz_routes.py) and of
benchmarks/plugin_load.py: synthetic log directories written fast, the pid and peak memory of a served
TensorBoard, and the completeness check of a served step."""
from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from torch.utils.tensorboard import SummaryWriter

from nas_logger import format as fmt
from nas_logger.summaries import step_summary
from nas_logger.writer import file_writer


def write_synthetic_runs(root: Path, runs: list[str], layers: int = 2, steps: int | Sequence[int] = 2,
                         heatmap_side: int = 2, seed: int = 0, loss: Callable[[int], float] | None = None,
                         index: bool = True) -> None:
    """Runs of NAS records written directly (no model, no training): per step one event holding every
    layer's stats (sorted quantiles, so min <= median <= max), heatmap and the stats table, as the
    monitor writes them, plus a ``test_loss`` scalar, ``loss(i)`` at the i-th step (default 1 / (i + 1)).
    ``steps``: how many (0, 1, ...) or which. ``index=False``: without the index record, as runs written
    before it."""
    rng = np.random.default_rng(seed)
    infos = {f"layer{d}": fmt.LayerInfo(f"layer{d}", "conv2d", 16, heatmap_side ** 2, d) for d in range(layers)}
    for run in runs:
        writer = SummaryWriter(str(root / run))
        events = file_writer(writer)
        written: set[str] = set()
        for i, step in enumerate(range(steps) if isinstance(steps, int) else steps):
            records = {}
            for name in infos:
                stats = np.sort(rng.random(len(fmt.STAT_FIELDS) - 1)).astype(np.float32)
                stats = np.append(stats, stats.mean()).astype(np.float32)
                records[name] = (stats, rng.random((heatmap_side, heatmap_side), dtype=np.float32))
            summary = step_summary(infos, records, list(infos), written)
            if not index:
                kept = [v for v in summary.value if v.tag != fmt.index_tag()]
                del summary.value[:]
                summary.value.extend(kept)
            events.add_summary(summary, step)
            writer.add_scalar("test_loss", loss(i) if loss else 1.0 / (i + 1), step)
        writer.close()


def tensorboard_pid(logdir: Path) -> int:
    """The pid of the ``tensorboard`` serving ``logdir`` that this process started (a child of ours)."""
    for pid in _children(os.getpid()):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"tensorboard.main" in argv and any(a.endswith(str(logdir).encode()) for a in argv):
            return pid
    raise LookupError(f"no tensorboard child process serving {logdir}")


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _children(pid: int) -> list[int]:
    kids = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            kids += [int(k) for k in (task / "children").read_text().split()]
        except OSError:
            pass
    return kids


def peak_rss_mib(pid: int) -> float:
    """Peak resident memory (VmHWM) of ``pid`` and all its descendants (TensorBoard's Rust data server
    is a child process), summed: an upper bound of the tree's peak. MiB."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            total += _status_kib(p, "VmHWM")
            todo += _children(p)
        except OSError:  # exited meanwhile
            pass
    return total / 1024


def complete_steps(lines_body: dict, layers: list[str]) -> list[int]:
    """The steps of a ``lines`` body after checking that every step it holds is complete: every layer
    of ``layers`` has it, with finite values and min <= median <= max. Raises AssertionError otherwise."""
    assert [l["name"] for l in lines_body["layers"]] == layers, lines_body["layers"]
    steps = lines_body["layers"][0]["steps"]
    for layer in lines_body["layers"]:
        assert layer["steps"] == steps, (layer["name"], layer["steps"], steps)
        for lo, mid, hi in zip(layer["min"], layer["median"], layer["max"]):
            assert all(v is not None and math.isfinite(v) for v in (lo, mid, hi)), (layer["name"], lo, mid, hi)
            assert 0 <= lo <= mid <= hi < 1, (layer["name"], lo, mid, hi)
    assert steps == sorted(set(steps))
    return steps


def as_sent(step: int):
    """A step as the plugin sends it: an int, or its decimal string where a JavaScript number would round it."""
    return step if abs(step) <= 2**53 - 1 else str(step)
