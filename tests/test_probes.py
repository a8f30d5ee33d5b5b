"""The first k probe samples: their heatmaps and images written by the SDK (one host copy per log), chosen
by index in the routes, and files from before k probes (one map, one PNG) still served."""
import io
import struct

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.tensorboard import SummaryWriter

import nas_logger
from events import read_nas
from nas_logger import format as fmt
from nas_logger.summaries import _tensor_summary, nas_summary
from nas_logger.writer import file_writer
from nas_tb_plugin.reading import Reader
from plugin_fixtures import STEPS, app_for, get_json, write_run
from test_plugin_routes import P, client, logged  # noqa: F401 (fixtures: the route tests' log directory)


def png_pixels(png: bytes) -> np.ndarray:
    """The grey levels of a PNG (TensorBoard's image summary writes a grey sample as RGB)."""
    return np.asarray(Image.open(io.BytesIO(png)).convert("L"))


def display_reference(sample: np.ndarray) -> np.ndarray:
    """A (1, H, W) sample as its PNG must hold it: min-max scaled to 0..255, in float64."""
    x = sample.astype(np.float64)[0]
    return np.round((x - x.min()) / (x.max() - x.min()) * 255)


def probe_pngs(logdir, run=".", tag=fmt.probe_png_tag()):
    from events import provider
    from tensorboard import context

    points = provider(logdir).read_tensors(context.RequestContext(), experiment_id="", plugin_name="nas",
                                           downsample=100)[run][tag]
    return [p.step for p in points], list(np.asarray(points[0].numpy).reshape(-1))


# --- the SDK --------------------------------------------------------------------------------------

@pytest.mark.parametrize("count, written", [(None, 4), (2, 2), (9, 6)])
def test_first_k_probe_images_and_maps_are_written(tmp_path, small_cnn, count, written):
    torch.manual_seed(0)
    probe = torch.randn(6, 1, 8, 8)
    options = {} if count is None else {"probe_images": count}
    with nas_logger.watch(small_cnn, tmp_path, probe=probe, **options) as monitor:
        monitor.log(0)
        monitor.log(1)
    steps, pngs = probe_pngs(tmp_path)
    assert steps == [0] and len(pngs) == written  # once, k images (at most the probe's samples)
    for i, png in enumerate(pngs):
        np.testing.assert_allclose(png_pixels(png), display_reference(probe[i].numpy()), atol=1)
    _, maps = read_nas(tmp_path)[("conv1", fmt.HEATMAP)]
    assert [m.shape for _, m in maps] == [(written, 8, 8)] * 2
    assert not np.allclose(maps[0][1][0], maps[0][1][1])  # each sample its own map


def test_probe_images_must_be_positive(tmp_path, small_cnn):
    with pytest.raises(ValueError, match="^probe_images must be >= 1; got 0$"):
        nas_logger.watch(small_cnn, tmp_path, probe=torch.randn(2, 1, 8, 8), probe_images=0)


def test_one_host_copy_per_log_for_every_layer_and_k_maps(tmp_path, small_cnn, monkeypatch):
    """Stats and the k heatmaps of every layer leave the device in one ``.cpu()``; the probe images
    (written at the first log only) in one more."""
    calls = []
    real_cpu = torch.Tensor.cpu

    def counting_cpu(self, *args, **kwargs):
        calls.append(tuple(self.shape))
        return real_cpu(self, *args, **kwargs)

    monitor = nas_logger.watch(small_cnn, tmp_path, probe=torch.randn(8, 1, 8, 8))
    monkeypatch.setattr(torch.Tensor, "cpu", counting_cpu)
    monitor.log(0)
    first = list(calls)
    calls.clear()
    monitor.log(1)
    later = list(calls)
    monkeypatch.setattr(torch.Tensor, "cpu", real_cpu)
    monitor.close()
    four_layers = 4 * len(fmt.STAT_FIELDS) + 4 * (64 + 64 + 1 + 1)  # stats + 4 maps of conv1, conv2, fc1, fc2
    assert later == [(four_layers,)]
    assert sorted(first) == sorted([(four_layers,), (4, 1, 8, 8)])


# --- the routes -----------------------------------------------------------------------------------

def test_each_probe_index_serves_its_own_image_and_maps(client, logged):
    records = read_nas(logged.path, "solo")
    maps = dict(records[("conv1", fmt.HEATMAP)][1])
    _, pngs = probe_pngs(logged.path, "solo")
    assert len(pngs) == 4
    for i in range(4):
        body = get_json(client, P + f"heatmaps?run=solo&step=5&probe={i}")
        assert body["probes"] == 4
        conv1 = next(l for l in body["layers"] if l["name"] == "conv1")
        np.testing.assert_allclose(np.reshape(conv1["values"], (8, 8)), maps[5][i], rtol=0, atol=1e-6)
        response = client.get(P + body["probe"])  # the server's URL, as the frontend follows it
        assert response.status_code == 200 and response.get_data() == pngs[i]
    assert len({client.get(P + f"probe?run=solo&probe={i}").get_data() for i in range(4)}) == 4


def test_the_probe_images_are_counted_once_per_version_of_their_record(tmp_path, monkeypatch):
    write_run(tmp_path, "run", seed=0, steps=range(2))
    client, _ = app_for(tmp_path)
    reads = []
    original = Reader.read_probe
    monkeypatch.setattr(Reader, "read_probe", lambda self, *a, **k: reads.append(a) or original(self, *a, **k))
    for step in (0, 1, 0):
        assert get_json(client, P + f"heatmaps?run=run&step={step}&probe=2")["probe"] == "probe?run=run&probe=2"
    assert len(reads) == 1


def test_a_bad_probe_index_is_a_400_naming_the_range(client):
    body = get_json(client, P + "heatmaps?run=solo&probe=4", 400)
    assert body["parameter"] == "probe" and "logged 4 probe samples (0..3)" in body["error"]
    body = get_json(client, P + "probe?run=solo&probe=-2", 400)
    assert body["parameter"] == "probe" and "index >= 0" in body["error"] and "-2" in body["error"]
    assert "'x'" in get_json(client, P + "heatmap?run=solo&layer=conv1&probe=x", 400)["error"]


def test_files_from_before_k_probes_are_still_served(tmp_path):
    """One (H, W) map per step and one PNG as a 0-d string tensor, as nas_logger wrote them before."""
    writer = SummaryWriter(str(tmp_path / "old"))
    layer = fmt.LayerInfo("conv1", "conv2d", 4, 16, 0)
    grid = np.arange(16, dtype=np.float32).reshape(4, 4) / 16
    for step in (0, 1):
        file_writer(writer).add_summary(nas_summary(layer, fmt.HEATMAP, grid * (step + 1) / 2, step == 0), step)
        file_writer(writer).add_summary(nas_summary(layer, fmt.STATS, np.full(8, 0.5, np.float32), step == 0), step)
    png = Image.new("L", (5, 3), 128)
    buffer = io.BytesIO()
    png.save(buffer, format="PNG")
    old_png = buffer.getvalue()
    file_writer(writer).add_summary(_tensor_summary(fmt.probe_png_tag(), np.array(old_png, dtype=object),
                                                    fmt.create_summary_metadata(fmt.PROBE)), 0)
    writer.close()
    client = app_for(tmp_path)[0]
    body = get_json(client, P + "heatmaps?run=old&step=1")
    assert body["probes"] == 1 and body["probe"] == "probe?run=old"
    np.testing.assert_allclose(np.reshape(body["layers"][0]["values"], (4, 4)), grid, atol=1e-6)
    response = client.get(P + "probe?run=old")
    assert response.get_data() == old_png and struct.unpack(">II", old_png[16:24]) == (5, 3)
    assert "logged 1 probe sample (0..0)" in get_json(client, P + "probe?run=old&probe=1", 400)["error"]
    assert get_json(client, P + "heatmap?run=old&layer=conv1&probe=1", 400)["parameter"] == "probe"
    assert get_json(client, P + "steps?run=old") == {"run": "old", "steps": [0, 1], "probes": 1, "loss": None,
                                                    "loss2": None, "overfit_step": None, "alarms": [],
                                                    "alarm_status": {}, "missing_loss_tags": [],
                                                    "step_unit": "epoch"}  # files without a unit count epochs


# --- steps: what the heatmap view needs beside the maps ---------------------------------------------

def test_steps_holds_the_heatmap_steps_and_the_overlays_of_lines(client, logged):
    body = get_json(client, P + "steps?run=solo")
    lines = get_json(client, P + "lines?run=solo")
    assert body["run"] == "solo" and body["steps"] == list(range(STEPS)) and body["probes"] == 4
    assert body["loss"]["tag"] == "loss/val"
    assert body["loss"]["values"] == pytest.approx(logged.losses["solo"], rel=1e-6)
    assert body["overfit_step"] == 5
    for k in ("loss", "loss2", "overfit_step", "alarms"):
        assert body[k] == lines[k]
    assert "layers" not in body
    other = get_json(client, P + "steps?run=solo&loss_tag=accuracy&loss_tag2=loss/val")
    assert (other["loss"]["tag"], other["loss2"]["tag"]) == ("accuracy", "loss/val")
