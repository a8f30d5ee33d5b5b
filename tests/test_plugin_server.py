"""The plugin inside a real `tensorboard` process, on the Rust data server and on --load_fast=false."""
import json
import queue
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

import nas_logger
from conftest import SmallCNN
from plugin_fixtures import write_run, write_two_monitors

STEPS = 150  # more than the Rust data server's 100 tensors and the Python loader's 10 per series
GAN_MEDIANS: dict = {}  # run -> {served layer name: [median per step]} of the runs two monitors wrote
# Run names that TensorBoard's Rust data server cannot put in a blob key it can parse back.
ODD_RUNS = ["new\nline", "tab\tx", 'quote"x', "back\\slash"]
LEGACY_ODD_RUN = 'legacy"probe'  # written as before: the probe only as an image summary
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def logdir(tmp_path_factory):
    path = tmp_path_factory.mktemp("served")
    write_run(path, "long/seed0", seed=0, steps=range(STEPS), scalars=lambda s: {"test_loss": (s - 100) ** 2})
    for shared in (False, True):  # two event files of two writers, or one writer for both monitors
        GAN_MEDIANS[f"gan_{shared}"] = write_two_monitors(path / f"gan_{shared}", shared_writer=shared)[0]
    for run in ODD_RUNS:
        write_run(path, run, seed=1, steps=range(2))
    write_legacy_probe_run(path / LEGACY_ODD_RUN)
    return path


def write_legacy_probe_run(path: Path) -> None:
    """A run as nas_logger wrote it before the probe image was also a NAS record."""
    import numpy as np
    from torch.utils.tensorboard import SummaryWriter

    from nas_logger import format as fmt
    from nas_logger.summaries import nas_summary
    from nas_logger.writer import file_writer

    writer = SummaryWriter(str(path))
    layer = fmt.LayerInfo("fc", "linear", 4, 1, 0)
    file_writer(writer).add_summary(nas_summary(layer, fmt.STATS, np.full(8, 0.5, np.float32), True), 0)
    file_writer(writer).add_summary(nas_summary(layer, fmt.HEATMAP, np.zeros((1, 1), np.float32), True), 0)
    writer.add_image(fmt.PROBE_IMAGE_TAG, torch.rand(1, 8, 8), 0)
    writer.close()


def fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@contextmanager
def tensorboard(logdir, load_fast: str):
    """A TensorBoard process on a free port; yields its URL; always stopped."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", f"--logdir={logdir}", "--port=0", "--host=127.0.0.1",
         f"--load_fast={load_fast}", "--reload_interval=1"],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stderr], daemon=True).start()
    try:
        deadline, seen = time.monotonic() + 60, []
        while True:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no URL from tensorboard: {''.join(seen)}") from None
            seen.append(line)
            match = re.search(r"TensorBoard \S+ at (http://\S+?)/? ", line)
            if match:
                yield match.group(1)
                return
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def get(url: str):
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, json.loads(response.read())


def poll_lines(url: str, run: str, steps: int, seconds: float = 40):
    """The `lines` body of ``run`` once its deepest layer has ``steps`` steps (or the last one seen)."""
    deadline, body = time.monotonic() + seconds, None
    while time.monotonic() < deadline:
        try:
            status, body = get(url + "/data/plugin/nas/lines?run=" + urllib.parse.quote(run, safe=""))
        except urllib.error.HTTPError:  # 404 until the first load finishes
            body = None
        if body is not None and len(body["layers"][-1]["steps"]) == steps:
            break
        time.sleep(0.3)
    assert body is not None, f"run {run!r} never appeared"
    return body


def poll_max_step(url: str, run: str, step: int, seconds: float = 40):
    """The max_step that `runs` lists for ``run`` once it is ``step`` (or the last one seen)."""
    deadline, found = time.monotonic() + seconds, None
    while time.monotonic() < deadline and found != step:
        found = {r["run"]: r["max_step"] for r in get(url + "/data/plugin/nas/runs")[1]["runs"]}.get(run)
        time.sleep(0.3)
    return found


@pytest.mark.parametrize("load_fast", ["true", "false"])
def test_every_logged_step_is_served_and_live_steps_appear(logdir, load_fast):
    torch.set_num_threads(1)
    live = f"live_{load_fast}"
    with nas_logger.watch(SmallCNN(), logdir / live, probe=torch.randn(4, 1, 8, 8)) as monitor:
        monitor.log(0, test_loss=2.0)
        with tensorboard(logdir, load_fast) as url:
            body = poll_lines(url, "long/seed0", STEPS)
            assert [len(layer["steps"]) for layer in body["layers"]] == [STEPS] * 4
            assert body["layers"][0]["steps"] == list(range(STEPS))
            assert body["overfit_step"] == 100
            status, listing = get(url + "/data/plugins_listing")
            assert listing["nas"]["enabled"] is True and listing["nas"]["tab_name"] == "NAS"
            status, runs = get(url + "/data/plugin/nas/runs")
            assert {"group": "long", "runs": ["long/seed0"], "matched": True} in runs["groups"]
            # Each run's last step: from its index record (the last of 150 kept), or from its stats for a
            # run written before that record.
            steps = {r["run"]: r["max_step"] for r in runs["runs"]}
            assert steps["long/seed0"] == STEPS - 1 and steps[LEGACY_ODD_RUN] == 0
            status, run = get(url + "/data/plugin/nas/run?run=long%2Fseed0")
            assert run["steps"] == STEPS
            with urllib.request.urlopen(url + "/data/plugin/nas/index.js", timeout=10) as response:
                assert response.headers["Content-Type"].startswith("text/javascript")
                assert response.read() == (Path(__file__).parent.parent / "frontend" / "index.js").read_bytes()
            # Training goes on while TensorBoard serves: new steps show after its next reload.
            assert poll_lines(url, live, 1)["layers"][0]["steps"] == [0]
            monitor.log(1, test_loss=1.0)
            monitor.log(2, test_loss=3.0)
            body = poll_lines(url, live, 3)
            assert body["layers"][0]["steps"] == [0, 1, 2]
            assert poll_max_step(url, live, 2) == 2
            assert body["loss"]["values"] == [2.0, 1.0, 3.0]
            # Two monitors in one run (a GAN): each layer with its own values.
            for run, medians in GAN_MEDIANS.items():
                body = poll_lines(url, run, 4)
                assert [l["name"] for l in body["layers"]] == list(medians)
                for layer in body["layers"]:
                    assert layer["median"] == pytest.approx(medians[layer["name"]], abs=1e-6), (run, layer["name"])



@pytest.mark.parametrize("load_fast", ["true", "false"])
def test_probe_images_of_runs_with_quotes_backslashes_and_control_characters(logdir, load_fast):
    with tensorboard(logdir, load_fast) as url:
        for run in ODD_RUNS:
            poll_lines(url, run, 2)
            status, heat = get(url + "/data/plugin/nas/heatmaps?run=" + urllib.parse.quote(run, safe=""))
            assert heat["probe"] == "probe?run=" + urllib.parse.quote(run, safe=""), run
            status, image = fetch(url + "/data/plugin/nas/" + heat["probe"])
            assert status == 200 and image.startswith(PNG), (run, status, image[:300])
        # Older files hold the probe only as an image, whose blob key the Rust data server cannot parse
        # for such a name: the URL is not advertised there, and asking anyway is a 404, not a 400.
        poll_lines(url, LEGACY_ODD_RUN, 1)
        status, heat = get(url + "/data/plugin/nas/heatmaps?run=" + urllib.parse.quote(LEGACY_ODD_RUN, safe=""))
        status, image = fetch(url + "/data/plugin/nas/probe?run=" + urllib.parse.quote(LEGACY_ODD_RUN, safe=""))
        if load_fast == "true":
            assert heat["probe"] is None and status == 404, (status, image[:300])
            assert json.loads(image)["parameter"] == "run" and "cannot read" in json.loads(image)["error"]
        else:
            assert heat["probe"] is not None and status == 200 and image.startswith(PNG)
