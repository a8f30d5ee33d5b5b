"""Faults: training processes killed mid-write, writers appending while the plugin serves, event files of
other format versions, a log directory of many runs, malformed probes given to the SDK."""
import json
import os
import random
import signal
import struct
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.tensorboard import SummaryWriter

import nas_logger
from nas_logger import format as fmt
from nas_logger.summaries import nas_summary
from nas_logger.writer import file_writer
from plugin_fixtures import LAYERS, app_for, get_json
from reliability_support import complete_steps, peak_rss_mib, tensorboard_pid, write_synthetic_runs
from test_plugin_server import tensorboard

P = "/data/plugin/nas/"
# TensorBoard's default tensor size guidance: the points of a scalar series it keeps.
SCALAR_SAMPLES = 500
TESTS = os.path.dirname(__file__)

# Logs SmallCNN forever, one `log` per step, and prints each step once its `log` has returned.
LOGGING_SCRIPT = textwrap.dedent(
    """
    import itertools, sys, time, torch
    sys.path.insert(0, {tests!r})
    torch.set_num_threads(1)
    from conftest import SmallCNN
    import nas_logger
    model = SmallCNN()
    monitor = nas_logger.watch(model, {logdir!r}, probe=torch.randn(8, 1, 8, 8))
    for step in itertools.count():
        with torch.no_grad():
            model.conv2.weight.mul_(1.05)
        monitor.log(step, test_loss=1.0 / (step + 1))
        print(step, flush=True)
        time.sleep({pause})
    """
)


def start_logger(logdir: Path, pause: float = 0.0) -> subprocess.Popen:
    script = LOGGING_SCRIPT.format(tests=TESTS, logdir=str(logdir), pause=pause)
    return subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)


def stop(procs) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


def record_ends(data: bytes) -> list[int]:
    """Offsets at which the TFRecords of an event file end (length u64, crc u32, data, crc u32)."""
    ends, at = [], 0
    while at + 12 <= len(data):
        (length,) = struct.unpack("<Q", data[at:at + 8])
        if at + 12 + length + 4 > len(data):
            break
        at += 12 + length + 4
        ends.append(at)
    return ends


# --- SIGKILL in the middle of writing --------------------------------------------------------------

def test_sigkill_mid_write_keeps_every_completed_step_and_skips_torn_records(tmp_path):
    """Five logging processes killed with SIGKILL at random moments (seeded) while they log without pause:
    every step whose `log` returned is served, a torn last record is skipped, and no step is partial."""
    rng = random.Random(9)
    procs = {f"kill{i}": start_logger(tmp_path / f"kill{i}") for i in range(5)}
    completed = {}
    try:
        for run, proc in procs.items():
            assert proc.stdout.readline().strip() == "0"  # importing torch is over; logging runs flat out
            time.sleep(rng.uniform(0.0, 0.4))
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
            assert proc.returncode == -signal.SIGKILL
            completed[run] = int(["0", *proc.stdout.read().split()][-1])  # the last step printed
    finally:
        stop(procs.values())
    # Whatever the kills left, also tear the last record of one run by hand: a half-written record.
    (event_file,) = (tmp_path / "kill0").glob("events.out.tfevents.*")
    data = event_file.read_bytes()
    ends = record_ends(data)
    start = ends[-2] if len(ends) > 1 else 0
    event_file.write_bytes(data[:ends[-1]] + data[start:ends[-1]][: (ends[-1] - start) // 2])
    client = app_for(tmp_path)[0]
    for run, last in completed.items():
        body = get_json(client, P + "lines?run=" + run)
        steps = complete_steps(body, LAYERS)
        assert steps[: last + 1] == list(range(last + 1)), (run, last, steps)
        assert len(steps) <= last + 2  # at most the step being logged when the kill came
        stripes = get_json(client, P + "stripes?run=" + run)
        assert stripes["steps"] == steps and all(None not in row for row in stripes["medians"])
        heatmaps = get_json(client, P + "heatmaps?run=" + run)
        assert heatmaps["steps"] == steps and [l["name"] for l in heatmaps["layers"]] == LAYERS
        loss_steps = body["loss"]["steps"]
        if len(loss_steps) < SCALAR_SAMPLES:
            assert loss_steps[: last + 1] == list(range(last + 1))
        else:  # TensorBoard keeps a reservoir sample of SCALAR_SAMPLES points of a longer scalar series; as above,
            # the step being logged when the kill came may be among them
            assert len(loss_steps) == SCALAR_SAMPLES and set(loss_steps) <= set(range(last + 2))


# --- reading while writers append -----------------------------------------------------------------

def check_served_body(route: str, body: dict) -> int:
    """Check one `lines`/`stripes`/`heatmaps` body of a growing run holds only complete steps; its last step."""
    if route == "lines":
        steps = complete_steps(body, LAYERS)
    elif route == "stripes":
        steps = body["steps"]
        assert body["layers"] == LAYERS and all(None not in row for row in body["medians"]), body
        assert all(0 <= v < 1 for row in body["medians"] for v in row)
    else:
        steps = body["steps"]
        assert [l["name"] for l in body["layers"]] == LAYERS and body["step"] == steps[-1], body
    assert steps == list(range(len(steps))), steps
    return steps[-1] if steps else -1


def test_reads_while_three_writers_append_see_only_complete_steps(tmp_path):
    """A real TensorBoard (Rust data server, reload every second) and the in-process Python loading path
    (reloaded by a thread, as TensorBoard's reload thread does) serve a log dir that 3 processes append to."""
    runs = [f"w{i}/seed0" for i in range(3)]
    writers = [start_logger(tmp_path / run, pause=0.05) for run in runs]
    stop_reload = threading.Event()
    seen: dict[tuple, int] = {}
    requests = 0
    try:
        for proc in writers:
            assert proc.stdout.readline().strip() == "0"
        client, multiplexer = app_for(tmp_path)
        lock = threading.Lock()  # the werkzeug test client is not shared across threads, the multiplexer is

        def reload():
            while not stop_reload.is_set():
                multiplexer.Reload()

        reloader = threading.Thread(target=reload, daemon=True)
        reloader.start()
        with tensorboard(tmp_path, "true") as url:
            deadline = time.monotonic() + 8
            while time.monotonic() < deadline:
                for run in runs:
                    for route in ("lines", "stripes", "heatmaps"):
                        query = f"{route}?run={urllib.parse.quote(run, safe='')}"
                        try:
                            with urllib.request.urlopen(url + P + query, timeout=30) as response:
                                status, body = response.status, json.load(response)
                        except urllib.error.HTTPError as e:
                            status, body = e.code, json.load(e)
                        assert status in (200, 404), (query, status, body)  # 404 until the first load
                        if status == 200:
                            seen[("rust", run)] = max(seen.get(("rust", run), -1), check_served_body(route, body))
                        with lock:
                            local = client.get(P + query)
                        assert local.status_code == 200, (query, local.get_data(as_text=True))
                        last = check_served_body(route, json.loads(local.get_data(as_text=True)))
                        seen[("python", run)] = max(seen.get(("python", run), -1), last)
                        requests += 2
    finally:
        stop_reload.set()
        stop(writers)
    assert requests > 30
    for run in runs:  # the runs grew while being served
        assert seen[("rust", run)] >= 3 and seen[("python", run)] >= 3, seen


# --- format versions ------------------------------------------------------------------------------

def write_with_version(logdir: Path, run: str, version, steps: int = 3) -> None:
    writer = SummaryWriter(str(logdir / run))
    layer = fmt.LayerInfo("conv1", "conv2d", 4, 9, 0)
    for step in range(steps):
        summary = nas_summary(layer, fmt.STATS, np.linspace(0.1, 0.8, 8, dtype=np.float32), step == 0)
        if step == 0:
            content = json.loads(summary.value[0].metadata.plugin_data.content)
            if version is None:
                del content["version"]
            else:
                content["version"] = version
            summary.value[0].metadata.plugin_data.content = json.dumps(content).encode()
        file_writer(writer).add_summary(summary, step)
    writer.close()


def test_older_format_versions_are_read_newer_and_unversioned_are_logged_and_skipped(tmp_path, caplog):
    """Version 0 (older) and the current one are served; a newer version and content without a version are
    each logged once with the reason and skipped while the rest loads (newer: see also test_plugin_routes)."""
    write_with_version(tmp_path, "older", 0)
    write_with_version(tmp_path, "current", fmt.FORMAT_VERSION)
    write_with_version(tmp_path, "newer", fmt.FORMAT_VERSION + 1)
    write_with_version(tmp_path, "unversioned", None)
    client = app_for(tmp_path)[0]
    with caplog.at_level("WARNING", logger="nas_tb_plugin"):
        runs = {r["run"]: get_json(client, P + "run?run=" + r["run"])["steps"] for r in get_json(client, P + "runs")["runs"]}
        get_json(client, P + "runs")
    assert runs == {"older": 3, "current": 3}
    assert get_json(client, P + "lines?run=older")["layers"][0]["median"] == pytest.approx([0.4] * 3)
    messages = [r.getMessage() for r in caplog.records]
    assert len([m for m in messages if "'newer'" in m]) == 1
    assert any("'newer'" in m and f"version {fmt.FORMAT_VERSION + 1} is newer" in m and "upgrade" in m for m in messages)
    assert len([m for m in messages if "'unversioned'" in m]) == 1
    assert any("'unversioned'" in m and "not NAS plugin metadata" in m for m in messages)


# --- many runs, huge parameters: memory ------------------------------------------------------------

def test_two_thousand_runs_and_huge_parameters_keep_tensorboard_memory_bounded(tmp_path):
    """2,000 tiny runs served by a real TensorBoard: `runs` lists them all, huge and hostile parameters are
    answered 400/404, and the peak RSS of TensorBoard and its data server stays under 400 MiB (measured:
    about 170 MiB; before nas_logger imported torch lazily, the plugin alone put TensorBoard at 770 MiB)."""
    runs = [f"g{i // 10}/seed{i % 10}" for i in range(2000)]
    write_synthetic_runs(tmp_path, runs)
    huge = [
        "lines?run=" + "r" * 60_000,
        "lines?group=" + urllib.parse.quote("\u4e2d" * 5000),
        "heatmaps?run=g0%2Fseed0&step=" + "9" * 5000,
        "heatmap?run=g0%2Fseed0&layer=layer0&step=-" + "9" * 40,
        "runs?group_regex=" + "(" * 5000,
        "runs?group_regex=" + urllib.parse.quote("(a{1000}){1000}"),
        "stripes?group=g1&group_regex=" + "x" * 50_000,
    ]
    with tensorboard(tmp_path, "true") as url:
        pid = tensorboard_pid(tmp_path)
        deadline, count = time.monotonic() + 60, 0
        while count < len(runs) and time.monotonic() < deadline:
            with urllib.request.urlopen(url + P + "runs", timeout=60) as response:
                count = len(json.load(response)["runs"])
            time.sleep(0.3)
        assert count == len(runs)
        for query in ("lines?group=g7", "stripes?group=g199", "heatmaps?run=g3%2Fseed4", "export?group=g0"):
            with urllib.request.urlopen(url + P + query, timeout=60) as response:
                assert response.status == 200
        for query in huge:
            with pytest.raises(urllib.error.HTTPError) as error:
                urllib.request.urlopen(url + P + query, timeout=60)
            assert error.value.code in (400, 404), (query[:80], error.value.code)
            body = json.load(error.value)
            assert set(body) == {"error", "parameter"} and "Traceback" not in body["error"]
        with pytest.raises(urllib.error.HTTPError) as error:  # beyond the server's 64 KiB request line
            urllib.request.urlopen(url + P + "lines?run=" + "r" * 100_000, timeout=60)
        assert error.value.code == 414
        with urllib.request.urlopen(url + P + "runs", timeout=60) as response:  # and it goes on serving
            assert len(json.load(response)["runs"]) == len(runs)
        peak = peak_rss_mib(pid)
    assert peak < 400, f"TensorBoard's peak RSS {peak:.0f} MiB with 2,000 runs"


def test_the_plugin_does_not_load_torch_into_tensorboard():
    code = "import sys, nas_tb_plugin.plugin, nas_tb_plugin.routes; print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    assert nas_logger.watch.__module__ == "nas_logger.monitor"  # still there, on first use


# --- malformed probes given to the SDK ---------------------------------------------------------------

@pytest.mark.parametrize("probe, message", [
    (torch.tensor(1.0), r"at least one sample along dim 0; got shape \(\)"),
    (torch.randn(2, 1, 8, 8).to_sparse(), "must be a dense .strided. tensor; got layout torch.sparse_coo"),
    (torch.ones(2, 1, 8, 8, dtype=torch.int64), r"shape \(2, 1, 8, 8\) and dtype torch.int64 cannot be fed to SmallCNN"),
    (torch.randn(64), r"shape \(64,\) .* cannot be fed to SmallCNN"),
    (np.zeros((2, 1, 8, 8), np.float32), "got ndarray"),
    ((None, torch.zeros(2)), "got NoneType"),
    ({}, "got dict"),
    ({"x": [1.0]}, "got dict"),
    (DataLoader(TensorDataset(torch.zeros(0, 1, 8, 8))), "DataLoader yields no batch"),
    (DataLoader(TensorDataset(torch.zeros(4, 3, 8, 8)), batch_size=2), r"shape \(2, 3, 8, 8\) .* cannot be fed"),
], ids=["0-dim", "sparse", "int64", "1-d", "numpy", "none-batch", "empty-dict", "dict-of-lists", "empty-loader",
        "loader-wrong-shape"])
def test_malformed_probes_are_a_value_error_at_watch(tmp_path, small_cnn, probe, message):
    with pytest.raises(ValueError, match=message):
        nas_logger.watch(small_cnn, tmp_path, probe=probe)


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        return int(status.read().split("VmRSS:")[1].split()[0]) / 1024


def test_distinct_group_regexes_keep_every_cache_within_its_byte_budget(tmp_path):
    """300 runs x 30 layers; `lines` of a group of 10 runs under a distinct group_regex per request (a new
    listing, grouping and body each, ~0.2 MiB): the plugin's one cache holds at most its budget of accounted
    bytes, every kind of entry in it, and once it is full, 200 more such requests grow the process by less
    than what an unbounded cache would keep of them (~40 MiB). A small budget, so that it fills within a few
    dozen requests."""
    runs = [f"g_{i:03d}" for i in range(300)]
    write_synthetic_runs(tmp_path, runs, layers=30, steps=2)
    budget = 8 * 2**20
    client, routes = app_for(tmp_path, cache_bytes=budget, plugin=True)
    rng = random.Random(6)

    def request(count: int) -> None:
        for _ in range(count):
            members = rng.sample(range(len(runs)), 10)  # "g" for these, each other run a group of its own
            regex = "_(?:" + "|".join(f"{k:03d}" for k in members) + ")$"
            body = get_json(client, P + "lines?group=g&group_regex=" + urllib.parse.quote(regex))
            assert body["runs"] == sorted(runs[k] for k in members) and len(body["layers"]) == 30

    request(60)
    full = rss_mib()
    request(200)
    grown = rss_mib() - full
    kept = routes.cache.kept_bytes
    assert sum(kept.values()) == routes.cache.total_bytes <= budget, kept
    assert grown < 20, f"RSS grew {grown:.0f} MiB over 200 requests with a full cache ({kept})"
    assert routes.cache.total_bytes > budget // 2, kept  # the cache did fill: the bound was reached
    assert all(kept[kind] > 0 for kind in ("listings", "series", "bodies", "groups", "group members")), kept
