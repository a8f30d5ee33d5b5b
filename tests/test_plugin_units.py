"""Grouping, test-loss tags, alignment, assets and the loader's flags, without event files."""
import json
from pathlib import Path

import numpy as np
import pytest
from tensorboard import default, program
from tensorboard.plugins.core import core_plugin
from tensorboard.plugins import base_plugin

from nas_tb_plugin import assets
from nas_tb_plugin.aggregate import align, band, dedupe_steps, mean_curve
from nas_tb_plugin.grouping import Group, compile_group_regex, group_key, group_members, group_runs
from nas_tb_plugin.overfit import default_loss_tag
from nas_tb_plugin.plugin import NASLoader, NASPlugin
from plugin_fixtures import app_for, get_json

REPO = Path(__file__).resolve().parent.parent


# --- grouping -----------------------------------------------------------------------------------

def group_of(run: str, pattern) -> str:
    """Group name of ``run`` under ``pattern``."""
    return group_key(run, pattern).name


@pytest.mark.parametrize("run, group", [
    ("vanilla/seed0", "vanilla"), ("vanilla/seed12", "vanilla"), ("x_rep2", "x"), ("x_run3", "x"),
    ("x-seed1", "x"), ("x/run7", "x"), ("seed1", "seed1"), ("x_seed", "x_seed"), ("a_seed1/b", "a_seed1/b"),
    (".", "."), ("x_seed1x", "x_seed1x"),
])
def test_default_group_strips_a_trailing_repeat_marker(run, group):
    assert group_of(run, compile_group_regex(None)) == group


def test_group_regex_capture_group_or_removed_match():
    assert group_of("lr0.1/vgg/seed3", compile_group_regex(r"^([^/]+)/")) == "lr0.1"
    assert group_of("lr0.1/vgg/seed3", compile_group_regex(r"/vgg")) == "lr0.1/seed3"
    assert group_of("abc", compile_group_regex(r"abc")) == "abc"  # empty result: own group
    assert group_of("abc", compile_group_regex(r"(x)?b")) == "abc"  # empty capture: own group
    assert group_runs(["b_rep2", "a", "b_rep1"], compile_group_regex("")) == {
        Group("a", False): ["a"], Group("b", True): ["b_rep1", "b_rep2"]}
    with pytest.raises(ValueError, match="group_regex '\\(' is not a valid"):
        compile_group_regex("(")


def test_an_unmatched_run_named_like_a_group_stays_apart():
    pattern = compile_group_regex(None)
    runs = ["vanilla/seed1", "vanilla", "vanilla/seed0", "abc_seed1", "abc"]
    assert group_key("vanilla", pattern) == Group("vanilla", False)
    assert group_key("vanilla/seed0", pattern) == Group("vanilla", True)
    assert group_key("abc", compile_group_regex("abc")) == Group("abc", False)  # empty name: unmatched
    assert group_runs(runs, pattern) == {
        Group("abc", True): ["abc_seed1"], Group("abc", False): ["abc"],
        Group("vanilla", True): ["vanilla/seed0", "vanilla/seed1"], Group("vanilla", False): ["vanilla"]}
    assert list(group_runs(runs, pattern)) == [Group("abc", True), Group("abc", False), Group("vanilla", True),
                                               Group("vanilla", False)]
    assert group_members(group_runs(runs, pattern), "vanilla") == ["vanilla/seed0", "vanilla/seed1"]
    assert group_members(group_runs(["vanilla"], pattern), "vanilla") == ["vanilla"]
    assert group_members(group_runs(runs, pattern), "nope") == []


# --- overfitting and the test-loss tag ----------------------------------------------------------

@pytest.mark.parametrize("tags, want", [
    (["loss", "accuracy", "test_loss", "val_loss"], "test_loss"),
    (["train/loss", "loss/val"], "loss/val"),
    (["validation_loss", "loss"], "validation_loss"),
    (["distorted_test_loss", "my_test_loss_value"], "my_test_loss_value"),
    (["Eval/Loss_top1"], "Eval/Loss_top1"),
    (["loss", "accuracy"], None),
    ([], None),
])
def test_default_loss_tag_prefers_test_loss_names(tags, want):
    assert default_loss_tag(tags) == want


# --- aggregation --------------------------------------------------------------------------------

def test_align_and_band_match_numpy_on_the_common_steps():
    a = (np.array([0, 1, 2]), np.array([0.1, 0.5, 0.9]))
    b = (np.array([1, 2, 3]), np.array([0.3, 0.2, np.nan]))
    c = (np.array([2]), np.array([0.4]))
    steps, matrix = align([a, b, c])
    assert steps.tolist() == [0, 1, 2, 3]
    lo, mid, hi = band(matrix)
    np.testing.assert_allclose(lo, [0.1, 0.3, 0.2, np.nan])
    np.testing.assert_allclose(mid, [0.1, 0.4, 0.4, np.nan])
    np.testing.assert_allclose(hi, [0.1, 0.5, 0.9, np.nan])
    mean_steps, mean = mean_curve([a, b])
    np.testing.assert_allclose(mean, [0.1, 0.4, 0.55, np.nan])
    assert mean_steps.tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize("runs, layers, steps", [(3, 4, 10), (4, 50, 300), (2, 1, 1)])
def test_layers_aligned_and_banded_at_once_equal_each_layer_alone(runs, layers, steps):
    """A group's layers that share their steps go through align and band as one (runs, layers, steps)
    array: the same bits as a pass per layer, NaN gaps (runs of different steps, non-finite stats) included."""
    rng = np.random.default_rng(runs)
    series = []
    for r in range(runs):
        own = np.sort(rng.choice(steps + 3, size=steps, replace=False))
        values = rng.random((layers, steps))
        values[rng.random((layers, steps)) < 0.1] = np.nan
        series.append((own, values))
    union, stacked = align(series)
    assert stacked.shape == (runs, layers, union.size)
    at_once = band(stacked)
    for layer in range(layers):
        alone_steps, alone = align([(own, values[layer]) for own, values in series])
        assert alone_steps.tolist() == union.tolist()
        for got, want in zip(at_once, band(alone)):
            np.testing.assert_array_equal(got[layer], want)


def test_dedupe_keeps_the_last_value_of_a_repeated_step():
    steps, values = dedupe_steps(np.array([0, 1, 2, 1, 2]), np.array([0.0, 1.0, 2.0, 10.0, 20.0]))
    assert steps.tolist() == [0, 1, 2] and values.tolist() == [0.0, 10.0, 20.0]


@pytest.mark.parametrize("steps, kept", [
    ([0, 1, 2, 3, 4, 5, 0, 1, 2], [6, 7, 8]),  # restarted at 0: only the latest start
    ([0, 1, 2, 3, 4, 5, 3, 4], [0, 1, 2, 6, 7]),  # resumed from a checkpoint at step 3
    ([5, 6, 2, 9, 7], [2, 4]),
    ([3, 3, 3], [2]),
    ([], []),
])
def test_dedupe_drops_every_point_a_later_step_is_at_or_before(steps, kept):
    """TensorBoard's Rust data server's purge: a point at step s drops the earlier points at steps >= s."""
    reference = []
    for i, s in enumerate(steps):  # the purge, point by point
        reference = [j for j in reference if steps[j] < s] + [i]
    assert reference == kept
    found, index = dedupe_steps(np.array(steps, dtype=np.int64), np.arange(len(steps)))
    assert index.tolist() == kept and found.tolist() == [steps[i] for i in kept]


# --- the loader and TensorBoard flags -----------------------------------------------------------

@pytest.mark.parametrize("argv, want", [
    ([], {"nas": 0, "nas_index": 1}),  # of the index records only the last is read
    (["--samples_per_plugin", "images=3"], {"images": 3, "nas": 0, "nas_index": 1}),
    (["--samples_per_plugin", "nas=7,nas_index=5"], {"nas": 7, "nas_index": 5}),  # the user's values win
])
def test_loader_keeps_every_nas_record_unless_told_otherwise(argv, want, tmp_path):
    tb = program.TensorBoard(plugins=[core_plugin.CorePluginLoader(), NASLoader()])
    tb.configure(["tensorboard", f"--logdir={tmp_path}", *argv])
    assert tb.flags.samples_per_plugin == want


def test_loader_accepts_the_flag_as_a_string_from_configure(tmp_path):
    tb = program.TensorBoard(plugins=[core_plugin.CorePluginLoader(), NASLoader()])
    tb.configure(logdir=str(tmp_path), samples_per_plugin="images=2")
    assert tb.flags.samples_per_plugin == {"images": 2, "nas": 0, "nas_index": 1}


def test_the_entry_point_gives_tensorboard_the_loader():
    loaders = default.get_dynamic_plugins()
    assert any(loader is NASLoader or isinstance(loader, NASLoader) for loader in loaders)


def test_plugin_metadata():
    plugin = NASLoader().load(base_plugin.TBContext(data_provider=None))
    assert isinstance(plugin, NASPlugin) and plugin.plugin_name == "nas"
    assert plugin.data_plugin_names() == ("nas",)
    meta = plugin.frontend_metadata()
    assert (meta.es_module_path, meta.tab_name) == ("/index.js", "NAS")
    assert {"/index.js", "/static/*", "/runs", "/run", "/lines", "/stripes", "/heatmap", "/heatmaps", "/steps",
            "/probe", "/export"} == set(plugin.get_plugin_apps())


# --- static assets ------------------------------------------------------------------------------

@pytest.fixture
def frontend(tmp_path):
    root = tmp_path / "frontend"
    (root / "views").mkdir(parents=True)
    (root / "index.js").write_text("export function render() {}\n")
    (root / "style.css").write_text("body { margin: 0 }\n")
    (root / "views" / "lines.js").write_text("export const x = 1;\n")
    (root / "notes.txt").write_text("not served\n")
    (tmp_path / "secret.js").write_text("secret\n")
    (root / "link.js").symlink_to(tmp_path / "secret.js")
    (root / "loop.js").symlink_to(root / "loop.js")
    return root


def test_frontend_files_are_served_with_their_types(frontend, tmp_path):
    client = app_for(tmp_path / "empty", frontend_dir=frontend)[0]
    for url, body, content_type in [
        ("/data/plugin/nas/index.js", "export function render() {}\n", "text/javascript"),
        ("/data/plugin/nas/static/index.js", "export function render() {}\n", "text/javascript"),
        ("/data/plugin/nas/static/style.css", "body { margin: 0 }\n", "text/css"),
        ("/data/plugin/nas/static/views/lines.js", "export const x = 1;\n", "text/javascript"),
    ]:
        response = client.get(url)
        assert response.status_code == 200, url
        assert response.headers["Content-Type"] == content_type + "; charset=utf-8"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.get_data(as_text=True) == body


@pytest.mark.parametrize("path", [
    "../secret.js", "%2e%2e/secret.js", "%2e%2e%2fsecret.js", "..%2fsecret.js", "views/../../secret.js",
    "views/%2e%2e/%2e%2e/secret.js", "%252e%252e%252fsecret.js", "/etc/passwd", "%2fetc%2fpasswd",
    "..%5csecret.js", "link.js", "notes.txt", "views", "views/", "missing.js", "index.js%00.png", "./index.js",
    # double-encoded slash and backslash, backslashes alone, Windows and UNC absolute paths, a doubled
    # slash, overlong UTF-8 and full-width dots, "....//", ";" tricks, a link loop, a name too long
    # for the file system
    "..%252fsecret.js", "%2e%2e%255csecret.js", "..\\secret.js", "views\\..\\..\\secret.js",
    "C:%5cWindows%5cwin.ini", "C:/Windows/win.ini", "%5c%5cserver%5cshare%5cx.js", "//etc/passwd",
    "%c0%ae%c0%ae/secret.js", "\uff0e\uff0e/secret.js", "....//secret.js", "..;/secret.js", "loop.js",
    "a" * 5000 + ".js", "views/" * 3000 + "x.js",
])
def test_static_rejects_traversal_and_unknown_files(frontend, tmp_path, path):
    client = app_for(tmp_path / "empty", frontend_dir=frontend)[0]
    response = client.get("/data/plugin/nas/static/" + path)
    assert response.status_code == 404
    assert "secret" not in response.get_data(as_text=True).replace("secret.js", "")
    assert json.loads(response.get_data(as_text=True))["parameter"] == "path"


def test_no_frontend_gives_404_for_index_js(tmp_path):
    client = app_for(tmp_path / "empty", frontend_dir=tmp_path / "nothing")[0]
    assert get_json(client, "/data/plugin/nas/index.js", 404)["parameter"] == "path"
    assert assets.resolve(None, "index.js") is None


def test_frontend_dir_is_the_repository_frontend_in_a_checkout():
    want = REPO / "frontend" if (REPO / "frontend" / "index.js").is_file() else None
    found = assets.frontend_dir()
    assert (found.resolve() if found else None) == (want.resolve() if want else None)


# --- JSON numbers -------------------------------------------------------------------------------

def test_static_files_under_a_path_prefix(frontend, tmp_path):
    from tensorboard.backend import application
    from werkzeug import test as werkzeug_test

    context = base_plugin.TBContext(logdir=str(tmp_path), data_provider=None)
    app = application.TensorBoardWSGI([NASPlugin(context, frontend_dir=frontend)], path_prefix="/tb")
    client = werkzeug_test.Client(app)
    response = client.get("/tb/data/plugin/nas/static/views/lines.js")
    assert response.status_code == 200 and response.get_data(as_text=True) == "export const x = 1;\n"
    assert client.get("/tb/data/plugin/nas/static/%2e%2e/secret.js").status_code == 404


@pytest.mark.parametrize("catastrophic, run", [
    (r"(a*)*b", "a" * 100_000),
    (r"(a|aa)*c", "a" * 100_000),
    (r"(x+x+)+y", "x" * 100_000),
    (r"^(([a-z])+.)+[A-Z]([a-z])+$", "a" * 100_000 + "!"),
])
def test_catastrophic_group_regexes_answer_at_once(catastrophic, run):
    import time

    pattern = compile_group_regex(catastrophic)
    start = time.perf_counter()
    assert group_of(run, pattern) == run  # no match: a group of its own
    # Python's backtracking re needs longer than the age of the universe here; RE2 about a millisecond.
    # The bound is loose so that a loaded machine cannot fail it.
    assert time.perf_counter() - start < 5.0


def test_regexes_re2_cannot_run_are_refused_with_the_reason():
    with pytest.raises(ValueError, match=r"group_regex '\(a\)\\\\1' .*RE2 .*invalid escape sequence"):
        compile_group_regex(r"(a)\1")
    with pytest.raises(ValueError, match="invalid perl operator"):
        compile_group_regex(r"(?=seed)")


def _awkward_floats(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([
        rng.random(300), rng.normal(size=300) * 10.0 ** rng.integers(-14, 21, size=300),
        rng.random(50).astype(np.float32), [0.0, -0.0, 1.0, 0.1, 123456789.0, 1e-310, 1e300, -1e-300],
    ])


def test_json_floats_keep_7_significant_digits_and_send_non_finite_as_null():
    """_json_floats (the JSON of the routes' float arrays, printed at once) holds each value to 7 significant
    digits (within half a unit of the 7th), in at most 7 digits, and null where it is NaN or infinite."""
    from nas_tb_plugin.responses import encode as _encode, json_floats as _json_floats

    values = _awkward_floats(2)
    parsed = json.loads(_encode({"v": _json_floats(values)}))["v"]
    assert len(parsed) == len(values)
    for x, y in zip(values.tolist(), parsed):
        assert isinstance(y, (int, float)) and abs(y - x) <= 5.0000001e-7 * abs(x) + 1e-300, (x, y)
        assert len(("%.7g" % y).replace("-", "").replace(".", "").split("e")[0].strip("0")) <= 7
    grid = np.array([[np.nan, 0.5], [np.inf, -np.inf]], dtype=np.float32)
    assert json.loads(_encode({"v": _json_floats(grid)}))["v"] == [None, 0.5, None, None]
    assert _encode({"v": _json_floats(np.zeros(0))}) == '{"v":[]}'


def test_csv_floats_print_each_array_as_json_floats_does_and_leave_non_finite_cells_empty():
    """One printer for both: the export's cells are the JSON routes' numbers; empty cells for NaN and infinities."""
    from nas_tb_plugin.responses import csv_floats as _csv_floats, encode as _encode, json_floats as _json_floats

    rng = np.random.default_rng(1)
    arrays = [rng.random((3, 4), dtype=np.float32), np.zeros(0), _awkward_floats(3),
              np.array([np.nan, 1.5, -np.inf]), np.full((2, 2), 123456789.0)]
    cells = _csv_floats(arrays)
    assert [len(c) for c in cells] == [np.size(a) for a in arrays]
    for array, column in zip(arrays, cells):
        as_json = json.loads(_encode({"v": _json_floats(array)}))["v"]
        assert [None if c == "" else float(c) for c in column] == as_json
    assert cells[3] == ["", "1.5", ""]
    assert _csv_floats([]) == []


def test_encode_splices_made_json_in_place_and_leaves_names_alone():
    from nas_tb_plugin.responses import SPLICE as _SPLICE, encode as _encode, json_floats as _json_floats

    # Names like the stand-in (a run cannot know it: it is random) come back as they are.
    body = {"runs": ["nas-json-0", _SPLICE[:-1], f'"{_SPLICE[:-1]}"'], "a": _json_floats(np.array([1.5, 2.0])),
            "layers": [{"name": f"l{i}", "values": _json_floats(np.full(2, i))} for i in range(3)], "b": None}
    decoded = json.loads(_encode(body))
    assert decoded["a"] == [1.5, 2.0] and [l["values"] for l in decoded["layers"]] == [[0, 0], [1, 1], [2, 2]]
    assert decoded["runs"] == body["runs"] and decoded["b"] is None
    with pytest.raises(TypeError, match="set is not JSON serializable"):
        _encode({"x": {1}})
