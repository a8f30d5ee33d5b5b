"""The NAS tab in a real browser on log directories that training rarely writes but other tools and old
versions do: a test loss still falling at the last step, steps beyond 2^53. Headless Chromium against a
real `tensorboard` process (default loader) serving synthetic event files (see reliability_support.py)."""
from __future__ import annotations

import pytest

from reliability_support import write_synthetic_runs
from test_frontend_support import TensorBoard, browser, select, show, wait_ready

FALLING = "falling"
FALLING_STEPS = 12


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("nas_frontend_edges")
    write_synthetic_runs(root, [FALLING], steps=FALLING_STEPS, loss=lambda i: 2.0 - 0.1 * i)
    tb = TensorBoard(root)
    tb.wait_for_runs(1)
    yield tb
    tb.close()


@pytest.fixture(scope="module")
def session(server):
    with browser() as b:
        context = b.new_context(viewport={"width": 1280, "height": 820}, accept_downloads=True)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(server.url + "/#nas")
        page.wait_for_selector("iframe", timeout=60000)
        frame = next(f for f in page.frames if "plugin_entry.html" in f.url)
        wait_ready(frame, "lines")
        yield {"page": page, "frame": frame, "errors": errors}
        context.close()


@pytest.fixture
def tab(session):
    yield session["frame"]
    assert session["errors"] == [], session["errors"]


@pytest.mark.parametrize("view", ["lines", "stripes", "heatmap"])
def test_a_loss_still_falling_at_the_last_step_has_no_overfit_line_but_a_note(tab, view):
    select(tab, f"run:{FALLING}")
    show(tab, view)
    loss = tab.evaluate(f"fetch('lines?run={FALLING}').then(r => r.json())")
    assert loss["overfit_step"] is None and len(loss["loss"]["values"]) == FALLING_STEPS
    assert tab.query_selector(".nas-panel line.overfit-line") is None
    note = tab.query_selector(".nas-panel .overfit-note")
    assert note is not None and "still falling" in note.text_content()
    assert tab.query_selector(".nas-panel .nas-error") is None
