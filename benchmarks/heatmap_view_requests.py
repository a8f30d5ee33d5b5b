"""What the heatmap view asks per panel, before and after the light `steps` route: `lines` (every
layer's min/median/max at every step, only for the loss curve and the steps) or `steps` (the heatmap
steps, the losses, the overfitting step), each followed by the same `heatmaps` request at one step.

Writes one run with nas_logger as a user would (40 steps, a 6-layer CNN on 32x32 images, a probe of 16,
the default 4 probe images), serves it through TensorBoard's WSGI app on the Rust data server (the
default `tensorboard` path) and MultiplexerDataProvider, and prints per panel (its two requests in
turn, as the view makes them) the median latency warm and cold (the plugin's cache emptied first), the
bytes (gzip, as a browser gets them, and raw), and the ratios after/before. Also the event file's size with probe_images=4 against probe_images=1.

    python benchmarks/heatmap_view_requests.py [--repeats 15]
"""
from __future__ import annotations

import argparse
import gzip
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

import nas_logger
from nas_logger import format as fmt
from plugin_latency import client_for, python_provider, rust_provider

STEPS, RUN = 40, "cnn"


class SixLayers(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(3, 16, 3, padding=1), nn.Conv2d(16, 16, 3, padding=1)
        self.conv3, self.conv4 = nn.Conv2d(16, 32, 3, padding=1), nn.Conv2d(32, 32, 3, padding=1)
        self.fc1, self.fc2 = nn.Linear(32 * 8 * 8, 64), nn.Linear(64, 10)

    def forward(self, x):
        x = torch.relu(self.conv2(torch.relu(self.conv1(x))))
        x = nn.functional.max_pool2d(x, 2)
        x = nn.functional.max_pool2d(torch.relu(self.conv4(torch.relu(self.conv3(x)))), 2)
        return self.fc2(torch.relu(self.fc1(x.flatten(1))))


def write_run(path: Path, probe_images: int) -> int:
    """The run's event-file bytes."""
    torch.manual_seed(0)
    model = SixLayers()
    with nas_logger.watch(model, path, probe=torch.randn(16, 3, 32, 32), probe_images=probe_images) as monitor:
        for step in range(STEPS):
            with torch.no_grad():
                model.conv3.weight.mul_(1.05)
            monitor.log(step, test_loss=(step - 25) ** 2 / 400 + 1)
    return sum(f.stat().st_size for f in path.glob("events.out.tfevents.*"))


def ready(dp, ctx) -> bool:
    tags = dp.list_tensors(ctx, experiment_id="", plugin_name=fmt.PLUGIN_NAME).get(RUN, {})
    return len(tags) >= 6 + 2 and all(t.max_step == STEPS - 1 for t in tags.values() if not t.max_step == 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="nas_heatview_"))
    sizes = {k: write_run(root / f"k{k}", k) for k in (1, 4)}
    print(f"event file, {STEPS} steps x 6 layers: probe_images=1 {sizes[1] / 1024:.1f} KiB, "
          f"probe_images=4 {sizes[4] / 1024:.1f} KiB ({sizes[4] / sizes[1]:.2f}x)")
    logdir = root / "served"
    write_run(logdir / RUN, 4)
    P = "/data/plugin/nas/"
    heat = f"{P}heatmaps?run={RUN}&step=25"
    variants = {"before: lines + heatmaps": [f"{P}lines?run={RUN}", heat],
                "after: steps + heatmaps": [f"{P}steps?run={RUN}", heat]}
    for name, make in (("rust", lambda d: rust_provider(d, ready)), ("python", python_provider)):
        provider, ingester = make(logdir)
        try:
            results = time_panels(client_for(logdir, provider), variants, args.repeats)
        finally:
            if ingester is not None:
                ingester._stdin_handle.close()
        print(f"\n{name} provider, per panel: {'requests':26s} {'warm ms':>8s} {'cold ms':>8s} {'gzip B':>8s} {'raw B':>8s}")
        for variant, row in results.items():
            print(f"{'':27s}{variant:26s} {row[0] * 1e3:8.2f} {row[1] * 1e3:8.2f} {row[2]:8d} {row[3]:8d}")
        before, after = results.values()
        print(f"{'':27s}{'after/before':26s} " + " ".join(f"{a / b:8.2f}" for a, b in zip(after, before)))


def time_panels(fetch, variants: dict[str, list[str]], repeats: int) -> dict[str, tuple]:
    """{variant: (median s warm, median s cold, gzip bytes, raw bytes)} of its requests made in turn, as
    the view makes them; cold: the plugin's cache emptied before the first. Variants interleaved."""
    sizes = {}
    for name, urls in variants.items():
        bodies = [fetch(u) for u in urls]
        sizes[name] = (sum(len(b) for b in bodies), sum(len(gzip.decompress(b)) for b in bodies))
    warm = {name: [] for name in variants}
    cold = {name: [] for name in variants}
    for _ in range(repeats):
        for name, urls in variants.items():
            for times, empty in ((cold[name], True), (warm[name], False)):
                start = time.perf_counter()
                for i, u in enumerate(urls):
                    fetch(u, "cold" if empty and i == 0 else "warm")
                times.append(time.perf_counter() - start)
    return {name: (statistics.median(warm[name]), statistics.median(cold[name]), *sizes[name]) for name in variants}

if __name__ == "__main__":
    main()
