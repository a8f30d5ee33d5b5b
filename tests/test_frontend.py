"""The NAS tab in a real browser: headless Chromium against a real `tensorboard` process serving a log
directory that nas_logger wrote while training small CNNs (see test_frontend_support.py)."""
from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

import pytest

from test_frontend_support import (  # noqa: F401 (session, tab: fixtures)
    EPOCHS, GROUPS, HOSTILE_RUN, LAYERS, TensorBoard, expected_overfit_step, select, session, show, tab, wait_ready,
    write_logdir, x_of_step,
)

# The README's screenshots are refreshed only on request (NAS_UPDATE_SCREENSHOTS=1), so that a test run
# leaves the checkout as it was; otherwise they go to a temporary folder and are checked there.
SCREENSHOTS = (Path(__file__).resolve().parent.parent / "docs" / "screenshots" if os.environ.get("NAS_UPDATE_SCREENSHOTS")
               else Path(tempfile.mkdtemp(prefix="nas-screenshots-")))
# matplotlib's viridis at 0, 0.1, ..., 1: the reference the drawn colours are checked against.
VIRIDIS = ["#440154", "#482475", "#414487", "#355f8d", "#2a788e", "#21918c", "#22a884", "#44bf70",
           "#7ad151", "#bddf26", "#fde725"]


def viridis(v: float) -> tuple[int, int, int]:
    stops = [tuple(int(c[i:i + 2], 16) for i in (1, 3, 5)) for c in VIRIDIS]
    t = min(max(v, 0.0), 1.0) * 10
    j = min(9, int(t))
    f = t - j
    return tuple(round(a + (b - a) * f) for a, b in zip(stops[j], stops[j + 1]))


def luminance(hex_colour: str) -> float:
    rgb = [int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    root = tmp_path_factory.mktemp("nas_frontend_logs")
    return root, write_logdir(root)


@pytest.fixture(scope="module")
def server(logged):
    tb = TensorBoard(logged[0])
    tb.wait_for_runs(len(logged[1]))
    yield tb
    tb.close()


def tooltip_value(text: str) -> float:
    return float(re.search(r"NAS ([-+0-9.e]+)", text).group(1))


def group_losses(logged, group: str) -> list[list[float]]:
    return [logged[1][f"{group}/seed{s}"]["test_loss"] for s in GROUPS[group][1]]


def test_sidebar_lists_groups_and_runs_with_colour_chips(tab):
    keys = tab.eval_on_selector_all(".nas-entry", "els => els.map(e => e.dataset.key)")
    # Each group followed by its runs, then the runs of no group.
    nested = [k for g in sorted(GROUPS) for k in [f"group:{g}"] + [f"run:{g}/seed{s}" for s in GROUPS[g][1]]]
    assert keys == nested + [f"run:{HOSTILE_RUN}"]
    chips = dict(tab.eval_on_selector_all(".nas-entry", "els => els.map(e => [e.dataset.key, getComputedStyle(e.querySelector('.chip')).backgroundColor])"))
    by_entry = [f"group:{g}" for g in sorted(GROUPS)] + sorted(k for k in keys if k.startswith("run:"))
    assert len({chips[k] for k in by_entry[:7]}) == 7  # distinct colours for the first seven entries (groups, then runs)
    # TensorBoard's own Roboto is used inside the iframe.
    assert tab.evaluate("document.fonts.ready.then(() => [...document.fonts].some(f => f.family.includes('Roboto') && f.status === 'loaded'))")
    # Three groups (one a run of its own): all of them are selected and drawn on load.
    assert tab.eval_on_selector_all(".nas-panel", "els => els.map(e => e.dataset.key)") == [
        "group:vanilla", "group:vanilla_lowlr", f"run:{HOSTILE_RUN}"]


def test_line_plot_draws_one_line_and_band_per_layer_dark_to_light_by_depth(tab):
    show(tab, "lines")
    select(tab, "group:vanilla")
    lines = tab.eval_on_selector_all(
        ".nas-panel path.nas-line", "els => els.map(e => [e.dataset.layer, +e.dataset.depth, e.getAttribute('stroke'), e.getAttribute('d').split(/[ML]/).length - 1])")
    assert [name for name, *_ in lines] == LAYERS
    assert all(points == EPOCHS for *_, points in lines)  # one vertex per logged epoch
    lum = [luminance(colour) for _, _, colour, _ in lines]
    assert lum == sorted(lum) and lum[0] < lum[-1] * 0.5  # darker for shallower layers
    assert tab.eval_on_selector_all(".nas-panel path.nas-band", "els => els.length") == 4  # group: band across repeats
    assert tab.get_attribute(".nas-panel path.loss-line", "stroke").lower() == "#d32f2f"


def test_overfit_line_sits_at_the_minimum_of_the_test_loss(tab, logged):
    show(tab, "lines")
    select(tab, "group:vanilla")
    expected = expected_overfit_step(group_losses(logged, "vanilla"))
    line = tab.query_selector(".nas-panel line.overfit-line")
    assert int(line.get_attribute("data-step")) == expected
    assert line.get_attribute("stroke-dasharray")
    x = float(line.get_attribute("x1"))
    assert x == pytest.approx(x_of_step(tab, ".nas-panel", expected), abs=0.6)


def test_nas_alarms_are_marked_where_they_fired(tab, logged):
    select(tab, "group:vanilla")
    runs = [f"vanilla/seed{s}" for s in GROUPS["vanilla"][1]]
    fired = {run: logged[1][run]["alarm"] for run in runs if logged[1][run]["alarm"] is not None}
    assert fired  # the fixture's sensitive detector fires on these runs
    for view in ("lines", "stripes"):
        show(tab, view)
        markers = tab.query_selector_all(".nas-panel g.alarm-marker")
        assert {m.get_attribute("data-run"): int(m.get_attribute("data-step")) for m in markers} == fired
        for m in markers:
            step = int(m.get_attribute("data-step"))
            assert float(m.query_selector("line").get_attribute("x1")) == pytest.approx(x_of_step(tab, ".nas-panel", step), abs=0.6)
            assert m.query_selector("line").get_attribute("stroke").lower() == "#8e24aa"
            assert m.query_selector("title").text_content().startswith(f"NAS overfitting alarm at epoch {step}")
        assert tab.query_selector(".nas-panel .legend-key[data-mark=alarm]").is_visible()
    show(tab, "overlay")
    markers = tab.query_selector_all(".nas-overlay-panel:first-of-type g.alarm-marker")
    assert {m.get_attribute("data-run"): int(m.get_attribute("data-step")) for m in markers} == fired
    assert tab.query_selector(".nas-overlay-panel:first-of-type .legend-key[data-mark=alarm]").is_visible()
    show(tab, "lines")


def test_second_loss_is_orange(tab):
    show(tab, "lines")
    select(tab, "group:vanilla")
    tab.select_option(".nas-loss2", "distorted_test_loss")
    wait_ready(tab, "lines")
    try:
        assert tab.get_attribute(".nas-panel path.loss2-line", "data-tag") == "distorted_test_loss"
        assert tab.get_attribute(".nas-panel path.loss2-line", "stroke").lower() == "#f57c00"
        show(tab, "stripes")
        assert tab.get_attribute(".nas-panel path.loss2-line", "stroke").lower() == "#f57c00"
        show(tab, "lines")
    finally:
        tab.select_option(".nas-loss2", "")
        wait_ready(tab, "lines")
    assert tab.query_selector(".nas-panel path.loss2-line") is None


def test_hover_shows_layer_step_and_value(tab, session):
    show(tab, "lines")
    select(tab, "run:vanilla/seed0")
    data = tab.evaluate("fetch('lines?run=' + encodeURIComponent('vanilla/seed0')).then(r => r.json())")
    fc2 = next(l for l in data["layers"] if l["name"] == "fc2")
    step, value = fc2["steps"][20], fc2["median"][20]
    box = tab.query_selector(".nas-panel svg.nas-lineplot").bounding_box()
    yb = float(tab.get_attribute(".nas-panel .nas-tick[data-value='0']", "y")) - 3
    yt = float(tab.get_attribute(".nas-panel .nas-tick[data-value='1']", "y")) - 3
    px = x_of_step(tab, ".nas-panel", step)
    py = yb + (yt - yb) * value
    session["page"].mouse.move(box["x"] + px, box["y"] + py)
    tip = tab.wait_for_selector(".nas-panel .nas-tooltip:not([hidden])")
    text = tip.inner_text()
    assert "fc2" in text and f"epoch {step}" in text  # the default step unit
    assert tooltip_value(text) == pytest.approx(value, abs=1e-4)


def test_clicking_a_legend_entry_hides_and_shows_a_layer(tab):
    show(tab, "lines")
    select(tab, "group:vanilla")
    tab.click(".nas-panel .legend-item[data-layer=conv2]")
    wait_ready(tab, "lines")
    assert tab.eval_on_selector_all(".nas-panel path.nas-line", "els => els.map(e => e.dataset.layer)") == ["conv1", "fc1", "fc2"]
    assert "off" in tab.get_attribute(".nas-panel .legend-item[data-layer=conv2]", "class")
    tab.click(".nas-panel .legend-item[data-layer=conv2]")
    wait_ready(tab, "lines")
    assert tab.eval_on_selector_all(".nas-panel path.nas-line", "els => els.length") == 4


def test_stripe_plot_rows_by_depth_viridis_cells_and_overfit_line(tab, logged):
    show(tab, "lines")
    select(tab, "group:vanilla")
    show(tab, "stripes")
    canvas = tab.query_selector(".nas-panel canvas.stripe-canvas")
    assert canvas.get_attribute("data-rows") == "4" and canvas.get_attribute("data-cols") == str(EPOCHS)
    assert tab.eval_on_selector_all(".nas-panel .stripe-label", "els => els.map(e => e.textContent)") == LAYERS
    data = tab.evaluate("fetch('stripes?group=vanilla').then(r => r.json())")
    # Every cell's colour is viridis(median) of that layer and step.
    pixels = tab.evaluate(
        """() => {
          const c = document.querySelector('.nas-panel canvas.stripe-canvas');
          const ctx = c.getContext('2d');
          const rows = +c.dataset.rows, cols = +c.dataset.cols, out = [];
          for (let r = 0; r < rows; r++) for (let j = 0; j < cols; j++) {
            const p = ctx.getImageData(Math.floor((j + 0.5) * c.width / cols), Math.floor((r + 0.5) * c.height / rows), 1, 1).data;
            out.push([r, j, p[0], p[1], p[2]]);
          }
          return out;
        }""")
    for r, j, *rgb in pixels:
        want = viridis(data["medians"][r][j])
        assert max(abs(a - b) for a, b in zip(rgb, want)) <= 3, (r, j, rgb, want)
    assert viridis(0)[2] > viridis(0)[1] and viridis(1)[0] > 200  # dark blue/purple at 0, yellow at 1
    expected = expected_overfit_step(group_losses(logged, "vanilla"))
    line = tab.query_selector(".nas-panel line.overfit-line")
    assert int(line.get_attribute("data-step")) == expected
    assert float(line.get_attribute("x1")) == pytest.approx(x_of_step(tab, ".nas-panel", expected), abs=0.6)
    assert tab.query_selector(".nas-panel path.loss-line") is not None
    # Hover over the cell of fc1 (row 2) at step 20: its name, step and value.
    box = tab.query_selector(".nas-panel svg.nas-stripeplot").bounding_box()
    cbox = canvas.bounding_box()
    session_page = tab.page
    session_page.mouse.move(x_of_step(tab, ".nas-panel", 20) + box["x"], cbox["y"] + cbox["height"] * 2.5 / 4)
    tip = tab.wait_for_selector(".nas-panel .nas-tooltip:not([hidden])").inner_text()
    assert "fc1" in tip and "epoch 20" in tip
    assert tooltip_value(tip) == pytest.approx(data["medians"][2][20], abs=1e-4)
    session_page.mouse.move(0, 0)


def test_heatmap_grid_slider_and_loss_marker(tab, session):
    show(tab, "lines")
    select(tab, "run:vanilla/seed1")
    show(tab, "heatmap")
    tiles = tab.eval_on_selector_all(".nas-panel canvas.heatmap-canvas", "els => els.map(e => [e.dataset.layer, e.width, e.height])")
    assert [t[0] for t in tiles] == LAYERS
    assert tiles[2][1:] == [1, 1] and tiles[3][1:] == [1, 1]  # linear layers: one cell
    assert tiles[0][1:] == [8, 8]
    tab.wait_for_function("() => { const i = document.querySelector('.nas-panel img.probe'); return i.complete && i.naturalWidth > 0; }")
    slider = tab.query_selector(".nas-step")
    slider.evaluate("(s) => { s.value = 3; s.dispatchEvent(new Event('input')); }")
    tab.wait_for_selector(".nas-panels[data-step='3']")
    assert tab.get_attribute(".nas-panel .nas-heatmaps", "data-step") == "3"
    data = tab.evaluate("fetch('heatmaps?run=' + encodeURIComponent('vanilla/seed1') + '&step=3').then(r => r.json())")
    conv1 = next(l for l in data["layers"] if l["name"] == "conv1")
    got = tab.evaluate("""() => Array.from(document.querySelector('.nas-panel canvas.heatmap-canvas[data-layer=conv1]')
        .getContext('2d').getImageData(0, 0, 8, 8).data)""")
    for i, v in enumerate(conv1["values"]):
        assert max(abs(a - b) for a, b in zip(got[4 * i:4 * i + 3], viridis(v))) <= 3
    marker = tab.query_selector(".nas-panel .step-marker")
    assert marker.get_attribute("data-step") == "3"
    assert float(marker.get_attribute("x1")) == pytest.approx(x_of_step(tab, ".nas-losscurve", 3), abs=0.6)
    assert "epoch 3" in tab.inner_text(".nas-step-label")


def test_heatmap_play_moves_through_steps_with_fast_frames(tab):
    show(tab, "heatmap")
    select(tab, "run:vanilla/seed1")
    start = int(tab.get_attribute(".nas-stepbar", "data-step"))
    tab.click(".nas-play")
    try:
        tab.wait_for_function(f"() => {{ const s = +document.querySelector('.nas-panels').dataset.step; return s !== {start} && s !== {start + 1}; }}", timeout=15000)
    finally:
        tab.click(".nas-play")
    frames = tab.evaluate("window.nasApp.timings.filter(t => t.view === 'heatmap-step').map(t => t.drawMs)")
    assert len(frames) >= 2 and max(frames) < 100, frames
    # Back and forth over cached steps: still well under 100 ms per frame.
    for i in (1, 2, 1, 2):
        tab.evaluate(f"window.nasApp.heatmap.setStep({i})")
    tab.wait_for_selector(".nas-panels[data-step='2']")
    assert max(tab.evaluate("window.nasApp.timings.filter(t => t.view === 'heatmap-step').map(t => t.drawMs)")) < 100


def test_comparison_shows_small_multiples_with_shared_axes(tab, session):
    show(tab, "lines")
    select(tab, "group:vanilla", "group:vanilla_lowlr", "run:vanilla/seed2")
    panels = tab.eval_on_selector_all(".nas-panel", "els => els.map(e => e.dataset.key)")
    assert panels == ["group:vanilla", "run:vanilla/seed2", "group:vanilla_lowlr"]  # the list's order
    assert tab.evaluate("getComputedStyle(document.querySelector('.nas-panels')).gridTemplateColumns.split(' ').length") >= 2
    for view in ("lines", "stripes"):
        show(tab, view)
        axes = tab.eval_on_selector_all(".nas-panel", """els => els.map(p => [
            [...p.querySelectorAll('.x-tick')].map(t => t.textContent + '@' + t.getAttribute('x')).join(),
            [...p.querySelectorAll('.loss-tick')].map(t => t.textContent + '@' + t.getAttribute('y')).join()])""")
        assert len(axes) == 3 and axes[0][0] and axes[0][1]
        assert all(a == axes[0] for a in axes), axes
    chips = tab.eval_on_selector_all(".nas-panel header .chip", "els => els.map(e => getComputedStyle(e).backgroundColor)")
    assert len(set(chips)) == 3
    save_screenshot(session["page"], tab, "comparison.png")
    show(tab, "lines")
    select(tab, "group:vanilla")


def test_hostile_run_name_is_shown_as_text_and_runs_nothing(tab, session):
    show(tab, "lines")
    select(tab, f"run:{HOSTILE_RUN}")
    assert tab.get_attribute(".nas-panel header .title", "title") == HOSTILE_RUN
    assert tab.get_attribute(".nas-entry[data-type=run]:not(.member) .name >> nth=0", "title") == HOSTILE_RUN  # in no group
    shown = tab.inner_text(".nas-panel header .title")
    assert shown == HOSTILE_RUN or (shown[:8] == HOSTILE_RUN[:8] and shown[-8:] == HOSTILE_RUN[-8:])  # cut in the middle
    for view in ("stripes", "heatmap", "lines"):
        show(tab, view)
    assert tab.evaluate("document.querySelectorAll('img[src=x], img[onerror]').length") == 0
    assert tab.evaluate("document.querySelectorAll('script').length") == 1  # TensorBoard's module loader only
    assert session["dialogs"] == []
    select(tab, "group:vanilla")


def test_export_png_svg_and_csv(tab, session):
    page = session["page"]
    show(tab, "lines")
    select(tab, "group:vanilla")
    with page.expect_download() as info:
        tab.click(".nas-export[data-format=svg]")
    svg = Path(info.value.path()).read_text()
    assert info.value.suggested_filename == "nas_lines_vanilla.svg"
    assert svg.count('class="nas-line"') == 4 and "overfit-line" in svg and "<script" not in svg
    for view in ("lines", "stripes", "heatmap"):
        show(tab, view)
        with page.expect_download() as info:
            tab.click(".nas-export[data-format=png]")
        png = Path(info.value.path()).read_bytes()
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000, view
        assert info.value.suggested_filename == f"nas_{view}_vanilla.png"
    href = tab.get_attribute(".nas-panel a.nas-csv", "href")
    assert href == "export?group=vanilla&format=csv"
    csv_text = page.request.get(session["url"] + "/data/plugin/nas/" + href).text()
    assert csv_text.splitlines()[0].startswith("run_or_group,layer")
    show(tab, "lines")


def choose_tensorboard_theme(page, label: str) -> None:
    """Pick a theme in TensorBoard's own theme menu (top right), as a user does."""
    page.click("button[aria-label='Menu for changing light or dark theme']")
    page.click(f"[role=menuitem]:has-text('{label}')")


def test_follows_tensorboard_dark_mode(tab, session):
    page = session["page"]
    show(tab, "lines")
    light = tab.evaluate("getComputedStyle(document.body).backgroundColor")
    light_line = tab.get_attribute(".nas-panel path.nas-line", "stroke")
    choose_tensorboard_theme(page, "Dark")
    try:
        assert page.evaluate("document.body.classList.contains('dark-mode')")  # TensorBoard's own switch
        tab.wait_for_function("document.body.classList.contains('dark-mode')")
        wait_ready(tab, "lines")
        assert tab.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(48, 48, 48)"
        assert tab.get_attribute(".nas-panel svg .bg", "fill") == "#303030"
        dark_line = tab.get_attribute(".nas-panel path.nas-line", "stroke")
        assert luminance(dark_line) > luminance(light_line)  # the depth ramp is lifted on dark grey
    finally:
        choose_tensorboard_theme(page, "Light")
    tab.wait_for_function("!document.body.classList.contains('dark-mode')")
    wait_ready(tab, "lines")
    assert tab.evaluate("getComputedStyle(document.body).backgroundColor") == light == "rgb(255, 255, 255)"
    assert tab.get_attribute(".nas-panel path.nas-line", "stroke") == light_line


def test_server_error_is_shown_as_a_message(tab, session):
    page = session["page"]
    show(tab, "lines")

    def fail(route):
        route.fulfill(status=500, content_type="application/json",
                      body=json.dumps({"error": "disk on fire", "parameter": "run"}))

    page.route(re.compile(r".*/data/plugin/nas/stripes\?.*"), fail)
    try:
        tab.click(".nas-reload")  # drop the cache
        wait_ready(tab, "lines")
        show(tab, "stripes")
        error = tab.wait_for_selector(".nas-panel .nas-error")
        assert "500" in error.inner_text() and "disk on fire" in error.inner_text()
        assert tab.query_selector(".nas-sidebar") is not None  # the rest of the tab still works
    finally:
        page.unroute(re.compile(r".*/data/plugin/nas/stripes\?.*"))
    tab.click(".nas-reload")
    wait_ready(tab, "stripes")
    assert tab.query_selector(".nas-panel .nas-error") is None
    show(tab, "lines")


def test_render_speed_of_large_views(tab):
    """50 layers x 300 steps stripe plot, and 9 small multiples of 10-layer line plots (300 steps), drawn
    from synthetic data in this browser; both must take well under a second."""
    timings = tab.evaluate(
        """async () => {
          const { stripePlot } = await import('./static/stripeplot.js');
          const { linePlot } = await import('./static/lineplot.js');
          const steps = Array.from({length: 300}, (_, i) => i);
          const wave = (l, i) => 0.5 + 0.45 * Math.sin(i / 30 + l);
          const loss = { tag: 'test_loss', steps, values: steps.map(i => 2 + (i - 120) ** 2 / 1e4) };
          const stripes = { layers: Array.from({length: 50}, (_, l) => 'block' + l + '.conv'),
            depths: Array.from({length: 50}, (_, l) => l), steps,
            medians: Array.from({length: 50}, (_, l) => steps.map(i => wave(l, i))), loss, overfit_step: 120 };
          const host = document.createElement('div');
          document.body.appendChild(host);
          let t = performance.now();
          host.appendChild(stripePlot(stripes, { width: 1000 }));
          host.getBoundingClientRect();
          const stripeMs = performance.now() - t;
          const lines = { runs: ['a', 'b', 'c'], overfit_step: 120, loss, loss2: null,
            layers: Array.from({length: 10}, (_, l) => ({ name: 'layer' + l, depth: l, kind: 'conv2d', steps,
              median: steps.map(i => wave(l, i)), min: steps.map(i => wave(l, i) - 0.05), max: steps.map(i => wave(l, i) + 0.05) })) };
          t = performance.now();
          for (let k = 0; k < 9; k++) host.appendChild(linePlot(lines, { width: 420, height: 190 }));
          host.getBoundingClientRect();
          const linesMs = performance.now() - t;
          host.remove();
          return { stripeMs, linesMs };
        }""")
    print(f"\nrender timings: stripe 50x300 {timings['stripeMs']:.1f} ms, 9 x 10-layer line plots {timings['linesMs']:.1f} ms")
    assert timings["stripeMs"] < 500 and timings["linesMs"] < 500, timings


def test_stripe_plot_names_every_layer_up_to_64_and_compresses_hundreds(tab):
    sizes = tab.evaluate(
        """async () => {
          const { stripePlot } = await import('./static/stripeplot.js');
          const steps = Array.from({length: 30}, (_, i) => i);
          const out = {};
          for (const n of [60, 300]) {
            const data = { layers: Array.from({length: n}, (_, l) => 'layer' + l), depths: Array.from({length: n}, (_, l) => l),
              steps, medians: Array.from({length: n}, (_, l) => steps.map(i => (l + i) % 10 / 10)), loss: null, overfit_step: null };
            const el = stripePlot(data, { width: 900 });
            document.body.appendChild(el);
            const ys = [...el.querySelectorAll('.stripe-label')].map(e => e.getBoundingClientRect().top);
            out[n] = { labels: ys.length, minGap: Math.min(...ys.slice(1).map((y, i) => y - ys[i])),
                       canvasHeight: el.querySelector('canvas').getBoundingClientRect().height };
            el.remove();
          }
          return out;
        }""")
    assert sizes["60"]["labels"] == 60 and sizes["60"]["minGap"] >= 9.5  # every name, readable
    assert 20 <= sizes["300"]["labels"] <= 60 and sizes["300"]["minGap"] >= 9.5  # every k-th name
    assert sizes["300"]["canvasHeight"] <= 600  # compressed rows


def save_screenshot(page, frame, name: str) -> None:
    """The tab (sidebar, toolbar, panels) down to its last panel, as SCREENSHOTS/<name>."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.mouse.move(0, 0)
    height = frame.evaluate("Math.ceil(document.querySelector('.nas-panels').getBoundingClientRect().bottom) + 12")
    box = page.query_selector("iframe").bounding_box()
    page.screenshot(path=str(SCREENSHOTS / name),
                    clip={"x": box["x"], "y": box["y"], "width": box["width"], "height": min(box["height"], height)})
    assert (SCREENSHOTS / name).stat().st_size > 10_000


def assert_colour_bar_is_viridis(frame, name: str, selector: str, vertical: bool) -> None:
    """The colour bar's pixels in the screenshot SCREENSHOTS/<name> at 0.1, 0.5, 0.9 of its length are viridis
    there (0 at the bottom of a vertical bar, at the left of a horizontal one)."""
    from PIL import Image

    left, top, w, hgt = frame.evaluate(
        "(sel) => { const r = document.querySelector(sel).getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; }",
        selector)
    image = Image.open(SCREENSHOTS / name).convert("RGB")
    for v in (0.1, 0.5, 0.9):
        x, y = (left + w / 2, top + hgt * (1 - v)) if vertical else (left + w * v, top + hgt / 2)
        got = image.getpixel((round(x), round(y)))
        assert max(abs(a - b) for a, b in zip(got, viridis(v))) <= 12, (name, v, got, viridis(v))


def test_screenshots_of_the_three_views(tab, session):
    select(tab, "group:vanilla")
    for view in ("lines", "stripes", "heatmap"):
        show(tab, view)
        if view == "heatmap":
            tab.evaluate("window.nasApp.heatmap.setStep(window.nasApp.heatmap.steps.length - 1)")
            tab.wait_for_selector(f".nas-panels[data-step='{EPOCHS - 1}']")
            tab.wait_for_function("() => document.querySelector('.nas-panel img.probe').complete")
        save_screenshot(session["page"], tab, {"lines": "line_plot.png", "stripes": "stripe_plot.png", "heatmap": "heatmap.png"}[view])
        if view == "stripes":
            assert_colour_bar_is_viridis(tab, "stripe_plot.png", ".colorbar rect", vertical=True)
        if view == "heatmap":
            assert_colour_bar_is_viridis(tab, "heatmap.png", ".nas-colorbar rect", vertical=False)
    show(tab, "lines")
