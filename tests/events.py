"""Read event files back through the plugin's reader (``nas_tb_plugin.reading``) over TensorBoard's own
loader and data provider, as the plugin does."""
from tensorboard.data import provider as tb_provider

from nas_logger import format as fmt
from nas_tb_plugin.reading import KEEP_ALL, local_reader


def read_records(reader, ctx, eid: str, run: str) -> dict:
    """{tag: (metadata, [(step, tensor as written)])} of every readable NAS tag of ``run``, uncached: the raw
    records, to check what was written."""
    dp, only = reader.data_provider, tb_provider.RunTagFilter(runs=[run])
    tags = dp.list_tensors(ctx, experiment_id=eid, plugin_name=fmt.PLUGIN_NAME, run_tag_filter=only).get(run, {})
    data = dp.read_tensors(ctx, experiment_id=eid, plugin_name=fmt.PLUGIN_NAME, downsample=KEEP_ALL,
                           run_tag_filter=only).get(run, {})
    records = {}
    for tag, ts in tags.items():
        try:
            meta = fmt.parse_plugin_metadata(ts.plugin_content)
        except fmt.FormatError:
            continue
        records[tag] = (meta, [(p.step, p.numpy) for p in data.get(tag, ())])
    return records


def read_layer_records(reader, ctx, eid: str, run: str) -> dict:
    """{(layer name, record): (layer, [(step, tensor)])} of ``run``'s stats and heatmaps as written, uncached: a
    layer's stats from its per-layer series where it has one, else its row of its monitor's stats table (a
    (fields,) tensor per step, NaN where the layer did not run)."""
    found = {}
    for meta, points in read_records(reader, ctx, eid, run).values():
        if meta.record == fmt.TABLE:
            for row, layer in enumerate(meta.layers):
                found.setdefault((layer.name, fmt.STATS), (layer, [(step, table[row]) for step, table in points]))
        elif meta.layer is not None:
            found[(meta.layer.name, meta.record)] = (meta.layer, points)
    return found


def provider(logdir):
    """TensorBoard's data provider over ``logdir`` (``--load_fast=false``), every point kept."""
    return local_reader(logdir)[0].data_provider


def read_nas(logdir, run="."):
    """{(layer name, record): (LayerInfo, [(step, numpy array)])} of one run's layers: heatmaps, and stats
    from their per-layer series or their rows of the stats table."""
    reader, ctx = local_reader(logdir)
    return read_layer_records(reader, ctx, "", run)


def read_table(logdir, run="."):
    """(row layers, [(step, (layers, fields) array)]) of one run's stats table."""
    reader, ctx = local_reader(logdir)
    meta, points = read_records(reader, ctx, "", run)[fmt.TABLE_TAG]
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
