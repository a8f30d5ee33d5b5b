"""The event-file format that ``nas_logger`` writes and ``nas_tb_plugin`` reads.

Every NAS value is a TensorBoard tensor summary with plugin name ``nas``. Its
``SummaryMetadata.plugin_data.content`` is UTF-8 JSON holding a format version, the kind of record
(``stats`` or ``heatmap``) and the layer it belongs to, so a reader needs no side files.

Several monitors per run (version 2): a run's first monitor writes as version 1 did; every other one has
a name (``watch(..., name=...)``) that prefixes its layers (``D/conv1``, tag ``nas/D/conv1/stats``) and
its run-level tags (``nas/D/stats_table``), and its records carry ``"monitor"`` and version 2. Records
without a monitor name are written as version 1, so readers of version 1 still read single-monitor runs
and skip (with "upgrade") what they could not tell apart.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace

PLUGIN_NAME = "nas"
FORMAT_VERSION = 2

STATS = "stats"
HEATMAP = "heatmap"
# The NAS overfitting alarm (``watch(..., detect=True)``): a string tensor of the triggering layers,
# written once, at the alarm step, under ALARM_TAG. It belongs to no layer.
ALARM = "alarm"
# Every layer's stats of one step as one (layers, STAT_FIELDS) tensor under TABLE_TAG, rows in the order of
# the layers listed in its metadata (NaN rows for a layer that did not run). It repeats the per-layer
# ``stats`` records so that a reader fetches one tensor per step instead of one per layer and step.
TABLE = "stats_table"
# The probe image's PNG bytes as a 0-d string tensor, written once beside the image summary under
# ``probe_png_tag(monitor)``: TensorBoard's Rust data server cannot read the image summary's blob back for
# a run whose name holds a quote, a backslash or a control character, but it reads tensors of any run.
PROBE = "probe"
RECORD_KINDS = (STATS, HEATMAP, ALARM, TABLE, PROBE)
_RUN_RECORDS = (ALARM, TABLE, PROBE)  # records of a monitor, not of one layer
_VERSION_2_RECORDS = (PROBE,)

# Order of the values in a ``stats`` tensor: quantiles of s_k over all receptive fields of the probe batch.
STAT_FIELDS = ("min", "q05", "q25", "median", "q75", "q95", "max", "mean")
STAT_QUANTILES = (0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0)



def _run_tag(monitor: str | None, name: str) -> str:
    return f"nas/{name}" if monitor is None else f"nas/{monitor}/{name}"


def table_tag(monitor: str | None = None) -> str:
    """Tag of a monitor's stats table: ``nas/stats_table`` (the run's unnamed monitor), ``nas/D/stats_table``."""
    return _run_tag(monitor, TABLE)


def alarm_tag(monitor: str | None = None) -> str:
    """Tag of a monitor's overfitting alarm: ``nas/overfit_alarm``, ``nas/D/overfit_alarm``."""
    return _run_tag(monitor, "overfit_alarm")


def probe_tag(monitor: str | None = None) -> str:
    """Tag of a monitor's probe image (TensorBoard's image plugin): ``nas/probe``, ``nas/D/probe``."""
    return _run_tag(monitor, "probe")


def probe_png_tag(monitor: str | None = None) -> str:
    """Tag of a monitor's probe PNG as a NAS record: ``nas/probe_png``, ``nas/D/probe_png``."""
    return _run_tag(monitor, "probe_png")


TABLE_TAG = table_tag()
ALARM_TAG = alarm_tag()
# The probe's first sample, written once through TensorBoard's image plugin.
PROBE_IMAGE_TAG = probe_tag()

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
    monitor: str | None = None  # the name of the monitor that wrote it (the prefix of ``name``), if any

    def in_monitor(self, monitor: str | None) -> "LayerInfo":
        """This layer as monitor ``monitor`` writes it: named ``<monitor>/<name>`` (unchanged for None)."""
        return self if monitor is None else replace(self, name=f"{monitor}/{self.name}", monitor=monitor)


class FormatError(ValueError):
    """Metadata content that this version of the reader cannot interpret."""


def tag_for(layer: str, record: str) -> str:
    """Summary tag of one record kind of one layer, e.g. ``nas/conv1/stats``."""
    return f"nas/{layer}/{record}"


def layer_order(layer: LayerInfo) -> tuple:
    """Sort key of layers: the unnamed monitor's first, then each named monitor's, each by depth."""
    return (layer.monitor is not None, layer.monitor or "", layer.depth, layer.name)


def _layer_fields(layer: LayerInfo) -> dict:
    """A layer as metadata JSON; ``monitor`` only when it has one (version 1 has no such field)."""
    fields = asdict(layer)
    if layer.monitor is None:
        del fields["monitor"]
    return fields


def _content(record: str, monitor: str | None, **fields) -> bytes:
    """Metadata JSON of ``record``: version 2 for a named monitor's records and the probe PNG, else 1."""
    version = 1 if monitor is None and record not in _VERSION_2_RECORDS else FORMAT_VERSION
    content = {"version": version, "record": record, **fields}
    if monitor is not None:
        content["monitor"] = monitor
    return json.dumps(content, sort_keys=True).encode("utf-8")


def encode_metadata(layer: LayerInfo | None, record: str, monitor: str | None = None) -> bytes:
    """Plugin-data content for the first summary of a tag (``layer`` None for the alarm and the probe PNG
    of ``monitor``; a layer's record belongs to ``layer.monitor``)."""
    kinds = (STATS, HEATMAP, ALARM, PROBE)
    if record not in kinds:
        raise ValueError(f"record kind {record!r} is not one of {kinds}")
    if (layer is None) != (record in _RUN_RECORDS):
        raise ValueError(f"record kind {record!r} {'takes no' if record in _RUN_RECORDS else 'needs a'} layer")
    if layer is None:
        return _content(record, monitor)
    fields = {"fields": list(STAT_FIELDS)} if record == STATS else {}
    return _content(record, layer.monitor, layer=_layer_fields(layer), **fields)


def encode_table_metadata(layers: list[LayerInfo], monitor: str | None = None) -> bytes:
    """Plugin-data content of ``monitor``'s stats table: its rows' layers, in order, and the stat fields."""
    return _content(TABLE, monitor, layers=[_layer_fields(l) for l in layers], fields=list(STAT_FIELDS))


def table_layers(content: bytes) -> tuple[LayerInfo, ...]:
    """The row layers of stats-table metadata (content that :func:`decode_metadata` accepted)."""
    try:
        return tuple(LayerInfo(**layer) for layer in json.loads(content.decode("utf-8"))["layers"])
    except (KeyError, TypeError, ValueError) as e:
        raise FormatError(f"NAS stats-table metadata without a valid layer list: {e!r}") from None


def record_monitor(content: bytes) -> str | None:
    """The monitor name in metadata content that :func:`decode_metadata` accepted (None: unnamed)."""
    return json.loads(content.decode("utf-8")).get("monitor")


def decode_metadata(content: bytes) -> tuple[str, LayerInfo | None, tuple[str, ...]]:
    """Parse plugin-data content into (record kind, layer (None for the alarm, the stats table and the
    probe PNG), stat field names).

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
        layer = None if record in _RUN_RECORDS else LayerInfo(**data["layer"])
        fields = tuple(data.get("fields", ()))
    except (KeyError, TypeError) as e:
        raise FormatError(f"NAS metadata version {version} is missing a field: {e}") from None
    if record not in RECORD_KINDS:
        raise FormatError(f"unknown NAS record kind {record!r}; expected one of {RECORD_KINDS}")
    return record, layer, fields
