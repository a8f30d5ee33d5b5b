"""TensorBoard summary protos for NAS records (see :mod:`nas_logger.format`)."""
from __future__ import annotations

import numpy as np
from tensorboard.compat.proto import summary_pb2
from tensorboard.util import tensor_util

from .format import PLUGIN_NAME, LayerInfo, encode_metadata, tag_for


def nas_summary(
    layer: LayerInfo, record: str, values: np.ndarray, with_metadata: bool
) -> summary_pb2.Summary:
    """One tensor summary of ``record`` (stats or heatmap) for ``layer``.

    Metadata goes on the first summary of a tag only; readers take it from there.
    """
    value = summary_pb2.Summary.Value(
        tag=tag_for(layer.name, record), tensor=tensor_util.make_tensor_proto(values)
    )
    if with_metadata:
        value.metadata.CopyFrom(
            summary_pb2.SummaryMetadata(
                plugin_data=summary_pb2.SummaryMetadata.PluginData(
                    plugin_name=PLUGIN_NAME, content=encode_metadata(layer, record)
                ),
                data_class=summary_pb2.DATA_CLASS_TENSOR,
            )
        )
    return summary_pb2.Summary(value=[value])
