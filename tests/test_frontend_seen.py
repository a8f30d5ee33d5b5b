"""The NAS tab as a person sees it, in headless Chromium against a real `tensorboard`: rows that the filter
or a folded group hides are off the screen, colours that can be told apart (CIEDE2000 computed here),
keys for every mark, plain messages, and controls whose effect shows in the drawn pixels."""
from __future__ import annotations

import math
import re

import numpy as np
import pytest

from reliability_support import write_synthetic_runs
from test_frontend_support import TensorBoard, browser, plugin_frame, select, show, wait_ready

GROUPED = ["lr0.1_a/seed0", "lr0.1_a/seed1", "lr0.01_b/seed0", "lr0.01_b/seed1"]
RISING = "rising"  # its test loss rises 2.34 -> 2.43 -> 2.60 over the last three steps
RISING_LOSS = [3.0, 2.8, 2.6, 2.5, 2.45, 2.34, 2.43, 2.60]
SOLOS = [f"solo{i}" for i in range(6)]
LAYERS = 6
LOSS_RED = "#d32f2f"
WAIT_MS = 60_000


@pytest.fixture(scope="module")
def logdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("nas_frontend_seen")
    write_synthetic_runs(root, GROUPED, layers=LAYERS, steps=8, loss=lambda i: 1 + (i - 3) ** 2 / 10)
    write_synthetic_runs(root, [RISING], layers=LAYERS, steps=8, seed=1, loss=lambda i: RISING_LOSS[i])
    write_synthetic_runs(root, SOLOS, layers=2, steps=3, seed=2)
    return root


@pytest.fixture(scope="module")
def server(logdir):
    tb = TensorBoard(logdir)
    tb.wait_for_runs(len(GROUPED) + 1 + len(SOLOS))
    yield tb
    tb.close()


@pytest.fixture(scope="module")
def context(server):
    with browser() as b:
        ctx = b.new_context(viewport={"width": 1600, "height": 1000})
        ctx.errors = []
        yield ctx
        ctx.close()


def open_tab(context, url: str):
    page = context.new_page()
    page.on("pageerror", lambda e: context.errors.append(str(e)))
    page.goto(url)
    frame = plugin_frame(page)
    wait_ready(frame, timeout=WAIT_MS)
    return page, frame


@pytest.fixture
def tab(context, server):
    page, frame = open_tab(context, f"{server.url}/#nas")
    yield page, frame
    page.close()
    assert context.errors == [], context.errors


# --- colour distances (CIEDE2000, Sharma, Wu & Dalal 2005), computed here in float64 -----------------

def _srgb_to_lab(colour: str) -> np.ndarray:
    m = re.fullmatch(r"#([0-9a-f]{6})", colour.lower())
    if m:
        rgb = np.array([int(m.group(1)[i:i + 2], 16) for i in (0, 2, 4)], dtype=np.float64) / 255
    else:
        rgb = np.array([float(v) for v in re.findall(r"[\d.]+", colour)[:3]], dtype=np.float64) / 255
    lin = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = np.array([[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750],
                    [0.0193339, 0.1191920, 0.9503041]]) @ lin
    xyz /= np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def ciede2000(c1: str, c2: str) -> float:
    (l1, a1, b1), (l2, a2, b2) = _srgb_to_lab(c1), _srgb_to_lab(c2)
    cbar = (math.hypot(a1, b1) + math.hypot(a2, b2)) / 2
    g = 0.5 * (1 - math.sqrt(cbar ** 7 / (cbar ** 7 + 25 ** 7)))
    a1p, a2p = a1 * (1 + g), a2 * (1 + g)
    c1p, c2p = math.hypot(a1p, b1), math.hypot(a2p, b2)
    h1p = math.degrees(math.atan2(b1, a1p)) % 360
    h2p = math.degrees(math.atan2(b2, a2p)) % 360
    dl, dc = l2 - l1, c2p - c1p
    dh = 0.0 if c1p * c2p == 0 else (h2p - h1p if abs(h2p - h1p) <= 180 else h2p - h1p - 360 * math.copysign(1, h2p - h1p))
    dH = 2 * math.sqrt(c1p * c2p) * math.sin(math.radians(dh / 2))
    lbar, cbarp = (l1 + l2) / 2, (c1p + c2p) / 2
    if c1p * c2p == 0:
        hbar = h1p + h2p
    elif abs(h1p - h2p) <= 180:
        hbar = (h1p + h2p) / 2
    else:
        hbar = (h1p + h2p + 360) / 2 if h1p + h2p < 360 else (h1p + h2p - 360) / 2
    t = (1 - 0.17 * math.cos(math.radians(hbar - 30)) + 0.24 * math.cos(math.radians(2 * hbar))
         + 0.32 * math.cos(math.radians(3 * hbar + 6)) - 0.20 * math.cos(math.radians(4 * hbar - 63)))
    sl = 1 + 0.015 * (lbar - 50) ** 2 / math.sqrt(20 + (lbar - 50) ** 2)
    sc, sh = 1 + 0.045 * cbarp, 1 + 0.015 * cbarp * t
    rt = (-2 * math.sqrt(cbarp ** 7 / (cbarp ** 7 + 25 ** 7))
          * math.sin(math.radians(60 * math.exp(-(((hbar - 275) / 25) ** 2)))))
    return math.sqrt((dl / sl) ** 2 + (dc / sc) ** 2 + (dH / sh) ** 2 + rt * (dc / sc) * (dH / sh))


def test_ciede2000_matches_sharmas_published_pairs():
    # Pairs 1 and 7 of Sharma et al.'s test data, given in Lab; converted back to check the formula alone.
    def lab_pair(lab1, lab2):
        global _srgb_to_lab
        saved = _srgb_to_lab
        try:
            table = {"x": np.array(lab1), "y": np.array(lab2)}
            globals()["_srgb_to_lab"] = lambda c: table[c]
            return ciede2000("x", "y")
        finally:
            globals()["_srgb_to_lab"] = saved
    assert lab_pair((50, 2.6772, -79.7751), (50, 0, -82.7485)) == pytest.approx(2.0425, abs=1e-4)
    assert lab_pair((50, 0, 0), (50, -1, 2)) == pytest.approx(2.3669, abs=1e-4)


# --- the run list ---------------------------------------------------------------------------------------

def shown_rows(frame) -> list[str]:
    return [r.get_attribute("data-key") for r in frame.query_selector_all(".nas-entry") if r.is_visible()]


def test_the_filter_and_folding_take_rows_off_the_screen_and_select_shown_ticks_them(tab):
    _, frame = tab
    select(frame)
    frame.fill(".nas-filter", "lr0.1_")
    assert shown_rows(frame) == ["group:lr0.1_a", "run:lr0.1_a/seed0", "run:lr0.1_a/seed1"]
    box = frame.query_selector(".nas-entry[data-key='run:solo0']").bounding_box()
    assert box is None or box["height"] == 0
    frame.click(".nas-select-shown")
    wait_ready(frame, timeout=WAIT_MS)
    ticked = frame.eval_on_selector_all(".nas-entry", "els => els.filter(e => e.querySelector('input').checked).map(e => e.dataset.key)")
    assert ticked == ["group:lr0.1_a", "run:lr0.1_a/seed0", "run:lr0.1_a/seed1"]
    frame.fill(".nas-filter", "")
    assert len(shown_rows(frame)) == 2 + len(GROUPED) + 1 + len(SOLOS)
    frame.click(".nas-entry[data-key='group:lr0.01_b'] .nas-fold")
    assert "run:lr0.01_b/seed0" not in shown_rows(frame) and "group:lr0.01_b" in shown_rows(frame)
    frame.click(".nas-entry[data-key='group:lr0.01_b'] .nas-fold")
    assert "run:lr0.01_b/seed0" in shown_rows(frame)
    select(frame)


# --- colours ----------------------------------------------------------------------------------------------

def test_neighbouring_layers_differ_and_keep_dark_to_light_by_depth(tab):
    _, frame = tab
    select(frame, f"run:{RISING}")
    show(frame, "lines")
    strokes = frame.eval_on_selector_all(".nas-panel path.nas-line", "els => els.map(e => e.getAttribute('stroke'))")
    assert len(strokes) == LAYERS
    lightness = [_srgb_to_lab(c)[0] for c in strokes]
    assert lightness == sorted(lightness)  # the paper's ordering: dark (early) to light (deep)
    gaps = [ciede2000(a, b) for a, b in zip(strokes, strokes[1:])]
    assert min(gaps) >= 10, gaps
    assert all(ciede2000(c, "#ffffff") >= 15 for c in strokes)  # none washed out on the light background


def test_hovering_a_legend_key_fades_the_other_layers(tab):
    _, frame = tab
    select(frame, f"run:{RISING}")
    show(frame, "lines")
    frame.hover(".nas-panel .legend-item[data-layer=layer2]")
    opacity = frame.eval_on_selector_all(
        ".nas-panel path.nas-line", "els => els.map(e => [e.dataset.layer, +getComputedStyle(e).opacity])")
    assert dict(opacity)["layer2"] == 1 and all(o < 0.5 for name, o in opacity if name != "layer2")
    frame.hover(".nas-panel .nas-chart svg .x-label")
    assert all(o == 1 for _, o in frame.eval_on_selector_all(".nas-panel path.nas-line", "els => els.map(e => [0, +getComputedStyle(e).opacity])"))


def chip_colours(frame) -> dict[str, str]:
    return dict(frame.eval_on_selector_all(
        ".nas-entry", "els => els.map(e => [e.dataset.key, getComputedStyle(e.querySelector('.chip')).backgroundColor])"))


def test_twelve_run_colours_stay_apart_from_each_other_and_from_the_loss_red(tab):
    _, frame = tab
    chips = chip_colours(frame)
    assert len(chips) == 2 + len(GROUPED) + 1 + len(SOLOS)
    colours = list(chips.values())
    assert len(set(colours)) == len(colours)  # no colour repeats while there are few entries
    first = colours[:12]
    pairs = [ciede2000(a, b) for i, a in enumerate(first) for b in first[i + 1:]]
    assert min(pairs) >= 15, min(pairs)
    assert min(ciede2000(c, LOSS_RED) for c in colours) >= 20


def test_a_run_has_one_colour_in_the_list_and_the_overlay(tab):
    _, frame = tab
    select(frame, "group:lr0.1_a", f"run:{RISING}", "run:solo0")
    show(frame, "overlay")
    chips = chip_colours(frame)
    drawn = dict(frame.eval_on_selector_all(
        ".nas-overlay-panel:first-of-type path.nas-line", "els => els.map(e => [e.dataset.entry, getComputedStyle(e).stroke])"))
    assert drawn == {"lr0.1_a": chips["group:lr0.1_a"], RISING: chips[f"run:{RISING}"], "solo0": chips["run:solo0"]}
    show(frame, "lines")


# --- keys and messages ------------------------------------------------------------------------------------

@pytest.mark.parametrize("view", ["lines", "stripes"])
def test_a_minimum_within_the_last_points_says_it_is_too_early_above_the_plot(tab, view):
    _, frame = tab
    select(frame, f"run:{RISING}")
    show(frame, view)
    note = frame.wait_for_selector(".nas-panel .overfit-note")
    assert note.text_content() == "too few epochs after the lowest test loss to judge"
    note_bottom, plot_top = frame.eval_on_selector(
        ".nas-panel", """p => { const c = p.querySelector('.stripe-canvas') || p.querySelector('.hover');
          return [p.querySelector('.overfit-note').getBoundingClientRect().bottom, c.getBoundingClientRect().top]; }""")
    assert note_bottom <= plot_top + 1  # above the plot, not over it


@pytest.mark.parametrize("view", ["lines", "stripes"])
def test_the_minimum_and_alarm_marks_have_legend_keys(tab, view):
    _, frame = tab
    select(frame, "run:lr0.1_a/seed0")
    show(frame, view)
    data = frame.evaluate("fetch('lines?run=lr0.1_a/seed0').then(r => r.json())")
    assert data["overfit_step"] is not None
    keys = frame.eval_on_selector_all(".nas-panel .legend-key", "els => els.map(e => [e.dataset.mark, e.querySelector('text').textContent])")
    assert ["overfit", "test-loss minimum"] in [list(k) for k in keys]
    key = frame.query_selector(".nas-panel .legend-key[data-mark=overfit]")
    assert key.is_visible()
    dash = frame.eval_on_selector(".nas-panel .legend-key[data-mark=overfit] line", "e => [e.getAttribute('stroke'), e.getAttribute('stroke-dasharray')]")
    assert dash == [frame.get_attribute(".nas-panel line.overfit-line", "stroke"), frame.get_attribute(".nas-panel line.overfit-line", "stroke-dasharray")]
