"""TensorBoard summary protos for NAS records (see :mod:`nas_logger.format`)."""
from __future__ import annotations

import numpy as np
from tensorboard.compat.proto import summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2
from tensorboard.util import tensor_util

from .format import (ALARM, ALARM_STATUS, DEFAULT_STEP_UNIT, HEATMAP, INDEX, PROBE, STAT_FIELDS, STATS, TABLE, LayerInfo,
                     alarm_status_tag, alarm_tag, create_summary_metadata, index_tag, probe_png_tag, probe_tag, table_tag, tag_for)


def _tensor_proto(values: np.ndarray) -> tensor_pb2.TensorProto:
    """The proto ``make_tensor_proto`` builds, with float32 arrays built directly: its generic checks cost
    more than the rest of writing a record, and a step writes a few per layer."""
    if values.dtype != np.float32 or values.ndim == 0:  # a 0-d one goes to float_val there
        return tensor_util.make_tensor_proto(values)
    shape = tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=n) for n in values.shape])
    return tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_shape=shape,
                                  tensor_content=np.ascontiguousarray(values).tobytes())


def _tensor_summary(tag: str, values: np.ndarray,
                    metadata: summary_pb2.SummaryMetadata | None) -> summary_pb2.Summary:
    value = summary_pb2.Summary.Value(tag=tag, tensor=_tensor_proto(values))
    if metadata is not None:
        value.metadata.CopyFrom(metadata)
    return summary_pb2.Summary(value=[value])


def nas_summary(
    layer: LayerInfo, record: str, values: np.ndarray, with_metadata: bool, step_unit: str = DEFAULT_STEP_UNIT
) -> summary_pb2.Summary:
    """One tensor summary of ``record`` (stats or heatmap) for ``layer``.

    Metadata goes on the first summary of a tag only; readers take it from there.
    """
    metadata = create_summary_metadata(record, layer=layer, step_unit=step_unit) if with_metadata else None
    return _tensor_summary(tag_for(layer.name, record), values, metadata)


def alarm_summary(layers: tuple[str, ...], monitor: str | None = None,
                  step_unit: str = DEFAULT_STEP_UNIT) -> summary_pb2.Summary:
    """The overfitting alarm of ``monitor``: the names of the layers that triggered it (written once)."""
    return _tensor_summary(alarm_tag(monitor), np.array(layers, dtype=object),
                           create_summary_metadata(ALARM, monitor=monitor, step_unit=step_unit))


def alarm_status_summary(status: bytes, monitor: str | None = None,
                         step_unit: str = DEFAULT_STEP_UNIT) -> summary_pb2.Summary:
    """The alarm status of ``monitor`` at a step: ``status`` as :func:`~nas_logger.format.encode_alarm_status`
    gives it, a 0-d string tensor (metadata on every one: it is written once per logged step, a few bytes)."""
    return _tensor_summary(alarm_status_tag(monitor), np.array(status, dtype=object),
                           create_summary_metadata(ALARM_STATUS, monitor=monitor, step_unit=step_unit))


def table_summary(layers: list[LayerInfo], rows: np.ndarray, with_metadata: bool,
                  monitor: str | None = None, step_unit: str = DEFAULT_STEP_UNIT) -> summary_pb2.Summary:
    """Every layer of ``monitor``: its stats of one step, ``rows``: (len(layers), len(STAT_FIELDS))."""
    metadata = (create_summary_metadata(TABLE, layers=layers, monitor=monitor, step_unit=step_unit)
                if with_metadata else None)
    return _tensor_summary(table_tag(monitor), rows, metadata)


def index_summary(with_metadata: bool, monitor: str | None = None,
                  step_unit: str = DEFAULT_STEP_UNIT) -> summary_pb2.Summary:
    """The index record of a step of ``monitor``: an empty tensor; its event's step and time are the record."""
    metadata = create_summary_metadata(INDEX, monitor=monitor, step_unit=step_unit) if with_metadata else None
    return _tensor_summary(index_tag(monitor), np.zeros(0, dtype=np.float32), metadata)


def probe_summary(images, monitor: str | None = None, step_unit: str = DEFAULT_STEP_UNIT) -> summary_pb2.Summary:
    """The probe's first samples, ``images``: (n, C, H, W) float in [0, 1] (a torch tensor on the host):
    the first as TensorBoard's image summary (the Images tab shows it) and all n PNGs as a NAS record, a
    (n,) string tensor, which the plugin can read on every loader and for every run name."""
    from torch.utils.tensorboard.summary import image as image_summary

    # As numpy: the images are on the host already, and a tensor would be copied once more per image.
    pngs = [image_summary(probe_tag(monitor), image, dataformats="CHW") for image in images.numpy()]
    summary = pngs[0]
    encoded = np.array([png.value[0].image.encoded_image_string for png in pngs], dtype=object)
    summary.value.extend(_tensor_summary(probe_png_tag(monitor), encoded,
                                         create_summary_metadata(PROBE, monitor=monitor, step_unit=step_unit)).value)
    return summary


def step_summary(
    layers: dict[str, LayerInfo],
    records: dict[str, tuple[np.ndarray, np.ndarray | None]],
    table_layers: list[str],
    written: set[str],
    alarm_layers: tuple[str, ...] | None = None,
    monitor: str | None = None,
    step_unit: str = DEFAULT_STEP_UNIT,
) -> summary_pb2.Summary:
    """Every NAS record of one step in one Summary, i.e. one event and one record of the event file, so
    a reader sees all layers of the step or none: the stats table with rows ``table_layers`` (NaN for a
    layer without a record), per layer its heatmap and, only for a layer that is no row of the table, its
    stats (``records[name] = (stats, heatmap or None)``), the index record (with any records) and the
    alarm. Metadata goes on the tags not yet in ``written``, which is updated.
    ``monitor``: the monitor's name, which prefixes its layers and tags (None: the run's unnamed one);
    ``step_unit``: what ``step`` counts, in the metadata of every record."""
    summary = summary_pb2.Summary()
    layers = {name: layers[name].in_monitor(monitor) for name in {*records, *table_layers}}

    def add(tag: str, part: summary_pb2.Summary) -> None:
        summary.value.extend(part.value)
        written.add(tag)

    rows_of_table = set(table_layers)
    for name, (stats, grid) in records.items():
        # The table holds the stats of its rows; see docs/architecture.md "Stats written once" for the numbers.
        for record, values in ((STATS, None if name in rows_of_table else stats), (HEATMAP, grid)):
            if values is not None:
                tag = tag_for(layers[name].name, record)
                add(tag, nas_summary(layers[name], record, values, tag not in written, step_unit))
    if records and table_layers:
        rows = np.full((len(table_layers), len(STAT_FIELDS)), np.nan, dtype=np.float32)
        for row, name in enumerate(table_layers):
            if name in records:
                rows[row] = records[name][0]
        tag = table_tag(monitor)
        add(tag, table_summary([layers[n] for n in table_layers], rows, tag not in written, monitor, step_unit))
    if records:
        tag = index_tag(monitor)
        add(tag, index_summary(tag not in written, monitor, step_unit))
    if alarm_layers is not None:
        named = tuple(layers[n].name if n in layers else n for n in alarm_layers)
        add(alarm_tag(monitor), alarm_summary(named, monitor, step_unit))
    return summary
