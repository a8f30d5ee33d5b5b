"""Read event files back through the plugin's reader (``nas_tb_plugin.reading``) over TensorBoard's own
loader and data provider, as the plugin does."""
from nas_logger import format as fmt
from nas_tb_plugin.reading import local_reader


def provider(logdir):
    """TensorBoard's data provider over ``logdir`` (``--load_fast=false``), every point kept."""
    return local_reader(logdir)[0].data_provider


def read_nas(logdir, run="."):
    """{(layer name, record): (LayerInfo, [(step, numpy array)])} of one run's layers: heatmaps, and stats
    from their per-layer series or their rows of the stats table."""
    reader, ctx = local_reader(logdir)
    return reader.read_layer_records(ctx, "", run)


def read_table(logdir, run="."):
    """(row layers, [(step, (layers, fields) array)]) of one run's stats table."""
    reader, ctx = local_reader(logdir)
    meta, points = reader.read_records(ctx, "", run)[fmt.TABLE_TAG]
    return meta.layers, points


def read_scalars(logdir, run="."):
    """{tag: [(step, value)]} of one run, every point as written (TensorBoard's scalars, not a NAS record)."""
    reader, ctx = local_reader(logdir)
    data = reader.data_provider.read_scalars(ctx, experiment_id="", plugin_name="scalars", downsample=10**9,
                                             run_tag_filter=None).get(run, {})
    return {tag: [(d.step, d.value) for d in points] for tag, points in data.items()}


def step_unit(logdir, run="."):
    """What one run's NAS steps count, as its records' metadata say and the NAS tab labels its axes."""
    reader, ctx = local_reader(logdir)
    return reader.list_nas(ctx, "", runs=[run])[run].step_unit


def read_alarm_status(logdir, monitor=None):
    """[(step, status dict)] of the alarm status records in ``logdir``'s event files, in step order."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(logdir), size_guidance={"tensors": 0})
    events.Reload()
    if fmt.alarm_status_tag(monitor) not in events.Tags()["tensors"]:
        return []
    return [(e.step, fmt.parse_alarm_status(e.tensor_proto.string_val[0]))
            for e in events.Tensors(fmt.alarm_status_tag(monitor))]
