"""Hostile input to every route of the plugin, fuzzed with hypothesis (bounded, derandomized) and as
fixed lists: never a 500, never a traceback, errors as documented JSON, each route's content type."""
import json
import urllib.parse
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nas_tb_plugin import assets
from plugin_fixtures import HTML_RUN, app_for, get_json, write_run

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
