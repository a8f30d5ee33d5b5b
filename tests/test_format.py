import json
import re
from dataclasses import replace

import pytest
from tensorboard.compat.proto import summary_pb2

from nas_logger import format as fmt


def content(record, **kwargs) -> bytes:
    return fmt.create_summary_metadata(record, **kwargs).plugin_data.content


def test_metadata_round_trip():
    layer = fmt.LayerInfo("block.0.conv", "conv2d", 64, 256, 3)
    metadata = fmt.create_summary_metadata(fmt.STATS, layer=layer)
    assert metadata.plugin_data.plugin_name == "nas" and metadata.data_class == summary_pb2.DATA_CLASS_TENSOR
    assert fmt.parse_plugin_metadata(metadata.plugin_data.content) == fmt.Metadata(
        fmt.STATS, 1, layer=layer, fields=fmt.STAT_FIELDS)
    assert fmt.parse_plugin_metadata(content(fmt.HEATMAP, layer=layer)) == fmt.Metadata(fmt.HEATMAP, 1, layer=layer)
    assert fmt.tag_for("block.0.conv", fmt.STATS) == "nas/block.0.conv/stats"


def test_every_record_kind_round_trips_with_its_monitor():
    layer = fmt.LayerInfo("conv1", "conv2d", 8, 64, 0)
    for monitor in (None, "D"):
        rows = (layer.in_monitor(monitor), fmt.LayerInfo("fc", "linear", 10, 1, 1).in_monitor(monitor))
        assert fmt.parse_plugin_metadata(content(fmt.TABLE, layers=rows, monitor=monitor)) == fmt.Metadata(
            fmt.TABLE, 1 if monitor is None else 2, monitor=monitor, layers=rows, fields=fmt.STAT_FIELDS)
        assert fmt.parse_plugin_metadata(content(fmt.ALARM, monitor=monitor)) == fmt.Metadata(
            fmt.ALARM, 1 if monitor is None else 2, monitor=monitor)
        assert fmt.parse_plugin_metadata(content(fmt.PROBE, monitor=monitor)) == fmt.Metadata(fmt.PROBE, 2, monitor=monitor)
        index = fmt.create_summary_metadata(fmt.INDEX, monitor=monitor)
        assert index.plugin_data.plugin_name == fmt.INDEX_PLUGIN_NAME == "nas_index"
        assert index.data_class == summary_pb2.DATA_CLASS_TENSOR
        assert fmt.parse_plugin_metadata(index.plugin_data.content) == fmt.Metadata(
            fmt.INDEX, 1 if monitor is None else 2, monitor=monitor)
    assert (fmt.index_tag(None), fmt.index_tag("D")) == ("nas/index", "nas/D/index")


def test_newer_version_is_rejected_with_a_clear_message():
    data = json.loads(content(fmt.STATS, layer=fmt.LayerInfo("a", "linear", 2, 1, 0)))
    data["version"] = fmt.FORMAT_VERSION + 1
    with pytest.raises(fmt.FormatError, match=f"version {fmt.FORMAT_VERSION + 1} is newer .* upgrade"):
        fmt.parse_plugin_metadata(json.dumps(data).encode())


@pytest.mark.parametrize("content", [b"", b"\xff\xfe", b"[1, 2]", b'{"version": "x"}', b'{"version": 1, "record": "stats"}',
                                     b'{"version": 1, "record": "bars", "layer": {"name": "a", "kind": "linear", "filters": 2, "receptive_fields": 1, "depth": 0}}',
                                     b'{"version": 1, "record": "stats_table", "fields": []}',
                                     b'{"version": 1, "record": "stats_table", "layers": [{"name": "a"}]}'])
def test_foreign_or_broken_content_is_a_format_error(content):
    with pytest.raises(fmt.FormatError):
        fmt.parse_plugin_metadata(content)


def test_unknown_record_kind_or_missing_layers_cannot_be_written():
    layer = fmt.LayerInfo("a", "linear", 2, 1, 0)
    with pytest.raises(ValueError, match="record kind 'bars'"):
        fmt.create_summary_metadata("bars", layer=layer)
    with pytest.raises(ValueError, match="needs a layer"):
        fmt.create_summary_metadata(fmt.STATS)
    with pytest.raises(ValueError, match="takes no layer"):
        fmt.create_summary_metadata(fmt.ALARM, layer=layer)
    with pytest.raises(ValueError, match="needs row layers"):
        fmt.create_summary_metadata(fmt.TABLE)
    with pytest.raises(ValueError, match="record kind 'index' takes no layer"):
        fmt.create_summary_metadata(fmt.INDEX, layer=layer)


def test_unnamed_monitors_write_version_1_named_ones_version_2():
    layer = fmt.LayerInfo("conv1", "conv2d", 8, 64, 0)
    # A run's first (unnamed) monitor writes exactly what version 1 wrote: old readers still read it.
    assert json.loads(content(fmt.STATS, layer=layer)) == {
        "version": 1, "record": "stats", "fields": list(fmt.STAT_FIELDS),
        "layer": {"name": "conv1", "kind": "conv2d", "filters": 8, "receptive_fields": 64, "depth": 0}}
    named = layer.in_monitor("D")
    assert named == fmt.LayerInfo("D/conv1", "conv2d", 8, 64, 0, monitor="D")
    stats = content(fmt.STATS, layer=named)
    assert json.loads(stats)["version"] == 2 and json.loads(stats)["monitor"] == "D"
    assert fmt.parse_plugin_metadata(stats) == fmt.Metadata(fmt.STATS, 2, monitor="D", layer=named, fields=fmt.STAT_FIELDS)
    table = content(fmt.TABLE, layers=[named], monitor="D")
    assert fmt.parse_plugin_metadata(table).layers == (named,)
    assert json.loads(content(fmt.ALARM, monitor="D"))["monitor"] == "D"
    assert (fmt.table_tag("D"), fmt.alarm_tag("D"), fmt.probe_tag("D")) == ("nas/D/stats_table", "nas/D/overfit_alarm", "nas/D/probe")
    assert (fmt.TABLE_TAG, fmt.ALARM_TAG, fmt.PROBE_IMAGE_TAG) == ("nas/stats_table", "nas/overfit_alarm", "nas/probe")


# Content as the writers of format versions 1 and 2 wrote it (bytes fixed here, not produced by this code).
V1_STATS = (b'{"fields": ["min", "q05", "q25", "median", "q75", "q95", "max", "mean"], "layer": {"depth": 0, '
            b'"filters": 8, "kind": "conv2d", "name": "conv1", "receptive_fields": 64}, "record": "stats", "version": 1}')
V1_TABLE = (b'{"fields": ["min", "q05", "q25", "median", "q75", "q95", "max", "mean"], "layers": [{"depth": 0, '
            b'"filters": 8, "kind": "conv2d", "name": "conv1", "receptive_fields": 64}], "record": "stats_table", "version": 1}')
V1_ALARM = b'{"record": "alarm", "version": 1}'
V2_HEATMAP = (b'{"layer": {"depth": 0, "filters": 8, "kind": "conv2d", "monitor": "D", "name": "D/conv1", '
              b'"receptive_fields": 64}, "monitor": "D", "record": "heatmap", "version": 2}')
V2_PROBE = b'{"monitor": "D", "record": "probe", "version": 2}'
# The index record's whole content: what a listing of one index tag per run carries per run.
V1_INDEX = b'{"record": "index", "version": 1}'


def test_old_event_format_versions_still_parse():
    conv1 = fmt.LayerInfo("conv1", "conv2d", 8, 64, 0)
    assert fmt.parse_plugin_metadata(V1_STATS) == fmt.Metadata(fmt.STATS, 1, layer=conv1, fields=fmt.STAT_FIELDS)
    assert fmt.parse_plugin_metadata(V1_TABLE) == fmt.Metadata(fmt.TABLE, 1, layers=(conv1,), fields=fmt.STAT_FIELDS)
    assert fmt.parse_plugin_metadata(V1_ALARM) == fmt.Metadata(fmt.ALARM, 1)
    assert fmt.parse_plugin_metadata(V2_HEATMAP) == fmt.Metadata(fmt.HEATMAP, 2, monitor="D", layer=conv1.in_monitor("D"))
    assert fmt.parse_plugin_metadata(V2_PROBE) == fmt.Metadata(fmt.PROBE, 2, monitor="D")
    # and today's writer still writes those bytes
    assert content(fmt.STATS, layer=conv1) == V1_STATS and content(fmt.TABLE, layers=[conv1]) == V1_TABLE
    assert content(fmt.ALARM) == V1_ALARM and content(fmt.HEATMAP, layer=conv1.in_monitor("D")) == V2_HEATMAP
    assert content(fmt.PROBE, monitor="D") == V2_PROBE and content(fmt.INDEX) == V1_INDEX


def test_a_version_1_reader_skips_a_named_monitors_records_with_upgrade(monkeypatch):
    named = content(fmt.STATS, layer=fmt.LayerInfo("conv1", "conv2d", 8, 64, 0).in_monitor("D"))
    monkeypatch.setattr(fmt, "FORMAT_VERSION", 1)
    with pytest.raises(fmt.FormatError, match="version 2 is newer .* upgrade"):
        fmt.parse_plugin_metadata(named)


def test_layers_sort_by_monitor_then_depth():
    layers = [fmt.LayerInfo("b", "linear", 2, 1, 1), fmt.LayerInfo("a", "linear", 2, 1, 0).in_monitor("G"),
              fmt.LayerInfo("z", "linear", 2, 1, 0), fmt.LayerInfo("a", "linear", 2, 1, 0).in_monitor("D")]
    assert [l.name for l in sorted(layers, key=fmt.layer_order)] == ["z", "b", "D/a", "G/a"]


def test_step_unit_round_trips_and_old_content_reads_as_epoch():
    layer = fmt.LayerInfo("conv1", "conv2d", 8, 64, 0)
    assert fmt.parse_plugin_metadata(V1_STATS).step_unit == "epoch"  # written before units existed
    assert content(fmt.STATS, layer=layer, step_unit="epoch") == V1_STATS  # the default keeps the v1 bytes
    for record, kwargs in ((fmt.STATS, {"layer": layer}), (fmt.HEATMAP, {"layer": layer.in_monitor("D")}),
                           (fmt.TABLE, {"layers": [layer]}), (fmt.ALARM, {}), (fmt.PROBE, {"monitor": "D"})):
        written = content(record, step_unit="global step", **kwargs)
        assert json.loads(written)["step_unit"] == "global step"
        assert json.loads(written)["version"] == json.loads(content(record, **kwargs))["version"]
        assert fmt.parse_plugin_metadata(written) == replace(fmt.parse_plugin_metadata(content(record, **kwargs)),
                                                             step_unit="global step")


def test_a_version_1_reader_reads_a_step_unit_record(monkeypatch):
    # No version of its own: an older reader reads the steps, labelled as it labelled them before.
    written = content(fmt.STATS, layer=fmt.LayerInfo("conv1", "conv2d", 8, 64, 0), step_unit="global step")
    monkeypatch.setattr(fmt, "FORMAT_VERSION", 1)
    assert fmt.parse_plugin_metadata(written).layer.name == "conv1"


@pytest.mark.parametrize("unit", ["", "   ", "x" * 33, "global\nstep", 5, None, b"epoch"])
def test_a_bad_step_unit_is_refused_naming_it(unit):
    with pytest.raises(ValueError, match=r"step_unit must name what a step counts.*'epoch' or 'global step'.*got "
                                         + re.escape(repr(unit)[:20])):
        fmt.create_summary_metadata(fmt.ALARM, step_unit=unit)


@pytest.mark.parametrize("unit", ['""', "5", "null"])
def test_a_malformed_step_unit_in_a_file_is_a_format_error(unit):
    with pytest.raises(fmt.FormatError, match="step_unit must be a non-empty string"):
        fmt.parse_plugin_metadata(('{"record": "alarm", "version": 1, "step_unit": %s}' % unit).encode())


def test_alarm_status_round_trips_and_is_written_as_version_2():
    encoded = fmt.encode_alarm_status("fired", "NAS alarm at epoch 9", onset=6, alarm=9)
    assert fmt.parse_alarm_status(encoded) == {"state": "fired", "message": "NAS alarm at epoch 9",
                                               "epochs_needed": None, "onset": 6, "alarm": 9}
    assert json.loads(content(fmt.ALARM_STATUS)) == {"record": "alarm_status", "version": 2}
    assert fmt.alarm_status_tag("D") == "nas/D/alarm_status"
    with pytest.raises(ValueError, match="'asleep' is not one of"):
        fmt.encode_alarm_status("asleep", "")


@pytest.mark.parametrize("bad", [b"", b"\xff", b"[1]", b'{"state": "calm"}', b"[" * 100000,
                                 b'{"state": "watching", "message": 3, "onset": 1e400, "alarm": -1}'])
def test_parse_alarm_status_turns_bad_bytes_into_none_or_safe_fields(bad):
    parsed = fmt.parse_alarm_status(bad)
    assert parsed is None or (parsed["message"] == "" and parsed["onset"] is None and parsed["alarm"] is None)
