"""TensorBoard summary protos for NAS records (see :mod:`nas_logger.format`)."""
from __future__ import annotations

import numpy as np
from tensorboard.compat.proto import summary_pb2
from tensorboard.util import tensor_util

from .format import ALARM, ALARM_TAG, PLUGIN_NAME, LayerInfo, encode_metadata, tag_for


def _tensor_summary(tag: str, values: np.ndarray, content: bytes | None) -> summary_pb2.Summary:
    value = summary_pb2.Summary.Value(tag=tag, tensor=tensor_util.make_tensor_proto(values))
    if content is not None:
        value.metadata.CopyFrom(
            summary_pb2.SummaryMetadata(
                plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name=PLUGIN_NAME, content=content),
                data_class=summary_pb2.DATA_CLASS_TENSOR,
            )
        )
    return summary_pb2.Summary(value=[value])


def nas_summary(
    layer: LayerInfo, record: str, values: np.ndarray, with_metadata: bool
) -> summary_pb2.Summary:
    """One tensor summary of ``record`` (stats or heatmap) for ``layer``.

    Metadata goes on the first summary of a tag only; readers take it from there.
    """
    content = encode_metadata(layer, record) if with_metadata else None
    return _tensor_summary(tag_for(layer.name, record), values, content)


def alarm_summary(layers: tuple[str, ...]) -> summary_pb2.Summary:
    """The overfitting alarm: the names of the layers that triggered it (written once)."""
    return _tensor_summary(ALARM_TAG, np.array(layers, dtype=object), encode_metadata(None, ALARM))
