"""``python -m training.figure``: the NAS tab's own PNG (or SVG) export of a view, from the command line.

    python -m training.figure --logdir runs/cifar10 --select group:vanilla --view lines -o docs/vanilla.png
    python -m training.figure --logdir runs/demo --select group:vanilla,group:nasreg --view overlay -o overlay.png

Starts TensorBoard on ``--logdir``, opens the NAS tab in headless Debian chromium (Playwright) with the view
and selection in its URL, as a user's copied link would, waits until the view is drawn and presses the tab's
export button: the file is exactly what the tab's download gives, so figures in papers and docs can be
remade from the runs.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
import urllib.parse
from collections.abc import Sequence
from pathlib import Path

from .serve import tensorboard

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update"]
VIEWS = ("lines", "stripes", "heatmap", "overlay")


def view_url(base: str, view: str, keys: Sequence[str], loss: str | None = None) -> str:
    """The NAS tab's URL showing ``view`` of the entries ``keys`` ("group:NAME" / "run:NAME")."""
    state = {"p.nas.view": view, "p.nas.runs": json.dumps(list(keys))}
    if loss:
        state["p.nas.loss"] = loss
    return f"{base}/#nas&" + "&".join(f"{k}={urllib.parse.quote(v, safe='')}" for k, v in state.items())


def export_view(logdir: str, view: str, keys: Sequence[str], output: Path, loss: str | None = None,
                width: int = 1500, height: int = 1100, timeout_s: float = 120.0) -> Path:
    """Write the tab's export of ``view`` for ``keys`` to ``output`` (``.png`` or ``.svg``) and return it."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as e:
        raise RuntimeError("training.figure needs Playwright: pip install playwright") from e
    chromium = chromium_path()
    fmt = output.suffix.lower().lstrip(".")
    if fmt not in ("png", "svg"):
        raise ValueError(f"output must end in .png or .svg; got {output}")
    with tensorboard(logdir) as served, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True).new_page()
            page.goto(view_url(served.url, view, keys, loss))
            frame = plugin_frame(page, timeout_s)
            frame.wait_for_selector(f".nas-panels[data-ready='1'][data-view='{view}']", state="attached",
                                    timeout=timeout_s * 1000)
            shown = frame.evaluate("() => window.nasApp.selected.map((e) => `${e.type}:${e.name}`)")
            if sorted(shown) != sorted(keys):
                raise ValueError(f"the tab shows {shown}, not {list(keys)}: is every key a run or group of {logdir}?")
            with page.expect_download(timeout=timeout_s * 1000) as download:
                frame.click(f".nas-export[data-format={fmt}]")
            output.parent.mkdir(parents=True, exist_ok=True)
            download.value.save_as(output)
        finally:
            browser.close()
    return output


def chromium_path() -> str:
    """Debian's chromium, which Playwright drives here (and in the browser tests)."""
    path = shutil.which(CHROMIUM) or CHROMIUM
    if not Path(path).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: run `make system-deps` (apt-get install -y chromium)")
    return path


def plugin_frame(page, timeout_s: float = 60.0):
    """The NAS tab's iframe once it has navigated to the plugin's page (a new iframe is about:blank first,
    for a moment that a loaded machine stretches)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        frame = next((f for f in page.frames if "plugin_entry.html" in f.url), None)
        if frame is not None:
            return frame
        page.wait_for_timeout(100)
    raise RuntimeError(f"the NAS tab did not load within {timeout_s:.0f} s (frames: {[f.url for f in page.frames]})")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.figure", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--logdir", required=True)
    p.add_argument("--select", required=True, metavar="KEYS",
                   help="comma-separated entries of the run list: group:NAME or run:NAME")
    p.add_argument("--view", choices=VIEWS, default="lines")
    p.add_argument("--loss", default=None, help="scalar tag drawn as the red loss curve (default: the tab's)")
    p.add_argument("-o", "--output", type=Path, required=True, help="file to write, .png or .svg")
    args = p.parse_args(argv)
    keys = [k for k in args.select.split(",") if k]
    bad = [k for k in keys if not k.startswith(("group:", "run:"))]
    if bad or not keys:
        p.error(f"--select takes group:NAME or run:NAME entries; got {args.select!r}")
    try:
        written = export_view(args.logdir, args.view, keys, args.output, args.loss)
    except (RuntimeError, ValueError) as e:
        print(f"training.figure: error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
