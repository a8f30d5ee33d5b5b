"""The README's screenshots of the whole TensorBoard page on the NAS tab: the demo-like log directory of
benchmarks/first_plot.py in light and dark mode at 1600x1000 and 1280x720, and a 60-run log directory.

    PYTHONPATH=. python docs/screenshots/shoot.py [--logdir DIR] [--many DIR]   (directories reused if they hold runs)

from the repository root (`training/` is not installed with the package). The README's screenshots use the
log directory of `make demo`: `--logdir runs/demo`.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch
from torch import nn

import nas_logger

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "benchmarks"))
from first_plot import serve, write_logdir  # noqa: E402 (benchmarks/ is not a package)
from training.figure import CHROMIUM_ARGS, chromium_path, plugin_frame  # noqa: E402

MANY = 60


def write_many(root: Path) -> None:
    """60 small runs in 12 groups of 5 seeds, `lr<LR>_wd<WD>/seed<N>`, 8 epochs of a 3-layer MLP each."""
    x, y = torch.randn(64, 20, generator=torch.Generator().manual_seed(0)), torch.arange(64) % 4
    for i in range(MANY):
        lr, wd, seed = (0.3, 0.1, 0.03, 0.01)[i // 15], (0.0, 1e-4, 1e-3)[(i // 5) % 3], i % 5
        torch.manual_seed(seed)
        model = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 4))
        optimizer = torch.optim.SGD(model.parameters(), lr=lr, weight_decay=wd)
        with nas_logger.watch(model, root / f"lr{lr}_wd{wd}" / f"seed{seed}", probe=x[:4]) as monitor:
            for epoch in range(8):
                optimizer.zero_grad()
                loss = nn.functional.cross_entropy(model(x), y)
                loss.backward()
                optimizer.step()
                monitor.log(epoch, test_loss=loss.item() + 0.02 * (epoch - 5) ** 2)


def shoot(browser, url: str, name: str, size: tuple[int, int], dark: bool = False) -> None:
    context = browser.new_context(viewport={"width": size[0], "height": size[1]})
    page = context.new_page()
    page.goto(url + "/#nas")
    frame = plugin_frame(page)
    frame.wait_for_selector(".nas-panels[data-ready='1']", state="attached", timeout=120_000)
    if dark:
        page.click("button[aria-label='Menu for changing light or dark theme']")
        page.click("[role=menuitem]:has-text('Dark')")
        frame.wait_for_function("document.body.classList.contains('dark-mode')")
        frame.wait_for_selector(".nas-panels[data-ready='1'] svg", state="attached", timeout=120_000)
    page.wait_for_timeout(800)  # the resize observer's redraw after the first layout
    frame.wait_for_selector(".nas-panels[data-ready='1']", state="attached", timeout=120_000)
    page.mouse.move(0, 0)
    page.screenshot(path=str(HERE / name))
    if dark:  # TensorBoard keeps the theme in local storage: back to light for the next context
        page.click("button[aria-label='Menu for changing light or dark theme']")
        page.click("[role=menuitem]:has-text('Light')")
    context.close()
    print(HERE / name)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--logdir", type=Path, default=None)
    p.add_argument("--many", type=Path, default=None)
    args = p.parse_args()
    demo = args.logdir or Path(tempfile.mkdtemp(prefix="nas_demo_"))
    many = args.many or Path(tempfile.mkdtemp(prefix="nas_many_"))
    if not any(demo.rglob("events.out.tfevents.*")):
        write_logdir(demo)
    if not any(many.rglob("events.out.tfevents.*")):
        write_many(many)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        for logdir, shots in ((demo, [("tab-light-1600x1000.png", (1600, 1000), False),
                                      ("tab-dark-1600x1000.png", (1600, 1000), True),
                                      ("tab-light-1280x720.png", (1280, 720), False),
                                      ("tab-dark-1280x720.png", (1280, 720), True)]),
                              (many, [("many-runs-1600x1000.png", (1600, 1000), False)])):
            proc, url = serve(logdir)
            try:
                for name, size, dark in shots:
                    shoot(browser, url, name, size, dark)
            finally:
                proc.terminate()
                proc.wait(10)
        browser.close()


if __name__ == "__main__":
    main()
