"""TensorBoard's private APIs behind nas_tb_plugin.tensorboard_private: with them the plugin reads the Rust
data server's responses directly; without them (a TensorBoard release that renamed them) it serves the same
bodies through the public data-provider API."""
import logging
import types

import pytest
from tensorboard.data import grpc_provider
from tensorboard.plugins.core import core_plugin

from nas_tb_plugin import tensorboard_private
from nas_tb_plugin.reading import Reader
from plugin_fixtures import client_of, get_json, rust_provider, write_summaries
from test_plugin_robustness import STEPS, step_summary

P = "/data/plugin/nas/"
URLS = ["runs", "run?run=a%2Fseed0", "lines?group=a", "stripes?run=a%2Fseed1", "heatmaps?run=a%2Fseed0",
        "heatmap?run=a%2Fseed1&layer=fc1&step=1", "steps?run=a%2Fseed0", "export?group=a"]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("private")
    for run in ("a/seed0", "a/seed1"):
        write_summaries(root / run, [(s, step_summary(s, s == 0)) for s in range(STEPS)])
    with rust_provider(root) as provider:
        yield root, provider


def bodies(client) -> dict:
    return {url: get_json(client, P + url) if not url.startswith("export") else client.get(P + url).get_data()
            for url in URLS}


@pytest.mark.parametrize("private", ["_populate_rtf", "_translate_grpc_error", "data_provider_pb2"])
def test_without_a_private_part_the_public_api_serves_the_same_bodies(served, monkeypatch, caplog, private):
    root, provider = served
    direct = bodies(client_of(root, provider))
    assert Reader(provider)._grpc is not None  # the private parts are there: read directly
    # A TensorBoard without it, as the wall sees it (TensorBoard's own public methods still call theirs).
    without = types.SimpleNamespace(**{k: v for k, v in vars(grpc_provider).items() if k != private})
    monkeypatch.setattr(tensorboard_private, "grpc_provider", without)
    with caplog.at_level(logging.INFO, logger="nas_tb_plugin"):
        public = client_of(root, provider)
    assert Reader(provider)._grpc is None
    assert any(private in r.getMessage() and "public" in r.getMessage() for r in caplog.records)
    assert bodies(public) == direct


def test_a_grpc_provider_without_its_stub_is_read_through_the_public_api(served):
    _, provider = served
    stubless = object.__new__(grpc_provider.GrpcDataProvider)  # as a release that renamed _stub would have it
    assert tensorboard_private.GrpcCalls.of(stubless) is None
    assert tensorboard_private.GrpcCalls.of(provider) is not None


def test_samples_per_plugin_parse_without_tensorboard_private_parser(monkeypatch):
    text = "images=3, nas=0,scalars=1000"
    with_private = tensorboard_private.parse_samples_per_plugin(text)
    monkeypatch.delattr(core_plugin, "_parse_samples_per_plugin")
    assert tensorboard_private.parse_samples_per_plugin(text) == with_private == {"images": 3, "nas": 0, "scalars": 1000}
