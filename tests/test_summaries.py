import numpy as np
from tensorboard.util import tensor_util

from nas_logger import format as fmt
from nas_logger.summaries import step_summary


def test_step_summary_tensors_are_the_bytes_tensorboards_make_tensor_proto_writes():
    rng = np.random.default_rng(0)
    layers = {name: fmt.LayerInfo(name, kind, 8, 64, depth)
              for depth, (name, kind) in enumerate([("conv1", "conv2d"), ("fc", "linear"), ("gone", "linear")])}
    stats = rng.random(len(fmt.STAT_FIELDS)).astype(np.float32)
    stats[2] = np.nan
    grid = rng.random((8, 8)).astype(np.float32)[:, ::2]  # not contiguous, as a pooled map may be
    records = {"conv1": (stats, grid), "fc": (np.full(len(fmt.STAT_FIELDS), np.inf, np.float32), None)}
    # fc is no row of the table (it first ran after the rows were fixed): its stats get their own tensor.
    summary = step_summary(layers, records, ["conv1", "gone"], set(), ("conv1",))
    table = np.full((2, len(fmt.STAT_FIELDS)), np.nan, np.float32)
    table[0] = records["conv1"][0]
    expected = {
        fmt.tag_for("conv1", fmt.HEATMAP): grid,
        fmt.tag_for("fc", fmt.STATS): records["fc"][0], fmt.table_tag(None): table,
        fmt.alarm_tag(None): np.array(("conv1",), dtype=object), fmt.index_tag(None): np.zeros(0, np.float32),
    }
    assert sorted(v.tag for v in summary.value) == sorted(expected)
    for value in summary.value:
        assert value.tensor.SerializeToString() == tensor_util.make_tensor_proto(expected[value.tag]).SerializeToString()


def test_every_logged_step_of_a_monitor_carries_its_index_record_with_metadata_once():
    layers = {"conv1": fmt.LayerInfo("conv1", "conv2d", 8, 64, 0)}
    records = {"conv1": (np.zeros(len(fmt.STAT_FIELDS), np.float32), None)}
    written: set[str] = set()
    first, second = (step_summary(layers, records, ["conv1"], written, monitor="D", step_unit="global step")
                     for _ in range(2))
    (index,) = [v for v in first.value if v.tag == "nas/D/index"]
    assert index.metadata.plugin_data.plugin_name == fmt.INDEX_PLUGIN_NAME
    assert fmt.parse_plugin_metadata(index.metadata.plugin_data.content) == fmt.Metadata(
        fmt.INDEX, 2, monitor="D", step_unit="global step")
    (again,) = [v for v in second.value if v.tag == "nas/D/index"]
    assert not again.HasField("metadata")
    # A step without records (an alarm written late, at the step it fired) adds no index record.
    late = step_summary(layers, {}, ["conv1"], written, ("conv1",))
    assert [v.tag for v in late.value] == [fmt.ALARM_TAG]
