"""The NAS tab in a real browser on log directories that training rarely writes but other tools and old
versions do: a test loss still falling at the last step, steps beyond 2^53. Headless Chromium against a
real `tensorboard` process (default loader) serving synthetic event files (see reliability_support.py)."""
from __future__ import annotations

import pytest

from plugin_fixtures import LAYERS, write_two_monitors
from reliability_support import write_synthetic_runs
from test_frontend_support import TensorBoard, select, session, show, tab  # noqa: F401 (fixtures)

FALLING = "falling"
FALLING_STEPS = 12
GAN = "gan"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("nas_frontend_edges")
    write_synthetic_runs(root, [FALLING], steps=FALLING_STEPS, loss=lambda i: 2.0 - 0.1 * i)
    write_two_monitors(root / GAN, shared_writer=True)
    tb = TensorBoard(root)
    tb.wait_for_runs(2)
    yield tb
    tb.close()


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


def test_two_monitors_in_one_run_show_each_models_layers_together(tab):
    select(tab, f"run:{GAN}")
    served = LAYERS + [f"SmallCNN/{n}" for n in LAYERS]  # the unnamed monitor's layers, then SmallCNN's
    show(tab, "lines")
    assert tab.eval_on_selector_all(".nas-panel path.nas-line", "els => els.map(e => e.dataset.layer)") == served
    assert tab.eval_on_selector_all(".nas-panel .legend-item", "els => els.map(e => e.dataset.layer)") == served
    show(tab, "stripes")
    assert tab.eval_on_selector_all(".nas-panel .stripe-label", "els => els.map(e => e.dataset.layer)") == served
    show(tab, "heatmap")
    assert tab.eval_on_selector_all(".nas-panel canvas.heatmap-canvas", "els => els.map(e => e.dataset.layer)") == served
    show(tab, "lines")
