import os
import signal
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.tensorboard import SummaryWriter

import nas_logger
from nas_logger import format as fmt
from devices import DEVICES
from events import read_nas, read_records, read_scalars
from reference import nas_reference


def reference_stats(model, probe):
    """Per layer (in execution order): float64 median, the maps of the first 4 samples (the default
    probe_images) and the filter count, from plain hooks."""
    outputs = {}
    hooks = [m.register_forward_hook(lambda m, i, o, n=n: outputs.setdefault(n, o.detach()))
             for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    model.eval()
    with torch.no_grad():
        model(probe)
    for h in hooks:
        h.remove()
    result = {}
    for name, out in outputs.items():
        s = nas_reference(out.double().numpy(), axis=1 if out.dim() == 4 else -1)
        result[name] = (np.median(s), s[:4], out.shape[1])
    return result


def test_round_trip_every_layer_matches_recomputation(tmp_path, small_cnn):
    torch.manual_seed(1)
    probe = torch.randn(16, 1, 8, 8)
    with nas_logger.watch(small_cnn, tmp_path, probe=probe) as monitor:
        for epoch in range(3):
            with torch.no_grad():
                small_cnn.conv2.weight.mul_(1.5)  # change the network between epochs
            medians = monitor.log(epoch, test_loss=1.0 / (epoch + 1), accuracy=0.1 * epoch)
            want = reference_stats(small_cnn, probe)
            assert list(medians) == list(want) == ["conv1", "conv2", "fc1", "fc2"]
            for name, value in medians.items():
                assert value == pytest.approx(want[name][0], abs=2e-6)
    records = read_nas(tmp_path)
    want = reference_stats(small_cnn, probe)
    for depth, name in enumerate(["conv1", "conv2", "fc1", "fc2"]):
        layer, stats = records[(name, fmt.STATS)]
        assert [step for step, _ in stats] == [0, 1, 2]
        assert (layer.depth, layer.filters) == (depth, want[name][2])
        assert layer.kind == ("conv2d" if name.startswith("conv") else "linear")
        assert layer.receptive_fields == (64 if name.startswith("conv") else 1)
        last = stats[-1][1]
        assert last.shape == (len(fmt.STAT_FIELDS),)
        assert last[fmt.STAT_FIELDS.index("median")] == pytest.approx(want[name][0], abs=2e-6)
        assert last[0] <= last[2] <= last[3] <= last[4] <= last[6]
        _, maps = records[(name, fmt.HEATMAP)]
        expected_maps = np.reshape(want[name][1], (4, 8, 8) if name.startswith("conv") else (4, 1, 1))
        np.testing.assert_allclose(maps[-1][1], expected_maps, atol=2e-6)
    scalars = read_scalars(tmp_path)
    assert [v for _, v in scalars["test_loss"]] == pytest.approx([1.0, 0.5, 1 / 3])
    assert [s for s, _ in scalars["accuracy"]] == [0, 1, 2]


def test_event_records_are_checksummed_in_c_and_tensorboard_reads_them_back(tmp_path, small_cnn):
    # TensorBoard checksums every record in a Python loop (a few hundred us per step's record); the
    # monitor's own event files use crc32c.c, whose checksums must be TensorBoard's to the bit
    from tensorboard.compat.tensorflow_stub import pywrap_tensorflow

    from nas_logger.writer import CChecksumRecordWriter, c_masked_crc32c, file_writer

    if c_masked_crc32c() is None:
        pytest.skip("no C compiler: TensorBoard's Python checksums are used")
    with nas_logger.watch(small_cnn, tmp_path, probe=torch.randn(4, 1, 8, 8)) as monitor:
        for step in range(3):
            monitor.log(step)
        assert type(file_writer(monitor.writer).event_writer._async_writer._writer) is CChecksumRecordWriter
    rng = np.random.default_rng(0)
    for n in (0, 1, 7, 8, 255, 256, 4097):
        data = rng.bytes(n)
        assert c_masked_crc32c()(data) == pywrap_tensorflow.masked_crc32c(data), n
    # TensorBoard's reader checks both checksums of every record and stops at one that fails
    _, stats = read_nas(tmp_path)[("conv2", fmt.STATS)]
    assert [step for step, _ in stats] == [0, 1, 2]


def test_watch_leaves_tensorboard_checksums_of_other_writers_as_they_are(tmp_path, small_cnn):
    from tensorboard.compat.tensorflow_stub import pywrap_tensorflow
    from tensorboard.summary.writer import record_writer

    from nas_logger.writer import file_writer

    with nas_logger.watch(small_cnn, tmp_path / "nas", probe=torch.randn(4, 1, 8, 8)) as monitor:
        monitor.log(0)
        assert record_writer.masked_crc32c is pywrap_tensorflow.masked_crc32c
        other = SummaryWriter(str(tmp_path / "other"))
        assert type(file_writer(other).event_writer._async_writer._writer) is record_writer.RecordWriter
        other.close()


def test_stats_table_holds_every_layer_of_a_step_in_depth_order(tmp_path, small_cnn):
    from events import read_table

    with nas_logger.watch(small_cnn, tmp_path, probe=torch.randn(4, 1, 8, 8)) as monitor:
        medians = [monitor.log(step) for step in range(3)]
    layers, rows = read_table(tmp_path)
    assert [l.name for l in layers] == ["conv1", "conv2", "fc1", "fc2"] and [l.depth for l in layers] == [0, 1, 2, 3]
    assert [step for step, _ in rows] == [0, 1, 2]
    per_layer = read_nas(tmp_path)
    for step, table in rows:
        assert table.shape == (4, len(fmt.STAT_FIELDS))
        for row, layer in enumerate(layers):
            np.testing.assert_array_equal(table[row], per_layer[(layer.name, fmt.STATS)][1][step][1])
            assert table[row][fmt.STAT_FIELDS.index("median")] == pytest.approx(medians[step][layer.name])


def test_probe_image_written_once_through_image_plugin(tmp_path, small_cnn):
    from events import provider
    from tensorboard import context

    monitor = nas_logger.watch(small_cnn, tmp_path, probe=torch.randn(4, 1, 8, 8))
    monitor.log(0)
    monitor.log(1)
    monitor.close()
    blobs = provider(tmp_path).read_blob_sequences(
        context.RequestContext(), experiment_id="", plugin_name="images", downsample=100
    )["."][fmt.PROBE_IMAGE_TAG]
    assert [b.step for b in blobs] == [0]


def test_first_training_input_becomes_the_probe(tmp_path, small_cnn):
    monitor = nas_logger.watch(small_cnn, tmp_path)
    with pytest.raises(RuntimeError, match="no probe yet"):
        monitor.log(0)
    batch = torch.randn(100, 1, 8, 8)
    small_cnn(batch)
    small_cnn(torch.zeros(100, 1, 8, 8))  # later batches do not replace it
    assert torch.equal(monitor.probe, batch[:64])
    monitor.log(0)
    monitor.close()
    assert read_nas(tmp_path)[("conv1", fmt.STATS)][1][0][0] == 0


def test_probe_from_dataloader_batch(tmp_path, small_cnn):
    data = torch.utils.data.TensorDataset(torch.randn(10, 1, 8, 8), torch.arange(10))
    loader = torch.utils.data.DataLoader(data, batch_size=4)
    monitor = nas_logger.watch(small_cnn, tmp_path, probe=loader)
    assert torch.equal(monitor.probe, data.tensors[0][:4])
    monitor.close()


def test_log_restores_train_mode_of_every_submodule_and_grad(tmp_path):
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Dropout(0.5), nn.Flatten(), nn.Linear(144, 3))
    model.train()
    model[2].eval()
    monitor = nas_logger.watch(model, tmp_path, probe=torch.randn(2, 1, 8, 8))
    running_mean = model[1].running_mean.clone()
    monitor.log(0)
    assert [m.training for m in model] == [True, True, False, True, True]
    assert torch.equal(model[1].running_mean, running_mean)  # eval mode: no BN statistics update
    assert all(p.grad is None for p in model.parameters())
    monitor.close()


def test_monitor_leaves_no_layer_hooks_on_training_forwards_and_only_the_gate_on_the_root(tmp_path, small_cnn):
    monitor = nas_logger.watch(small_cnn, tmp_path, probe=torch.randn(2, 1, 8, 8))
    monitor.log(0)
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in small_cnn.children())
    # the forward gate: one pre-hook and one always-called hook on the root, gone at close
    assert (len(small_cnn._forward_pre_hooks), len(small_cnn._forward_hooks)) == (1, 1)
    monitor.close()
    assert not small_cnn._forward_pre_hooks and not small_cnn._forward_hooks


def test_layer_selection_by_name_glob_and_module(tmp_path, small_cnn):
    probe = torch.randn(2, 1, 8, 8)
    for layers, expected in (
        (["conv1", "fc2"], ["conv1", "fc2"]),
        ("conv*", ["conv1", "conv2"]),
        ([small_cnn.fc1], ["fc1"]),
    ):
        monitor = nas_logger.watch(small_cnn, tmp_path / str(expected), probe=probe, layers=layers)
        assert list(monitor.log(0)) == expected
        monitor.close()


def test_depth_follows_execution_order_not_registration(tmp_path):
    class Reversed(nn.Module):
        def __init__(self):
            super().__init__()
            self.head = nn.Linear(4, 2)
            self.body = nn.Linear(3, 4)

        def forward(self, x):
            return self.head(torch.relu(self.body(x)))

    monitor = nas_logger.watch(Reversed(), tmp_path, probe=torch.randn(5, 3))
    monitor.log(0)
    assert {n: info.depth for n, info in monitor.layers.items()} == {"body": 0, "head": 1}
    monitor.close()


def test_token_inputs_give_one_field_per_token(tmp_path):
    model = nn.Sequential(nn.Linear(6, 12), nn.GELU(), nn.Linear(12, 6))
    monitor = nas_logger.watch(model, tmp_path, probe=torch.randn(3, 7, 6))
    monitor.log(0)
    monitor.close()
    layer, maps = read_nas(tmp_path)[("0", fmt.HEATMAP)]
    assert layer.receptive_fields == 7
    assert maps[0][1].shape == (3, 1, 7)  # the probe's 3 samples, fewer than probe_images=4


def test_large_maps_are_downsampled_but_statistics_use_every_field(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1))
    probe = torch.randn(2, 3, 100, 130)
    monitor = nas_logger.watch(model, tmp_path, probe=probe, heatmap_side=32)
    medians = monitor.log(0)
    monitor.close()
    layer, maps = read_nas(tmp_path)[("0", fmt.HEATMAP)]
    assert maps[0][1].shape == (2, 32, 32)
    assert layer.receptive_fields == 100 * 130
    with torch.no_grad():
        full = nas_reference(model(probe).double().numpy())
    assert medians["0"] == pytest.approx(np.median(full), abs=2e-6)


def test_non_finite_layer_is_nan_with_a_single_warning(tmp_path, small_cnn):
    with torch.no_grad():
        small_cnn.conv2.weight[0, 0, 0, 0] = float("nan")
    monitor = nas_logger.watch(small_cnn, tmp_path, probe=torch.randn(2, 1, 8, 8))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = monitor.log(0)
        monitor.log(1)
    monitor.close()
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert sum("'conv2'" in m for m in messages) == 1
    assert np.isnan(first["conv2"]) and np.isfinite(first["conv1"])
    stats = read_nas(tmp_path)[("conv2", fmt.STATS)][1]
    assert np.isnan(stats[1][1]).all()


def test_existing_summary_writer_is_shared_and_left_open(tmp_path, small_cnn):
    writer = SummaryWriter(str(tmp_path))
    monitor = nas_logger.watch(small_cnn, writer, probe=torch.randn(2, 1, 8, 8))
    monitor.log(0, test_loss=2.0)
    monitor.close()
    writer.add_scalar("train_loss", 3.0, 0)  # still usable after the monitor closed
    writer.close()
    scalars = read_scalars(tmp_path)
    assert set(scalars) >= {"test_loss", "train_loss"}
    assert ("fc2", fmt.STATS) in read_nas(tmp_path)


def test_beside_a_separate_summary_writer_on_the_same_directory(tmp_path, small_cnn):
    writer = SummaryWriter(str(tmp_path))
    with nas_logger.watch(small_cnn, tmp_path, probe=torch.randn(2, 1, 8, 8)) as monitor:
        for step in range(2):
            writer.add_scalar("train_loss", 1.0 + step, step)
            monitor.log(step, test_loss=0.5)
    writer.close()
    assert set(read_scalars(tmp_path)) >= {"train_loss", "test_loss"}
    assert len(read_nas(tmp_path)[("conv1", fmt.STATS)][1]) == 2


def test_bad_inputs_are_rejected_with_the_bad_value(tmp_path, small_cnn):
    with pytest.raises(ValueError, match="Sequential has no Conv1d/Conv2d/Conv3d/Linear"):
        nas_logger.watch(nn.Sequential(nn.ReLU()), tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ValueError, match="log_dir .*file/sub' is not writable"):
        nas_logger.watch(small_cnn, blocker / "sub")
    with pytest.raises(ValueError, match="layer 'conv9' matches no Conv/Linear layer of SmallCNN; choose from"):
        nas_logger.watch(small_cnn, tmp_path, layers=["conv9"])
    with pytest.raises(ValueError, match=r"probe of shape \(2, 3, 8, 8\) .* cannot be fed to SmallCNN"):
        nas_logger.watch(small_cnn, tmp_path, probe=torch.randn(2, 3, 8, 8))
    with pytest.raises(ValueError, match=r"at least one sample.*\(0, 1, 8, 8\)"):
        nas_logger.watch(small_cnn, tmp_path, probe=torch.randn(0, 1, 8, 8))
    with pytest.raises(ValueError, match="got str"):
        nas_logger.watch(small_cnn, tmp_path, probe="images.png")
    with pytest.raises(ValueError, match=r"probe of shape \(2, 1, 8, 8\) .* cannot be fed to SmallCNN: NotImplementedError"):
        nas_logger.watch(small_cnn, tmp_path, probe=torch.empty(2, 1, 8, 8, device="meta"))
    monitor = nas_logger.watch(small_cnn, tmp_path, probe=torch.randn(2, 1, 8, 8))
    for bad in (-1, 1.5, "3"):
        with pytest.raises(ValueError, match="step must be a non-negative int; got"):
            monitor.log(bad)
    monitor.close()


def test_compiled_and_data_parallel_models_hook_the_original_modules(tmp_path, small_cnn):
    probe = torch.randn(4, 1, 8, 8)
    expected = nas_logger.watch(small_cnn, tmp_path / "plain", probe=probe).log(0)
    wrapped = nn.DataParallel(small_cnn)
    got = nas_logger.watch(wrapped, tmp_path / "dp", probe=probe).log(0)
    assert got == expected
    compiled = torch.compile(small_cnn, backend="eager")
    monitor = nas_logger.watch(compiled, tmp_path / "compiled")
    compiled(probe)  # the first input through the compiled wrapper is captured
    assert monitor.log(0) == expected


def test_autocast_probe_pass_gives_float32_statistics(tmp_path, small_cnn):
    monitor = nas_logger.watch(small_cnn, tmp_path, probe=torch.randn(4, 1, 8, 8))
    plain = monitor.log(0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = monitor.log(1)
    for name in plain:
        assert mixed[name] == pytest.approx(plain[name], abs=0.05)
    monitor.close()


CRASHING_SCRIPT = textwrap.dedent(
    """
    import sys, time, torch
    sys.path.insert(0, {tests!r})
    from conftest import SmallCNN
    import nas_logger
    monitor = nas_logger.watch(SmallCNN(), {logdir!r}, probe=torch.randn(4, 1, 8, 8))
    for epoch in range(3):
        monitor.log(epoch, test_loss=float(epoch))
    print("logged", flush=True)
    time.sleep(600)
    """
)


def test_sigkill_after_log_loses_nothing(tmp_path):
    script = CRASHING_SCRIPT.format(tests=os.path.dirname(__file__), logdir=str(tmp_path))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "logged"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    for name in ("conv1", "conv2", "fc1", "fc2"):
        assert [step for step, _ in read_nas(tmp_path)[(name, fmt.STATS)][1]] == [0, 1, 2]
    assert [s for s, _ in read_scalars(tmp_path)["test_loss"]] == [0, 1, 2]


def test_detector_alarm_is_logged_once_at_the_step_it_fires(tmp_path, small_cnn):
    from nas_logger.detector import OverfitDetector

    monitor = nas_logger.watch(small_cnn, tmp_path, probe=torch.randn(8, 1, 8, 8),
                               detect=OverfitDetector(window=2, warmup=1, patience=1, noise_z=0))
    fired_at = None
    for epoch in range(8):
        monitor.log(epoch)
        if epoch >= 2:  # from epoch 2 on, ever sparser features; the outputs' scale (their confidence) kept
            with torch.no_grad():
                for conv in (small_cnn.conv1, small_cnn.conv2, small_cnn.fc1):
                    conv.weight.mul_(1.8)
                small_cnn.fc2.weight.div_(1.8**3)
        if monitor.alarm is not None and fired_at is None:
            fired_at = epoch
    monitor.close()
    assert fired_at is not None and fired_at >= 3
    assert monitor.alarm.step == fired_at
    from events import provider
    from tensorboard import context

    dp = provider(tmp_path)
    data = dp.read_tensors(context.RequestContext(), experiment_id="", plugin_name=fmt.PLUGIN_NAME,
                           downsample=100, run_tag_filter=None)["."][fmt.ALARM_TAG]
    assert [d.step for d in data] == [fired_at]
    assert [n.decode() for n in data[0].numpy] == list(monitor.alarm.layers)
    meta = dp.list_tensors(context.RequestContext(), experiment_id="", plugin_name=fmt.PLUGIN_NAME)["."][fmt.ALARM_TAG]
    assert fmt.parse_plugin_metadata(meta.plugin_content) == fmt.Metadata(fmt.ALARM, 1)


# TensorBoard's writer thread re-raises the disk error after storing it for the next write.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_disk_full_warns_once_training_goes_on_and_logging_resumes(tmp_path, small_cnn, monkeypatch):
    import errno

    from tensorboard.summary.writer import record_writer

    from nas_logger.writer import CChecksumRecordWriter

    monitor = nas_logger.watch(small_cnn, tmp_path, probe=torch.randn(2, 1, 8, 8))
    monitor.log(0, test_loss=1.0)

    def full(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patch:
        for cls in (record_writer.RecordWriter, CChecksumRecordWriter):  # with or without C checksums
            patch.setattr(cls, "write", full)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            results = [monitor.log(step, test_loss=1.0) for step in (1, 2, 3)]
    io_warnings = [w for w in caught if "No space left" in str(w.message)]
    assert len(io_warnings) == 1 and "training goes on" in str(io_warnings[0].message)
    assert all(set(r) == {"conv1", "conv2", "fc1", "fc2"} for r in results)  # statistics still returned
    monitor.log(4, test_loss=1.0)
    monitor.close()
    steps = [s for s, _ in read_nas(tmp_path)[("conv1", fmt.STATS)][1]]
    assert steps[0] == 0 and steps[-1] == 4 and 2 not in steps and 3 not in steps


def test_removed_log_dir_is_recreated_with_one_warning(tmp_path, small_cnn):
    import shutil

    log_dir = tmp_path / "run"
    monitor = nas_logger.watch(small_cnn, log_dir, probe=torch.randn(2, 1, 8, 8))
    monitor.log(0, test_loss=1.0)
    shutil.rmtree(log_dir)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        monitor.log(1, test_loss=0.5)
        monitor.log(2, test_loss=0.4)
    assert sum("was removed" in str(w.message) for w in caught) == 1
    monitor.close()
    records = read_nas(log_dir)
    layer, stats = records[("fc1", fmt.STATS)]
    assert [s for s, _ in stats] == [1, 2] and layer.depth == 2  # metadata written again into the new file
    assert [s for s, _ in read_scalars(log_dir)["test_loss"]] == [1, 2]


def test_stream_statistics_cover_every_training_batch_within_one_bin(tmp_path, small_cnn):
    outputs = []
    small_cnn.conv2.register_forward_hook(lambda m, i, o: outputs.append(o.detach()) if torch.is_grad_enabled() else None)
    monitor = nas_logger.watch(small_cnn, tmp_path, statistics="stream", bins=512)
    optimizer = torch.optim.SGD(small_cnn.parameters(), lr=0.01)
    for epoch in range(2):
        outputs.clear()
        for _ in range(5):
            optimizer.zero_grad()
            F.cross_entropy(small_cnn(torch.randn(16, 1, 8, 8)), torch.randint(0, 10, (16,))).backward()
            optimizer.step()
        with torch.no_grad():
            small_cnn(torch.randn(50, 1, 8, 8))  # evaluation passes are not counted
        medians = monitor.log(epoch)
        exact = nas_reference(torch.cat(outputs).double().numpy())
        assert medians["conv2"] == pytest.approx(np.median(exact), abs=1 / 512)
    monitor.close()
    records = read_nas(tmp_path)
    assert ("conv2", fmt.HEATMAP) not in records
    layer, stats = records[("conv2", fmt.STATS)]
    assert [s for s, _ in stats] == [0, 1] and layer.receptive_fields == 64 and layer.depth == 1
    assert all(not m._forward_hooks for m in small_cnn.modules() if m is not small_cnn.conv2)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("statistics", ["probe", "stream"])
def test_training_with_nasreg_on_each_device_writes_nas_in_its_range(tmp_path, small_cnn, statistics, device):
    """The SDK end to end: watch, train 2 epochs with NASReg, log, read back through the plugin's reader."""
    model = small_cnn.to(device)
    monitor = nas_logger.watch(model, tmp_path, statistics=statistics)
    reg = nas_logger.NASReg(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    for epoch in range(2):
        for _ in range(4):
            x, y = torch.randn(16, 1, 8, 8, device=device), torch.randint(0, 10, (16,), device=device)
            loss = F.cross_entropy(model(x), y) + reg.penalty()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        monitor.log(epoch, test_loss=loss.detach())
    monitor.close()
    reg.remove()
    records = read_nas(tmp_path)
    for name, filters in [("conv1", 8), ("conv2", 16), ("fc1", 32), ("fc2", 10)]:
        layer, stats = records[(name, fmt.STATS)]
        values = np.stack([v for _, v in stats])
        assert [s for s, _ in stats] == [0, 1] and layer.filters == filters
        assert np.isfinite(values).all(), (name, values)
        assert (values >= 0).all() and (values <= 1 - 1 / filters).all(), (name, values)
    assert [s for s, _ in read_scalars(tmp_path)["test_loss"]] == [0, 1]


def test_stream_every_and_bad_options(tmp_path, small_cnn):
    monitor = nas_logger.watch(small_cnn, tmp_path, statistics="stream", stream_every=3)
    for _ in range(7):
        small_cnn(torch.randn(2, 1, 8, 8))
    # Forwards 0, 3 and 6 are measured: 3 batches x 2 samples x 64 fields of conv1.
    assert monitor._source.histograms["conv1"].count.item() == 3 * 2 * 64
    monitor.log(0)
    assert monitor._source.histograms["conv1"].count.item() == 0  # a new window per log
    monitor.close()
    with pytest.raises(ValueError, match="takes no probe"):
        nas_logger.watch(small_cnn, tmp_path, statistics="stream", probe=torch.randn(2, 1, 8, 8))
    with pytest.raises(ValueError, match="statistics must be 'probe' or 'stream'; got 'batches'"):
        nas_logger.watch(small_cnn, tmp_path, statistics="batches")
    with pytest.raises(ValueError, match="ranks must be .*; got 'some'"):
        nas_logger.watch(small_cnn, tmp_path, ranks="some")
    with pytest.raises(ValueError, match="stream_every must be >= 1; got 0"):
        nas_logger.watch(small_cnn, tmp_path, statistics="stream", stream_every=0)


def test_resnet50_at_224_and_layer_globs(tmp_path):
    torchvision = pytest.importorskip("torchvision")
    model = torchvision.models.resnet50(weights=None)
    monitor = nas_logger.watch(model, tmp_path, probe=torch.randn(2, 3, 224, 224))
    medians = monitor.log(0)
    assert len(medians) == 54  # 53 convolutions (downsample included) and fc
    assert monitor.layers["conv1"].receptive_fields == 112 * 112 and monitor.layers["fc"].depth == 53
    monitor.close()
    _, maps = read_nas(tmp_path)[("conv1", fmt.HEATMAP)]
    assert maps[0][1].shape == (2, fmt.MAX_HEATMAP_SIDE, fmt.MAX_HEATMAP_SIDE)
    deep = nas_logger.watch(model, tmp_path / "deep", probe=torch.randn(1, 3, 224, 224), layers="layer4.*")
    assert len(deep.log(0)) == 10 and all(n.startswith("layer4.") for n in deep.layers)
    deep.close()


def test_transformer_block_measures_each_token(tmp_path):
    block = nn.TransformerEncoderLayer(d_model=16, nhead=2, dim_feedforward=32, batch_first=True)
    monitor = nas_logger.watch(block, tmp_path, probe=torch.randn(3, 10, 16))
    medians = monitor.log(0)
    monitor.close()
    # The attention projections are applied as raw weights inside F.multi_head_attention_forward,
    # so only the feed-forward Linear modules execute as modules.
    assert list(medians) == ["linear1", "linear2"]
    assert monitor.layers["linear1"].receptive_fields == 10 and monitor.layers["linear1"].filters == 32


# --- single-layer models ------------------------------------------------------------------------------

def test_a_model_that_is_one_layer_is_logged_and_served_under_its_class_name(tmp_path):
    from plugin_fixtures import app_for, get_json

    model = nn.Conv2d(3, 4, 3)
    probe = torch.randn(2, 3, 6, 6)
    with nas_logger.watch(model, tmp_path / "run", probe=probe) as monitor:
        medians = monitor.log(0)
    assert list(medians) == ["Conv2d"] and list(monitor.layers) == ["Conv2d"]
    layer, stats = read_nas(tmp_path / "run")[("Conv2d", fmt.STATS)]
    assert layer.name == "Conv2d" and [s for s, _ in stats] == [0]
    with torch.no_grad():
        want = np.median(nas_reference(model(probe).double().numpy()))
    assert medians["Conv2d"] == pytest.approx(want, abs=2e-6)
    body = get_json(app_for(tmp_path)[0], "/data/plugin/nas/heatmap?run=run&layer=Conv2d&step=0")
    assert (body["layer"], body["shape"]) == ("Conv2d", [4, 4])
    with torch.no_grad():
        first = nas_reference(model(probe[:1]).double().numpy())[0]
    np.testing.assert_allclose(np.reshape(body["values"], (4, 4)), first, atol=2e-6)


# --- argument checks before any work --------------------------------------------------------------

def counting_forwards(model):
    calls = []
    model.register_forward_pre_hook(lambda m, args: calls.append(1))
    return calls


def test_steps_javascript_cannot_represent_are_rejected_before_any_work(tmp_path, small_cnn):
    from nas_logger.detector import OverfitDetector

    detector = OverfitDetector()
    monitor = nas_logger.watch(small_cnn, tmp_path, probe=torch.randn(2, 1, 8, 8), detect=detector)
    calls = counting_forwards(small_cnn)
    for step in (2**53, 2**63, np.uint64(2**64 - 1)):
        with pytest.raises(ValueError, match=r"step \d+ is above 2\*\*53 - 1 = 9007199254740991"):
            monitor.log(step)
    assert calls == [] and detector._epochs == 0
    assert list(monitor.log(2**53 - 1)) == ["conv1", "conv2", "fc1", "fc2"]
    monitor.close()
    assert [s for s, _ in read_nas(tmp_path)[("conv1", fmt.STATS)][1]] == [2**53 - 1]


def test_a_bad_scalar_is_rejected_before_any_work(tmp_path, small_cnn):
    from nas_logger.detector import OverfitDetector

    detector = OverfitDetector()
    monitor = nas_logger.watch(small_cnn, tmp_path, probe=torch.randn(2, 1, 8, 8), detect=detector)
    calls = counting_forwards(small_cnn)
    with pytest.raises(ValueError, match=r"test_loss must be a real number or a one-element tensor; got a Tensor of shape \(3,\)"):
        monitor.log(0, test_loss=torch.ones(3))
    with pytest.raises(ValueError, match="accuracy must be a real number or a one-element tensor; got str"):
        monitor.log(0, test_loss=0.5, accuracy="high")
    assert calls == [] and detector._epochs == 0
    monitor.log(0, test_loss=torch.tensor([0.5]), accuracy=np.float32(0.25))
    assert calls == [1] and detector._epochs == 1
    monitor.close()
    scalars = read_scalars(tmp_path)
    assert scalars["test_loss"] == [(0, 0.5)] and scalars["accuracy"] == [(0, 0.25)]


def test_log_after_close_raises_and_flush_and_close_are_harmless(tmp_path, small_cnn):
    monitor = nas_logger.watch(small_cnn, tmp_path, probe=torch.randn(2, 1, 8, 8))
    monitor.log(0)
    monitor.close()
    files = sorted(os.listdir(tmp_path))
    with pytest.raises(RuntimeError, match="monitor is closed"):
        monitor.log(1)
    monitor.flush()
    monitor.close()
    assert sorted(os.listdir(tmp_path)) == files  # no new event file
    assert [s for s, _ in read_nas(tmp_path)[("conv1", fmt.STATS)][1]] == [0]


def test_empty_layer_selection_and_ranks_all_without_a_process_group_fail_at_watch(tmp_path, small_cnn):
    with pytest.raises(ValueError, match="layers is an empty selection"):
        nas_logger.watch(small_cnn, tmp_path, layers=[])
    assert not torch.distributed.is_initialized()
    with pytest.raises(ValueError, match=r"ranks='all' .* call torch.distributed.init_process_group\(\) before watch\(\), or use ranks='0'"):
        nas_logger.watch(small_cnn, tmp_path, probe=torch.randn(2, 1, 8, 8), ranks="all")


# --- calls with more than one input ------------------------------------------------------------------

class MaskedNet(nn.Module):
    """model(x, mask, offset, scale=t, clip=c): a per-sample mask, a per-channel offset, a scale and a
    Python number, as models with attention masks or conditioning take them."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 8 * 8, 5)

    def forward(self, x, mask, offset, scale, clip=10.0):
        h = torch.relu(self.conv(x * scale) + offset[:, None, None]) * mask[:, None, None, None]
        return self.fc(h.flatten(1).clamp(max=clip))


def hooked_medians(model, *args, **kwargs):
    """Per layer, the float64 median NAS of one forward ``model(*args, **kwargs)`` through plain hooks."""
    outputs = {}
    hooks = [m.register_forward_hook(lambda m, i, o, n=n: outputs.setdefault(n, o.detach()))
             for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model(*args, **kwargs)
    for h in hooks:
        h.remove()
    return {n: np.median(nas_reference(o.double().numpy(), axis=1 if o.dim() == 4 else -1)) for n, o in outputs.items()}


def test_a_call_with_several_inputs_is_captured_whole_and_replayed(tmp_path):
    from events import provider
    from tensorboard import context

    from nas_logger.probe import ProbeCall

    torch.manual_seed(0)
    model = MaskedNet()
    x, mask = torch.randn(10, 3, 8, 8), (torch.arange(10) % 3 > 0).float()
    offset, scale = torch.randn(4), torch.tensor(0.5)
    monitor = nas_logger.watch(model, tmp_path, max_probe=6)
    model(x, mask, offset, scale=scale, clip=2.0)
    model(torch.zeros(10, 3, 8, 8), mask, offset, scale=scale)  # later calls do not replace it
    probe = monitor.probe
    assert isinstance(probe, ProbeCall)
    # Cut along dim 0 where it is the batch (x, mask), kept whole elsewhere (offset, scale), numbers as given.
    assert torch.equal(probe.args[0], x[:6]) and torch.equal(probe.args[1], mask[:6])
    assert torch.equal(probe.args[2], offset) and torch.equal(probe.kwargs["scale"], scale)
    assert probe.kwargs["clip"] == 2.0
    x.mul_(0)  # the captured tensors are copies
    assert probe.args[0].abs().sum() > 0
    medians = monitor.log(0, test_loss=1.0)
    monitor.close()
    want = hooked_medians(model, *probe.args, **probe.kwargs)
    assert list(medians) == ["conv", "fc"]
    assert medians == pytest.approx(want, abs=2e-6)
    blobs = provider(tmp_path).read_blob_sequences(
        context.RequestContext(), experiment_id="", plugin_name="images", downsample=100
    )["."][fmt.PROBE_IMAGE_TAG]
    assert [b.step for b in blobs] == [0]  # the first tensor, x, is an image


def test_keyword_tensors_and_a_single_tensor_keep_their_probe_forms(tmp_path, small_cnn):
    class Keywords(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(5, 3)

        def forward(self, features, weight):
            return self.fc(features) * weight

    model = Keywords()
    monitor = nas_logger.watch(model, tmp_path / "kw")
    model(features=torch.randn(80, 5), weight=torch.ones(80, 1))
    assert set(monitor.probe) == {"features", "weight"} and monitor.probe["weight"].shape == (64, 1)
    assert list(monitor.log(0)) == ["fc"]
    monitor.close()


class LengthsNet(nn.Module):
    """model(x, lengths) with lengths a Python list per sample: not a tensor, so not cut with the batch."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x, lengths):
        return self.fc(x * torch.tensor(lengths, dtype=x.dtype)[:, None])


def test_a_call_that_cannot_be_replayed_warns_once_and_training_goes_on(tmp_path):
    model = LengthsNet()
    monitor = nas_logger.watch(model, tmp_path, max_probe=4)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    results = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for step in range(3):
            optimizer.zero_grad()
            model(torch.randn(10, 4), list(range(10))).sum().backward()
            optimizer.step()
            results.append(monitor.log(step, test_loss=1.0 / (step + 1)))
    monitor.close()
    messages = [str(w.message) for w in caught if "cannot be fed" in str(w.message)]
    assert len(messages) == 1
    assert messages[0].startswith("probe of call (tensor (4, 4) torch.float32, list) cannot be fed to LengthsNet: RuntimeError")
    assert "training goes on" in messages[0] and "(at step 0)" in messages[0]
    assert results == [{}, {}, {}]
    assert [s for s, _ in read_scalars(tmp_path)["test_loss"]] == [0, 1, 2]  # the scalars are still written


# --- an alarm whose write failed -----------------------------------------------------------------

@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_an_alarm_fired_at_a_failed_write_is_written_at_the_next_log(tmp_path, small_cnn, monkeypatch):
    import errno

    from tensorboard import context
    from tensorboard.summary.writer import record_writer

    from events import provider
    from nas_logger.detector import Alarm, OverfitDetector

    class FiresAtStep2(OverfitDetector):
        def update(self, step, medians):
            if step == 2:
                self.alarm = Alarm(step, ("conv1", "conv2"))
                return self.alarm
            return None

    monitor = nas_logger.watch(small_cnn, tmp_path, probe=torch.randn(2, 1, 8, 8), detect=FiresAtStep2())
    monitor.log(0)
    monitor.log(1)
    real_write = record_writer.RecordWriter.write

    def full(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(record_writer.RecordWriter, "write", full)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        monitor.log(2)  # the alarm fires here; its write fails
    monkeypatch.setattr(record_writer.RecordWriter, "write", real_write)
    monitor.log(3)
    monitor.log(4)
    monitor.close()
    data = provider(tmp_path).read_tensors(context.RequestContext(), experiment_id="", plugin_name=fmt.PLUGIN_NAME,
                                           downsample=100, run_tag_filter=None)["."][fmt.ALARM_TAG]
    assert [d.step for d in data] == [2]  # once, at the step it fired
    assert [n.decode() for n in data[0].numpy] == ["conv1", "conv2"]
    assert 3 in [s for s, _ in read_nas(tmp_path)[("conv1", fmt.STATS)][1]]


def test_scalars_ride_in_the_event_of_their_step_as_add_scalar_writes_them(tmp_path, small_cnn):
    from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader
    from torch.utils.tensorboard.summary import scalar

    with nas_logger.watch(small_cnn, tmp_path, probe=torch.randn(8, 1, 8, 8)) as monitor:
        monitor.log(3, test_loss=0.25, test_accuracy=torch.tensor(0.75))
    [path] = [p for p in tmp_path.iterdir() if p.name.startswith("events.out.tfevents")]
    events = [e for e in LegacyEventFileLoader(str(path)).Load() if e.HasField("summary")]
    holding = [e for e in events if any(v.tag == "test_loss" for v in e.summary.value)]
    assert len(holding) == 1 and holding[0].step == 3
    values = {v.tag: v for v in holding[0].summary.value}
    assert fmt.table_tag(None) in values  # the NAS records of the step are in the same event
    for tag, number in (("test_loss", 0.25), ("test_accuracy", 0.75)):
        assert values[tag].SerializeToString() == scalar(tag, number).value[0].SerializeToString()
    scalars = read_scalars(tmp_path)
    assert scalars["test_loss"] == [(3, 0.25)] and scalars["test_accuracy"] == [(3, 0.75)]


def test_step_unit_is_in_every_record_and_a_bad_one_fails_at_watch(tmp_path, small_cnn):
    from nas_tb_plugin.reading import local_reader

    with pytest.raises(ValueError, match=r"step_unit must name what a step counts.*got ''"):
        nas_logger.watch(small_cnn, tmp_path / "bad", probe=torch.randn(2, 1, 8, 8), step_unit="")
    writer = SummaryWriter(str(tmp_path / "run"))
    for name, unit in ((None, "global step"), ("D", "batch")):
        with nas_logger.watch(small_cnn, writer, probe=torch.randn(2, 1, 8, 8), step_unit=unit, name=name) as monitor:
            assert monitor.step_unit == unit
            monitor.log(0)
    writer.close()
    reader, ctx = local_reader(tmp_path / "run")
    metas = [meta for meta, _ in read_records(reader, ctx, "", ".").values()]
    assert {m.record for m in metas} == {fmt.TABLE, fmt.HEATMAP, fmt.PROBE}
    assert {(m.monitor, m.step_unit) for m in metas} == {(None, "global step"), ("D", "batch")}
    assert reader.list_nas(ctx, "")["."].step_unit == "global step / batch"  # the unnamed monitor's first


def test_watch_signature_lists_every_option_with_its_default():
    import inspect
    from dataclasses import fields

    from nas_logger.options import WatchOptions

    parameters = inspect.signature(nas_logger.watch).parameters
    options = {f.name: f.default for f in fields(WatchOptions)}
    assert {n: p.default for n, p in parameters.items() if p.kind is p.KEYWORD_ONLY} == options
    assert not any(p.kind is p.VAR_KEYWORD for p in parameters.values())
    assert options["heatmap_side"] == 64 and options["statistics"] == "probe" and options["step_unit"] == "epoch"


@pytest.mark.parametrize("option, value, message", [
    ("heatmap_side", 0, "heatmap_side must be >= 1; got 0"),
    ("max_probe", 2.5, "max_probe must be an int; got float 2.5"),
    ("bins", 1, "bins must be >= 2; got 1"),
    ("detect", "yes", "detect must be True, False or an OverfitDetector; got str"),
])
def test_options_are_checked_when_made_naming_the_bad_value(option, value, message):
    from nas_logger.options import WatchOptions

    with pytest.raises(ValueError, match=f"^{message}$"):
        WatchOptions(**{option: value})


def test_a_watched_layer_that_never_runs_in_the_probe_pass_is_named_in_one_warning(tmp_path):
    class Skips(nn.Module):
        def __init__(self):
            super().__init__()
            self.used, self.unused = nn.Linear(4, 4), nn.Linear(4, 4)

        def forward(self, x):
            return self.used(x)

    with nas_logger.watch(Skips(), tmp_path, probe=torch.randn(2, 4)) as monitor:
        with pytest.warns(RuntimeWarning, match=r"layers \['unused'\] of Skips did not run as modules in the probe "
                                                r"pass.*not measured"):
            assert list(monitor.log(0)) == ["used"]
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            monitor.log(1)
