"""Helpers of the browser tests of the NAS tab (tests/test_frontend*.py): a log directory written with
nas_logger by real training, a real `tensorboard` process serving it, and a headless Chromium."""
from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits

import nas_logger
from conftest import SmallCNN
from training.figure import CHROMIUM_ARGS, chromium_path, plugin_frame  # noqa: F401 (the tests import them from here)

EPOCHS = 30
# group -> (learning rate, seeds); run names "<group>/seed<N>" are grouped by the plugin's default regex.
GROUPS = {"vanilla": (0.2, (0, 1, 2)), "vanilla_lowlr": (0.1, (0, 1))}
HOSTILE_RUN = "<img src=x onerror=alert(1)><script>alert(2)<\u2215script>x"
LAYERS = ["conv1", "conv2", "fc1", "fc2"]  # SmallCNN's layers by depth


def _digits():
    data = load_digits()
    x = torch.tensor(data.images, dtype=torch.float32)[:, None] / 16.0
    y = torch.tensor(data.target)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    return x[perm], y[perm]


def train_run(log_dir: Path, lr: float, seed: int, epochs: int = EPOCHS) -> dict:
    """Train SmallCNN on 48 digits (the test loss bottoms out near epoch 9, then rises) with the two lines of nas_logger.
    Logs test_loss (400 held-out digits) and distorted_test_loss (24 training + 24 test digits, as the
    paper's distorted test set). Returns {"test_loss": [...], "distorted_test_loss": [...], "alarm": step|None}."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        x, y = _digits()
        x_train, y_train, x_test, y_test = x[:48], y[:48], x[-400:], y[-400:]
        x_mix, y_mix = torch.cat([x_train[:24], x_test[:24]]), torch.cat([y_train[:24], y_test[:24]])
        torch.manual_seed(seed)
        model = SmallCNN(width=16)
        optimizer = torch.optim.SGD(model.parameters(), lr=lr)
        logged = {"test_loss": [], "distorted_test_loss": []}
        # A sensitive detector, so that the fixture has NAS alarms to draw.
        detector = nas_logger.OverfitDetector(threshold=0.02, patience=1, warmup=2)
        monitor = nas_logger.watch(model, log_dir, probe=x_test[:16], detect=detector)
        for epoch in range(epochs):
            model.train()
            order = torch.randperm(96) % 48  # an "epoch" here is two passes over the 48 digits
            for i in range(0, 96, 8):
                batch = order[i : i + 8]
                optimizer.zero_grad()
                F.cross_entropy(model(x_train[batch]), y_train[batch]).backward()
                optimizer.step()
            model.eval()
            with torch.no_grad():
                test_loss = F.cross_entropy(model(x_test), y_test).item()
                distorted = F.cross_entropy(model(x_mix), y_mix).item()
            logged["test_loss"].append(test_loss)
            logged["distorted_test_loss"].append(distorted)
            monitor.log(epoch, test_loss=test_loss, distorted_test_loss=distorted)
        monitor.close()
        logged["alarm"] = monitor.alarm.step if monitor.alarm else None
        return logged
    finally:
        torch.set_num_threads(threads)


def write_logdir(root: Path) -> dict:
    """Two groups of repeats and one run with a hostile name; {run: logged losses}."""
    losses = {}
    for group, (lr, seeds) in GROUPS.items():
        for seed in seeds:
            run = f"{group}/seed{seed}"
            losses[run] = train_run(root / group / f"seed{seed}", lr, seed)
    losses[HOSTILE_RUN] = train_run(root / HOSTILE_RUN, 0.2, 7)
    return losses


def expected_overfit_step(curves: list[list[float]]) -> int:
    """The documented rule, computed here independently: mean over repeats, centred moving average of
    3 (2 at the ends), first step of the minimum."""
    mean = np.mean(np.asarray(curves, dtype=np.float64), axis=0)
    padded = np.concatenate([[np.nan], mean, [np.nan]])
    windows = np.stack([padded[:-2], padded[1:-1], padded[2:]])
    smooth = np.nanmean(windows, axis=0)
    return int(np.argmin(smooth))


class TensorBoard:
    """`python -m tensorboard.main --logdir X --port 0` in a subprocess; .url once it serves."""

    def __init__(self, logdir: Path, timeout: float = 120, reload_interval: float = 0):
        """reload_interval: seconds between TensorBoard's reads of the log directory (0: once, at start)."""
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir), "--port", "0",
             "--reload_interval", str(reload_interval)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        self.log: list[str] = []
        found = threading.Event()
        self.url = None

        def pump():
            for line in self.proc.stderr:
                self.log.append(line)
                m = re.search(r"(http://localhost:\d+)/", line)
                if m and not found.is_set():
                    self.url = m.group(1)
                    found.set()

        threading.Thread(target=pump, daemon=True).start()
        if not found.wait(timeout):
            self.close()
            raise RuntimeError("tensorboard did not start:\n" + "".join(self.log[-30:]))

    def wait_for_runs(self, count: int, timeout: float = 60) -> None:
        """Block until the plugin lists `count` runs (TensorBoard reads the log directory in the background)."""
        deadline = time.monotonic() + timeout
        seen = None
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/data/plugin/nas/runs", timeout=10) as response:
                    seen = len(json.load(response)["runs"])
                if seen >= count:
                    return
            except OSError:
                pass
            time.sleep(0.25)
        raise RuntimeError(f"tensorboard lists {seen} NAS runs after {timeout} s; expected {count}")

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@contextlib.contextmanager
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def session(server):
    """One browser on the NAS tab of the module's `server` fixture (a TensorBoard), drawn: {"page", "frame"
    (the tab's iframe), "url", "dialogs" (alert() messages that ran), "errors" (uncaught page errors)}."""
    with browser() as b:
        context = b.new_context(viewport={"width": 1280, "height": 820}, accept_downloads=True)
        page = context.new_page()
        dialogs, errors = [], []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(server.url + "/#nas")
        frame = plugin_frame(page)
        wait_ready(frame, "lines")
        yield {"page": page, "frame": frame, "dialogs": dialogs, "errors": errors, "url": server.url}
        context.close()


@pytest.fixture
def tab(session):
    """The NAS tab's frame; the test fails if the page raised an uncaught error meanwhile."""
    yield session["frame"]
    assert session["errors"] == [], session["errors"]


@contextlib.contextmanager
def browser_context(width: int, height: int):
    """A browser context of that viewport whose pages' uncaught errors (with their stacks) collect in .errors."""
    with browser() as b:
        ctx = b.new_context(viewport={"width": width, "height": height}, accept_downloads=True)
        ctx.errors = []
        yield ctx
        ctx.close()


def open_tab(context, url: str, timeout: float = 30000, series_handler=None):
    """A new page of `context` on `url`, its NAS tab drawn: (page, the tab's frame). series_handler: a
    Playwright route handler for the tab's `lines` and `stripes` requests (to serve hand-made fields)."""
    page = context.new_page()
    page.on("pageerror", lambda e: context.errors.append(f"{e}\n{e.stack}"))
    if series_handler:
        page.route(re.compile(r".*/data/plugin/nas/(lines|stripes)\?.*"), series_handler)
    page.goto(url)
    frame = plugin_frame(page)
    wait_ready(frame, timeout=timeout)
    return page, frame


def wait_ready(frame, view: str | None = None, timeout: float = 30000):
    """Wait until the tab has drawn (the given view)."""
    selector = ".nas-panels[data-ready='1']" + (f"[data-view='{view}']" if view else "")
    frame.wait_for_selector(selector, state="attached", timeout=timeout)


def select(frame, *keys: str) -> None:
    """Check exactly the sidebar entries `keys` ("group:NAME" / "run:NAME") and wait for the redraw."""
    changed = frame.evaluate(
        """(keys) => {
          let n = 0;
          for (const row of document.querySelectorAll('.nas-entry')) {
            const box = row.querySelector('input');
            if (box.checked !== keys.includes(row.dataset.key)) { box.click(); n++; }
          }
          return n;
        }""",
        list(keys),
    )
    assert frame.evaluate("(keys) => keys.every(k => [...document.querySelectorAll('.nas-entry')].some(r => r.dataset.key === k))", list(keys))
    if changed:
        wait_ready(frame)


def show(frame, view: str) -> None:
    if frame.get_attribute(".nas-panels", "data-view") != view or frame.evaluate("document.querySelector('.nas-view-btn.active').dataset.view") != view:
        frame.click(f".nas-view-btn[data-view={view}]")
    wait_ready(frame, view)


def x_of_step(frame, panel_selector: str, step: float) -> float:
    """The x pixel of `step` read off the drawn axis ticks (two tick labels define the scale)."""
    ticks = frame.eval_on_selector_all(
        f"{panel_selector} .x-tick", "els => els.map(e => [+e.dataset.value, +e.getAttribute('x')])")
    (v0, p0), (v1, p1) = ticks[0], ticks[-1]
    return p0 + (step - v0) * (p1 - p0) / (v1 - v0)
