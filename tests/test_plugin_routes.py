"""The plugin's HTTP routes on real event files, read through TensorBoard's MultiplexerDataProvider."""
import csv
import gzip
import io
import json
import random
import struct
import urllib.parse
from dataclasses import replace

import numpy as np
import pytest
import torch
from tensorboard import context
from tensorboard.backend.event_processing.data_provider import MultiplexerDataProvider
from tensorboard.compat.proto import summary_pb2
from torch.utils.tensorboard import SummaryWriter

import nas_logger
from events import provider, read_nas
from nas_logger import format as fmt
from nas_logger.summaries import index_summary, nas_summary
from nas_logger.writer import file_writer
from nas_tb_plugin.listing import Series, Table, index_tags
from reliability_support import write_synthetic_runs
from plugin_fixtures import (GROUPS, HTML_RUN, LAYERS, STEPS, app_for, build_logdir, get_json, write_run,
                             write_two_monitors)

P = "/data/plugin/nas/"
F32 = dict(rtol=0, atol=1e-6)  # the stats are float32
SENT = dict(rtol=1e-6)  # floats are sent with 7 significant digits


def q(value) -> str:
    return urllib.parse.quote(str(value), safe="")


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    return build_logdir(tmp_path_factory.mktemp("logs"))


@pytest.fixture(scope="module")
def client(logged):
    return app_for(logged.path)[0]


def smoothed_argmin(steps, values):
    """Reference for the overfitting step: centred window-3 mean, 2 points at the ends."""
    v = np.asarray(values, dtype=np.float64)
    sums = np.convolve(v, np.ones(3), mode="same")
    counts = np.convolve(np.ones_like(v), np.ones(3), mode="same")
    return int(np.asarray(steps)[np.argmin(sums / counts)])


# --- runs ---------------------------------------------------------------------------------------

def test_a_runs_group_key_is_found_once_per_regex_and_a_new_run_costs_its_own(tmp_path, monkeypatch):
    """RE2 costs ~40 us a run: the run list and a group's selection share each run's group key under a regex,
    and a run that appears costs the search of its own name, not that of every run."""
    from nas_tb_plugin import selection

    runs = [f"g/seed{i}" for i in range(4)]
    write_synthetic_runs(tmp_path, runs, steps=2)
    client, multiplexer = app_for(tmp_path)
    searched = []
    original = selection.group_key
    monkeypatch.setattr(selection, "group_key", lambda run, pattern: searched.append(run) or original(run, pattern))
    assert get_json(client, P + "lines?group=g")["runs"] == runs
    assert [r["group"] for r in get_json(client, P + "runs")["runs"]] == ["g"] * 4
    assert sorted(searched) == runs
    searched.clear()
    write_synthetic_runs(tmp_path, ["g/seed4"], steps=2)
    multiplexer.AddRunsFromDirectory(str(tmp_path))
    multiplexer.Reload()
    assert get_json(client, P + "lines?group=g")["runs"] == runs + ["g/seed4"]
    assert [r["group"] for r in get_json(client, P + "runs")["runs"]] == ["g"] * 5
    assert searched == ["g/seed4"]


def test_runs_lists_groups_and_run_lists_layers_by_depth_and_loss_tags(client, logged):
    body = get_json(client, P + "runs")
    assert set(body["runs"][0]) == {"run", "group", "matched", "max_step", "wall_time"}  # the detail is run's
    runs = {r["run"]: {**r, **get_json(client, P + "run?run=" + q(r["run"]))} for r in body["runs"]}
    assert set(runs) == set(GROUPS)
    for name, run in runs.items():
        assert run["group"] == GROUPS[name]
        assert [l["name"] for l in run["layers"]] == LAYERS
        assert [l["depth"] for l in run["layers"]] == [0, 1, 2, 3]
        assert run["layers"][1] == {"name": "conv2", "depth": 1, "kind": "conv2d", "filters": 16,
                                    "receptive_fields": 64, "monitor": None}
        assert run["layers"][3]["kind"] == "linear" and run["layers"][3]["receptive_fields"] == 1
        assert run["steps"] == STEPS
    assert runs["solo"]["loss_tag"] == "loss/val"
    assert runs["solo"]["scalar_tags"] == ["accuracy", "loss/val"]
    assert runs["vanilla/seed0"]["loss_tag"] == "test_loss"
    assert runs["vanilla/seed0"]["scalar_tags"] == ["accuracy", "distorted_test_loss", "test_loss"]
    groups = {g["group"]: g["runs"] for g in body["groups"]}
    assert groups["vanilla"] == ["vanilla/seed0", "vanilla/seed1", "vanilla/seed2"]
    assert groups["drop"] == ["drop-run2", "drop_rep1"]
    assert groups[HTML_RUN] == [HTML_RUN]


def test_runs_group_regex_capture_or_removal(client):
    by_prefix = get_json(client, P + "runs?group_regex=" + q(r"^([a-z]+)"))
    groups = {g["group"]: g["runs"] for g in by_prefix["groups"]}
    assert groups["drop"] == ["drop-run2", "drop_rep1"] and len(groups["vanilla"]) == 3
    removed = get_json(client, P + "runs?group_regex=" + q(r"\d$"))
    groups = {g["group"]: g["runs"] for g in removed["groups"]}
    assert groups["vanilla/seed"] == ["vanilla/seed0", "vanilla/seed1", "vanilla/seed2"]
    assert groups["solo"] == ["solo"]


def test_a_run_named_like_a_group_is_a_group_of_its_own(tmp_path):
    medians = {run: write_run(tmp_path, run, seed=i, steps=range(3))
               for i, run in enumerate(["vanilla", "vanilla/seed0", "vanilla/seed1"])}
    client = app_for(tmp_path)[0]
    body = get_json(client, P + "runs")
    assert body["groups"] == [{"group": "vanilla", "runs": ["vanilla/seed0", "vanilla/seed1"], "matched": True},
                              {"group": "vanilla", "runs": ["vanilla"], "matched": False}]
    assert {r["run"]: (r["group"], r["matched"]) for r in body["runs"]} == {
        "vanilla": ("vanilla", False), "vanilla/seed0": ("vanilla", True), "vanilla/seed1": ("vanilla", True)}
    # group=vanilla is the repeats' band: the run "vanilla" is not in it.
    lines = get_json(client, P + "lines?group=vanilla")
    assert lines["runs"] == ["vanilla/seed0", "vanilla/seed1"]
    seeds = np.array([medians[r]["conv2"] for r in lines["runs"]], dtype=np.float64)
    np.testing.assert_allclose(lines["layers"][1]["max"], seeds.max(axis=0), **F32)
    assert get_json(client, P + "lines?run=vanilla")["runs"] == ["vanilla"]
    # With no repeats of that name, group=NAME is the run the pattern does not match, on its own.
    assert get_json(client, P + "lines?group=" + q("vanilla/seed0") + "&group_regex=" + q("^x"))["runs"] == ["vanilla/seed0"]


# --- lines --------------------------------------------------------------------------------------

def test_lines_of_one_run_are_its_logged_min_median_max(client, logged, tmp_path):
    body = get_json(client, P + "lines?run=" + q("vanilla/seed1"))
    assert body["runs"] == ["vanilla/seed1"]
    records = read_nas(logged.path, "vanilla/seed1")
    assert [l["name"] for l in body["layers"]] == LAYERS
    for layer in body["layers"]:
        assert layer["steps"] == list(range(STEPS))
        np.testing.assert_allclose(layer["median"], logged.medians["vanilla/seed1"][layer["name"]], **F32)
        stats = np.array([v for _, v in records[(layer["name"], fmt.STATS)][1]])
        np.testing.assert_allclose(layer["min"], stats[:, fmt.STAT_FIELDS.index("min")], **F32)
        np.testing.assert_allclose(layer["max"], stats[:, fmt.STAT_FIELDS.index("max")], **F32)
    conv2 = body["layers"][1]
    assert conv2["median"][-1] > conv2["median"][0]  # the growing weights made conv2 sparser
    assert body["loss"]["tag"] == "test_loss"
    np.testing.assert_allclose(body["loss"]["values"], logged.losses["vanilla/seed1"], **SENT)
    assert body["loss"]["steps"] == list(range(STEPS))
    assert int(np.argmin(logged.losses["vanilla/seed1"])) == 1  # raw minimum: the outlier
    assert body["overfit_step"] == 5 == smoothed_argmin(range(STEPS), logged.losses["vanilla/seed1"])
    assert body["loss2"] is None


def test_lines_of_a_group_band_across_runs_and_mean_loss(client, logged):
    body = get_json(client, P + "lines?group=vanilla&loss_tag2=distorted_test_loss")
    members = ["vanilla/seed0", "vanilla/seed1", "vanilla/seed2"]
    assert body["runs"] == members
    for layer in body["layers"]:
        per_run = np.array([logged.medians[r][layer["name"]] for r in members], dtype=np.float64)
        np.testing.assert_allclose(layer["min"], per_run.min(axis=0), **F32)
        np.testing.assert_allclose(layer["median"], np.median(per_run, axis=0), **F32)
        np.testing.assert_allclose(layer["max"], per_run.max(axis=0), **F32)
    assert not np.allclose(body["layers"][1]["min"], body["layers"][1]["max"])
    mean_loss = np.mean([logged.losses[r] for r in members], axis=0)
    np.testing.assert_allclose(body["loss"]["values"], mean_loss, **SENT)
    assert body["overfit_step"] == smoothed_argmin(range(STEPS), mean_loss) == 5
    assert body["loss2"]["tag"] == "distorted_test_loss"
    np.testing.assert_allclose(body["loss2"]["values"], [1.0 / (s + 1) for s in range(STEPS)], **SENT)


def test_lines_group_under_a_custom_regex_and_chosen_loss_tag(client, logged):
    body = get_json(client, P + "lines?group=drop&group_regex=" + q(r"^([a-z]+)") + "&loss_tag=accuracy")
    assert body["runs"] == ["drop-run2", "drop_rep1"]
    assert body["loss"]["tag"] == "accuracy"
    np.testing.assert_allclose(body["loss"]["values"], [0.1 * s for s in range(STEPS)], atol=1e-6)
    assert body["overfit_step"] == 0  # accuracy is lowest first


@pytest.mark.parametrize("minimum, want", [
    (20, None),  # still falling at the last step: no overfitting yet
    (STEPS - 1, None),  # the minimum at the last step
    (STEPS - 3, None),  # within the last smoothing window (3 points): not yet either
    (STEPS - 4, STEPS - 4),  # the loss rose over a whole window after it: that is the moment
])
def test_overfit_step_is_null_while_the_test_loss_may_still_be_falling(tmp_path, minimum, want):
    for seed in range(2):
        write_run(tmp_path, f"r/seed{seed}", seed=seed, scalars=lambda s, k=seed: {"test_loss": (s - minimum) ** 2 + 1 + k})
    assert smoothed_argmin(range(STEPS), [(s - minimum) ** 2 + 1 for s in range(STEPS)]) == min(minimum, STEPS - 1)
    client = app_for(tmp_path)[0]
    for route in ("lines", "stripes"):
        for selector in ("run=" + q("r/seed0"), "group=r"):
            body = get_json(client, P + f"{route}?{selector}")
            assert body["loss"]["tag"] == "test_loss" and body["overfit_step"] == want, (route, selector)


def test_nan_statistics_come_back_as_null(tmp_path):
    writer = SummaryWriter(str(tmp_path / "nan"))
    layer = fmt.LayerInfo("conv1", "conv2d", 4, 9, 0)
    for step in range(3):
        stats = np.full(len(fmt.STAT_FIELDS), np.nan if step == 1 else 0.5, dtype=np.float32)
        file_writer(writer).add_summary(nas_summary(layer, fmt.STATS, stats, step == 0), step)
    writer.close()
    client = app_for(tmp_path)[0]
    text = client.get(P + "lines?run=nan").get_data(as_text=True)
    assert "NaN" not in text
    assert json.loads(text)["layers"][0]["median"] == [0.5, None, 0.5]
    assert json.loads(client.get(P + "lines?group=nan").get_data(as_text=True))["layers"][0]["max"] == [0.5, None, 0.5]


@pytest.mark.parametrize("shared_writer", [False, True])
def test_two_monitors_in_one_run_serve_each_layer_its_own_values(tmp_path, shared_writer):
    medians, names = write_two_monitors(tmp_path / "gan", shared_writer)
    client = app_for(tmp_path)[0]
    body = get_json(client, P + "lines?run=gan")
    for layer in body["layers"]:  # each served layer with its own model's values
        np.testing.assert_allclose(layer["median"], medians[layer["name"]], **F32)
        assert layer["steps"] == [0, 1, 2, 3]
    assert names == [None, "SmallCNN"]  # the second monitor of a run gets its model's class name
    served = LAYERS + [f"SmallCNN/{n}" for n in LAYERS]
    assert [l["name"] for l in body["layers"]] == served  # each model's layers by depth, the unnamed one first
    assert not np.allclose(body["layers"][1]["median"], body["layers"][5]["median"])
    stripes = get_json(client, P + "stripes?run=gan")
    assert stripes["layers"] == served and stripes["medians"] == [l["median"] for l in body["layers"]]
    run = get_json(client, P + "run?run=gan")
    assert [(l["name"], l["monitor"], l["depth"]) for l in run["layers"]] == (
        [(n, None, d) for d, n in enumerate(LAYERS)] + [(f"SmallCNN/{n}", "SmallCNN", d) for d, n in enumerate(LAYERS)])
    assert run["steps"] == 4
    heatmaps = get_json(client, P + "heatmaps?run=gan&step=2")
    assert [l["name"] for l in heatmaps["layers"]] == served
    heatmap = get_json(client, P + "heatmap?run=gan&layer=" + q("SmallCNN/conv1") + "&step=1")
    assert heatmap["shape"] == [8, 8]
    rows = list(csv.reader(io.StringIO(client.get(P + "export?run=gan").get_data(as_text=True))))
    assert len(rows) == 1 + len(served) * 4 and {r[1] for r in rows[1:]} == set(served)


def test_named_monitors_in_one_run_and_name_clashes(tmp_path):
    medians, names = write_two_monitors(tmp_path / "gan", shared_writer=True, names=("G", "D"))
    assert names == ["G", "D"]
    client = app_for(tmp_path)[0]
    body = get_json(client, P + "lines?run=gan")
    assert [l["name"] for l in body["layers"]] == [f"D/{n}" for n in LAYERS] + [f"G/{n}" for n in LAYERS]
    for layer in body["layers"]:
        np.testing.assert_allclose(layer["median"], medians[layer["name"]], **F32)
    # Each monitor's probe image; heatmaps links the first monitor's.
    assert get_json(client, P + "heatmaps?run=gan")["probe"] == "probe?run=gan&monitor=D"
    images = {m: client.get(P + f"probe?run=gan&monitor={m}").get_data() for m in ("D", "G")}
    assert all(i.startswith(b"\x89PNG") for i in images.values()) and images["D"] != images["G"]
    assert get_json(client, P + "probe?run=gan&monitor=X", 404)["parameter"] == "monitor"
    from conftest import SmallCNN

    with nas_logger.watch(SmallCNN(), tmp_path / "clash", probe=torch.randn(2, 1, 8, 8), name="G"):
        with pytest.raises(ValueError, match="name 'G' is already used by another monitor of run"):
            nas_logger.watch(SmallCNN(), tmp_path / "clash", probe=torch.randn(2, 1, 8, 8), name="G")


# --- stripes and export -------------------------------------------------------------------------

def test_stripes_are_the_medians_layers_by_steps(client, logged):
    for selector in ("run=solo", "group=vanilla"):
        stripes = get_json(client, P + "stripes?" + selector)
        lines = get_json(client, P + "lines?" + selector)
        assert stripes["layers"] == LAYERS and stripes["depths"] == [0, 1, 2, 3]
        assert stripes["steps"] == list(range(STEPS))
        assert np.shape(stripes["medians"]) == (len(LAYERS), STEPS)
        assert stripes["medians"] == [l["median"] for l in lines["layers"]]
        assert stripes["overfit_step"] == lines["overfit_step"] == 5
        assert stripes["loss"] == lines["loss"]


def test_stripes_carry_each_layers_kind_as_lines_do(client):
    """The frontend names a layer by its kind in both views (`0 (conv2d)` for a bare-number layer name)."""
    for selector in ("run=solo", "group=vanilla"):
        stripes = get_json(client, P + "stripes?" + selector)
        lines = get_json(client, P + "lines?" + selector)
        assert stripes["kinds"] == [l["kind"] for l in lines["layers"]] == ["conv2d", "conv2d", "linear", "linear"]


def test_export_csv_holds_the_line_data(client):
    response = client.get(P + "export?group=vanilla&format=csv")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    assert response.headers["Content-Disposition"] == 'attachment; filename="nas_vanilla.csv"'
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0] == ["run_or_group", "layer", "depth", "epoch", "min", "median", "max"]  # the default unit
    assert len(rows) == 1 + len(LAYERS) * STEPS
    lines = get_json(client, P + "lines?group=vanilla")
    fc1 = [r for r in rows[1:] if r[1] == "fc1"]
    assert [int(r[3]) for r in fc1] == list(range(STEPS)) and {r[0] for r in fc1} == {"vanilla"}
    assert {r[2] for r in fc1} == {"2"}
    for key, column in (("min", 4), ("median", 5), ("max", 6)):
        assert [float(r[column]) for r in fc1] == lines["layers"][2][key]
    html = client.get(P + "export?run=" + q(HTML_RUN))
    assert html.status_code == 200
    disposition = html.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="nas_') and '<' not in disposition and '"' not in disposition[22:-1]


FORMULA_NAMES = ["=1+2", "+cmd", "-2+3", "@SUM(A1)", "\tx", "\r=x"]


def test_export_csv_neutralises_cells_a_spreadsheet_would_run(tmp_path):
    """OWASP's CSV-injection rule: a text cell that begins with = + - @ tab or carriage return gets a
    leading single quote; numbers stay numbers."""
    writer = SummaryWriter(str(tmp_path / "=HYPERLINK(1)_seed0"))
    fw = file_writer(writer)
    for depth, name in enumerate(FORMULA_NAMES):
        layer = fmt.LayerInfo(name, "linear", 4, 1, depth)
        fw.add_summary(nas_summary(layer, fmt.STATS, np.full(8, 0.25, np.float32), True), 0)
    writer.close()
    for name in FORMULA_NAMES:
        write_run(tmp_path, name, seed=0, steps=range(2))
    client = app_for(tmp_path)[0]
    for query in ["run=" + q(n) for n in FORMULA_NAMES] + ["run=" + q("=HYPERLINK(1)_seed0"), "group=" + q("=HYPERLINK(1)")]:
        response = client.get(P + "export?" + query)
        assert response.status_code == 200, query
        rows = list(csv.reader(io.StringIO(response.get_data(as_text=True), newline="")))
        name = urllib.parse.unquote(query.split("=", 1)[1])
        assert {r[0] for r in rows[1:]} == {"'" + name}, query
        for row in rows[1:]:
            assert row[1][0] not in "=+-@\t\r" and row[1].lstrip("'") in LAYERS + FORMULA_NAMES
            assert row[1].startswith("'") == (row[1][1:] in FORMULA_NAMES)
            assert int(row[2]) >= 0 and int(row[3]) >= 0 and 0 <= float(row[5]) <= 1


# --- heatmaps and probe -------------------------------------------------------------------------

def test_heatmap_of_one_layer_and_step(client, logged):
    records = read_nas(logged.path, "solo")
    maps = dict(records[("conv2", fmt.HEATMAP)][1])
    body = get_json(client, P + "heatmap?run=solo&layer=conv2&step=7")
    assert (body["run"], body["layer"], body["step"]) == ("solo", "conv2", 7)
    assert body["shape"] == [8, 8]
    np.testing.assert_allclose(np.reshape(body["values"], (8, 8)), maps[7][0], **F32)
    assert body["steps"] == list(range(STEPS))
    assert body["probe"] == "probe?run=solo" and body["probes"] == 4
    third = get_json(client, P + "heatmap?run=solo&layer=conv2&step=7&probe=2")
    np.testing.assert_allclose(np.reshape(third["values"], (8, 8)), maps[7][2], **F32)
    assert third["probe"] == "probe?run=solo&probe=2"
    fc2 = get_json(client, P + "heatmap?run=solo&layer=fc2&step=0")
    assert fc2["shape"] == [1, 1] and len(fc2["values"]) == 1


def test_heatmaps_of_all_layers_at_one_step(client, logged):
    records = read_nas(logged.path, "drop_rep1")
    last = get_json(client, P + "heatmaps?run=drop_rep1")
    assert last["step"] == STEPS - 1 and last["steps"] == list(range(STEPS))
    assert [l["name"] for l in last["layers"]] == LAYERS
    assert [l["shape"] for l in last["layers"]] == [[8, 8], [8, 8], [1, 1], [1, 1]]
    body = get_json(client, P + "heatmaps?run=drop_rep1&step=3")
    for layer in body["layers"]:
        want = dict(records[(layer["name"], fmt.HEATMAP)][1])[3][0]
        np.testing.assert_allclose(np.reshape(layer["values"], layer["shape"]), want, **F32)
    assert body["probe"] == "probe?run=drop_rep1" and body["probes"] == 4


def test_probe_is_the_logged_png(client, logged):
    url = get_json(client, P + "heatmaps?run=" + q("vanilla/seed2"))["probe"]
    assert url == "probe?run=vanilla%2Fseed2"
    response = client.get(P + url)
    assert response.status_code == 200 and response.headers["Content-Type"] == "image/png"
    png = response.get_data()
    width, height = struct.unpack(">II", png[16:24])  # IHDR
    assert (width, height) == (8, 8)
    dp = provider(logged.path)
    blobs = dp.read_blob_sequences(context.RequestContext(), experiment_id="", plugin_name="images",
                                   downsample=10)["vanilla/seed2"][fmt.PROBE_IMAGE_TAG]
    assert png == dp.read_blob(context.RequestContext(), blob_key=blobs[-1].values[2].blob_key)


def test_no_probe_gives_404_and_null_url(tmp_path):
    writer = SummaryWriter(str(tmp_path / "noprobe"))
    layer = fmt.LayerInfo("fc", "linear", 4, 1, 0)
    file_writer(writer).add_summary(nas_summary(layer, fmt.HEATMAP, np.zeros((1, 1), np.float32), True), 0)
    file_writer(writer).add_summary(nas_summary(layer, fmt.STATS, np.zeros(8, np.float32), True), 0)
    writer.close()
    client = app_for(tmp_path)[0]
    assert get_json(client, P + "heatmaps?run=noprobe")["probe"] is None
    assert get_json(client, P + "probe?run=noprobe", 404)["parameter"] == "run"


# Steps as int64 event files may hold them (other tools, older versions): beyond 2**53 JavaScript cannot
# hold them as numbers; they must come back exactly, as strings.
HUGE_STEPS = [0, 7, 2**53 - 1, 2**53 + 1, 2**53 + 3, 2**53 + 5, 2**62, 2**63 - 1]


def test_steps_beyond_2_to_the_53_are_sent_as_exact_strings(tmp_path):
    from reliability_support import as_sent, write_synthetic_runs

    write_synthetic_runs(tmp_path, ["huge"], steps=HUGE_STEPS, heatmap_side=3, loss=lambda i: (i - 3) ** 2 + 1.0)
    client = app_for(tmp_path)[0]
    sent = [as_sent(s) for s in HUGE_STEPS]
    assert sent[3] == "9007199254740993" and sent[2] == 9007199254740991
    lines = get_json(client, P + "lines?run=huge")
    assert all(layer["steps"] == sent for layer in lines["layers"]) and lines["loss"]["steps"] == sent
    assert lines["overfit_step"] == "9007199254740993"  # the loss minimum, exactly
    stripes = get_json(client, P + "stripes?run=huge")
    assert stripes["steps"] == sent and stripes["overfit_step"] == "9007199254740993"
    assert get_json(client, P + "lines?group=huge")["layers"][0]["steps"] == sent
    maps = {step: grid for step, grid in read_nas(tmp_path, "huge")[("layer1", fmt.HEATMAP)][1]}
    for step in HUGE_STEPS[2:]:
        body = get_json(client, P + f"heatmaps?run=huge&step={step}")
        assert body["step"] == as_sent(step) and body["steps"] == sent
        np.testing.assert_allclose(np.reshape(body["layers"][1]["values"], (3, 3)), maps[step], **F32)
        one = get_json(client, P + f"heatmap?run=huge&layer=layer1&step={step}")
        assert one["step"] == as_sent(step) and one["steps"] == sent
    assert get_json(client, P + "heatmaps?run=huge")["step"] == str(2**63 - 1)
    get_json(client, P + f"heatmaps?run=huge&step={2**53}", 404)  # no rounding to a neighbour
    rows = list(csv.reader(io.StringIO(client.get(P + "export?run=huge").get_data(as_text=True))))
    assert [int(r[3]) for r in rows[1:] if r[1] == "layer0"] == HUGE_STEPS


# --- errors -------------------------------------------------------------------------------------

@pytest.mark.parametrize("url, status, parameter", [
    ("lines", 400, "run"),
    ("lines?run=nope", 404, "run"),
    ("lines?group=nope", 404, "group"),
    ("lines?run=solo&group=vanilla", 400, "group"),
    ("lines?group=vanilla&group_regex=(", 400, "group_regex"),
    ("stripes?group=", 400, "run"),
    ("heatmap?run=solo&layer=conv1&step=x", 400, "step"),
    ("heatmap?run=solo&layer=conv1&step=99", 404, "step"),
    ("heatmap?run=solo&layer=conv9&step=1", 404, "layer"),
    ("heatmap?run=solo&step=1", 400, "layer"),
    ("heatmap?layer=conv1", 400, "run"),
    ("heatmaps?run=solo&step=1.5", 400, "step"),
    ("heatmaps?run=nope", 404, "run"),
    ("probe", 400, "run"),
    ("probe?run=nope", 404, "run"),
    ("probe?run=solo&probe=x", 400, "probe"),
    ("probe?run=solo&probe=-1", 400, "probe"),
    ("probe?run=solo&probe=4", 400, "probe"),
    ("heatmaps?run=solo&probe=4", 400, "probe"),
    ("heatmap?run=solo&layer=conv1&probe=1.5", 400, "probe"),
    ("steps", 400, "run"),
    ("steps?run=nope", 404, "run"),
    ("export?run=solo&format=xlsx", 400, "format"),
    ("export?group=nope", 404, "group"),
    (f"heatmaps?run=solo&step={2**63}", 400, "step"),  # beyond an event file's int64 steps
    (f"heatmap?run=solo&layer=conv1&step={-2**63 - 1}", 400, "step"),
    (f"heatmaps?run=solo&probe={10**30}", 400, "probe"),
    ("heatmap?run=solo&layer=conv1&probe=-1", 400, "probe"),
])
def test_bad_requests_answer_json_errors_naming_the_parameter(client, url, status, parameter):
    body = get_json(client, P + url, status)
    assert body["parameter"] == parameter and body["error"]


@pytest.mark.parametrize("url, missing", [
    ("lines?run=solo&loss_tag=nope", ["nope"]),
    ("lines?run=solo&loss_tag2=test_loss", ["test_loss"]),  # solo logs loss/val only
    ("steps?run=solo&loss_tag=nope&loss_tag2=nope2", ["nope", "nope2"]),
])
def test_a_loss_tag_the_selection_lacks_is_no_error(client, url, missing):
    body = get_json(client, P + url)
    assert body["missing_loss_tags"] == missing and body["loss2"] is None


def random_requests(count: int, seed: int = 0):
    """Routes with random mixes of parameters: real names, junk text, HTML, unicode, numbers."""
    rng = random.Random(seed)
    routes = ["lines", "stripes", "heatmap", "heatmaps", "steps", "probe", "export", "runs", "run"]
    names = ["run", "group", "layer", "step", "loss_tag", "loss_tag2", "group_regex", "format", "probe"]
    values = ["solo", "vanilla", "conv1", "3", "-1", "1e3", "", "(", ".*", "\\", "../..", HTML_RUN,
              "nas/conv1/stats", "\u00e9\u4e2d", "%00", "csv", "test_loss", " ", "9" * 30]
    for _ in range(count):
        params = {rng.choice(names): rng.choice(values + ["".join(rng.choice("ab()[]*+?/\\<>'\"%")
                                                                  for _ in range(rng.randint(1, 8)))])
                  for _ in range(rng.randint(0, 4))}
        yield rng.choice(routes), params


def test_any_parameters_give_a_response_never_a_500(client):
    for route, params in random_requests(150):
        response = client.get(P + route + "?" + urllib.parse.urlencode(params))
        assert response.status_code in (200, 400, 404), (route, params, response.get_data(as_text=True))
        if response.headers["Content-Type"] == "application/json":
            body = json.loads(response.get_data(as_text=True))
            assert "Traceback" not in json.dumps(body)
            if response.status_code != 200:
                assert set(body) == {"error", "parameter"}


def test_html_run_names_come_back_as_plain_json_strings(client):
    response = client.get(P + "lines?run=" + q(HTML_RUN))
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert json.loads(response.get_data(as_text=True))["runs"] == [HTML_RUN]
    error = client.get(P + "lines?run=" + q(HTML_RUN + "x"))
    assert error.status_code == 404 and error.headers["Content-Type"] == "application/json"
    assert repr(HTML_RUN + "x") in json.loads(error.get_data(as_text=True))["error"]


# --- live runs, damaged files, plugin listing ----------------------------------------------------

def test_steps_written_while_serving_show_after_reload(tmp_path, small_cnn, monkeypatch):
    reads = []
    original = MultiplexerDataProvider.read_tensors
    monkeypatch.setattr(MultiplexerDataProvider, "read_tensors",
                        lambda self, *a, **k: reads.append(k["run_tag_filter"]) or original(self, *a, **k))
    torch.set_num_threads(1)
    with nas_logger.watch(small_cnn, tmp_path / "live", probe=torch.randn(4, 1, 8, 8)) as monitor:
        for step in range(3):
            monitor.log(step, test_loss=3.0 - step)
        client, multiplexer = app_for(tmp_path)
        assert get_json(client, P + "lines?run=live")["layers"][0]["steps"] == [0, 1, 2]
        assert get_json(client, P + "heatmaps?run=live")["step"] == 2
        reads.clear()
        get_json(client, P + "lines?run=live")
        get_json(client, P + "heatmaps?run=live&step=1")
        assert reads == []  # unchanged series come from the cache
        for step in range(3, 6):
            monitor.log(step, test_loss=3.0 - step)
        multiplexer.Reload()  # what TensorBoard's reload thread does
        body = get_json(client, P + "lines?run=live")
        # One read, of the changed stats table: one tensor per step instead of one per layer and step.
        assert len(reads) == 1 and reads[0].tags == {nas_logger.format.TABLE_TAG}
        assert body["layers"][0]["steps"] == list(range(6))
        assert body["overfit_step"] is None  # the test loss is still falling
        heatmaps = get_json(client, P + "heatmaps?run=live")
        assert heatmaps["step"] == 5 and heatmaps["steps"] == list(range(6))
        assert get_json(client, P + "run?run=live")["steps"] == 6


def test_a_repeated_request_reuses_its_body_until_what_it_shows_changes(tmp_path, monkeypatch):
    """Bodies are kept by the listed versions of everything they are made from: an identical request makes
    nothing again, and the first request after a reload that brought a new step, a new point of the loss
    alone, a probe image or a new run of the group shows it."""
    from nas_logger.summaries import step_summary
    from nas_tb_plugin.routes import Routes

    layers = {f"layer{d}": fmt.LayerInfo(f"layer{d}", "conv2d", 4, 4, d) for d in range(2)}
    rng = np.random.default_rng(0)
    writers, written = {}, {}

    def log(run, step, nas=True):
        if run not in writers:
            writers[run], written[run] = SummaryWriter(str(tmp_path / run)), set()
        if nas:
            records = {name: (np.sort(rng.random(len(fmt.STAT_FIELDS))).astype(np.float32),
                              rng.random((2, 2), dtype=np.float32)) for name in layers}
            file_writer(writers[run]).add_summary(step_summary(layers, records, list(layers), written[run]), step)
        writers[run].add_scalar("test_loss", 1.0 / (step + 1), step)
        writers[run].flush()

    for step in range(2):
        log("g/seed0", step)
        log("g/seed1", step)
    client, multiplexer = app_for(tmp_path)
    made = []
    for name in ("lines_impl", "stripes_impl", "export_impl", "heatmap_impl", "heatmaps_impl", "steps_impl"):
        original = getattr(Routes, name)
        monkeypatch.setattr(Routes, name, lambda self, *a, _o=original, _n=name: made.append(_n) or _o(self, *a))
    urls = ["lines?run=g%2Fseed0", "lines?group=g", "stripes?group=g", "export?group=g", "heatmaps?run=g%2Fseed0",
            "heatmap?run=g%2Fseed0&layer=layer1", "steps?run=g%2Fseed0"]
    first = {url: client.get(P + url).get_data() for url in urls}
    assert len(made) == len(urls)
    made.clear()
    assert {url: client.get(P + url).get_data() for url in urls} == first and made == []

    log("g/seed0", 2)
    multiplexer.Reload()
    assert get_json(client, P + "lines?run=g%2Fseed0")["layers"][1]["steps"] == [0, 1, 2]
    assert get_json(client, P + "lines?group=g")["layers"][0]["steps"] == [0, 1, 2]
    assert get_json(client, P + "stripes?group=g")["steps"] == [0, 1, 2]
    assert client.get(P + "export?group=g").get_data(as_text=True).splitlines()[-1].startswith("g,layer1,1,2,")
    assert get_json(client, P + "heatmaps?run=g%2Fseed0")["step"] == 2
    assert get_json(client, P + "heatmap?run=g%2Fseed0&layer=layer1")["step"] == 2
    assert get_json(client, P + "steps?run=g%2Fseed0")["steps"] == [0, 1, 2]

    log("g/seed1", 5, nas=False)  # the loss alone: the NAS listing is unchanged
    multiplexer.Reload()
    assert get_json(client, P + "lines?run=g%2Fseed1")["loss"]["steps"] == [0, 1, 5]
    assert get_json(client, P + "stripes?group=g")["loss"]["steps"] == [0, 1, 2, 5]

    assert get_json(client, P + "heatmaps?run=g%2Fseed1")["probe"] is None
    writers["g/seed1"].add_image(fmt.PROBE_IMAGE_TAG, np.zeros((1, 4, 4), np.float32), 1)  # as files before the probe record
    writers["g/seed1"].flush()
    multiplexer.Reload()
    assert get_json(client, P + "heatmaps?run=g%2Fseed1")["probe"] == "probe?run=g%2Fseed1"
    assert get_json(client, P + "heatmap?run=g%2Fseed1&layer=layer0")["probe"] == "probe?run=g%2Fseed1"

    log("g/seed2", 0)
    multiplexer.AddRunsFromDirectory(str(tmp_path))
    multiplexer.Reload()
    assert get_json(client, P + "lines?group=g")["runs"] == ["g/seed0", "g/seed1", "g/seed2"]
    for writer in writers.values():
        writer.close()


def test_listings_are_shared_for_half_a_reload_interval_and_a_reloaded_step_shows_after_it(tmp_path, monkeypatch):
    """With TensorBoard reloading every second, requests share their listings for half a second: repeated
    requests make no listing call; a step that a reload brought shows once that time is over, in every
    route at once (nas_tb_plugin/sharing.py)."""
    from nas_tb_plugin import sharing

    now = [100.0]
    monkeypatch.setattr(sharing, "monotonic", lambda: now[0])
    writer = SummaryWriter(str(tmp_path / "g" / "seed0"))
    layers = {"layer0": fmt.LayerInfo("layer0", "conv2d", 4, 4, 0)}
    written, rng = set(), np.random.default_rng(0)

    def log(step):
        from nas_logger.summaries import step_summary
        records = {"layer0": (np.sort(rng.random(len(fmt.STAT_FIELDS))).astype(np.float32),
                              rng.random((2, 2), dtype=np.float32))}
        file_writer(writer).add_summary(step_summary(layers, records, list(layers), written), step)
        writer.add_scalar("test_loss", 1.0 / (step + 1), step)
        writer.flush()

    for step in range(2):
        log(step)
    write_synthetic_runs(tmp_path, ["g/seed1"], steps=2)
    client, multiplexer = app_for(tmp_path, reload_interval=1)
    listed = []
    for name in ("list_runs", "list_tensors", "list_scalars", "list_blob_sequences"):
        original = getattr(MultiplexerDataProvider, name)
        monkeypatch.setattr(MultiplexerDataProvider, name,
                            lambda self, *a, _o=original, _n=name, **k: listed.append(_n) or _o(self, *a, **k))
    urls = ["runs", "lines?run=g%2Fseed0", "lines?group=g", "heatmaps?run=g%2Fseed0&step=1"]
    for _ in range(2):  # first answers count as changes and drop the others: the second round keeps them all
        first = {url: client.get(P + url).get_data() for url in urls}
    listed.clear()
    assert {url: client.get(P + url).get_data() for url in urls} == first
    assert listed == []

    log(2)
    multiplexer.Reload()
    now[0] += 0.4  # the listings are kept for half the reload interval: the step is not shown yet
    assert {url: client.get(P + url).get_data() for url in urls} == first and listed == []
    now[0] += 0.1
    assert {r["run"]: r["max_step"] for r in get_json(client, P + "runs")["runs"]} == {"g/seed0": 2, "g/seed1": 1}
    assert get_json(client, P + "lines?run=g%2Fseed0")["layers"][0]["steps"] == [0, 1, 2]
    assert get_json(client, P + "lines?group=g")["layers"][0]["steps"] == [0, 1, 2]
    assert get_json(client, P + "heatmaps?run=g%2Fseed0")["step"] == 2
    writer.close()


def test_a_requests_independent_calls_run_side_by_side(tmp_path, monkeypatch):
    """A selection's NAS and scalar tags are listed at once, and the layers' and the loss's points read at
    once (on the Rust data server each call in a row waits up to ~40 ms for a delayed segment): here each
    call waits until its partner is in flight too, which calls made one after the other never are."""
    import threading

    write_run(tmp_path, "a/seed0", seed=0, steps=range(3), scalars=lambda step: {"test_loss": 1.0 / (step + 1)})
    write_run(tmp_path, "a/seed1", seed=1, steps=range(3), scalars=lambda step: {"test_loss": 2.0 / (step + 1)})

    def meeting(name, barrier, met):
        original = getattr(MultiplexerDataProvider, name)

        def call(self, *args, **kwargs):
            barrier.wait()  # BrokenBarrierError (a 500) after 5 s alone
            met.append(name)
            return original(self, *args, **kwargs)
        return call

    for url in ("lines?run=a%2Fseed0", "stripes?group=a", "steps?run=a%2Fseed1"):
        client, _ = app_for(tmp_path)  # nothing cached: every call is made
        met = []
        for pair in (("list_tensors", "list_scalars"), ("read_tensors", "read_scalars")):
            barrier = threading.Barrier(2, timeout=5)
            for name in pair:
                monkeypatch.setattr(MultiplexerDataProvider, name, meeting(name, barrier, met))
        assert get_json(client, P + url)["loss"]["tag"] == "test_loss"
        assert sorted(met) == ["list_scalars", "list_tensors", "read_scalars", "read_tensors"]
        monkeypatch.undo()


def test_the_run_names_are_listed_beside_a_groups_last_members_and_the_index(tmp_path, monkeypatch):
    """A group's members are found from the run names; the listings of its members at its last request go
    beside that call (and the run list's index listing beside it too): each of the calls here waits until
    its partner is in flight, which calls made one after the other never are. A run that joined the group
    since is listed all the same."""
    import threading

    for seed in range(2):
        write_run(tmp_path, f"a/seed{seed}", seed=seed, steps=range(3), scalars=lambda step: {"test_loss": 1.0 / (step + 1)})
    client, multiplexer = app_for(tmp_path)  # nothing kept: every call is made
    assert get_json(client, P + "lines?group=a")["runs"] == ["a/seed0", "a/seed1"]

    def meeting(name, barrier, met):
        original = getattr(MultiplexerDataProvider, name)

        def call(self, *args, **kwargs):
            if name not in met:  # the first call of each meets its partner's
                met.append(name)
                barrier.wait()  # BrokenBarrierError (a 500) after 5 s alone
            return original(self, *args, **kwargs)
        return call

    for url, partner in (("lines?group=a", "list_tensors"), ("runs", "list_tensors")):
        met, barrier = [], threading.Barrier(2, timeout=5)
        for name in ("list_runs", partner):
            monkeypatch.setattr(MultiplexerDataProvider, name, meeting(name, barrier, met))
        get_json(client, P + url)
        assert sorted(met) == ["list_runs", "list_tensors"]
        monkeypatch.undo()
    write_run(tmp_path, "a/seed2", seed=2, steps=range(3), scalars=lambda step: {"test_loss": 4.0 / (step + 1)})
    multiplexer.AddRunsFromDirectory(str(tmp_path))
    multiplexer.Reload()
    body = get_json(client, P + "lines?group=a")
    assert body["runs"] == ["a/seed0", "a/seed1", "a/seed2"]
    np.testing.assert_allclose(body["loss"]["values"], [2.0, 1.0, 2.0 / 3.0], rtol=1e-6)  # seed2 in the mean


def test_a_runs_version_changes_when_it_logs_a_step_and_only_then(tmp_path, small_cnn):
    torch.set_num_threads(1)
    write_run(tmp_path, "done", seed=0, steps=range(3))
    with nas_logger.watch(small_cnn, tmp_path / "live", probe=torch.randn(4, 1, 8, 8)) as monitor:
        monitor.log(0, test_loss=1.0)
        client, multiplexer = app_for(tmp_path)
        versions = lambda: {r["run"]: (r["max_step"], r["wall_time"]) for r in get_json(client, P + "runs")["runs"]}  # noqa: E731
        detail = lambda run: (lambda d: (d["max_step"], d["wall_time"]))(get_json(client, P + "run?run=" + run))  # noqa: E731
        before = versions()
        assert versions() == before and set(before) == {"done", "live"}
        assert before["live"][0] == 0 and before["done"][0] == 2
        assert detail("live") == before["live"]
        monitor.log(1, test_loss=0.5)
        multiplexer.Reload()
        after = versions()
        assert after["done"] == before["done"] and after["live"][0] == 1 and after["live"][1] > before["live"][1]
        assert detail("live") == after["live"]
        write_run(tmp_path, "new", seed=1, steps=range(2))
        multiplexer.AddRunsFromDirectory(str(tmp_path))
        multiplexer.Reload()
        assert set(versions()) == {"done", "live", "new"}


def _comparable(run_tag_filter):
    if run_tag_filter is None:
        return None
    return (None if run_tag_filter.runs is None else frozenset(run_tag_filter.runs),
            None if run_tag_filter.tags is None else frozenset(run_tag_filter.tags))


def spy_on_provider(monkeypatch) -> list:
    """[(method, plugin name, run-tag filter)] of the MultiplexerDataProvider calls made from now on."""
    calls = []
    for name in ("list_runs", "list_tensors", "read_tensors", "list_scalars", "read_scalars"):
        original = getattr(MultiplexerDataProvider, name)
        monkeypatch.setattr(MultiplexerDataProvider, name, lambda self, *a, _n=name, _o=original, **k:
                            calls.append((_n, k.get("plugin_name"), _comparable(k.get("run_tag_filter"))))
                            or _o(self, *a, **k))
    return calls


def test_runs_lists_one_tag_per_run_and_reads_nothing(tmp_path, monkeypatch):
    """The cost shape of the run list, which every open tab asks for on each refresh: the run names and one
    listing of the index records (one small tag per run), no read at all; the stats tables (their listed last
    step) only of the runs whose index changed since the last request."""
    runs = [f"g{k}/seed{k % 3}" for k in range(6)]
    write_synthetic_runs(tmp_path, runs, steps=3)
    client, multiplexer = app_for(tmp_path)
    calls = spy_on_provider(monkeypatch)
    first = get_json(client, P + "runs")
    assert [(r["run"], r["max_step"]) for r in first["runs"]] == [(run, 2) for run in sorted(runs)]
    tables = provider_filter(runs=runs, tags=[fmt.TABLE_TAG])
    assert calls == [("list_tensors", fmt.INDEX_PLUGIN_NAME, None), ("list_runs", None, None),
                     ("list_tensors", fmt.PLUGIN_NAME, tables)]
    del calls[:]
    assert get_json(client, P + "runs") == first
    assert calls == [("list_tensors", fmt.INDEX_PLUGIN_NAME, None), ("list_runs", None, None)]
    write_synthetic_runs(tmp_path, runs[:1], steps=[3])
    multiplexer.Reload()
    del calls[:]
    assert {r["run"]: r["max_step"] for r in get_json(client, P + "runs")["runs"]}[runs[0]] == 3
    assert calls[2:] == [("list_tensors", fmt.PLUGIN_NAME, provider_filter(runs=runs[:1], tags=[fmt.TABLE_TAG]))]


def provider_filter(runs, tags):
    """A RunTagFilter as the spy records it, comparable (RunTagFilter has no equality of its own)."""
    return (frozenset(runs), frozenset(tags))


@pytest.mark.parametrize("url", ["runs", "lines?group=vanilla", "heatmaps?run=solo", "export?run=solo"])
def test_kept_bodies_are_gzipped_once_and_served_plain_to_clients_without_gzip(client, monkeypatch, url):
    compressed = []
    original = gzip.compress
    monkeypatch.setattr(gzip, "compress", lambda data, *a, **k: compressed.append(len(data)) or original(data, *a, **k))
    plain = client.get(P + url)
    zipped = [client.get(P + url, headers={"Accept-Encoding": "gzip, deflate"}) for _ in range(3)]
    assert compressed == [len(plain.get_data())]  # the kept bytes, once; http_util.Respond would each time
    assert "Content-Encoding" not in plain.headers and zipped[0].headers["Content-Encoding"] == "gzip"
    assert {gzip.decompress(z.get_data()) for z in zipped} == {plain.get_data()}
    assert int(plain.headers["Content-Length"]) == len(plain.get_data())
    assert client.get(P + url, headers={"Accept-Encoding": "gzip;q=0"}).get_data() == plain.get_data()


def test_runs_written_before_the_index_record_are_listed_by_their_stats(tmp_path, monkeypatch):
    """Old runs (no index record) beside new ones: listed by their stats tables (of the runs not covered by an
    index only, and only the table tags once learned), with versions that follow their steps."""
    write_synthetic_runs(tmp_path, ["old/seed0", "old/seed1"], steps=3, index=False)
    write_synthetic_runs(tmp_path, ["new/seed0"], steps=2)
    (tmp_path / "scalars_only").mkdir()
    with SummaryWriter(str(tmp_path / "scalars_only")) as writer:
        writer.add_scalar("loss", 1.0, 0)
    client, multiplexer = app_for(tmp_path)
    versions = lambda: {r["run"]: r["max_step"] for r in get_json(client, P + "runs")["runs"]}  # noqa: E731
    assert versions() == {"old/seed0": 2, "old/seed1": 2, "new/seed0": 1}
    calls = spy_on_provider(monkeypatch)
    assert versions() == {"old/seed0": 2, "old/seed1": 2, "new/seed0": 1}
    listings = [(plugin, rtf) for name, plugin, rtf in calls if name == "list_tensors"]
    assert listings == [(fmt.INDEX_PLUGIN_NAME, None),
                        ("nas", provider_filter({"old/seed0", "old/seed1", "scalars_only"}, {fmt.TABLE_TAG})),
                        ("nas", (frozenset({"scalars_only"}), None))]
    assert not [c for c in calls if c[0].startswith("read")]
    write_synthetic_runs(tmp_path, ["old/seed1"], steps=range(3, 5), index=False, seed=1)
    multiplexer.Reload()
    assert versions() == {"old/seed0": 2, "old/seed1": 4, "new/seed0": 1}
    assert get_json(client, P + "run?run=old%2Fseed1")["max_step"] == 4


def test_an_old_per_layer_run_has_one_version_in_runs_and_run(tmp_path):
    """Runs of per-layer stats only (no table, no index): both routes take the shallowest layer's, also when
    a deeper layer is another run's shallowest and so among the tags listed for every run."""
    a0, b = fmt.LayerInfo("a0", "linear", 4, 1, 0), fmt.LayerInfo("b", "linear", 4, 1, 1)
    for run, series in (("A", [(a0, range(4)), (b, range(6))]), ("B", [(replace(b, depth=0), range(3))])):
        with SummaryWriter(str(tmp_path / run)) as writer:
            for layer, steps in series:
                for step in steps:
                    file_writer(writer).add_summary(nas_summary(layer, fmt.STATS, np.full(8, 0.5, np.float32), step == 0), step)
    client, _ = app_for(tmp_path)
    for _ in range(2):  # the first run list learns the tags that stand for runs, the second lists only those
        listed = {r["run"]: r["max_step"] for r in get_json(client, P + "runs")["runs"]}
        assert listed == {"A": 3, "B": 2}
    assert get_json(client, P + "run?run=A")["max_step"] == 3


def test_index_tags_are_the_tables_else_the_shallowest_layers_stats():
    layer = lambda name, depth, monitor=None: fmt.LayerInfo(name, "linear", 4, 1, depth, monitor)  # noqa: E731
    table = Table("nas/stats_table", 3, 1.0, (layer("x", 0),), fmt.STAT_FIELDS)
    stats = [Series(f"nas/{l.name}/stats", 5, 2.0, l, fmt.STAT_FIELDS)
             for l in (layer("deep", 2), layer("D/first", 0, "D"), layer("shallow", 1))]
    assert index_tags([table], stats) == [table]
    assert index_tags([], stats) == [stats[2]]  # the unnamed monitor's layers come first, then by depth


def test_a_run_whose_index_is_of_a_newer_format_is_listed_by_its_stats(tmp_path, caplog):
    write_synthetic_runs(tmp_path, ["run"], steps=3, index=False)
    with SummaryWriter(str(tmp_path / "run")) as writer:  # and a later writer's index
        summary = index_summary(True)
        summary.value[0].metadata.plugin_data.content = json.dumps({"record": "index", "version": 99}).encode()
        file_writer(writer).add_summary(summary, 7)
    client, _ = app_for(tmp_path)
    with caplog.at_level("WARNING", logger="nas_tb_plugin"):
        for _ in range(2):
            assert [(r["run"], r["max_step"]) for r in get_json(client, P + "runs")["runs"]] == [("run", 2)]
    warnings = [r.getMessage() for r in caplog.records if "version 99 is newer" in r.getMessage()]
    assert len(warnings) == 1 and "'nas/index'" in warnings[0]


def test_damaged_files_and_newer_formats_are_logged_and_skipped(tmp_path, caplog):
    write_run(tmp_path, "good", seed=0, steps=range(4))
    write_run(tmp_path, "truncated", seed=1, steps=range(6))
    (event_file,) = (tmp_path / "truncated").glob("events.out.tfevents.*")
    data = event_file.read_bytes()
    event_file.write_bytes(data[: len(data) - 37])  # cut into the last record
    (tmp_path / "garbage").mkdir()
    (tmp_path / "garbage" / "events.out.tfevents.1.host").write_bytes(b"\x00\x01not an event file" * 50)
    writer = SummaryWriter(str(tmp_path / "future"))
    layer = fmt.LayerInfo("conv1", "conv2d", 4, 9, 0)
    summary = nas_summary(layer, fmt.STATS, np.zeros(8, np.float32), True)
    content = json.loads(summary.value[0].metadata.plugin_data.content)
    summary.value[0].metadata.plugin_data.content = json.dumps({**content, "version": 99}).encode()
    file_writer(writer).add_summary(summary, 0)
    writer.close()
    client = app_for(tmp_path)[0]
    with caplog.at_level("WARNING", logger="nas_tb_plugin"):
        runs = {r["run"]: get_json(client, P + "run?run=" + r["run"]) for r in get_json(client, P + "runs")["runs"]}
        get_json(client, P + "runs")
    assert "good" in runs and runs["good"]["steps"] == 4
    assert 1 <= runs["truncated"]["steps"] <= 6
    assert "future" not in runs and "garbage" not in runs
    warnings = [r.getMessage() for r in caplog.records if "future" in r.getMessage()]
    assert len(warnings) == 1 and "newer" in warnings[0]  # logged once, not per request
    assert get_json(client, P + "lines?run=future", 404)["parameter"] == "run"
    assert len(get_json(client, P + "lines?run=good")["layers"]) == 4


def test_wrong_stats_shape_is_skipped_with_a_log_line(tmp_path, caplog):
    writer = SummaryWriter(str(tmp_path / "odd"))
    good = fmt.LayerInfo("a", "linear", 4, 1, 0)
    bad = fmt.LayerInfo("b", "linear", 4, 1, 1)
    fw = file_writer(writer)
    fw.add_summary(nas_summary(good, fmt.STATS, np.full(8, 0.25, np.float32), True), 0)
    fw.add_summary(nas_summary(bad, fmt.STATS, np.zeros(3, np.float32), True), 0)
    writer.close()
    client = app_for(tmp_path)[0]
    with caplog.at_level("WARNING", logger="nas_tb_plugin"):
        body = get_json(client, P + "lines?run=odd")
    assert [l["name"] for l in body["layers"]] == ["a"] and body["layers"][0]["median"] == [0.25]
    assert any("'nas/b/stats'" in r.getMessage() for r in caplog.records)


def test_plugins_listing_enables_the_tab_only_with_nas_data(client, tmp_path):
    listing = get_json(client, "/data/plugins_listing")["nas"]
    assert listing["enabled"] is True and listing["tab_name"] == "NAS"
    assert listing["loading_mechanism"] == {"type": "IFRAME", "module_path": "/data/plugin/nas/index.js"}
    empty = app_for(tmp_path)[0]
    assert get_json(empty, "/data/plugins_listing")["nas"]["enabled"] is False


def test_overfitting_alarm_is_served_with_its_layers(tmp_path):
    from conftest import SmallCNN
    from nas_logger.detector import OverfitDetector

    torch.manual_seed(0)
    fired = {}
    for run in ("alarmed/seed0", "alarmed/seed1"):
        model = SmallCNN()
        with torch.no_grad():  # outputs away from chance: their rise is not read as a late start of learning
            model.fc2.weight.mul_(30)
        detector = OverfitDetector(window=2, warmup=1, patience=1, noise_z=0) if run.endswith("0") else False
        with nas_logger.watch(model, tmp_path / run, probe=torch.randn(8, 1, 8, 8), detect=detector) as monitor:
            for step in range(6):
                monitor.log(step, test_loss=1.0)
                if step >= 1:
                    with torch.no_grad():
                        for layer in (model.conv1, model.conv2, model.fc1):
                            layer.weight.mul_(1.8)
        fired[run] = monitor.alarm
    alarm = fired["alarmed/seed0"]
    assert alarm is not None and fired["alarmed/seed1"] is None
    client, _ = app_for(tmp_path)
    want = [{"run": "alarmed/seed0", "step": alarm.step, "layers": list(alarm.layers)}]
    assert get_json(client, "/data/plugin/nas/lines?run=alarmed/seed0")["alarms"] == want
    assert get_json(client, "/data/plugin/nas/stripes?run=alarmed/seed0")["alarms"] == want
    assert get_json(client, "/data/plugin/nas/lines?group=alarmed")["alarms"] == want
    assert get_json(client, "/data/plugin/nas/lines?run=alarmed/seed1")["alarms"] == []
    # The alarm is no layer: the layer list and the runs listing are unchanged by it.
    assert [l["name"] for l in get_json(client, "/data/plugin/nas/lines?run=alarmed/seed0")["layers"]] == LAYERS


def test_error_messages_do_not_echo_huge_values(tmp_path):
    from nas_tb_plugin.responses import MAX_ERROR_CHARS

    build_logdir(tmp_path)
    client, _ = app_for(tmp_path)
    body = get_json(client, "/data/plugin/nas/heatmaps?run=vanilla/seed0&step=" + "9" * 5000, status=400)
    assert len(body["error"]) <= MAX_ERROR_CHARS + 40 and "5000" not in body["error"][:MAX_ERROR_CHARS]
    assert body["error"].endswith("characters)") and body["parameter"] == "step"


def test_runs_written_before_the_table_read_as_the_table_serves_them(tmp_path, small_cnn):
    from events import read_table

    torch.manual_seed(3)
    with nas_logger.watch(small_cnn, tmp_path / "tabled", probe=torch.randn(4, 1, 8, 8)) as monitor:
        for step in range(4):
            monitor.log(step, test_loss=1.0)
            with torch.no_grad():
                small_cnn.conv2.weight.mul_(1.3)
    tags = provider(tmp_path).list_tensors(context.RequestContext(), experiment_id="", plugin_name=fmt.PLUGIN_NAME)
    assert not [t for t in tags["tabled"] if t.endswith("/stats")]  # stats are written once, in the table
    # The same stats as a file from before the table holds them: one per-layer tensor per layer and step.
    layers, points = read_table(tmp_path, "tabled")
    writer = SummaryWriter(str(tmp_path / "legacy"))
    for step, table in points:
        for row, layer in enumerate(layers):
            file_writer(writer).add_summary(nas_summary(layer, fmt.STATS, table[row], step == 0), step)
    writer.close()
    client, _ = app_for(tmp_path)
    lines = get_json(client, P + "lines?run=tabled")["layers"]
    assert [l["name"] for l in lines] == ["conv1", "conv2", "fc1", "fc2"] and lines[0]["steps"] == [0, 1, 2, 3]
    for layer, row in zip(lines, range(len(layers))):
        for field in ("min", "median", "max"):
            np.testing.assert_allclose(layer[field], [t[row][fmt.STAT_FIELDS.index(field)] for _, t in points], rtol=1e-6)
    legacy = get_json(client, P + "lines?run=legacy")
    assert legacy["layers"] == lines and legacy["step_unit"] == "epoch"  # files without a unit count epochs


def test_a_layer_that_first_runs_after_the_table_was_fixed_is_served_from_its_own_series(tmp_path):
    class Late(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.late, self.grown = torch.nn.Linear(3, 4), torch.nn.Linear(4, 4), False

        def forward(self, x):
            x = self.fc(x)
            return self.late(x) if self.grown else x

    model = Late()
    with nas_logger.watch(model, tmp_path / "late", probe=torch.randn(8, 3)) as monitor:
        monitor.log(0)
        model.grown = True
        medians = [monitor.log(step) for step in (1, 2)]
    tags = provider(tmp_path).list_tensors(context.RequestContext(), experiment_id="", plugin_name=fmt.PLUGIN_NAME)
    assert {t for t in tags["late"] if t.endswith("/stats")} == {"nas/late/stats"}  # fc is a row of the table
    client, _ = app_for(tmp_path)
    lines = {l["name"]: l for l in get_json(client, P + "lines?run=late")["layers"]}
    assert lines["fc"]["steps"] == [0, 1, 2] and lines["late"]["steps"] == [1, 2]
    np.testing.assert_allclose(lines["late"]["median"], [m["late"] for m in medians], rtol=1e-6)
    np.testing.assert_allclose(lines["fc"]["median"][1:], [m["fc"] for m in medians], rtol=1e-6)


def test_routes_return_the_step_unit_and_the_csv_names_its_column_by_it(tmp_path, small_cnn):
    units = {"hf/seed0": "global step", "hf/seed1": "global step", "mixed/seed0": "epoch",
             "mixed/seed1": "global step", "formula": "=1+2"}
    for run, unit in units.items():
        with nas_logger.watch(small_cnn, tmp_path / run, probe=torch.randn(2, 1, 8, 8), step_unit=unit) as monitor:
            for step in (4, 8):
                monitor.log(step, test_loss=1.0)
    client, _ = app_for(tmp_path)
    for route in ("lines", "stripes", "heatmaps"):
        assert get_json(client, P + f"{route}?run=" + q("hf/seed0"))["step_unit"] == "global step"
    assert get_json(client, P + "heatmap?layer=conv1&run=" + q("hf/seed0"))["step_unit"] == "global step"
    assert get_json(client, P + "lines?group=hf")["step_unit"] == "global step"
    # Runs that count differently, in one group: both units, each once, in the group's run order.
    assert get_json(client, P + "stripes?group=mixed")["step_unit"] == "epoch / global step"
    rows = list(csv.reader(io.StringIO(client.get(P + "export?run=" + q("hf/seed0")).get_data(as_text=True))))
    assert rows[0] == ["run_or_group", "layer", "depth", "global step", "min", "median", "max"]
    assert [r[3] for r in rows[1:] if r[1] == "conv1"] == ["4", "8"]
    formula = client.get(P + "export?run=formula").get_data(as_text=True)
    assert formula.splitlines()[0] == "run_or_group,layer,depth,'=1+2,min,median,max"
