"""Time to the NAS tab's first plot in Chromium, split where it goes: TensorBoard's page until it opens the
plugin's frame, the frame until the tab's module starts, the run list, and the first drawn view.

Writes a demo-like log directory with nas_logger as a user would (two groups of three seeds of a 6-layer
CNN, 20 epochs each, a probe image and the overfitting detector), serves it with `tensorboard`, and opens
`/#nas` in a fresh browser context per round (nothing cached), reading the tab's performance marks
(`nas-start`, `nas-runs`, `nas-first-plot`) against the frame's and the page's navigation start.
Prints the median and the min..max of each part over the rounds.

    python benchmarks/first_plot.py [--rounds 5] [--logdir DIR (reused if it holds runs)]
"""
from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch
from torch import nn

import nas_logger
from training.figure import CHROMIUM_ARGS, chromium_path, plugin_frame

EPOCHS = 20
GROUPS = {"vanilla": 0.1, "nasreg": 0.05}  # group -> learning rate
SEEDS = (0, 1, 2)


class SixLayers(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1)
        self.conv3, self.conv4 = nn.Conv2d(8, 16, 3, padding=1), nn.Conv2d(16, 16, 3, padding=1)
        self.fc1, self.prediction = nn.Linear(16 * 4 * 4, 32), nn.Linear(32, 10)

    def forward(self, x):
        x = nn.functional.max_pool2d(torch.relu(self.conv2(torch.relu(self.conv1(x)))), 2)
        x = nn.functional.max_pool2d(torch.relu(self.conv4(torch.relu(self.conv3(x)))), 2)
        return self.prediction(torch.relu(self.fc1(x.flatten(1))))


def write_logdir(root: Path) -> None:
    """Six runs, `<group>/seed<N>`, of SixLayers fitting 64 random 16x16 images (the test loss turns up)."""
    generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 1, 16, 16, generator=generator), torch.randint(0, 10, (64,), generator=generator)
    x_test, y_test = torch.randn(64, 1, 16, 16, generator=generator), torch.randint(0, 10, (64,), generator=generator)
    for group, lr in GROUPS.items():
        for seed in SEEDS:
            torch.manual_seed(seed)
            model = SixLayers()
            optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
            with nas_logger.watch(model, root / group / f"seed{seed}", probe=x_test[:8], detect=True) as monitor:
                for epoch in range(EPOCHS):
                    model.train()
                    for _ in range(5):  # memorising 64 random labels: the test loss soon turns up
                        optimizer.zero_grad()
                        nn.functional.cross_entropy(model(x), y).backward()
                        optimizer.step()
                    model.eval()
                    with torch.no_grad():
                        test_loss = nn.functional.cross_entropy(model(x_test), y_test).item()
                    monitor.log(epoch, test_loss=test_loss)


def serve(logdir: Path) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir), "--port", "0"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    found: list[str] = []
    ready = threading.Event()

    def pump():
        for line in proc.stderr:
            m = re.search(r"(http://localhost:\d+)/", line)
            if m and not ready.is_set():
                found.append(m.group(1))
                ready.set()

    threading.Thread(target=pump, daemon=True).start()
    if not ready.wait(120):
        proc.kill()
        raise RuntimeError("tensorboard did not start within 120 s")
    return proc, found[0]


def one_round(browser, url: str) -> dict[str, float]:
    """Milliseconds from the page's navigation start to: the frame's navigation start, the tab's module
    start, the run list, the first plot."""
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    try:
        page = context.new_page()
        page.goto(url + "/#nas", wait_until="commit")
        frame = plugin_frame(page)
        frame.wait_for_function("performance.getEntriesByName('nas-first-plot').length > 0", timeout=120_000)
        marks = frame.evaluate("""() => {
            const at = (name) => performance.getEntriesByName(name)[0].startTime;
            const offset = performance.timeOrigin - window.parent.performance.timeOrigin;
            return { frame: offset, start: offset + at('nas-start'), runs: offset + at('nas-runs'),
                     plot: offset + at('nas-first-plot') };
        }""")
        return marks
    finally:
        context.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--logdir", type=Path, default=None)
    args = p.parse_args()
    logdir = args.logdir or Path(tempfile.mkdtemp(prefix="nas_first_plot_"))
    if not any(logdir.rglob("events.out.tfevents.*")):
        write_logdir(logdir)
    proc, url = serve(logdir)
    from playwright.sync_api import sync_playwright

    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
            one_round(browser, url)  # TensorBoard loads the log directory on the first requests: not timed
            rounds = [one_round(browser, url) for _ in range(args.rounds)]
            browser.close()
    finally:
        proc.terminate()
        proc.wait(10)
    parts = [("navigation -> frame", lambda r: r["frame"]), ("frame -> tab module", lambda r: r["start"] - r["frame"]),
             ("module -> run list", lambda r: r["runs"] - r["start"]), ("run list -> first plot", lambda r: r["plot"] - r["runs"]),
             ("frame -> first plot", lambda r: r["plot"] - r["frame"]), ("navigation -> first plot", lambda r: r["plot"])]
    print(f"first plot of the NAS tab, {len(GROUPS) * len(SEEDS)} runs, {args.rounds} rounds (ms: median, min..max)")
    for name, get in parts:
        values = [get(r) for r in rounds]
        print(f"  {name:26s} {statistics.median(values):7.0f}   {min(values):6.0f}..{max(values):.0f}")


if __name__ == "__main__":
    main()
