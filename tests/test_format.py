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
