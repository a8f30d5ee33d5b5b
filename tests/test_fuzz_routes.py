"""Hostile input to every route of the plugin, fuzzed with hypothesis (bounded, derandomized) and as
fixed lists: never a 500, never a traceback, errors as documented JSON, each route's content type."""
import base64
import json
import random
import urllib.parse
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tensorboard.compat.proto import summary_pb2
from tensorboard.util import tensor_util

from nas_logger import format as fmt
from nas_logger.summaries import alarm_status_summary, alarm_summary, nas_summary
from nas_tb_plugin import assets
from plugin_fixtures import HTML_RUN, app_for, both_loaders, get_json, write_run, write_summaries
from test_plugin_robustness import LAYERS, STEPS, step_summary

PNG_1X1 = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgABSK+kcQAAAABJRU5ErkJggg==")

P = "/data/plugin/nas/"
RUNS = ["solo", "vanilla/seed0", HTML_RUN]
PARAMETERS = ["run", "group", "layer", "step", "loss_tag", "loss_tag2", "group_regex", "format", "monitor", "probe"]
DATA_TYPES = {"runs": "application/json", "run": "application/json", "lines": "application/json", "stripes": "application/json",
              "heatmap": "application/json", "heatmaps": "application/json", "steps": "application/json",
              "probe": "image/png",
              "export": "text/csv"}
TRAVERSALS = ["../../../../etc/passwd", "..%2f..%2fsetup.py", "%2e%2e%2f%2e%2e%2fsetup.py",
              "%252e%252e%252fsetup.py", "..\\..\\setup.py", "/etc/passwd", "C:\\Windows\\win.ini",
              "\\\\server\\share", "file:///etc/passwd", "solo/../solo", "./solo", "solo\x00.png"]
ADVERSARIAL = RUNS + TRAVERSALS + [
    "vanilla", "conv1", "fc2", "0", "2", "-1", "1e3", "0x10", "1_0", " 1 ", "\u0661", str(2**63), str(-2**63 - 1),
    "9" * 400, "9" * 5000, "", " ", "%00", "\x00", "%", "%zz", "%ff%fe", "csv", "CSV", "test_loss",
    "nas/conv1/stats", "null", "NaN", "inf", "[]", "{}", "\u202egnp.js", "\u4e2d\u6587", "\U0001f600",
    "(", ")", "(a*)*$", "a{99999999999}", "(" * 2000, "\\", "\\d+$", "^([^/]+)/", ".*", "x" * 3000,
]
VALUES = st.one_of(
    st.sampled_from(ADVERSARIAL),
    st.text(max_size=40),
    st.integers(min_value=-10**40, max_value=10**40).map(str),
    st.text(alphabet="%0123456789abcdefABCDEF./\\", max_size=20),
)
QUERY = st.lists(st.tuples(st.one_of(st.sampled_from(PARAMETERS), st.text(max_size=10)), VALUES), max_size=6)
FUZZ = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    for seed, run in enumerate(RUNS):
        write_run(root, run, seed=seed, steps=range(3), scalars=lambda s: {"test_loss": 1.0 / (s + 1)})
    return app_for(root)[0]


def refuse(constant: str):
    raise AssertionError(f"{constant} is no JSON")


def check(response, route: str) -> None:
    """The documented answer of ``route``: 200 with its content type, or a JSON 400/404 error."""
    text = response.get_data().decode("utf-8", "replace")
    assert response.status_code in (200, 400, 404), (route, response.status_code, text[:500])
    assert "Traceback" not in text and 'File "' not in text
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    content_type = response.headers["Content-Type"].split(";")[0]
    if response.status_code != 200:
        # TensorBoard's router: "static/" with no file is no route of the plugin, also when the file name
        # is a percent-encoded "?" (the router decodes it and cuts the path there).
        if content_type == "text/plain" and urllib.parse.unquote(route).split("?")[0].rstrip("/") == "static":
            return
        assert content_type == "application/json", (route, content_type)
        body = json.loads(text)
        assert set(body) == {"error", "parameter"} and isinstance(body["error"], str)
        return
    if route in DATA_TYPES:
        assert content_type == DATA_TYPES[route], (route, content_type)
    else:  # index.js and static/<path>
        suffix = Path(urllib.parse.urlsplit(route).path).suffix.lower() or ".js"
        assert content_type == assets.CONTENT_TYPES[suffix], (route, content_type)
    if content_type == "application/json":
        json.loads(text, parse_constant=refuse)  # strict JSON: no NaN, no Infinity
    elif content_type == "image/png":
        assert response.get_data().startswith(b"\x89PNG\r\n\x1a\n")


# A valid query per route, so that a fuzzed parameter reaches the handler's later stages.
VALID = {"runs": [], "run": [("run", "solo")], "lines": [("group", "vanilla")], "stripes": [("run", "solo")], "export": [("run", "solo")],
         "heatmap": [("run", "solo"), ("layer", "conv1"), ("step", "1")], "heatmaps": [("run", "solo")],
         "steps": [("run", "solo")], "probe": [("run", "solo")]}


@FUZZ
@given(route=st.sampled_from(sorted(DATA_TYPES)), query=QUERY, keep=st.booleans(), first=st.booleans())
def test_fuzzed_parameters_of_every_data_route(client, route, query, keep, first):
    """Random and adversarial values, repeated parameters, unknown names, encoded as a browser would;
    added before or after a valid query (the first of repeated parameters counts), or alone."""
    base = VALID[route] if keep else []
    check(client.get(P + route + "?" + urllib.parse.urlencode(query + base if first else base + query)), route)


def test_each_adversarial_value_in_each_parameter_of_each_route(client):
    """Exhaustive: every adversarial value replacing (or added to) every parameter of a valid query of
    every data route (7 x 8 x 61 requests)."""
    for route, valid in VALID.items():
        for parameter in PARAMETERS:
            for value in ADVERSARIAL:
                query = [(k, v) for k, v in valid if k != parameter] + [(parameter, value)]
                check(client.get(P + route + "?" + urllib.parse.urlencode(query)), route)


@FUZZ
@given(route=st.sampled_from(sorted(DATA_TYPES)), raw=st.text(alphabet="%0123456789abcdefABCDEF&=;+?#/.\\runstepgroup",
                                                                max_size=60))
def test_fuzzed_raw_query_strings(client, route, raw):
    """Query strings that are not valid percent-encoding, stray separators, invalid UTF-8."""
    check(client.get(P + route + "?" + raw.replace("#", "%23")), route)


SEGMENTS = st.one_of(
    st.sampled_from(["..", ".", "", "%2e%2e", "%252e%252e", "..%2f", "..%5c", "..\\", "%00", "C:", "~", "index.js",
                     "style.css", "app.js", "etc", "passwd", "setup.py", "..;", "%c0%ae%c0%ae", "\uff0e\uff0e",
                     "a" * 300 + ".js"]),
    st.text(max_size=12).map(lambda s: urllib.parse.quote(s, safe="")),
)


@FUZZ
@given(segments=st.lists(SEGMENTS, min_size=1, max_size=6), joiner=st.sampled_from(["/", "%2f", "%5c", "//"]))
def test_fuzzed_static_paths_serve_only_frontend_files(client, segments, joiner):
    route = "static/" + joiner.join(segments)
    response = client.get(P + route)
    check(response, route)
    if response.status_code == 200:  # only ever a file of frontend/, byte for byte
        served = response.get_data()
        assert any(served == f.read_bytes() for f in assets.frontend_dir().rglob("*") if f.is_file()), route


@pytest.mark.parametrize("payload", TRAVERSALS)
@pytest.mark.parametrize("url", ["lines?run={}", "lines?group={}", "stripes?run={}", "heatmaps?run={}",
                                 "steps?run={}", "heatmap?run=solo&layer={}", "probe?run={}", "export?group={}",
                                 "lines?run=solo&loss_tag={}", "lines?run=solo&loss_tag2={}"])
def test_path_traversal_in_every_data_parameter_reads_no_file(client, url, payload):
    response = client.get(P + url.format(urllib.parse.quote(payload, safe="")))
    check(response, url.split("?")[0])
    if "loss_tag" in url:  # a loss tag the selection lacks is named, not an error
        assert response.status_code == 200 and json.loads(response.get_data())["missing_loss_tags"] == [payload]
    else:
        assert response.status_code == 404
    assert "root:" not in response.get_data(as_text=True)  # nothing read from the file system


def test_repeated_parameters_take_the_first_value(client):
    once = get_json(client, P + "lines?run=solo")
    assert get_json(client, P + "lines?run=solo&run=nope&run=" + urllib.parse.quote(HTML_RUN)) == once
    assert get_json(client, P + "lines?run=nope&run=solo", 404)["parameter"] == "run"


@pytest.mark.parametrize("regex", ["(" * 2000 + ")" * 2000, "a{1001}", "(a{1000}){1000}", "x" * 1001])
def test_group_regex_too_deep_huge_or_long_is_a_400(client, regex):
    """Found by the fuzzer: RecursionError and OverflowError in re.compile used to be 500s; RE2 refuses
    repeats above 1000 and programs beyond its memory budget."""
    body = get_json(client, P + "runs?group_regex=" + urllib.parse.quote(regex), 400)
    assert body["parameter"] == "group_regex"


# --- fuzzed records: metadata fields and tensor shapes written with the SDK's writer, both loaders --------

FUZZED_RUNS = 60
HOSTILE = [None, "1e400", "-1e400", -1, 0, 2**70, "x", "", [], {}, [1], {"a": 1}, True, 1.5, "\x00", "a" * 5000,
           "deep", ["conv1"], [{"name": "x"}], fmt.FORMAT_VERSION + 1]
FIELD_PATHS = {
    fmt.TABLE: [("version",), ("record",), ("monitor",), ("layers",), ("layers", 0), ("fields",), ("fields", 0),
                ("step_unit",), *(("layers", 1, f) for f in ("name", "kind", "filters", "receptive_fields", "depth", "monitor"))],
    fmt.HEATMAP: [("version",), ("record",), ("layer",), ("monitor",),
                  *(("layer", f) for f in ("name", "kind", "filters", "receptive_fields", "depth", "monitor"))],
    fmt.INDEX: [("version",), ("record",), ("monitor",)],
    fmt.ALARM_STATUS: [("version",), ("record",), ("monitor",), ("step_unit",)],
    fmt.PROBE: [("version",), ("record",), ("monitor",)],
}
TAGS = {fmt.TABLE: fmt.TABLE_TAG, fmt.HEATMAP: "nas/fc1/heatmap", fmt.INDEX: fmt.index_tag(),
        fmt.ALARM_STATUS: fmt.alarm_status_tag(), fmt.PROBE: fmt.probe_png_tag()}
SHAPES = [(), (0,), (3,), (1, 8), (2, 7), (2, 8, 1), (3, 8), (16,), (1, 3, 3), (1, 1, 3, 3), (0, 3, 3), (2, 2, 2, 2, 2)]
DTYPES = [np.float32, np.float64, np.int32, np.bool_, object]


def mutate_metadata(value: summary_pb2.Summary.Value, path: tuple, new) -> None:
    data = json.loads(value.metadata.plugin_data.content)
    target = data
    try:
        for key in path[:-1]:
            target = target[key]
        if new is None:
            del target[path[-1]]
        else:
            target[path[-1]] = "__HOSTILE__"
    except (KeyError, IndexError, TypeError):
        return
    text = json.dumps(data)
    special = {"1e400": "1e400", "-1e400": "-1e400", "deep": "[" * 100_000 + "]" * 100_000}
    raw = special[new] if isinstance(new, str) and new in special else json.dumps(new)
    value.metadata.plugin_data.content = text.replace('"__HOSTILE__"', raw).encode()


def fuzzed_records(rng: random.Random) -> tuple[str, list]:
    """The records of one run (the stats table, heatmaps, index, alarm status, probe PNGs, alarm, a loss) with
    one thing changed: a metadata field of one record kind, or the tensor of one record at one step."""
    records = []
    for s in range(STEPS):
        summary = step_summary(s, s == 0)
        summary.value.extend(alarm_status_summary(fmt.encode_alarm_status("watching", "NAS alarm: watching")).value)
        if s == 0:
            probe = nas_summary(LAYERS[0], fmt.STATS, np.zeros(1, np.float32), True).value[0]
            probe.tag = fmt.probe_png_tag()
            probe.metadata.CopyFrom(fmt.create_summary_metadata(fmt.PROBE))
            probe.tensor.CopyFrom(tensor_util.make_tensor_proto(np.array([PNG_1X1], dtype=object)))
            summary.value.append(probe)
        if s == STEPS - 1:
            summary.value.extend(alarm_summary(("conv1",)).value)
        summary.value.add(tag="test_loss", simple_value=1.0 / (s + 1))
        records.append((s, summary))
    kind = rng.choice(sorted(FIELD_PATHS))
    if rng.random() < 0.5:
        path, new = rng.choice(FIELD_PATHS[kind]), rng.choice(HOSTILE)
        (value,) = [v for v in records[0][1].value if v.tag == TAGS[kind]]
        mutate_metadata(value, path, new)
        return f"meta {kind} {path} {str(new)[:20]}", records
    step = 0 if kind == fmt.PROBE else rng.randrange(STEPS)  # the probe record is written once
    shape, dtype = rng.choice(SHAPES), rng.choice(DTYPES)
    array = np.full(shape, b"x", dtype=object) if dtype is object else np.ones(shape, dtype=dtype)
    (value,) = [v for v in records[step][1].value if v.tag == TAGS[kind]]
    value.tensor.CopyFrom(tensor_util.make_tensor_proto(array))
    return f"tensor {kind} step {step} {shape} {np.dtype(dtype).name}", records


@pytest.fixture(scope="module")
def fuzzed_records_logdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzzed_records")
    rng = random.Random(25)
    names = {}
    for i in range(FUZZED_RUNS):
        names[f"f{i:02d}"], records = fuzzed_records(rng)
        write_summaries(root / f"f{i:02d}", records)
    return root, names


def test_fuzzed_metadata_fields_and_tensor_shapes_never_fail_a_route(fuzzed_records_logdir):
    """Each run holds one hostile metadata field or one wrong-shaped or wrong-typed tensor: every route of
    every run answers 200 or a JSON 404, never a 500, on both of TensorBoard's loaders; the runs whose
    change leaves the stats table readable keep every layer."""
    root, names = fuzzed_records_logdir
    with both_loaders(root) as clients:
        for loader, client in clients.items():
            listed = {r["run"] for r in get_json(client, P + "runs")["runs"]}
            assert len(listed) >= FUZZED_RUNS // 2, (loader, sorted(set(names) - listed))
            for run in sorted(names):
                for route in ("run", "lines", "stripes", "heatmaps", "steps", "export", "probe"):
                    check(client.get(P + f"{route}?run={run}"), route)
                for layer in ("conv1", "fc1"):
                    check(client.get(P + f"heatmap?run={run}&layer={layer}"), "heatmap")
                check(client.get(P + f"lines?group={run}&loss_tag=test_loss"), "lines")
                if run in listed:  # its stats listed: it serves them
                    assert get_json(client, P + f"lines?run={run}")["layers"], (loader, run, names[run])
