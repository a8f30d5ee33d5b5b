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
        fmt.alarm_tag(None): np.array(("conv1",), dtype=object),
    }
    assert sorted(v.tag for v in summary.value) == sorted(expected)
    for value in summary.value:
        assert value.tensor.SerializeToString() == tensor_util.make_tensor_proto(expected[value.tag]).SerializeToString()
