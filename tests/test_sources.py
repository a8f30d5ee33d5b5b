import pytest
import torch
from torch import nn

from nas_logger import sources
from nas_logger.layers import layer_kind, select_layers


def test_a_failing_probe_pass_still_joins_the_merge_across_ranks(small_cnn, monkeypatch):
    """With ranks='all' every rank all-reduces every layer at every log: a rank whose probe pass fails must
    still take part (with empty histograms), or the other ranks would wait for it for ever."""
    merged = []

    def merge(histograms, names, bins, device):
        merged.append((names, {n: h.count.item() for n, h in histograms.items()}))

    monkeypatch.setattr(sources, "merge_across_ranks", merge)
    modules = select_layers(small_cnn)
    source = sources.ProbeStatistics(small_cnn, modules, {n: layer_kind(m) for n, m in modules.items()}, 8, True, 16)
    with pytest.raises(RuntimeError, match="channels"):
        source.collect(torch.randn(2, 3, 8, 8))  # conv1 takes one channel
    assert merged == [(["conv1", "conv2", "fc1", "fc2"], {})]
    assert all(m.training for m in small_cnn.modules())  # modes restored
    results = source.collect(torch.randn(2, 1, 8, 8))
    assert list(results) == ["conv1", "conv2", "fc1", "fc2"] and merged[1][1]["conv1"] == 2 * 64
