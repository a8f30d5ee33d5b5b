"""The NAS tab labels steps with the unit the run recorded: a run logged as the Hugging Face callback logs
(``step_unit="global step"``, every 50 optimiser steps) beside one logged per epoch. Headless Chromium
against a real `tensorboard` process."""
from __future__ import annotations

import pytest
import torch

import nas_logger
from conftest import SmallCNN
from test_frontend_support import TensorBoard, select, session, show, tab, wait_ready, x_of_step  # noqa: F401 (fixtures)

HF = "hf_style"
HF_STEPS = [50, 100, 150, 200, 250, 300]
EPOCHS = "per_epoch"
EPOCH_STEPS = [0, 1, 2, 3, 4, 5]


def write_run(path, steps, **options) -> None:
    torch.manual_seed(0)
    model = SmallCNN()
    with nas_logger.watch(model, path, probe=torch.randn(8, 1, 8, 8), **options) as monitor:
        for i, step in enumerate(steps):
            monitor.log(step, test_loss=1.0 + (i - 3) ** 2 / 10)
            with torch.no_grad():
                model.conv2.weight.mul_(1.2)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("nas_frontend_units")
    write_run(root / HF, HF_STEPS, step_unit="global step")
    write_run(root / EPOCHS, EPOCH_STEPS)  # the default unit
    tb = TensorBoard(root)
    tb.wait_for_runs(2)
    yield tb
    tb.close()


def x_labels(frame) -> list[str]:
    return frame.eval_on_selector_all(".nas-panel .x-label", "els => els.map(e => e.textContent)")


@pytest.mark.parametrize("view", ["lines", "stripes"])
def test_a_global_step_run_labels_its_axis_and_tooltip_global_step(tab, session, view):
    select(tab, f"run:{HF}")
    show(tab, view)
    assert x_labels(tab) == ["global step"]
    assert tab.query_selector(".units-note") is None
    # The tooltip at step 150 names the unit; the pointer is placed by the drawn axis ticks.
    chart = tab.query_selector(".nas-panel svg.nas-lineplot, .nas-panel svg.nas-stripeplot").bounding_box()
    area = tab.query_selector(".nas-panel rect.hover").bounding_box()
    session["page"].mouse.move(chart["x"] + x_of_step(tab, ".nas-panel", 150), area["y"] + area["height"] / 2)
    tip = tab.wait_for_selector(".nas-panel .nas-tooltip:not([hidden])").inner_text()
    assert "global step 150" in tip
    session["page"].mouse.move(0, 0)
    csv_url = tab.get_attribute(".nas-panel a.nas-csv", "href")
    header = tab.evaluate("(u) => fetch(u).then(r => r.text()).then(t => t.split('\\r\\n')[0])", csv_url)
    assert header == "run_or_group,layer,depth,global step,min,median,max"


def test_runs_of_different_units_side_by_side_each_label_and_scale_their_own_axis(tab):
    select(tab, f"run:{HF}", f"run:{EPOCHS}")
    for view in ("lines", "stripes"):
        show(tab, view)
        panels = tab.eval_on_selector_all(".nas-panel", "els => els.map(e => e.dataset.key)")
        labels = dict(zip(panels, x_labels(tab)))
        assert labels == {f"run:{HF}": "global step", f"run:{EPOCHS}": "epoch"}
        # Each panel's ticks span its own steps (a shared axis would put the epochs 0..5 in one corner).
        for key, steps in ((f"run:{HF}", HF_STEPS), (f"run:{EPOCHS}", EPOCH_STEPS)):
            ticks = tab.eval_on_selector_all(f".nas-panel[data-key='{key}'] .x-tick", "els => els.map(e => +e.dataset.value)")
            assert min(steps) - 50 <= ticks[0] and ticks[-1] <= max(steps) + 50 and ticks[-1] >= steps[-2], (key, ticks)
        note = tab.inner_text(".units-note")
        assert "different units" in note and "global step" in note and "epoch" in note


def test_heatmap_step_label_slider_and_loss_axis_use_the_unit(tab):
    select(tab, f"run:{HF}")
    show(tab, "heatmap")
    assert tab.inner_text(".nas-step-label").startswith("global step ")
    assert tab.get_attribute(".nas-step", "aria-label") == "global step"
    assert x_labels(tab) == ["global step"]  # the loss curve under the heatmaps
    tab.evaluate("() => { const s = document.querySelector('.nas-step'); s.value = 2;"
                 " s.dispatchEvent(new Event('input')); }")
    tab.wait_for_selector(".nas-panels[data-step='150']", state="attached")
    assert tab.inner_text(".nas-step-label").startswith("global step 150")
    title = tab.get_attribute(".nas-panel .heatmap-tile[data-layer=conv1]", "title")
    assert "at global step 150" in title
    tab.click(".nas-panel .heatmap-tile[data-layer=conv1]")  # enlarged, its caption says the unit too
    assert "conv1 at global step 150" in tab.wait_for_selector(".nas-zoom figcaption").inner_text()
    tab.page.keyboard.press("Escape")
    tab.wait_for_selector(".nas-zoom", state="detached")
    show(tab, "lines")
    wait_ready(tab, "lines")
