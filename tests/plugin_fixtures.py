"""A log directory of several runs for the plugin tests, and a TensorBoard WSGI app serving it."""
from __future__ import annotations

import argparse
import json
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tensorboard import context as tb_context
from tensorboard.backend import application
from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
from tensorboard.data import server_ingester
from tensorboard.plugins import base_plugin
from tensorboard.util import grpc_util
from torch.utils.tensorboard import SummaryWriter
from werkzeug import test as werkzeug_test

import nas_logger
from conftest import SmallCNN
from nas_logger import format as fmt
from nas_logger.writer import file_writer
from nas_tb_plugin.plugin import NASPlugin

STEPS = 12
LAYERS = ["conv1", "conv2", "fc1", "fc2"]
HTML_RUN = "<img src=x onerror=\"alert('x')\">&amp;"
# run -> group under the default regex
GROUPS = {
    "vanilla/seed0": "vanilla", "vanilla/seed1": "vanilla", "vanilla/seed2": "vanilla",
    "drop_rep1": "drop", "drop-run2": "drop",
    "solo": "solo", HTML_RUN: HTML_RUN,
}


def test_loss(run_index: int, step: int) -> float:
    """A loss with its smoothed minimum at step 5 for every run; an isolated low outlier at step 1 is the
    raw minimum, which the smoothing must ignore."""
    return (step - 5) ** 2 / 10 + 1 + 0.01 * run_index - (2.0 if step == 1 else 0.0)


@dataclass
class LogDir:
    path: Path
    medians: dict = field(default_factory=dict)  # run -> {layer: [median per step]}
    losses: dict = field(default_factory=dict)   # run -> [test loss per step]


def write_run(path: Path, run: str, seed: int, steps=range(STEPS), scalars=None) -> dict:
    """Train-free run: the model's weights grow each step so that NAS changes. {layer: [median]}."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny convolutions: threads only add overhead on a shared machine
    try:
        return _write_run(path, run, seed, steps, scalars)
    finally:
        torch.set_num_threads(threads)


def _write_run(path, run, seed, steps, scalars):
    torch.manual_seed(seed)
    model = SmallCNN()
    probe = torch.randn(8, 1, 8, 8)
    medians = {name: [] for name in LAYERS}
    with nas_logger.watch(model, path / run, probe=probe) as monitor:
        for step in steps:
            with torch.no_grad():
                model.conv2.weight.mul_(1.2)
                model.fc1.weight.mul_(1.1)
            out = monitor.log(step, **(scalars(step) if scalars else {}))
            for name, value in out.items():
                medians[name].append(value)
    return medians


def write_two_monitors(path, shared_writer: bool, names=(None, None), steps=range(4)):
    """A GAN-like run: two SmallCNNs (same layer names and count, different weights) logged into one run,
    through one shared SummaryWriter or two ``watch`` calls on the same log dir.
    Returns ({served layer name: [median per step]}, the two monitors' names)."""
    torch.manual_seed(0)
    models = [SmallCNN(), SmallCNN(width=4)]
    target = SummaryWriter(str(path)) if shared_writer else path
    monitors = [nas_logger.watch(m, target, probe=torch.randn(4, 1, 8, 8), **({"name": n} if n else {}))
                for m, n in zip(models, names)]
    medians = {}
    for step in steps:
        for model, monitor in zip(models, monitors):
            with torch.no_grad():
                model.conv2.weight.mul_(1.3)
            name = getattr(monitor, "name", None)
            prefix = "" if name is None else name + "/"
            for layer, value in monitor.log(step, **({"test_loss": 1.0 / (step + 1)} if model is models[0] else {})).items():
                medians.setdefault(prefix + layer, []).append(value)
    for monitor in monitors:
        monitor.close()
    if shared_writer:
        target.close()
    return medians, [getattr(m, "name", None) for m in monitors]


def build_logdir(path: Path) -> LogDir:
    log = LogDir(path)
    for index, run in enumerate(GROUPS):
        def scalars(step, index=index, run=run):
            loss = test_loss(index, step)
            if run == "solo":
                return {"loss/val": loss, "accuracy": 0.1 * step}
            extra = {"distorted_test_loss": 1.0 / (step + 1)} if run.startswith("vanilla") else {}
            return {"test_loss": loss, "accuracy": 0.1 * step, **extra}

        log.medians[run] = write_run(path, run, seed=index, scalars=scalars)
        log.losses[run] = [test_loss(index, s) for s in range(STEPS)]
    return log


def app_for(logdir: Path, frontend_dir=None, reload_interval: float | None = None, cache_bytes=None, plugin=False):
    """The werkzeug test client of a TensorBoard app with only the NAS plugin, loaded as TensorBoard's
    `--load_fast=false` path does (every `nas` record kept, as NASLoader.fix_flags asks). With
    ``reload_interval`` the plugin is told TensorBoard's `--reload_interval` (it shares listings for a part
    of it); the test calls ``multiplexer.Reload()`` itself. ``cache_bytes``: the budget of the plugin's
    cache (:class:`~nas_tb_plugin.cache.VersionedCache`). Returns (client, multiplexer), or (client, the plugin's
    routes) with ``plugin``."""
    multiplexer = plugin_event_multiplexer.EventMultiplexer(tensor_size_guidance={"nas": 0, "nas_index": 1})
    multiplexer.AddRunsFromDirectory(str(logdir))
    multiplexer.Reload()
    provider = data_provider.MultiplexerDataProvider(multiplexer, str(logdir))
    flags = argparse.Namespace(reload_interval=reload_interval) if reload_interval is not None else None
    context = base_plugin.TBContext(logdir=str(logdir), data_provider=provider, flags=flags)
    nas = NASPlugin(context, frontend_dir=frontend_dir, **({} if cache_bytes is None else {"cache_bytes": cache_bytes}))
    app = application.TensorBoardWSGI([nas], data_provider=provider)
    return werkzeug_test.Client(app), (nas.routes if plugin else multiplexer)


def get_json(client, url: str, status: int = 200):
    response = client.get(url)
    assert response.status_code == status, (url, response.status_code, response.get_data(as_text=True))
    assert response.headers["Content-Type"].startswith("application/json")
    return json.loads(response.get_data(as_text=True))


def write_summaries(path: Path, summaries) -> None:
    """``summaries`` [(step, Summary proto[, wall time])] into one event file of the run directory ``path``,
    through the writer the SDK uses (a SummaryWriter's event-file writer)."""
    writer = SummaryWriter(str(path))
    for step, summary, *wall_time in summaries:
        file_writer(writer).add_summary(summary, step, *wall_time)
    writer.close()


def client_of(logdir: Path, provider, frontend_dir=None, flags=None):
    """The werkzeug test client of a TensorBoard app with only the NAS plugin over ``provider``."""
    context = base_plugin.TBContext(logdir=str(logdir), data_provider=provider, flags=flags)
    plugin = NASPlugin(context, frontend_dir=frontend_dir)
    return werkzeug_test.Client(application.TensorBoardWSGI([plugin], data_provider=provider))


def _snapshot(provider) -> tuple:
    """What the data server has loaded so far: every run's NAS, index and scalar tags with their last steps."""
    ctx = tb_context.RequestContext()
    found = []
    for plugin, method in ((fmt.PLUGIN_NAME, provider.list_tensors), (fmt.INDEX_PLUGIN_NAME, provider.list_tensors),
                           ("scalars", provider.list_scalars)):
        listing = method(ctx, experiment_id="", plugin_name=plugin)
        found.append(sorted((run, tag, ts.max_step) for run, tags in listing.items() for tag, ts in tags.items()))
    return tuple(map(tuple, found))


@contextmanager
def rust_app_for(logdir: Path, frontend_dir=None):
    """The werkzeug test client of a TensorBoard app with only the NAS plugin over TensorBoard's Rust data
    server (see :func:`rust_provider`)."""
    with rust_provider(logdir) as provider:
        yield client_of(logdir, provider, frontend_dir)


@contextmanager
def rust_provider(logdir: Path, settle: float = 1.5, timeout: float = 120):
    """TensorBoard's Rust data server (its gRPC data provider, TensorBoard's default loader), which reads
    ``logdir`` once with the samples NASLoader asks for. Yields once what it lists has not changed for
    ``settle`` seconds."""
    ingester = server_ingester.SubprocessServerDataIngester(
        server_ingester.get_server_binary(), str(logdir), reload_interval=0,
        channel_creds_type=grpc_util.ChannelCredsType.LOCAL,
        samples_per_plugin={fmt.PLUGIN_NAME: 0, fmt.INDEX_PLUGIN_NAME: 1})
    ingester.start()
    try:
        provider = ingester.data_provider
        deadline, last, since = time.monotonic() + timeout, None, time.monotonic()
        while time.monotonic() < deadline:
            now = _snapshot(provider)
            if now != last:
                last, since = now, time.monotonic()
            elif now[0] and time.monotonic() - since >= settle:
                break
            time.sleep(0.25)
        yield provider
    finally:
        ingester._stdin_handle.close()  # the data server exits when its stdin closes (--die-after-stdin)


@contextmanager
def both_loaders(logdir: Path):
    """Yields {loader name: test client} of ``logdir`` on TensorBoard's two loaders: the Python one
    (``--load_fast=false``) and the Rust data server (the default)."""
    with rust_app_for(logdir) as rust:
        yield {"python": app_for(logdir)[0], "rust": rust}
