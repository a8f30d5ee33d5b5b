"""The event-file format that ``nas_logger`` writes and ``nas_tb_plugin`` reads.

Every NAS value is a TensorBoard tensor summary with plugin name ``nas``. Its
``SummaryMetadata.plugin_data.content`` is UTF-8 JSON holding a format version, the kind of record
(``stats`` or ``heatmap``) and the layer it belongs to, so a reader needs no side files.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass

PLUGIN_NAME = "nas"
FORMAT_VERSION = 1

STATS = "stats"
HEATMAP = "heatmap"
# The NAS overfitting alarm (``watch(..., detect=True)``): a string tensor of the triggering layers,
# written once, at the alarm step, under ALARM_TAG. It belongs to no layer.
ALARM = "alarm"
ALARM_TAG = "nas/overfit_alarm"
# Every layer's stats of one step as one (layers, STAT_FIELDS) tensor under TABLE_TAG, rows in the order of
# the layers listed in its metadata (NaN rows for a layer that did not run). It repeats the per-layer
# ``stats`` records so that a reader fetches one tensor per step instead of one per layer and step.
TABLE = "stats_table"
TABLE_TAG = "nas/stats_table"
RECORD_KINDS = (STATS, HEATMAP, ALARM, TABLE)

# Order of the values in a ``stats`` tensor: quantiles of s_k over all receptive fields of the probe batch.
STAT_FIELDS = ("min", "q05", "q25", "median", "q75", "q95", "max", "mean")
STAT_QUANTILES = (0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0)

# The probe's first sample, written once through TensorBoard's image plugin.
PROBE_IMAGE_TAG = "nas/probe"

# Heatmaps are average-pooled down to at most this many cells per side; statistics use every field.
MAX_HEATMAP_SIDE = 64


@dataclass(frozen=True)
class LayerInfo:
    """A watched layer: its module name, kind (``conv2d``, ``linear``, ...), filters D,
    receptive fields R per sample and depth (0-based order of first execution in the forward pass)."""

    name: str
    kind: str
    filters: int
    receptive_fields: int
    depth: int


class FormatError(ValueError):
    """Metadata content that this version of the reader cannot interpret."""


def tag_for(layer: str, record: str) -> str:
    """Summary tag of one record kind of one layer, e.g. ``nas/conv1/stats``."""
    return f"nas/{layer}/{record}"


def encode_metadata(layer: LayerInfo | None, record: str) -> bytes:
    """Plugin-data content for the first summary of a tag (``layer`` None for the alarm)."""
    if record not in (STATS, HEATMAP, ALARM):
        raise ValueError(f"record kind {record!r} is not one of {(STATS, HEATMAP, ALARM)}")
    if (layer is None) != (record == ALARM):
        raise ValueError(f"record kind {record!r} {'takes no' if record == ALARM else 'needs a'} layer")
    content = {"version": FORMAT_VERSION, "record": record}
    if layer is not None:
        content["layer"] = asdict(layer)
    if record == STATS:
        content["fields"] = list(STAT_FIELDS)
    return json.dumps(content, sort_keys=True).encode("utf-8")


def encode_table_metadata(layers: list[LayerInfo]) -> bytes:
    """Plugin-data content of the stats table: its rows' layers, in order, and the stat fields."""
    content = {"version": FORMAT_VERSION, "record": TABLE, "layers": [asdict(l) for l in layers],
               "fields": list(STAT_FIELDS)}
    return json.dumps(content, sort_keys=True).encode("utf-8")


def table_layers(content: bytes) -> tuple[LayerInfo, ...]:
    """The row layers of stats-table metadata (content that :func:`decode_metadata` accepted)."""
    try:
        return tuple(LayerInfo(**layer) for layer in json.loads(content.decode("utf-8"))["layers"])
    except (KeyError, TypeError, ValueError) as e:
        raise FormatError(f"NAS stats-table metadata without a valid layer list: {e!r}") from None


def decode_metadata(content: bytes) -> tuple[str, LayerInfo | None, tuple[str, ...]]:
    """Parse plugin-data content into (record kind, layer (None for the alarm and the stats table),
    stat field names).

    Raises :class:`FormatError` naming the problem for content from a newer format version or
    content that is not ours.
    """
    try:
        data = json.loads(content.decode("utf-8"))
        version = int(data["version"])
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise FormatError(f"not NAS plugin metadata ({e!r}): {content[:80]!r}") from None
    if version > FORMAT_VERSION:
        raise FormatError(
            f"NAS metadata format version {version} is newer than this reader's {FORMAT_VERSION}; "
            "upgrade nas-tensorboard to read it"
        )
    try:
        record = data["record"]
        layer = None if record in (ALARM, TABLE) else LayerInfo(**data["layer"])
        fields = tuple(data.get("fields", ()))
    except (KeyError, TypeError) as e:
        raise FormatError(f"NAS metadata version {version} is missing a field: {e}") from None
    if record not in RECORD_KINDS:
        raise FormatError(f"unknown NAS record kind {record!r}; expected one of {RECORD_KINDS}")
    return record, layer, fields
