"""The overlay view and the readable heatmaps in a real browser: headless Chromium against a real
`tensorboard` process serving runs that nas_logger wrote while training (see test_frontend_support.py)."""
from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest

from test_frontend import save_screenshot, viridis
from test_frontend_support import (  # noqa: F401 (session, tab: fixtures)
    GROUPS, LAYERS, TensorBoard, select, session, show, tab, wait_ready, write_logdir, x_of_step,
)

ENTRIES = ["group:vanilla", "group:vanilla_lowlr", "run:vanilla/seed2"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("nas_frontend_overlay")
    runs = write_logdir(root)
    tb = TensorBoard(root)
    tb.wait_for_runs(len(runs))
    yield tb
    tb.close()


def chip_colours(tab) -> dict[str, str]:
    """{entry name: its sidebar chip's colour as rgb(...)}."""
    return dict(tab.eval_on_selector_all(".nas-entry", """els => els.map(e =>
        [e.querySelector('.name').textContent, getComputedStyle(e.querySelector('.chip')).backgroundColor])"""))


def rgb(colour: str) -> str:
    """#rrggbb as getComputedStyle writes it."""
    return "rgb({}, {}, {})".format(*(int(colour[i:i + 2], 16) for i in (1, 3, 5)))


def fetch_json(tab, route: str, **params):
    query = "&".join(f"{k}=' + encodeURIComponent({v!r}) + '" for k, v in params.items())
    return tab.evaluate(f"fetch('{route}?{query}').then(r => r.json())")


def first_point(path_d: str) -> tuple[float, float]:
    x, y = re.match(r"M([-0-9.]+),([-0-9.]+)", path_d).groups()
    return float(x), float(y)


def nas_axis(tab, panel: str):
    """y pixel of NAS v in `panel`, from its right-axis tick labels 0 and 1."""
    ticks = dict(tab.eval_on_selector_all(f"{panel} .nas-tick", "els => els.map(e => [+e.dataset.value, +e.getAttribute('y') - 3])"))
    return lambda v: ticks[0] + v * (ticks[1] - ticks[0])


# --- overlay --------------------------------------------------------------------------------------

def test_overlay_shows_each_entry_per_layer_in_its_chip_colour(tab, session):
    select(tab, *ENTRIES)
    show(tab, "overlay")
    assert tab.eval_on_selector_all(".nas-panel", "els => els.map(e => e.dataset.key)") == [f"layer:{n}" for n in LAYERS]
    chips = chip_colours(tab)
    names = ["vanilla", "vanilla/seed2", "vanilla_lowlr"]  # the list's order
    for layer in LAYERS:
        panel = f".nas-panel[data-key='layer:{layer}']"
        lines = tab.eval_on_selector_all(f"{panel} path.nas-line", "els => els.map(e => [e.dataset.entry, e.getAttribute('stroke'), e.getAttribute('d')])")
        assert [l[0] for l in lines] == names
        assert [rgb(l[1]) for l in lines] == [chips[n] for n in names]
        # Bands for the groups only; every entry's loss dashed in its colour.
        assert tab.eval_on_selector_all(f"{panel} path.nas-band", "els => els.map(e => e.dataset.entry)") == ["vanilla", "vanilla_lowlr"]
        losses = tab.eval_on_selector_all(f"{panel} path.loss-line", "els => els.map(e => [e.dataset.entry, e.getAttribute('stroke'), e.getAttribute('stroke-dasharray')])")
        assert [(l[0], rgb(l[1])) for l in losses] == [(n, chips[n]) for n in names] and all(l[2] for l in losses)
    # The drawn medians are the served ones: first point of conv2 of each entry on the NAS axis.
    panel = ".nas-panel[data-key='layer:conv2']"
    y_of = nas_axis(tab, panel)
    for (name, _, d), param in zip(tab.eval_on_selector_all(f"{panel} path.nas-line", "els => els.map(e => [e.dataset.entry, 0, e.getAttribute('d')])"),
                                   [{"group": "vanilla"}, {"run": "vanilla/seed2"}, {"group": "vanilla_lowlr"}]):
        served = next(l for l in fetch_json(tab, "lines", **param)["layers"] if l["name"] == "conv2")
        assert first_point(d)[1] == pytest.approx(y_of(served["median"][0]), abs=0.6), name
    # Shared axes: every panel has the same step and loss ticks.
    axes = tab.eval_on_selector_all(".nas-panel", """els => els.map(p => [
        [...p.querySelectorAll('.x-tick')].map(t => t.textContent + '@' + t.getAttribute('x')).join(),
        [...p.querySelectorAll('.loss-tick')].map(t => t.textContent + '@' + t.getAttribute('y')).join()])""")
    assert axes[0][0] and axes[0][1] and all(a == axes[0] for a in axes)
    save_screenshot(session["page"], tab, "overlay.png")


def test_overlay_hover_names_the_entry_and_its_value(tab, session):
    select(tab, *ENTRIES)
    show(tab, "overlay")
    panel = ".nas-panel[data-key='layer:conv1']"
    served = next(l for l in fetch_json(tab, "lines", group="vanilla_lowlr")["layers"] if l["name"] == "conv1")
    step, value = served["steps"][12], served["median"][12]
    box = tab.query_selector(f"{panel} svg.nas-overlay").bounding_box()
    session["page"].mouse.move(box["x"] + x_of_step(tab, panel, step), box["y"] + nas_axis(tab, panel)(value))
    tip = tab.wait_for_selector(f"{panel} .nas-tooltip:not([hidden])").inner_text()
    assert tip.startswith("vanilla_lowlr") and f"conv1, epoch {step}" in tip
    assert float(re.search(r"NAS ([-+0-9.e]+)", tip).group(1)) == pytest.approx(value, abs=1e-4)
    assert "test loss" in tip
    session["page"].mouse.move(0, 0)


def test_overlay_layer_choice_is_kept_in_the_app(tab):
    select(tab, *ENTRIES)
    show(tab, "overlay")
    for layer in ("conv1", "fc1"):
        tab.click(f".nas-layer-choice[data-layer='{layer}'] input")
        wait_ready(tab, "overlay")
    assert tab.eval_on_selector_all(".nas-panel", "els => els.map(e => e.dataset.key)") == ["layer:conv2", "layer:fc2"]
    assert tab.evaluate("window.nasApp.overlayLayers") == ["conv2", "fc2"]
    show(tab, "lines")  # the choice outlives a change of view
    show(tab, "overlay")
    assert tab.eval_on_selector_all(".nas-panel", "els => els.map(e => e.dataset.key)") == ["layer:conv2", "layer:fc2"]
    assert tab.is_visible(".nas-overlaybar")
    tab.click(".nas-layers-all")
    wait_ready(tab, "overlay")
    assert tab.evaluate("window.nasApp.overlayLayers") is None
    assert len(tab.query_selector_all(".nas-panel")) == len(LAYERS)
    show(tab, "lines")
    assert not tab.is_visible(".nas-overlaybar")


def test_overlay_exports_svg_png_and_csv(tab, session):
    page = session["page"]
    select(tab, *ENTRIES)
    show(tab, "overlay")
    with page.expect_download() as info:
        tab.click(".nas-export[data-format=svg]")
    svg = Path(info.value.path()).read_text()
    assert svg.count('class="nas-line"') == 3 * len(LAYERS) and svg.count('class="nas-band"') == 2 * len(LAYERS)
    assert all(f">{layer}</text>" in svg for layer in LAYERS)  # each panel's title
    with page.expect_download() as info:
        tab.click(".nas-export[data-format=png]")
    assert Path(info.value.path()).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    with page.expect_download() as info:
        tab.click(".nas-panel[data-key='layer:conv2'] .nas-csv")
    assert info.value.suggested_filename == "nas_overlay_conv2.csv"
    rows = list(csv.reader(io.StringIO(Path(info.value.path()).read_text())))
    assert rows[0] == ["run_or_group", "layer", "depth", "step", "min", "median", "max"]
    served = next(l for l in fetch_json(tab, "lines", group="vanilla")["layers"] if l["name"] == "conv2")
    vanilla = [r for r in rows[1:] if r[0] == "vanilla"]
    assert [int(r[3]) for r in vanilla] == served["steps"]
    assert [float(r[5]) for r in vanilla] == pytest.approx(served["median"], rel=1e-6)
    assert {r[0] for r in rows[1:]} == {"vanilla", "vanilla_lowlr", "vanilla/seed2"} and {r[1] for r in rows[1:]} == {"conv2"}
    show(tab, "lines")


# --- heatmaps -------------------------------------------------------------------------------------

def canvas_pixels(tab, selector: str, cells: int) -> list[int]:
    return tab.evaluate(f"""() => {{ const c = document.querySelector({selector!r});
        return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data).slice(0, {4 * cells}); }}""")


def assert_painted(pixels: list[int], values: list[float]) -> None:
    for i, v in enumerate(values):
        assert max(abs(a - b) for a, b in zip(pixels[4 * i:4 * i + 3], viridis(v))) <= 3


def test_heatmap_tiles_follow_the_panel_width(tab, session):
    page = session["page"]
    select(tab, "run:vanilla/seed1")
    show(tab, "heatmap")
    sizes = []
    try:
        for width in (1500, 900):
            drawn = tab.evaluate("window.nasApp.timings.filter(t => t.view === 'heatmap').length")
            page.set_viewport_size({"width": width, "height": 820})
            # A resize redraws the view (debounced): wait for that drawing.
            tab.wait_for_function(f"() => window.nasApp.timings.filter(t => t.view === 'heatmap').length > {drawn}"
                                  " && document.querySelector('.nas-panels').dataset.ready === '1'")
            tiles = tab.eval_on_selector_all(".nas-panel .heatmap-tile", "els => els.map(e => e.getBoundingClientRect()).map(r => [r.left, r.bottom, r.width])")
            body = tab.eval_on_selector(".nas-panel .body", "e => e.clientWidth")
            conv1 = tab.eval_on_selector(".nas-panel canvas.heatmap-canvas[data-layer=conv1]", "e => e.clientWidth")  # inside its border
            tile = int(tab.get_attribute(".nas-panel .nas-heatmaps", "data-tile"))
            assert conv1 == pytest.approx(tile, abs=1)  # the 8x8 map fills the tile
            assert all(abs(t[1] - tiles[0][1]) < 2 for t in tiles)  # probe + 4 layers in one row (bottom-aligned) at these widths
            used = tiles[-1][0] + tiles[-1][2] - tiles[0][0]
            assert 0.6 * body < used <= body + 1, (used, body)  # the tiles fill most of the panel, never past it
            sizes.append(tile)
    finally:
        page.set_viewport_size({"width": 1280, "height": 820})
    assert sizes[0] > sizes[1] > 84  # wider panel, larger tiles; both above the old fixed size
    wait_ready(tab, "heatmap")


def test_click_enlarges_a_layer_beside_its_probe_and_esc_or_click_closes(tab, session):
    select(tab, "run:vanilla/seed1")
    show(tab, "heatmap")
    step = tab.get_attribute(".nas-stepbar", "data-step")
    tile = int(tab.get_attribute(".nas-panel .nas-heatmaps", "data-tile"))
    tab.click(".nas-panel .heatmap-tile[data-layer=conv2]")
    zoom = tab.wait_for_selector(".nas-zoom")
    assert zoom.get_attribute("aria-label") == "conv2 enlarged"
    size = tab.eval_on_selector(".nas-zoom canvas.zoom-canvas", "e => [e.dataset.layer, e.getBoundingClientRect().width]")
    assert size[0] == "conv2" and size[1] > 1.5 * tile
    data = fetch_json(tab, "heatmaps", run="vanilla/seed1", step=step)
    conv2 = next(l for l in data["layers"] if l["name"] == "conv2")
    assert_painted(canvas_pixels(tab, ".nas-zoom canvas.zoom-canvas", len(conv2["values"])), conv2["values"])
    tab.wait_for_function("() => { const i = document.querySelector('.nas-zoom img.zoom-probe-img'); return i.complete && i.naturalWidth > 0; }")
    assert tab.get_attribute(".nas-zoom img.zoom-probe-img", "src") == tab.get_attribute(".nas-panel img.probe", "src")
    probe_box = tab.eval_on_selector(".nas-zoom img.zoom-probe-img", "e => e.getBoundingClientRect().width")
    assert probe_box == pytest.approx(size[1], abs=2)  # side by side, the same size
    session["page"].keyboard.press("Escape")
    tab.wait_for_selector(".nas-zoom", state="detached")
    tab.click(".nas-panel .heatmap-tile[data-layer=conv1]")
    tab.wait_for_selector(".nas-zoom canvas[data-layer=conv1]")
    tab.click(".nas-zoom", position={"x": 4, "y": 4})  # the backdrop around the dialog
    tab.wait_for_selector(".nas-zoom", state="detached")
    tab.click(".nas-panel .heatmap-tile[data-layer=conv1]")
    tab.click(".nas-zoom .nas-zoom-close")
    tab.wait_for_selector(".nas-zoom", state="detached")


def test_probe_picker_changes_the_probe_image_and_the_maps(tab, session):
    select(tab, "run:vanilla/seed1")
    show(tab, "heatmap")
    options = tab.eval_on_selector_all(".nas-probe option", "els => els.map(e => e.value)")
    assert options == ["0", "1", "2", "3"] and tab.is_visible(".nas-probe")
    before = tab.get_attribute(".nas-panel img.probe", "src")
    step = tab.get_attribute(".nas-stepbar", "data-step")
    tab.select_option(".nas-probe", "2")
    tab.wait_for_function("() => document.querySelector('.nas-panel img.probe').getAttribute('src').includes('probe=2')")
    wait_ready(tab, "heatmap")
    assert tab.evaluate("window.nasApp.heatmap.probeIndex") == 2
    src = tab.get_attribute(".nas-panel img.probe", "src")
    assert src == fetch_json(tab, "heatmaps", run="vanilla/seed1", step=step, probe=2)["probe"]
    images = [session["page"].request.get(session["url"] + "/data/plugin/nas/" + u).body() for u in (before, src)]
    assert images[0] != images[1] and all(i.startswith(b"\x89PNG") for i in images)
    conv1 = next(l for l in fetch_json(tab, "heatmaps", run="vanilla/seed1", step=step, probe=2)["layers"] if l["name"] == "conv1")
    first = next(l for l in fetch_json(tab, "heatmaps", run="vanilla/seed1", step=step)["layers"] if l["name"] == "conv1")
    assert conv1["values"] != first["values"]
    assert_painted(canvas_pixels(tab, ".nas-panel canvas.heatmap-canvas[data-layer=conv1]", 64), conv1["values"])
    # The slider keeps the chosen probe.
    tab.evaluate("window.nasApp.heatmap.setStep(2)")
    tab.wait_for_selector(".nas-panels[data-step='2']")
    conv1 = next(l for l in fetch_json(tab, "heatmaps", run="vanilla/seed1", step=2, probe=2)["layers"] if l["name"] == "conv1")
    assert_painted(canvas_pixels(tab, ".nas-panel canvas.heatmap-canvas[data-layer=conv1]", 64), conv1["values"])
    tab.select_option(".nas-probe", "0")
    wait_ready(tab, "heatmap")


def test_group_heatmap_shows_the_chosen_run(tab):
    select(tab, "group:vanilla")
    show(tab, "heatmap")
    picker = ".nas-panel[data-key='group:vanilla'] select.nas-heat-run"
    assert tab.eval_on_selector_all(f"{picker} option", "els => els.map(e => e.value)") == [f"vanilla/seed{s}" for s in GROUPS["vanilla"][1]]
    assert tab.eval_on_selector(picker, "e => e.value") == "vanilla/seed0"
    tab.select_option(picker, "vanilla/seed2")
    tab.wait_for_function(f"() => document.querySelector({picker!r}) && document.querySelector({picker!r}).value === 'vanilla/seed2'")
    wait_ready(tab, "heatmap")
    step = tab.get_attribute(".nas-stepbar", "data-step")
    conv1 = next(l for l in fetch_json(tab, "heatmaps", run="vanilla/seed2", step=step)["layers"] if l["name"] == "conv1")
    other = next(l for l in fetch_json(tab, "heatmaps", run="vanilla/seed0", step=step)["layers"] if l["name"] == "conv1")
    assert conv1["values"] != other["values"]
    assert_painted(canvas_pixels(tab, ".nas-panel canvas.heatmap-canvas[data-layer=conv1]", 64), conv1["values"])
    assert "vanilla%2Fseed2" in tab.get_attribute(".nas-panel img.probe", "src")
    show(tab, "lines")
    show(tab, "heatmap")  # kept across views
    assert tab.eval_on_selector(picker, "e => e.value") == "vanilla/seed2"


def test_heatmap_view_makes_one_light_request_per_panel_not_lines(tab):
    select(tab, "group:vanilla", "run:vanilla/seed1")
    show(tab, "lines")
    tab.click(".nas-reload")  # empties the client's cache, so that every request shows
    tab.wait_for_selector(".nas-panels[data-ready='1'][data-view='lines'] .nas-panel")
    tab.evaluate("performance.clearResourceTimings()")
    tab.click(".nas-view-btn[data-view=heatmap]")
    wait_ready(tab, "heatmap")
    routes = tab.evaluate("performance.getEntriesByType('resource').map(e => new URL(e.name).pathname.split('/').pop())")
    assert "lines" not in routes
    assert routes.count("steps") == 2 and routes.count("heatmaps") >= 2
