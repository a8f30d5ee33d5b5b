import json

import pytest

from nas_logger import format as fmt


def test_metadata_round_trip():
    layer = fmt.LayerInfo("block.0.conv", "conv2d", 64, 256, 3)
    record, decoded, fields = fmt.decode_metadata(fmt.encode_metadata(layer, fmt.STATS))
    assert (record, decoded, fields) == (fmt.STATS, layer, fmt.STAT_FIELDS)
    assert fmt.decode_metadata(fmt.encode_metadata(layer, fmt.HEATMAP))[:2] == (fmt.HEATMAP, layer)
    assert fmt.tag_for("block.0.conv", fmt.STATS) == "nas/block.0.conv/stats"


def test_newer_version_is_rejected_with_a_clear_message():
    content = json.loads(fmt.encode_metadata(fmt.LayerInfo("a", "linear", 2, 1, 0), fmt.STATS))
    content["version"] = fmt.FORMAT_VERSION + 1
    with pytest.raises(fmt.FormatError, match=f"version {fmt.FORMAT_VERSION + 1} is newer .* upgrade"):
        fmt.decode_metadata(json.dumps(content).encode())


@pytest.mark.parametrize("content", [b"", b"\xff\xfe", b"[1, 2]", b'{"version": "x"}', b'{"version": 1, "record": "stats"}',
                                     b'{"version": 1, "record": "bars", "layer": {"name": "a", "kind": "linear", "filters": 2, "receptive_fields": 1, "depth": 0}}'])
def test_foreign_or_broken_content_is_a_format_error(content):
    with pytest.raises(fmt.FormatError):
        fmt.decode_metadata(content)


def test_unknown_record_kind_cannot_be_written():
    with pytest.raises(ValueError, match="record kind 'bars'"):
        fmt.encode_metadata(fmt.LayerInfo("a", "linear", 2, 1, 0), "bars")


def test_unnamed_monitors_write_version_1_named_ones_version_2():
    layer = fmt.LayerInfo("conv1", "conv2d", 8, 64, 0)
    # A run's first (unnamed) monitor writes exactly what version 1 wrote: old readers still read it.
    assert json.loads(fmt.encode_metadata(layer, fmt.STATS)) == {
        "version": 1, "record": "stats", "fields": list(fmt.STAT_FIELDS),
        "layer": {"name": "conv1", "kind": "conv2d", "filters": 8, "receptive_fields": 64, "depth": 0}}
    named = layer.in_monitor("D")
    assert named == fmt.LayerInfo("D/conv1", "conv2d", 8, 64, 0, monitor="D")
    content = fmt.encode_metadata(named, fmt.STATS)
    assert json.loads(content)["version"] == 2 and json.loads(content)["monitor"] == "D"
    assert fmt.decode_metadata(content) == (fmt.STATS, named, fmt.STAT_FIELDS)
    table = fmt.encode_table_metadata([named], "D")
    assert fmt.decode_metadata(table)[0] == fmt.TABLE and fmt.table_layers(table) == (named,)
    assert json.loads(fmt.encode_metadata(None, fmt.ALARM, "D"))["monitor"] == "D"
    assert (fmt.table_tag("D"), fmt.alarm_tag("D"), fmt.probe_tag("D")) == ("nas/D/stats_table", "nas/D/overfit_alarm", "nas/D/probe")
    assert (fmt.TABLE_TAG, fmt.ALARM_TAG, fmt.PROBE_IMAGE_TAG) == ("nas/stats_table", "nas/overfit_alarm", "nas/probe")


def test_a_version_1_reader_skips_a_named_monitors_records_with_upgrade(monkeypatch):
    content = fmt.encode_metadata(fmt.LayerInfo("conv1", "conv2d", 8, 64, 0).in_monitor("D"), fmt.STATS)
    monkeypatch.setattr(fmt, "FORMAT_VERSION", 1)
    with pytest.raises(fmt.FormatError, match="version 2 is newer .* upgrade"):
        fmt.decode_metadata(content)


def test_layers_sort_by_monitor_then_depth():
    layers = [fmt.LayerInfo("b", "linear", 2, 1, 1), fmt.LayerInfo("a", "linear", 2, 1, 0).in_monitor("G"),
              fmt.LayerInfo("z", "linear", 2, 1, 0), fmt.LayerInfo("a", "linear", 2, 1, 0).in_monitor("D")]
    assert [l.name for l in sorted(layers, key=fmt.layer_order)] == ["z", "b", "D/a", "G/a"]
