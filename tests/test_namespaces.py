"""Several monitors per run (nas_logger/namespaces.py): which name each monitor of a run writes under,
and the tags that gives in the event file."""
import gc

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.tensorboard import SummaryWriter

import nas_logger
from conftest import SmallCNN
from events import provider
from nas_logger import format as fmt
from nas_logger.detector import Alarm, OverfitDetector
from tensorboard import context


class Critic(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(64, 8)

    def forward(self, x):
        return self.fc1(x.flatten(1))


def watch(model, target, **options):
    return nas_logger.watch(model, target, probe=torch.randn(2, 1, 8, 8), **options)


def test_the_first_open_monitor_of_a_run_is_unnamed_the_others_take_their_class_name(tmp_path):
    first, second, third = watch(SmallCNN(), tmp_path), watch(SmallCNN(), tmp_path), watch(Critic(), tmp_path)
    fourth = watch(SmallCNN(), tmp_path / "." / "")  # the same directory, spelt differently
    assert [m.name for m in (first, second, third, fourth)] == [None, "SmallCNN", "Critic", "SmallCNN_2"]
    assert watch(SmallCNN(), tmp_path / "other").name is None  # another run
    first.close()
    assert watch(SmallCNN(), tmp_path).name is None  # a closed monitor gives its name back
    for m in (second, third, fourth):
        m.close()


def test_a_shared_writer_and_its_directory_are_one_run(tmp_path):
    writer = SummaryWriter(str(tmp_path / "gan"))
    on_writer = watch(SmallCNN(), writer)
    on_dir = watch(Critic(), tmp_path / "gan")
    assert (on_writer.name, on_dir.name) == (None, "Critic")
    del on_writer
    gc.collect()  # a monitor that is gone holds no name either
    assert watch(SmallCNN(), writer).name is None
    writer.close()


@pytest.mark.parametrize("name", ["", "  ", "a/b", 3])
def test_bad_names_are_refused(tmp_path, name):
    with pytest.raises(ValueError, match="name must be a non-empty string without '/'"):
        watch(SmallCNN(), tmp_path, name=name)


def test_a_taken_name_is_refused_before_anything_is_written(tmp_path):
    g = watch(SmallCNN(), tmp_path / "gan", name="G")
    files = sorted((tmp_path / "gan").iterdir())
    with pytest.raises(ValueError, match="name 'G' is already used by another monitor of run .*gan"):
        watch(Critic(), tmp_path / "gan", name="G")
    assert sorted((tmp_path / "gan").iterdir()) == files
    assert watch(Critic(), tmp_path / "gan", name="D").name == "D"
    g.close()


def test_a_named_monitor_prefixes_its_layers_and_every_tag(tmp_path):
    torch.manual_seed(0)
    writer = SummaryWriter(str(tmp_path))
    class AlarmAtStep2(OverfitDetector):  # what the alarm says is tested in test_detector; here, where it goes
        def update(self, step, medians):
            if step == 2:
                self.alarm = Alarm(step, tuple(medians)[:2])
                return self.alarm
            return None

    detector = AlarmAtStep2()
    g, d = SmallCNN(), SmallCNN()
    mg = nas_logger.watch(g, writer, probe=torch.rand(2, 1, 8, 8))
    md = nas_logger.watch(d, writer, probe=torch.rand(2, 1, 8, 8), detect=detector)
    for step in range(4):
        assert set(mg.log(step)) == set(md.log(step)) == {"conv1", "conv2", "fc1", "fc2"}  # module names
    assert md.alarm == Alarm(2, ("conv1", "conv2"))
    mg.close(), md.close(), writer.close()
    dp = provider(tmp_path)
    tensors = dp.list_tensors(context.RequestContext(), experiment_id="", plugin_name=fmt.PLUGIN_NAME)["."]
    for layer in ("conv1", "conv2", "fc1", "fc2"):
        assert fmt.parse_plugin_metadata(tensors[f"nas/{layer}/heatmap"].plugin_content).layer.monitor is None
        info = fmt.parse_plugin_metadata(tensors[f"nas/SmallCNN/{layer}/heatmap"].plugin_content).layer
        assert (info.name, info.monitor) == (f"SmallCNN/{layer}", "SmallCNN")
    assert [(l.name, l.monitor) for l in fmt.parse_plugin_metadata(tensors[fmt.TABLE_TAG].plugin_content).layers] == [
        (n, None) for n in ("conv1", "conv2", "fc1", "fc2")]
    assert [l.name for l in fmt.parse_plugin_metadata(tensors["nas/SmallCNN/stats_table"].plugin_content).layers] == [
        f"SmallCNN/{n}" for n in ("conv1", "conv2", "fc1", "fc2")]
    assert fmt.TABLE_TAG in tensors and fmt.ALARM_TAG not in tensors
    alarm = dp.read_tensors(context.RequestContext(), experiment_id="", plugin_name=fmt.PLUGIN_NAME, downsample=10,
                            run_tag_filter=None)["."]["nas/SmallCNN/overfit_alarm"]
    assert [n.decode() for n in np.asarray(alarm[0].numpy).reshape(-1)] == [f"SmallCNN/{n}" for n in md.alarm.layers]
    images = dp.list_blob_sequences(context.RequestContext(), experiment_id="", plugin_name="images")["."]
    assert set(images) == {fmt.PROBE_IMAGE_TAG, "nas/SmallCNN/probe"}
    # The probe PNG also as a NAS record of each monitor (readable on every loader), the same bytes.
    for monitor in (None, "SmallCNN"):
        assert fmt.parse_plugin_metadata(tensors[fmt.probe_png_tag(monitor)].plugin_content).monitor == monitor
        png = dp.read_tensors(context.RequestContext(), experiment_id="", plugin_name=fmt.PLUGIN_NAME, downsample=10,
                              run_tag_filter=None)["."][fmt.probe_png_tag(monitor)][0].numpy[0]  # the first of k
        blob = dp.read_blob_sequences(context.RequestContext(), experiment_id="", plugin_name="images",
                                      downsample=10, run_tag_filter=None)["."][fmt.probe_tag(monitor)][0].values[2]
        assert png.startswith(b"\x89PNG") and png == dp.read_blob(context.RequestContext(), blob_key=blob.blob_key)
