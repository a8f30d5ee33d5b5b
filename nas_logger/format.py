"""The event-file format that ``nas_logger`` writes and ``nas_tb_plugin`` reads (one module both import).

Every NAS value is a TensorBoard tensor summary with plugin name ``nas`` whose first summary per tag carries
UTF-8 JSON metadata (format ``version``, ``record`` kind, the layer or rows), so a reader needs no side files.
:func:`create_summary_metadata` writes it and :func:`parse_plugin_metadata` reads it, as TensorBoard's own
plugins' ``metadata.py`` pair. The records, their tags and the format versions: docs/event-format.md.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

from tensorboard.compat.proto import summary_pb2

PLUGIN_NAME = "nas"
FORMAT_VERSION = 2

STATS = "stats"
HEATMAP = "heatmap"
# The NAS overfitting alarm (``watch(..., detect=True)``): a string tensor of the triggering layers,
# written once, at the alarm step, under ALARM_TAG. It belongs to no layer.
ALARM = "alarm"
# Every layer's stats of one step as one (layers, STAT_FIELDS) tensor under TABLE_TAG, rows in the order of
# the layers listed in its metadata (NaN rows for a layer that did not run): a reader fetches one tensor per
# step instead of one per layer and step. The one place its rows' stats are written (docs/architecture.md).
TABLE = "stats_table"
# The probe images' PNG bytes as a (k,) string tensor (0-d: one, in older files), written once beside the image summary under
# ``probe_png_tag(monitor)``: TensorBoard's Rust data server cannot read the image summary's blob back for
# a run whose name holds a quote, a backslash or a control character, but it reads tensors of any run.
PROBE = "probe"
# A marker of each logged step, listed (never read) to tell a run's last step and when cheaply: an empty
# tensor under ``index_tag(monitor)``, of its own plugin name, which readers of plugin ``nas`` do not list.
INDEX = "index"
INDEX_PLUGIN_NAME = "nas_index"
# What the overfitting alarm can say of a run at a logged step (``monitor.alarm_status``): a 0-d string tensor
# of JSON under ``alarm_status_tag(monitor)``, written at every logged step of a monitor with ``detect=True``;
# the last one holds. Its fields and their meaning are :data:`ALARM_STATES` and :func:`parse_alarm_status`.
ALARM_STATUS = "alarm_status"
RECORD_KINDS = (STATS, HEATMAP, ALARM, TABLE, PROBE, INDEX, ALARM_STATUS)
# "warming_up": too few epochs to judge yet (``epochs_needed`` more); "watching": it can judge this network
# and has not fired; "fired": it fired at step ``alarm``, the climb became significant at step ``onset``; "cannot_judge":
# the feature layers' NAS does not move beyond its noise, so the alarm cannot see overfitting here.
ALARM_STATES = ("warming_up", "watching", "fired", "cannot_judge")
MAX_ALARM_MESSAGE_CHARS = 200

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


def alarm_status_tag(monitor: str | None = None) -> str:
    """Tag of a monitor's alarm status: ``nas/alarm_status``, ``nas/D/alarm_status``."""
    return _run_tag(monitor, ALARM_STATUS)


def probe_tag(monitor: str | None = None) -> str:
    """Tag of a monitor's probe image (TensorBoard's image plugin): ``nas/probe``, ``nas/D/probe``."""
    return _run_tag(monitor, "probe")


def probe_png_tag(monitor: str | None = None) -> str:
    """Tag of a monitor's probe PNG as a NAS record: ``nas/probe_png``, ``nas/D/probe_png``."""
    return _run_tag(monitor, "probe_png")


def index_tag(monitor: str | None = None) -> str:
    """Tag of a monitor's index record: ``nas/index`` (the run's unnamed monitor), ``nas/D/index``."""
    return _run_tag(monitor, INDEX)


TABLE_TAG = table_tag()
ALARM_TAG = alarm_tag()
# The probe's first sample, written once through TensorBoard's image plugin.
PROBE_IMAGE_TAG = probe_tag()

def encode_alarm_status(state: str, message: str, *, epochs_needed: int | None = None,
                        onset: int | None = None, alarm: int | None = None) -> bytes:
    """The alarm status as the UTF-8 JSON of its record; ValueError naming a bad ``state``."""
    if state not in ALARM_STATES:
        raise ValueError(f"alarm state {state!r} is not one of {ALARM_STATES}")
    status = {"state": state, "message": str(message)[:MAX_ALARM_MESSAGE_CHARS],
              "epochs_needed": epochs_needed, "onset": onset, "alarm": alarm}
    return json.dumps(status, sort_keys=True).encode("utf-8")


def parse_alarm_status(content: bytes) -> dict | None:
    """The alarm status of a record's bytes as ``{state, message, epochs_needed, onset, alarm}``, or None for
    bytes that are not a valid status (a reader skips such a record, as any other bad one)."""
    try:
        data = json.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or data.get("state") not in ALARM_STATES:
        return None

    def step_or_none(value):
        ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63
        return value if ok else None

    message = data.get("message")
    return {"state": data["state"],
            "message": message[:MAX_ALARM_MESSAGE_CHARS] if isinstance(message, str) else "",
            "epochs_needed": step_or_none(data.get("epochs_needed")),
            "onset": step_or_none(data.get("onset")), "alarm": step_or_none(data.get("alarm"))}


# What a step counts when the writer does not say (every record written before ``step_unit`` existed).
DEFAULT_STEP_UNIT = "epoch"
# An axis label, not a sentence: "global step", "optimizer step", "batch (x100)".
MAX_STEP_UNIT_CHARS = 32


def check_step_unit(unit: object) -> str:
    """``unit`` when it is a step unit a writer may record: a string of 1 to MAX_STEP_UNIT_CHARS printable
    characters, not all blank; ValueError naming the bad value otherwise."""
    if not (isinstance(unit, str) and unit.strip() and len(unit) <= MAX_STEP_UNIT_CHARS and unit.isprintable()):
        shown = repr(unit) if len(repr(unit)) <= 80 else repr(unit)[:80] + "..."
        raise ValueError(f"step_unit must name what a step counts, such as 'epoch' or 'global step', in 1 to "
                         f"{MAX_STEP_UNIT_CHARS} printable characters; got {shown}")
    return unit


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


@dataclass(frozen=True)
class Metadata:
    """Parsed plugin-data content of any record kind (what :func:`parse_plugin_metadata` returns)."""

    record: str
    version: int
    monitor: str | None = None  # the named monitor that wrote the record; None: the run's unnamed one
    layer: LayerInfo | None = None  # stats, heatmap: the layer
    layers: tuple[LayerInfo, ...] = ()  # stats_table: the layers of its rows, in order
    fields: tuple[str, ...] = ()  # stats, stats_table: the stat field names, in tensor order
    step_unit: str = DEFAULT_STEP_UNIT  # what the record's steps count


_LAYER_RECORDS = (STATS, HEATMAP)  # the records of one layer; the others belong to a monitor


def _layer_fields(layer: LayerInfo) -> dict:
    """A layer as metadata JSON; ``monitor`` only when it has one (version 1 has no such field)."""
    fields = asdict(layer)
    if layer.monitor is None:
        del fields["monitor"]
    return fields


def create_summary_metadata(record: str, *, layer: LayerInfo | None = None,
                            layers: Sequence[LayerInfo] | None = None,
                            monitor: str | None = None,
                            step_unit: str = DEFAULT_STEP_UNIT) -> summary_pb2.SummaryMetadata:
    """Metadata for the first summary of a tag of ``record``: ``layer`` for stats and heatmap records (the
    record belongs to ``layer.monitor``), ``layers`` (the rows) for the stats table, neither for the alarm
    and the probe PNG and the index of ``monitor``; ``step_unit``: what its steps count (see
    :func:`check_step_unit`). Version 2 for a named monitor's records and the probe PNG, else 1. Plugin name
    INDEX_PLUGIN_NAME for the index, else PLUGIN_NAME."""
    if record not in RECORD_KINDS:
        raise ValueError(f"record kind {record!r} is not one of {RECORD_KINDS}")
    if (layer is None) == (record in _LAYER_RECORDS):
        raise ValueError(f"record kind {record!r} {'needs a' if layer is None else 'takes no'} layer")
    if (layers is None) == (record == TABLE):
        raise ValueError(f"record kind {record!r} {'needs' if layers is None else 'takes no'} row layers")
    content: dict = {"record": record}
    if layer is not None:
        monitor = layer.monitor
        content["layer"] = _layer_fields(layer)
    if layers is not None:
        content["layers"] = [_layer_fields(l) for l in layers]
    if record in (STATS, TABLE):
        content["fields"] = list(STAT_FIELDS)
    if monitor is not None:
        content["monitor"] = monitor
    if check_step_unit(step_unit) != DEFAULT_STEP_UNIT:
        content["step_unit"] = step_unit
    content["version"] = 1 if monitor is None and record not in (PROBE, ALARM_STATUS) else FORMAT_VERSION
    return summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(
            plugin_name=INDEX_PLUGIN_NAME if record == INDEX else PLUGIN_NAME,
            content=json.dumps(content, sort_keys=True).encode("utf-8")),
        data_class=summary_pb2.DATA_CLASS_TENSOR,
    )


def parse_plugin_metadata(content: bytes) -> Metadata:
    """Parse the plugin-data content of any format version up to FORMAT_VERSION.

    Raises :class:`FormatError` naming the problem for content from a newer format version or
    content that is not ours.
    """
    try:
        data = json.loads(content.decode("utf-8"))
        version = int(data["version"])
    # RecursionError: nesting deeper than the JSON parser's stack; OverflowError: "version": 1e400.
    except (UnicodeDecodeError, KeyError, TypeError, ValueError, RecursionError, OverflowError) as e:
        raise FormatError(f"not NAS plugin metadata ({type(e).__name__}: {str(e)[:80]}): {content[:80]!r}") from None
    if version > FORMAT_VERSION:
        raise FormatError(
            f"NAS metadata format version {version} is newer than this reader's {FORMAT_VERSION}; "
            "upgrade nas-tensorboard to read it"
        )
    try:
        record = data["record"]
        if record not in RECORD_KINDS:
            raise FormatError(f"unknown NAS record kind {record!r}; expected one of {RECORD_KINDS}")
        step_unit = data.get("step_unit", DEFAULT_STEP_UNIT)
        if not (isinstance(step_unit, str) and step_unit.strip()):
            raise FormatError(f"NAS metadata step_unit must be a non-empty string; got {step_unit!r:.80}")
        monitor = data.get("monitor")
        fields = data.get("fields", [])
        layers = data["layers"] if record == TABLE else []
        if not (monitor is None or isinstance(monitor, str)):
            raise FormatError(f"NAS metadata monitor must be a string; got {monitor!r:.80}")
        if not (isinstance(fields, list) and all(isinstance(f, str) for f in fields)):
            raise FormatError(f"NAS metadata fields must be a list of strings; got {fields!r:.80}")
        if not isinstance(layers, list):
            raise FormatError(f"NAS metadata layers must be a list; got {layers!r:.80}")
        return Metadata(
            record=record,
            version=version,
            monitor=monitor,
            layer=_layer_info(data["layer"]) if record in _LAYER_RECORDS else None,
            layers=tuple(_layer_info(l) for l in layers),
            fields=tuple(fields),
            step_unit=step_unit,
        )
    except (KeyError, TypeError) as e:
        raise FormatError(f"NAS metadata version {version} is missing or has a malformed field: {e!r}") from None


# The type of each LayerInfo field in metadata JSON (ints: not bools, which JSON keeps apart).
_LAYER_TYPES = {"name": str, "kind": str, "filters": int, "receptive_fields": int, "depth": int, "monitor": (str, type(None))}


def _layer_info(data) -> LayerInfo:
    """A LayerInfo of metadata JSON; FormatError naming the field of a wrong type."""
    if not isinstance(data, dict):
        raise FormatError(f"NAS metadata layer must be an object; got {data!r:.80}")
    layer = LayerInfo(**data)  # TypeError for a missing or unknown field
    for name, kind in _LAYER_TYPES.items():
        value = getattr(layer, name)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise FormatError(f"NAS metadata layer field {name!r} must be {getattr(kind, '__name__', 'a string')}; "
                              f"got {value!r:.80}")
    return layer
