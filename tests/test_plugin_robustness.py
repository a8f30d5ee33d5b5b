"""One crafted metadata record or one wrong-shaped tensor never takes down a route: it is skipped with one
log line and the rest of its run (and every other run) is served, on both of TensorBoard's loaders."""
import json
import logging
import urllib.parse

import numpy as np
import pytest
from tensorboard.compat.proto import summary_pb2

from nas_logger import format as fmt
from nas_logger.summaries import index_summary, nas_summary, table_summary
from plugin_fixtures import both_loaders, get_json, write_summaries

P = "/data/plugin/nas/"
LAYERS = (fmt.LayerInfo("conv1", "conv2d", 4, 9, 0), fmt.LayerInfo("fc1", "linear", 8, 1, 1))
STEPS = 3


def q(value) -> str:
    return urllib.parse.quote(str(value), safe="")


def stats_rows(step: int, layers=LAYERS) -> np.ndarray:
    """(layers, fields) float32 stats of a step: sorted quantiles, rising with the step and the row."""
    base = np.linspace(0.1, 0.7, len(fmt.STAT_FIELDS)).astype(np.float64)
    return np.stack([base + step / 100 + row / 10 for row in range(len(layers))]).astype(np.float32)


def step_summary(step: int, first: bool, layers=LAYERS, rows=None, heatmap=None, index=True) -> summary_pb2.Summary:
    """The stats table, each layer's heatmap and the index record (unless not ``index``: a run written before
    it) of one step, as the monitor writes them."""
    parts = [table_summary(list(layers), stats_rows(step, layers) if rows is None else rows, first)]
    for layer in layers:
        maps = np.full((1, 3, 3), step + layer.depth, np.float32) if heatmap is None else heatmap
        parts.append(nas_summary(layer, fmt.HEATMAP, maps, first))
    if index:
        parts.append(index_summary(first))
    return summary_pb2.Summary(value=[v for part in parts for v in part.value])


def crafted(tag: str, content: bytes, values: np.ndarray) -> summary_pb2.Summary:
    """A NAS tensor summary of ``tag`` whose metadata content is ``content`` (bytes as they come)."""
    summary = nas_summary(LAYERS[0], fmt.STATS, values, True)
    value = summary.value[0]
    value.tag = tag
    value.metadata.plugin_data.content = content
    return summary


def content(kind: str = fmt.TABLE, **changes) -> bytes:
    """Metadata JSON of a valid record of kind ``kind`` with ``changes`` applied (a value of None deletes)."""
    data = json.loads(fmt.create_summary_metadata(
        kind, **({"layers": list(LAYERS)} if kind == fmt.TABLE else {"layer": LAYERS[0]})).plugin_data.content)
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return json.dumps(data).encode()


def with_layer(**fields) -> dict:
    return {**{k: v for k, v in vars(LAYERS[0]).items() if k != "monitor"}, **fields}


# name -> (tag, metadata content, tensor): each written into a run of its own beside good records.
CRAFTED = {
    "version_1e400": ("nas/evil/stats_table", b'{"record": "stats_table", "version": 1e400}', np.zeros((2, 8), np.float32)),
    "version_-1e400": ("nas/evil/stats", b'{"record": "stats", "version": -1e400}', np.zeros(8, np.float32)),
    "deep_list": ("nas/evil/stats", b'{"version": 1, "record": "stats", "layer": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
                  np.zeros(8, np.float32)),
    "deep_object": ("nas/evil/stats", b'{"a":' * 50_000 + b"1" + b"}" * 50_000, np.zeros(8, np.float32)),
    "not_utf8": ("nas/evil/stats", b"\xff\xfe{", np.zeros(8, np.float32)),
    "layer_name_int": ("nas/evil/stats", content(fmt.STATS, layer=with_layer(name=5)), np.zeros(8, np.float32)),
    "layer_name_list": ("nas/evil/stats", content(fmt.STATS, layer=with_layer(name=[])), np.zeros(8, np.float32)),
    "layer_depth_str": ("nas/evil/stats", content(fmt.STATS, layer=with_layer(depth="x")), np.zeros(8, np.float32)),
    "layer_depth_inf": ("nas/evil/stats", content(fmt.STATS, layer=with_layer(depth=1e400)).replace(b"Infinity", b"1e400"),
                        np.zeros(8, np.float32)),
    "layer_depth_bool": ("nas/evil/stats", content(fmt.STATS, layer=with_layer(depth=True)), np.zeros(8, np.float32)),
    "layer_null": ("nas/evil/heatmap", content(fmt.HEATMAP, layer=[]), np.zeros((1, 2, 2), np.float32)),
    "layer_extra_field": ("nas/evil/stats", content(fmt.STATS, layer=with_layer(extra=1)), np.zeros(8, np.float32)),
    "layers_int": ("nas/evil/stats_table", content(layers=5), np.zeros((2, 8), np.float32)),
    "layers_object": ("nas/evil/stats_table", content(layers={"a": 1}), np.zeros((2, 8), np.float32)),
    "layers_of_strings": ("nas/evil/stats_table", content(layers=["conv1", "fc1"]), np.zeros((2, 8), np.float32)),
    "layers_depth_mixed": ("nas/evil/stats_table", content(layers=[with_layer(depth="0"), with_layer(name="b", depth=1)]),
                           np.zeros((2, 8), np.float32)),
    "fields_string": ("nas/evil/stats_table", content(fields="minmedianmax"), np.zeros((2, 8), np.float32)),
    "fields_ints": ("nas/evil/stats_table", content(fields=[1, 2, 3]), np.zeros((2, 8), np.float32)),
    "monitor_object": ("nas/evil/stats_table", content(monitor={"a": 1}, version=2), np.zeros((2, 8), np.float32)),
    "monitor_list": ("nas/evil/stats", content(fmt.STATS, monitor=[1], version=2), np.zeros(8, np.float32)),
    "record_list": ("nas/evil/stats", content(fmt.STATS, record=["stats"]), np.zeros(8, np.float32)),
    "step_unit_int": ("nas/evil/stats", content(fmt.STATS, step_unit=5), np.zeros(8, np.float32)),
    "not_an_object": ("nas/evil/stats", b"[1, 2, 3]", np.zeros(8, np.float32)),
    "huge_int_version": ("nas/evil/stats", b'{"version": ' + b"9" * 5000 + b"}", np.zeros(8, np.float32)),
}


@pytest.fixture(scope="module")
def crafted_logdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("crafted")
    write_summaries(root / "good", [(s, step_summary(s, s == 0)) for s in range(STEPS)])
    for name, (tag, meta, values) in CRAFTED.items():
        for run, index in ((name, True), (f"{name}_noindex", False)):
            records = [(s, step_summary(s, s == 0, index=index)) for s in range(STEPS)]
            records.insert(1, (0, crafted(tag, meta, values)))
            write_summaries(root / run, records)
    return root


# Every crafted run, and the same without index records (listed through its stats).
CRAFTED_RUNS = [run for name in CRAFTED for run in (name, f"{name}_noindex")]


@pytest.fixture(scope="module")
def crafted_clients(crafted_logdir):
    with both_loaders(crafted_logdir) as clients:
        yield clients


def served_medians(body: dict) -> dict:
    return {layer["name"]: layer["median"] for layer in body["layers"]}


@pytest.mark.parametrize("loader", ["python", "rust"])
def test_a_crafted_metadata_record_is_skipped_and_the_rest_of_its_run_served(crafted_clients, loader, caplog):
    client = crafted_clients[loader]
    with caplog.at_level(logging.WARNING, logger="nas_tb_plugin"):
        runs = {r["run"]: r for r in get_json(client, P + "runs")["runs"]}
        assert set(runs) == {"good", *CRAFTED_RUNS}
        want = {layer.name: [pytest.approx(float(stats_rows(s)[row, 3]), rel=1e-6) for s in range(STEPS)]
                for row, layer in enumerate(LAYERS)}
        for run in ["good", *CRAFTED_RUNS]:
            assert runs[run]["max_step"] == STEPS - 1, run
            body = get_json(client, P + "run?run=" + q(run))
            assert [layer["name"] for layer in body["layers"]] == ["conv1", "fc1"], run
            assert body["steps"] == STEPS and body["max_step"] == STEPS - 1, run
            assert served_medians(get_json(client, P + "lines?run=" + q(run))) == want, run
            assert get_json(client, P + "stripes?run=" + q(run))["layers"] == ["conv1", "fc1"], run
            heatmaps = get_json(client, P + "heatmaps?run=" + q(run))
            assert [layer["name"] for layer in heatmaps["layers"]] == ["conv1", "fc1"], run
            assert heatmaps["steps"] == list(range(STEPS)), run
            assert get_json(client, P + "heatmap?layer=fc1&run=" + q(run))["values"] == [STEPS] * 9, run
            get_json(client, P + "steps?run=" + q(run))
            assert client.get(P + "export?run=" + q(run)).status_code == 200, run
        get_json(client, P + "runs")  # asked again: no second log line
    skipped = [r.getMessage() for r in caplog.records if "skipping" in r.getMessage()]
    for run in CRAFTED_RUNS:
        assert len([m for m in skipped if f"run {run!r} tag 'nas/evil/" in m]) == 1, (run, skipped)


# --- wrong-shaped tensors ---------------------------------------------------------------------------

OTHER_MODEL = (fmt.LayerInfo("a", "linear", 2, 1, 0), fmt.LayerInfo("b", "linear", 2, 1, 1),
               fmt.LayerInfo("c", "linear", 2, 1, 2))


@pytest.fixture(scope="module")
def shaped_logdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("shapes")
    # A 1-row stats table at step 1 (of 0, 1, 2).
    write_summaries(root / "short_row", [(s, step_summary(s, s == 0, rows=stats_rows(s)[:1] if s == 1 else None))
                                         for s in range(STEPS)])
    # A 4-d heatmap at the last step; a string heatmap at step 1 of the second run.
    write_summaries(root / "heatmap_4d", [(s, step_summary(s, s == 0, heatmap=np.zeros((1, 1, 3, 3), np.float32)
                                                           if s == STEPS - 1 else None)) for s in range(STEPS)])
    text = [(s, step_summary(s, s == 0)) for s in range(STEPS)]
    (fc1,) = [v for v in text[1][1].value if v.tag == "nas/fc1/heatmap"]
    fc1.tensor.CopyFrom(nas_summary(LAYERS[1], fmt.HEATMAP, np.array([b"x", b"y"], dtype=object), False).value[0].tensor)
    write_summaries(root / "heatmap_text", text)
    # Two processes writing different models into one run directory (two event files, one stats-table tag).
    write_summaries(root / "two_models", [(s, step_summary(s, s == 0)) for s in range(STEPS)])
    write_summaries(root / "two_models", [(s, step_summary(s, s == 0, layers=OTHER_MODEL)) for s in range(STEPS)])
    # A per-layer stats series (runs written before the stats table) with a 3-value tensor at step 1.
    write_summaries(root / "stats_series", [(s, nas_summary(LAYERS[0], fmt.STATS, stats_rows(s)[0, :3 if s == 1 else None],
                                                            s == 0)) for s in range(STEPS)])
    # A probe record holding numbers, not PNG bytes.
    probe = nas_summary(LAYERS[0], fmt.STATS, np.zeros(2, np.float32), True)
    probe.value[0].tag = fmt.probe_png_tag()
    probe.value[0].metadata.CopyFrom(fmt.create_summary_metadata(fmt.PROBE))
    write_summaries(root / "probe_numbers", [(s, step_summary(s, s == 0)) for s in range(STEPS)] + [(0, probe)])
    return root


@pytest.fixture(scope="module")
def shaped_clients(shaped_logdir):
    with both_loaders(shaped_logdir) as clients:
        yield clients


def medians_of(rows_by_step: dict, layers=LAYERS) -> dict:
    return {layer.name: [pytest.approx(float(rows[row, 3]), rel=1e-6) for rows in rows_by_step.values()]
            for row, layer in enumerate(layers)}


@pytest.mark.parametrize("loader", ["python", "rust"])
def test_a_wrong_shaped_tensor_skips_its_step_and_serves_the_rest(shaped_clients, loader, caplog):
    client = shaped_clients[loader]
    with caplog.at_level(logging.WARNING, logger="nas_tb_plugin"):
        runs = {r["run"] for r in get_json(client, P + "runs")["runs"]}
        assert runs == {"short_row", "heatmap_4d", "heatmap_text", "two_models", "stats_series", "probe_numbers"}
        for run in runs:
            for route in ("run", "lines", "stripes", "heatmaps", "steps"):  # stats_series: no heatmaps
                get_json(client, P + f"{route}?run={run}", 404 if (run, route) == ("stats_series", "heatmaps") else 200)
            assert client.get(P + "export?run=" + run).status_code == 200

        lines = get_json(client, P + "lines?run=short_row")
        assert served_medians(lines) == medians_of({s: stats_rows(s) for s in (0, 2)})
        assert [layer["steps"] for layer in lines["layers"]] == [[0, 2], [0, 2]]
        assert get_json(client, P + "run?run=short_row")["steps"] == 2

        heatmaps = get_json(client, P + "heatmaps?run=heatmap_4d")
        assert heatmaps["steps"] == [0, 1] and [l["values"][0] for l in heatmaps["layers"]] == [1, 2]
        assert get_json(client, P + "heatmap?run=heatmap_4d&layer=fc1")["step"] == 1
        assert get_json(client, P + f"heatmap?run=heatmap_4d&layer=fc1&step={STEPS - 1}", 404)["parameter"] == "step"
        assert get_json(client, P + "heatmap?run=heatmap_text&layer=fc1")["steps"] == [0, 2]

        # The Python loader keeps both writers' steps and serves the rows of the model whose metadata it
        # listed; the Rust data server lists the first writer's metadata but keeps only the later writer's
        # steps (it drops a series' steps from an out-of-order one on), so no row fits: no stats lines.
        two = get_json(client, P + "lines?run=two_models")
        served = [layer["name"] for layer in two["layers"]]
        if loader == "python" or served:
            model = LAYERS if served == ["conv1", "fc1"] else OTHER_MODEL
            assert served_medians(two) == medians_of({s: stats_rows(s, model) for s in range(STEPS)}, model)
        assert [l["name"] for l in get_json(client, P + "heatmaps?run=two_models")["layers"]] == ["a", "conv1", "b", "fc1", "c"]  # by depth, then name

        series = get_json(client, P + "lines?run=stats_series")["layers"]
        assert [(l["name"], l["steps"]) for l in series] == [("conv1", [0, 2])]

        assert get_json(client, P + "heatmaps?run=probe_numbers&probe=1", 400)["parameter"] == "probe"
        assert get_json(client, P + "probe?run=probe_numbers", 404)["parameter"] == "run"
    skipped = [r.getMessage() for r in caplog.records if "skipping" in r.getMessage()]
    for run, tag in (("short_row", fmt.TABLE_TAG), ("heatmap_4d", "nas/conv1/heatmap"), ("heatmap_4d", "nas/fc1/heatmap"),
                     ("heatmap_text", "nas/fc1/heatmap"), ("two_models", fmt.TABLE_TAG), ("stats_series", "nas/conv1/stats"),
                     ("probe_numbers", fmt.probe_png_tag())):
        assert len([m for m in skipped if f"run {run!r} tag {tag!r}" in m]) == 1, (run, tag, skipped)


# --- restarts and index records ahead of the stats ------------------------------------------------------

@pytest.fixture(scope="module")
def restart_clients(tmp_path_factory):
    root = tmp_path_factory.mktemp("restart")
    # Logged to step 5, then restarted at step 0 by a new process in the same directory (a new event file).
    write_summaries(root / "restarted", [(s, step_summary(s, s == 0, rows=stats_rows(s) + 0.1)) for s in range(6)])
    write_summaries(root / "restarted", [(s, step_summary(s, s == 0)) for s in range(STEPS)])
    # An index record at step 1000 with no stats at that step.
    write_summaries(root / "index_ahead", [(s, step_summary(s, s == 0)) for s in range(STEPS)] + [(1000, index_summary(False))])
    with both_loaders(root) as clients:
        yield clients


@pytest.mark.parametrize("loader", ["python", "rust"])
def test_a_restarted_run_shows_the_records_of_its_latest_start_on_both_loaders(restart_clients, loader):
    client = restart_clients[loader]
    lines = get_json(client, P + "lines?run=restarted")
    assert [layer["steps"] for layer in lines["layers"]] == [list(range(STEPS))] * 2
    assert served_medians(lines) == medians_of({s: stats_rows(s) for s in range(STEPS)})
    assert get_json(client, P + "heatmaps?run=restarted")["steps"] == list(range(STEPS))
    assert get_json(client, P + "stripes?run=restarted")["steps"] == list(range(STEPS))
    run = get_json(client, P + "run?run=restarted")
    assert (run["steps"], run["max_step"]) == (STEPS, STEPS - 1)
    runs = {r["run"]: r["max_step"] for r in get_json(client, P + "runs")["runs"]}
    assert runs["restarted"] == STEPS - 1


@pytest.mark.parametrize("loader", ["python", "rust"])
def test_runs_and_run_agree_on_the_last_step_with_nas_data(restart_clients, loader):
    client = restart_clients[loader]
    runs = {r["run"]: (r["max_step"], r["wall_time"]) for r in get_json(client, P + "runs")["runs"]}
    run = get_json(client, P + "run?run=index_ahead")
    assert runs["index_ahead"] == (run["max_step"], run["wall_time"])
    assert run["max_step"] == STEPS - 1
