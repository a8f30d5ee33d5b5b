"""Read event files back through TensorBoard's own loader and data provider (as the plugin does)."""
from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
from tensorboard import context

from nas_logger import format as fmt


def provider(logdir):
    multiplexer = plugin_event_multiplexer.EventMultiplexer(tensor_size_guidance={fmt.PLUGIN_NAME: 0})
    multiplexer.AddRunsFromDirectory(str(logdir))
    multiplexer.Reload()
    return data_provider.MultiplexerDataProvider(multiplexer, str(logdir))


def read_nas(logdir, run="."):
    """{(layer name, record): (LayerInfo, [(step, numpy array)])} of one run's per-layer records."""
    dp = provider(logdir)
    ctx = context.RequestContext()
    listing = dp.list_tensors(ctx, experiment_id="", plugin_name=fmt.PLUGIN_NAME)[run]
    data = dp.read_tensors(ctx, experiment_id="", plugin_name=fmt.PLUGIN_NAME,
                           downsample=10**9, run_tag_filter=None)[run]
    out = {}
    for tag, meta in listing.items():
        record, layer, _ = fmt.decode_metadata(meta.plugin_content)
        if layer is not None:  # the alarm and the stats table belong to no single layer
            out[(layer.name, record)] = (layer, [(d.step, d.numpy) for d in data[tag]])
    return out


def read_table(logdir, run="."):
    """(row layers, [(step, (layers, fields) array)]) of one run's stats table."""
    dp = provider(logdir)
    ctx = context.RequestContext()
    meta = dp.list_tensors(ctx, experiment_id="", plugin_name=fmt.PLUGIN_NAME)[run][fmt.TABLE_TAG]
    data = dp.read_tensors(ctx, experiment_id="", plugin_name=fmt.PLUGIN_NAME, downsample=10**9,
                           run_tag_filter=None)[run][fmt.TABLE_TAG]
    return fmt.table_layers(meta.plugin_content), [(d.step, d.numpy) for d in data]


def read_scalars(logdir, run="."):
    """{tag: [(step, value)]} of one run."""
    dp = provider(logdir)
    ctx = context.RequestContext()
    data = dp.read_scalars(ctx, experiment_id="", plugin_name="scalars", downsample=10**9,
                           run_tag_filter=None).get(run, {})
    return {tag: [(d.step, d.value) for d in points] for tag, points in data.items()}
