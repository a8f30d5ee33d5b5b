"""The NAS tab as a person sees it, in headless Chromium against a real `tensorboard`: rows that the filter
or a folded group hides are off the screen, colours that can be told apart (CIEDE2000 computed here),
keys for every mark, plain messages, and controls whose effect shows in the drawn pixels."""
from __future__ import annotations

import contextlib
import math
import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
from torch.utils.tensorboard import SummaryWriter

from reliability_support import write_synthetic_runs
from test_frontend_support import TensorBoard, browser_context, open_tab, plugin_frame, select, show, wait_ready

GROUPED = ["lr0.1_a/seed0", "lr0.1_a/seed1", "lr0.01_b/seed0", "lr0.01_b/seed1"]
RISING = "rising"  # its test loss rises 2.34 -> 2.43 -> 2.60 over the last three steps
RISING_LOSS = [3.0, 2.8, 2.6, 2.5, 2.45, 2.34, 2.43, 2.60]
SOLOS = [f"solo{i}" for i in range(6)]
LONG = [f"a_very_long_experiment_name_lr0.001_wd0.0_bs128_x{i}" for i in (1, 2)]  # differ only at the end
LAYERS = 6
ENTRIES = 2 + len(GROUPED) + 1 + len(SOLOS) + len(LONG)  # two groups and every run
LOSS_RED = "#d32f2f"
WAIT_MS = 60_000


@pytest.fixture(scope="module")
def logdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("nas_frontend_seen")
    write_synthetic_runs(root, GROUPED, layers=LAYERS, steps=8, loss=lambda i: 1 + (i - 3) ** 2 / 10)
    write_synthetic_runs(root, [RISING], layers=LAYERS, steps=8, seed=1, loss=lambda i: RISING_LOSS[i])
    write_synthetic_runs(root, SOLOS, layers=2, steps=3, seed=2)
    write_synthetic_runs(root, LONG, layers=2, steps=3, seed=3)
    with SummaryWriter(str(root / RISING)) as writer:  # a second loss that only this run logs
        for i, value in enumerate(RISING_LOSS):
            writer.add_scalar("distorted_test_loss", value + 0.5, i)
    return root


@pytest.fixture(scope="module")
def server(logdir):
    tb = TensorBoard(logdir)
    tb.wait_for_runs(len(GROUPED) + 1 + len(SOLOS) + len(LONG))
    yield tb
    tb.close()


@pytest.fixture(scope="module")
def context(server):
    """The browser context of this module's pages; .url: the TensorBoard they open."""
    with browser_context(1600, 1000) as ctx:
        ctx.url = server.url
        yield ctx


@contextlib.contextmanager
def opened(context, query: str = "", view: str | None = None, series_handler=None, ignore=lambda error: False):
    """A new page of `context` on the NAS tab at `#nas&<query>`, drawn (in `view` when given): (page, frame).
    The page closes after the block, which fails if a page raised an uncaught error meanwhile (one that
    ignore(error) is true of aside). series_handler: as open_tab's."""
    page, frame = open_tab(context, f"{context.url}/#nas" + (f"&{query}" if query else ""), timeout=WAIT_MS, series_handler=series_handler)
    try:
        if view:
            wait_ready(frame, view, timeout=WAIT_MS)
        yield page, frame
    finally:
        page.close()
    errors, context.errors[:] = [e for e in context.errors if not ignore(e)], []
    assert errors == [], errors


@pytest.fixture
def tab(context):
    with opened(context) as page_and_frame:
        yield page_and_frame


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
    assert [h.inner_text() for h in frame.query_selector_all(".nas-section") if h.is_visible()] == ["GROUPS (REPEATS)"]
    box = frame.query_selector(".nas-entry[data-key='run:solo0']").bounding_box()
    assert box is None or box["height"] == 0
    frame.click(".nas-select-shown")
    wait_ready(frame, timeout=WAIT_MS)
    ticked = frame.eval_on_selector_all(".nas-entry", "els => els.filter(e => e.querySelector('input').checked).map(e => e.dataset.key)")
    assert ticked == ["group:lr0.1_a", "run:lr0.1_a/seed0", "run:lr0.1_a/seed1"]
    frame.fill(".nas-filter", "")
    assert len(shown_rows(frame)) == ENTRIES
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
    assert len(chips) == ENTRIES
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


def test_an_invalid_group_regex_is_one_plain_line_with_a_way_back_to_the_default(tab):
    _, frame = tab
    frame.fill(".nas-regex", "(seed")
    frame.press(".nas-regex", "Enter")
    error = frame.wait_for_selector(".nas-regex-error:not([hidden])", timeout=WAIT_MS)
    text = error.query_selector(".text")
    assert text.inner_text() == "Not a valid regular expression: missing ) in (seed"
    line_height = frame.eval_on_selector(".nas-regex-error .text", "e => parseFloat(getComputedStyle(e).lineHeight) || 16")
    assert error.bounding_box()["height"] <= 2 * line_height  # one line, not five
    frame.click(".nas-regex-reset")
    frame.wait_for_selector(".nas-regex-error", state="hidden", timeout=WAIT_MS)
    assert frame.input_value(".nas-regex") == ""
    assert "p.nas.regex" not in tab[0].url


def test_long_names_keep_both_ends_with_the_full_name_on_hover(tab):
    _, frame = tab
    texts = [frame.eval_on_selector(f".nas-entry[data-key='run:{name}'] .name", "e => [e.textContent, e.title, e.scrollWidth <= e.clientWidth + 1]")
             for name in LONG]
    (text1, title1, fits1), (text2, title2, fits2) = texts
    assert "\u2026" in text1 and text1 != text2 and text1.endswith("x1") and text2.endswith("x2")
    assert (title1, title2) == tuple(LONG) and fits1 and fits2


# --- panels: order, layout, alignment -----------------------------------------------------------------------

def panel_keys(frame) -> list[str]:
    return frame.eval_on_selector_all(".nas-panel", "els => els.map(e => e.dataset.key)")


def test_panels_follow_the_order_of_the_list(context):
    with opened(context, "p.nas.runs=" + '["run:solo3","run:solo1","group:lr0.1_a"]') as (page, frame):
        assert panel_keys(frame) == ["group:lr0.1_a", "run:solo1", "run:solo3"]
        frame.click(".nas-entry[data-key='run:solo2'] input")
        frame.wait_for_function("document.querySelectorAll('.nas-panel').length === 4 && document.querySelector('.nas-panels').dataset.ready === '1'")
        assert panel_keys(frame) == ["group:lr0.1_a", "run:solo1", "run:solo2", "run:solo3"]
        rows = [k for k in shown_rows(frame) if k in panel_keys(frame)]
        assert rows == panel_keys(frame)


def test_panels_fill_the_window_and_plots_of_a_row_start_at_one_height(tab):
    _, frame = tab
    select(frame, "group:lr0.1_a", f"run:{RISING}", "run:solo0")
    show(frame, "lines")
    boxes = frame.eval_on_selector_all(".nas-panel", """els => els.map(p => {
        const plot = p.querySelector('rect.hover').getBoundingClientRect();
        const box = p.getBoundingClientRect();
        return [box.top, box.bottom, plot.top, plot.height]; })""")
    for row in {round(b[0]) for b in boxes}:  # plots of a row aligned whatever their subtitles and notes
        tops = [b[2] for b in boxes if round(b[0]) == row]
        assert max(tops) - min(tops) <= 1, boxes
    height = frame.evaluate("window.innerHeight")
    assert max(b[1] for b in boxes) >= 0.8 * height  # the panels use the window's height
    assert boxes[0][3] >= 250


def test_the_url_can_fix_the_plot_height(context):
    with opened(context, "p.nas.height=180&p.nas.runs=" + '["run:solo0"]') as (page, frame):
        frame.wait_for_function("(document.querySelector('.nas-panel rect.hover') || { getBoundingClientRect: () => ({}) }).getBoundingClientRect().height > 0", timeout=WAIT_MS)
        assert frame.eval_on_selector(".nas-panel rect.hover", "e => e.getBoundingClientRect().height") == pytest.approx(180, abs=1)


# --- URL values out of range ----------------------------------------------------------------------------------

def test_a_refresh_period_beyond_settimeouts_range_does_not_refetch_at_once(context):
    with opened(context, "p.nas.refresh=2147484") as (page, _):  # 2,147,484,000 ms: negative as a 32-bit delay
        requests = []
        page.on("request", lambda r: requests.append(r.url) if "/data/plugin/nas/runs" in r.url else None)
        page.wait_for_timeout(3000)  # an overflowing timer refetches every few ms meanwhile
        assert len(requests) <= 1, len(requests)


def test_a_malformed_escape_typed_into_the_hash_leaves_the_tab_working(context):
    def theirs(error):  # TensorBoard's own page also throws on such a hash; the tab's modules must not
        return "/data/plugin/nas/" not in error and "static/" not in error

    with opened(context, "p.nas.runs=" + '["run:solo0"]', ignore=theirs) as (page, frame):
        page.evaluate("""location.hash = '#nas&p.nas.view=stripes&p.nas.runs=%5B%22run%3Asolo1%22%5D&p.nas.loss=%E0%A4%A'""")
        frame.wait_for_function("document.querySelector('.nas-panels').dataset.view === 'stripes'", timeout=WAIT_MS)
        wait_ready(frame, "stripes", timeout=WAIT_MS)
        assert panel_keys(frame) == ["run:solo1"]
        assert frame.query_selector(".nas-error") is None


def test_a_negative_probe_in_the_url_shows_the_first_probe(context):
    with opened(context, "p.nas.view=heatmap&p.nas.probe=-1&p.nas.runs=" + '["run:solo0"]', "heatmap") as (page, frame):
        assert frame.query_selector(".nas-panel .nas-error") is None
        assert frame.query_selector(".nas-panel canvas.heatmap-canvas").is_visible()


# --- losses that some runs lack, alarm status -------------------------------------------------------------------

@pytest.mark.parametrize("view", ["lines", "stripes", "overlay", "heatmap"])
def test_a_loss_that_some_runs_lack_is_left_out_with_one_note(context, view):
    runs = '["group:lr0.1_a","run:rising","run:solo0"]'
    with opened(context, f"p.nas.view={view}&p.nas.loss2=distorted_test_loss&p.nas.runs={runs}", view) as (page, frame):
        assert frame.query_selector(".nas-error") is None
        frame.wait_for_selector(".missing-loss-note", timeout=WAIT_MS)
        notes = frame.eval_on_selector_all(".missing-loss-note", "els => els.map(e => e.textContent)")
        assert notes == ["distorted_test_loss is not logged by: lr0.1_a, solo0"]
        assert frame.query_selector(".nas-note.missing-loss-note").is_visible()
        if view in ("lines", "stripes"):
            assert frame.query_selector(".nas-panel[data-key='run:rising'] path.loss2-line") is not None
            assert frame.query_selector(".nas-panel[data-key='run:solo0'] path.loss-line") is not None


STATUS = {"state": "fired", "message": "NAS alarm fired at epoch 6; the climb became significant at epoch 4", "epochs_needed": None,
          "onset": 4, "alarm": 6}


def answered_with(extra):
    """A route handler that answers a `lines`/`stripes` request as the server does, plus extra(body, query)."""
    def handle(route):
        response = route.fetch()
        body = response.json()
        extra(body, parse_qs(urlsplit(route.request.url).query))
        route.fulfill(response=response, json=body)
    return handle


def add_alarm_status(body, query):
    for run in body.get("runs") or query.get("run", []):
        body.setdefault("alarm_status", {})[run] = STATUS


@pytest.mark.parametrize("view", ["lines", "stripes"])
def test_the_alarm_status_shows_under_the_title_and_its_onset_on_the_axis(context, view):
    with opened(context, f"p.nas.view={view}&p.nas.runs=" + '["run:solo0","group:lr0.1_a"]', view, series_handler=answered_with(add_alarm_status)) as (page, frame):
        line = frame.query_selector(".nas-panel[data-key='run:solo0'] .nas-alarm-status")
        assert line.is_visible() and line.inner_text() == STATUS["message"]
        onset = frame.query_selector(".nas-panel[data-key='run:solo0'] .onset-marker")
        assert onset.get_attribute("data-step") == "4"
        assert frame.query_selector(".nas-panel[data-key='run:solo0'] .legend-key[data-mark=onset]").is_visible()


def test_in_the_overlay_each_onset_triangle_has_its_entrys_colour(context):
    with opened(context, "p.nas.view=overlay&p.nas.runs=" + '["run:solo0","group:lr0.1_a"]', "overlay",
                series_handler=answered_with(add_alarm_status)) as (page, frame):
        chips = chip_colours(frame)
        onsets = frame.eval_on_selector_all(
            ".nas-overlay-panel:first-of-type .onset-marker",
            "els => els.map(e => [e.dataset.entry, getComputedStyle(e).stroke, e.getBoundingClientRect().width])")
        assert {entry for entry, _, _ in onsets} == {"solo0", "lr0.1_a"}
        for entry, stroke, width in onsets:
            key = "run:solo0" if entry == "solo0" else "group:lr0.1_a"
            assert stroke == chips[key] and width > 5, (entry, stroke, chips)


# --- the heatmap view -----------------------------------------------------------------------------------------

def test_each_heatmap_panel_opens_at_its_own_minimum_and_says_why(tab):
    page, frame = tab
    select(frame, "run:lr0.1_a/seed0", f"run:{RISING}")
    show(frame, "heatmap")
    why = dict(frame.eval_on_selector_all(".nas-panel", "els => els.map(p => [p.dataset.key, p.querySelector('.nas-heat-why').textContent])"))
    assert why == {"run:lr0.1_a/seed0": "epoch 3: lowest test loss of this run",
                   f"run:{RISING}": "epoch 7: last logged step (no test-loss minimum to open at yet)"}
    with page.expect_download() as info:  # the exported figure names the step each panel shows
        frame.click(".nas-export[data-format=svg]")
    svg = Path(info.value.path()).read_text()
    assert re.search(r"lr0\.1_a/seed0\s+\(epoch 3\)", svg) and re.search(re.escape(RISING) + r"\s+\(epoch 7\)", svg), svg[:400]
    frame.click(".nas-panel[data-key='run:lr0.1_a/seed0'] .heatmap-tile[data-layer=layer1]")
    dialog = frame.wait_for_selector(".nas-zoom", timeout=WAIT_MS)
    assert dialog.query_selector(".nas-zoom-title").inner_text() == "lr0.1_a/seed0 \u00b7 layer1 (conv2d) \u00b7 epoch 3"
    assert dialog.query_selector(".nas-colorbar").is_visible()
    frame.click(".nas-zoom-close")
    frame.wait_for_selector(".nas-zoom", state="detached")
    show(frame, "lines")


# --- chart controls ---------------------------------------------------------------------------------------------

def path_points(d: str) -> list[tuple[float, float]]:
    return [tuple(map(float, p.split(","))) for p in re.split(r"[ML]", d) if p]


def loss_axis(frame, panel: str):
    """value -> y pixel of the drawn loss ticks (linear in the value, or in its log10 when `log`)."""
    return frame.eval_on_selector_all(f"{panel} .loss-tick", "els => els.map(e => [+e.dataset.value, +e.getAttribute('y') - 3])")


def test_smoothing_is_tensorboards_debiased_ema_with_the_raw_curve_faint(context):
    weight = 0.6
    with opened(context, f"p.nas.smooth={weight}&p.nas.runs=" + '["run:rising"]') as (page, frame):
        panel = ".nas-panel[data-key='run:rising']"
        (v0, y0), (v1, y1) = loss_axis(frame, panel)[0], loss_axis(frame, panel)[-1]
        last, smoothed = 0.0, []
        for n, value in enumerate(np.asarray(RISING_LOSS, dtype=np.float64), start=1):
            last = last * weight + (1 - weight) * value
            smoothed.append(last / (1 - weight ** n))
        drawn = [y for _, y in path_points(frame.get_attribute(f"{panel} path.loss-line", "d"))]
        expected = [y0 + (v - v0) * (y1 - y0) / (v1 - v0) for v in smoothed]
        assert drawn == pytest.approx(expected, abs=0.11)
        raw = [y for _, y in path_points(frame.get_attribute(f"{panel} path.loss-line-raw", "d"))]
        assert raw == pytest.approx([y0 + (v - v0) * (y1 - y0) / (v1 - v0) for v in RISING_LOSS], abs=0.11)
        assert float(frame.get_attribute(f"{panel} path.loss-line-raw", "stroke-opacity")) < 0.5
        assert frame.input_value(".nas-smoothing") == str(weight)


def test_the_log_loss_axis_spaces_ticks_by_their_logarithm(context):
    with opened(context, "p.nas.logloss=1&p.nas.runs=" + '["run:rising"]') as (page, frame):
        assert frame.is_checked(".nas-log-loss input")
        ticks = loss_axis(frame, ".nas-panel")
        assert len(ticks) >= 3
        (v0, y0), (v1, y1) = ticks[0], ticks[-1]
        for v, y in ticks:
            assert y == pytest.approx(y0 + (math.log10(v) - math.log10(v0)) * (y1 - y0) / (math.log10(v1) - math.log10(v0)), abs=0.6)


def test_fitting_the_nas_axis_spreads_the_lines_over_the_plot(context):
    with opened(context, "p.nas.yfit=1&p.nas.runs=" + '["run:rising"]') as (page, frame):
        top, bottom = frame.eval_on_selector(".nas-panel rect.hover", "e => [+e.getAttribute('y'), +e.getAttribute('y') + +e.getAttribute('height')]")
        ys = [y for d in frame.eval_on_selector_all(".nas-panel path.nas-line", "els => els.map(e => e.getAttribute('d'))") for _, y in path_points(d)]
        span = bottom - top
        assert min(ys) <= top + 0.1 * span and max(ys) >= bottom - 0.1 * span
        assert frame.is_checked(".nas-fit-y input")


def test_the_tooltip_lists_every_layer_and_the_crosshair_crosses_every_panel(tab):
    page, frame = tab
    select(frame, "run:lr0.1_a/seed0", f"run:{RISING}")
    show(frame, "lines")
    area = frame.query_selector(f".nas-panel[data-key='run:{RISING}'] rect.hover").bounding_box()
    page.mouse.move(area["x"] + area["width"] * 0.5, area["y"] + area["height"] * 0.5)
    tip = frame.wait_for_selector(f".nas-panel[data-key='run:{RISING}'] .nas-tooltip:not([hidden])")
    assert len(tip.query_selector_all(".series")) == LAYERS - 1  # the nearest layer on top, then the others
    crosses = frame.eval_on_selector_all(".nas-panel line.crosshair", "els => els.map(e => [e.getAttribute('visibility'), e.dataset.step])")
    assert len(crosses) == 2 and all(v == "visible" for v, _ in crosses) and crosses[0][1] == crosses[1][1]


def test_a_panel_can_be_enlarged_and_put_back(tab):
    page, frame = tab
    select(frame, "run:lr0.1_a/seed0", f"run:{RISING}", "run:solo0")
    show(frame, "lines")
    small = frame.eval_on_selector(f".nas-panel[data-key='run:{RISING}']", "e => e.getBoundingClientRect().width")
    frame.click(f".nas-panel[data-key='run:{RISING}'] .nas-enlarge")
    frame.wait_for_function("document.querySelectorAll('.nas-panel').length === 1 && document.querySelector('.nas-panels').dataset.ready === '1'")
    big = frame.eval_on_selector(".nas-panel", "e => [e.dataset.key, e.getBoundingClientRect().width, document.querySelector('.nas-panels').clientWidth]")
    assert big[0] == f"run:{RISING}" and big[1] > 1.5 * small and big[1] >= 0.95 * big[2]
    assert "p.nas.enlarge" in page.url
    frame.click(".nas-panel .nas-enlarge")
    frame.wait_for_function("document.querySelectorAll('.nas-panel').length === 3")


T0 = 1_700_000_000.0  # the wall time of step 0 in the answers below; each later step 30 minutes on


def add_times(body, query):
    body["times"] = {"steps": list(range(8)), "wall_times": [T0 + 1800 * i for i in range(8)]}


def drop_times(body, query):
    body.pop("times", None)  # as from a server or files that do not know the steps' wall times


def test_without_wall_times_the_x_axis_menu_is_disabled_and_says_why(context):
    with opened(context, "p.nas.view=lines&p.nas.runs=" + '["run:rising"]', "lines", series_handler=answered_with(drop_times)) as (page, frame):
        assert frame.is_disabled(".nas-xaxis")
        assert "wall times" in frame.get_attribute(".nas-xaxis-field", "title")


@pytest.mark.parametrize("view", ["lines", "stripes"])
def test_the_relative_x_axis_places_steps_at_their_hours(context, view):
    with opened(context, f"p.nas.view={view}&p.nas.xaxis=relative&p.nas.runs=" + '["run:rising"]', view, series_handler=answered_with(add_times)) as (page, frame):
        assert frame.input_value(".nas-xaxis") == "relative" and not frame.is_disabled(".nas-xaxis")
        assert frame.text_content(".nas-panel .x-label") == "hours since the first step"
        ticks = frame.eval_on_selector_all(".nas-panel .x-tick", "els => els.map(e => [+e.dataset.value, +e.getAttribute('x'), e.textContent])")
        (v0, p0, _), (v1, p1, _) = ticks[0], ticks[-1]
        assert all(label.endswith("h") for *_, label in ticks)
        xs = [x for x, _ in path_points(frame.get_attribute(".nas-panel path.loss-line", "d"))]
        assert xs == pytest.approx([p0 + (0.5 * i - v0) * (p1 - p0) / (v1 - v0) for i in range(8)], abs=0.11)


def nas_ticks(frame, panel: str) -> list[tuple[float, float, str]]:
    """The drawn NAS axis ticks of `panel`: (value, y pixel of the value, label)."""
    return frame.eval_on_selector_all(f"{panel} .nas-tick", "els => els.map(e => [+e.dataset.value, +e.getAttribute('y') - 3, e.textContent])")


def value_at(ticks, y: float) -> float:
    """The NAS value at pixel `y`, read off the first and last drawn tick."""
    (v0, y0, _), (v1, y1, _) = ticks[0], ticks[-1]
    return v0 + (y - y0) * (v1 - v0) / (y1 - y0)


@pytest.mark.parametrize("view", ["lines", "overlay"])
def test_dragging_over_a_plot_zooms_the_nas_axis_and_a_double_click_resets_it(context, view):
    panel = ".nas-panel"
    with opened(context, f"p.nas.view={view}&p.nas.runs=" + '["run:rising"]', view) as (page, frame):
        before = nas_ticks(frame, panel)
        line = f"{panel} path.nas-line"
        value_y = path_points(frame.get_attribute(line, "d"))[0][1]
        value = value_at(before, value_y)  # a curve point's NAS value, read off the unzoomed axis
        area = frame.query_selector(f"{panel} rect.hover").bounding_box()
        svg_top = frame.query_selector(f"{panel} svg").bounding_box()["y"]
        # Drag down over a band around the curve point: the NAS axis takes that band's values. The point sits
        # at `at` of the band from its top, half the plot's height from where it sits on the unzoomed plot.
        plot_top = area["y"] - svg_top
        rel = (value_y - plot_top) / area["height"]
        at = rel + 0.5 if rel < 0.5 else rel - 0.5
        y_hi = max(plot_top + 1, value_y - at * 0.15 * area["height"])
        y_lo = min(plot_top + area["height"] - 1, y_hi + 0.15 * area["height"])
        hi, lo = value_at(before, y_hi), value_at(before, y_lo)
        page.mouse.move(area["x"] + area["width"] / 2, svg_top + y_hi)
        page.mouse.down()
        page.mouse.move(area["x"] + area["width"] / 2, svg_top + (y_hi + y_lo) / 2, steps=3)
        page.mouse.move(area["x"] + area["width"] / 2, svg_top + y_lo, steps=3)
        page.mouse.up()
        page.wait_for_function("location.hash.includes('p.nas.yzoom')", timeout=WAIT_MS)
        wait_ready(frame, view, timeout=WAIT_MS)
        zoomed = nas_ticks(frame, panel)
        assert len(zoomed) >= 2 and [t[2] for t in zoomed] != [t[2] for t in before]
        pixel = abs(value_at(before, 1) - value_at(before, 0))  # the mouse lands on whole pixels
        assert all(lo - pixel <= v <= hi + pixel for v, _, _ in zoomed)
        assert all(float(label) == pytest.approx(v) for v, _, label in zoomed)
        (zv0, zy0, _), (zv1, zy1, _) = zoomed[0], zoomed[-1]
        top, bottom = frame.eval_on_selector(f"{panel} rect.hover", "e => [+e.getAttribute('y'), +e.getAttribute('y') + +e.getAttribute('height')]")
        # The zoomed axis spans the dragged [lo, hi] over the plot's height, and the curve point sits at its value on it.
        assert value_at(zoomed, bottom) == pytest.approx(lo, abs=pixel) and value_at(zoomed, top) == pytest.approx(hi, abs=pixel)
        moved_y = path_points(frame.get_attribute(line, "d"))[0][1]
        assert abs(moved_y - value_y) > 0.2 * area["height"] and top <= moved_y <= bottom
        assert moved_y == pytest.approx(zy0 + (value - zv0) * (zy1 - zy0) / (zv1 - zv0), abs=1.0)

        page.reload()
        frame = plugin_frame(page)
        wait_ready(frame, view, timeout=WAIT_MS)
        assert nas_ticks(frame, panel) == zoomed

        area = frame.query_selector(f"{panel} rect.hover").bounding_box()
        page.mouse.dblclick(area["x"] + area["width"] / 2, area["y"] + area["height"] / 2)
        page.wait_for_function("!location.hash.includes('p.nas.yzoom')", timeout=WAIT_MS)
        wait_ready(frame, view, timeout=WAIT_MS)
        assert nas_ticks(frame, panel) == before
        assert path_points(frame.get_attribute(line, "d"))[0][1] == pytest.approx(value_y, abs=0.01)


def plot_edges(frame, panel: str) -> tuple[float, float]:
    """The y pixels of the top and bottom of `panel`'s plot area."""
    return frame.eval_on_selector(f"{panel} rect.hover", "e => [+e.getAttribute('y'), +e.getAttribute('y') + +e.getAttribute('height')]")


def test_the_fit_box_fits_a_zoomed_nas_axis_to_the_lines_and_unticked_shows_0_to_1(context):
    panel = ".nas-panel"
    with opened(context, "p.nas.view=lines&p.nas.yzoom=[0.3,0.35]&p.nas.runs=" + '["run:rising"]', "lines") as (page, frame):
        top, bottom = plot_edges(frame, panel)
        zoomed = nas_ticks(frame, panel)
        assert value_at(zoomed, top) == pytest.approx(0.35) and value_at(zoomed, bottom) == pytest.approx(0.3)
        # The axis fitted to the drawn medians (one run: no band), 5 % of their span beyond each end, in float64.
        data = frame.evaluate("fetch('lines?run=rising').then(r => r.json())")
        medians = np.array([v for layer in data["layers"] for v in layer["median"] if v is not None], dtype=np.float64)
        pad = 0.05 * (medians.max() - medians.min())
        lo, hi = max(0.0, medians.min() - pad), min(1.0, medians.max() + pad)
        assert hi - lo > 0.1  # far from the zoom's 0.3..0.35

        frame.click(".nas-fit-y input")
        wait_ready(frame, "lines", timeout=WAIT_MS)
        fitted = nas_ticks(frame, panel)
        pixel = (hi - lo) / (bottom - top)
        assert [t[2] for t in fitted] != [t[2] for t in zoomed]
        assert value_at(fitted, top) == pytest.approx(hi, abs=pixel) and value_at(fitted, bottom) == pytest.approx(lo, abs=pixel)
        assert "p.nas.yfit=1" in page.url and "p.nas.yzoom" not in page.url

        frame.click(".nas-fit-y input")
        wait_ready(frame, "lines", timeout=WAIT_MS)
        whole = nas_ticks(frame, panel)
        assert value_at(whole, top) == pytest.approx(1.0) and value_at(whole, bottom) == pytest.approx(0.0)


def bare_number_layers(kinds: bool):
    """A `stripes` answer's layers renamed 0, 1, ... as an nn.Sequential's children are named, with their
    kinds beside them (`kinds`) or without."""
    def rename(body, query):
        if "medians" not in body:
            return
        body["layers"] = [str(i) for i in range(len(body["layers"]))]
        body.pop("kinds", None)
        if kinds:
            body["kinds"] = ["conv2d"] * len(body["layers"])
    return rename


@pytest.mark.parametrize("kinds", [True, False])
def test_stripe_rows_name_a_bare_number_layer_with_its_kind_in_full_view(context, kinds):
    with opened(context, "p.nas.view=stripes&p.nas.runs=" + '["run:rising"]', "stripes", series_handler=answered_with(bare_number_layers(kinds))) as (_, frame):
        labels = frame.eval_on_selector_all(".nas-panel .stripe-label", """els => els.map(e => {
            const box = e.getBoundingClientRect();
            const svg = e.ownerSVGElement.getBoundingClientRect();
            const cells = document.querySelector('.nas-panel .stripe-canvas').getBoundingClientRect();
            const title = e.querySelector('title');
            return [e.firstChild.nodeValue, title && title.textContent, box.left >= svg.left, box.right <= cells.left]; })""")
        # Named in full, left of the cells and inside the plot (not cut off by the panel's left edge).
        shown = [[f"{i} (conv2d)", f"{i} (conv2d)"] if kinds else [str(i), None] for i in range(LAYERS)]
        assert labels == [[*names, True, True] for names in shown]
