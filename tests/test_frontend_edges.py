"""The NAS tab in a real browser on log directories that training rarely writes but other tools and old
versions do: a test loss still falling at the last step, steps beyond 2^53. Headless Chromium against a
real `tensorboard` process (default loader) serving synthetic event files (see reliability_support.py)."""
from __future__ import annotations

import pytest

from plugin_fixtures import LAYERS, write_two_monitors
from reliability_support import as_sent, write_synthetic_runs
from test_frontend_support import TensorBoard, select, session, show, tab  # noqa: F401 (fixtures)

FALLING = "falling"
FALLING_STEPS = 12
GAN = "gan"
# Steps that event files of other tools or older versions may hold: int64, beyond JavaScript's 2^53.
SPREAD = "steps_spread"  # from 0 to 2^63 - 1
SPREAD_STEPS = [0, 7, 2**53 - 1, 2**53 + 1, 2**53 + 3, 2**53 + 5, 2**62, 2**63 - 1]
DENSE = "steps_dense"  # consecutive steps around 2^53
DENSE_STEPS = [2**53 - 2, 2**53 - 1, 2**53 + 1, 2**53 + 2, 2**53 + 3]
BIG_RUNS = {SPREAD: SPREAD_STEPS, DENSE: DENSE_STEPS}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("nas_frontend_edges")
    write_synthetic_runs(root, [FALLING], steps=FALLING_STEPS, loss=lambda i: 2.0 - 0.1 * i)
    write_two_monitors(root / GAN, shared_writer=True)
    for run, steps in BIG_RUNS.items():
        write_synthetic_runs(root, [run], steps=steps, heatmap_side=3, loss=lambda i: (i - 3) ** 2 + 1.0)
    tb = TensorBoard(root)
    tb.wait_for_runs(2 + len(BIG_RUNS))
    yield tb
    tb.close()


@pytest.mark.parametrize("view", ["lines", "stripes", "heatmap"])
def test_a_loss_still_falling_at_the_last_step_has_no_overfit_line_but_says_it_is_too_early(tab, view):
    select(tab, f"run:{FALLING}")
    show(tab, view)
    loss = tab.evaluate(f"fetch('lines?run={FALLING}').then(r => r.json())")
    assert loss["overfit_step"] is None and len(loss["loss"]["values"]) == FALLING_STEPS
    assert tab.query_selector(".nas-panel line.overfit-line") is None
    note = tab.query_selector(".nas-panel .overfit-note")
    assert note is not None and note.text_content() == "too few epochs after the lowest test loss to judge"
    assert tab.query_selector(".nas-panel .nas-error") is None


def test_two_monitors_in_one_run_show_each_models_layers_together(tab):
    select(tab, f"run:{GAN}")
    served = LAYERS + [f"SmallCNN/{n}" for n in LAYERS]  # the unnamed monitor's layers, then SmallCNN's
    show(tab, "lines")
    assert tab.eval_on_selector_all(".nas-panel path.nas-line", "els => els.map(e => e.dataset.layer)") == served
    assert tab.eval_on_selector_all(".nas-panel .legend-item[data-layer]", "els => els.map(e => e.dataset.layer)") == served
    show(tab, "stripes")
    assert tab.eval_on_selector_all(".nas-panel .stripe-label", "els => els.map(e => e.dataset.layer)") == served
    show(tab, "heatmap")
    assert tab.eval_on_selector_all(".nas-panel canvas.heatmap-canvas", "els => els.map(e => e.dataset.layer)") == served
    show(tab, "lines")


@pytest.mark.parametrize("run", list(BIG_RUNS))
@pytest.mark.parametrize("view", ["lines", "stripes"])
def test_steps_beyond_2_to_the_53_draw_at_once_on_a_sparse_axis(tab, run, view):
    select(tab, f"run:{run}")
    show(tab, view)
    assert tab.query_selector(".nas-error") is None, tab.inner_text(".nas-main")
    assert tab.eval_on_selector_all(".nas-panel", "els => els.map(e => e.dataset.key)") == [f"run:{run}"]
    draw = tab.evaluate("window.nasApp.timings.filter(t => t.view === '%s').at(-1).drawMs" % view)
    assert draw < 1000, draw
    assert 1 <= len(tab.query_selector_all(".nas-panel .x-tick")) <= 20
    steps = BIG_RUNS[run]
    if view == "lines":
        vertices = tab.eval_on_selector_all(".nas-panel path.nas-line", "els => els.map(e => e.getAttribute('d').split(/[ML]/).length - 1)")
        assert vertices == [len(steps)] * 2
    else:  # one column per logged step
        assert tab.get_attribute(".nas-panel canvas.stripe-canvas", "data-cols") == str(len(steps))
    overfit = tab.query_selector(".nas-panel line.overfit-line")
    if len(steps) - 3 > 3:  # the loss minimum at the 4th step, followed by a whole smoothing window
        assert overfit.get_attribute("data-step") == str(steps[3])


@pytest.mark.parametrize("run", list(BIG_RUNS))
def test_heatmap_slider_asks_for_each_exact_step(tab, run):
    select(tab, f"run:{run}")
    show(tab, "heatmap")
    sent = [as_sent(s) for s in BIG_RUNS[run]]
    assert tab.evaluate("window.nasApp.heatmap.steps") == sent
    for index, step in enumerate(BIG_RUNS[run]):
        tab.evaluate(f"window.nasApp.heatmap.setStep({index})")
        tab.wait_for_selector(f".nas-panels[data-step='{step}']", state="attached", timeout=10000)
        assert tab.get_attribute(".nas-panel .nas-heatmaps", "data-step") == str(step)
        assert str(step) in tab.inner_text(".nas-step-label")
        assert tab.query_selector(".nas-message .nas-error") is None, tab.inner_text(".nas-message")
    show(tab, "lines")
