import torch
from torch import nn

from nas_logger.hooks import tap_for


def test_one_hook_per_module_shared_by_consumers_and_removed_when_unused():
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    tap = tap_for(model)
    seen_a, seen_b = [], []
    a = lambda name, out: seen_a.append(name)  # noqa: E731
    b = lambda name, out: seen_b.append(name)  # noqa: E731
    tap.subscribe(a, {"0": model[0], "1": model[1]})
    tap.subscribe(b, {"1": model[1]})
    assert [len(m._forward_hooks) for m in model] == [1, 1]
    model(torch.randn(2, 3))
    assert seen_a == ["0", "1"] and seen_b == ["1"]
    tap.unsubscribe(a)
    assert [len(m._forward_hooks) for m in model] == [0, 1]
    tap.unsubscribe(b)
    assert [len(m._forward_hooks) for m in model] == [0, 0]


def test_exclusive_pass_reaches_only_its_consumer_and_leaves_no_extra_hooks():
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    tap = tap_for(model)
    persistent, probe = [], []
    tap.subscribe(lambda n, o: persistent.append(n), {"1": model[1]})
    with tap.exclusive(lambda n, o: probe.append((n, o.shape)), {"0": model[0], "1": model[1]}):
        model(torch.randn(5, 3))
    assert probe == [("0", (5, 4)), ("1", (5, 2))] and persistent == []
    assert [len(m._forward_hooks) for m in model] == [0, 1]
    model(torch.randn(5, 3))
    assert persistent == ["1"]


def test_taps_are_per_model():
    first, second = nn.Linear(1, 1), nn.Linear(1, 1)
    assert tap_for(first) is tap_for(first) and tap_for(first) is not tap_for(second)


def test_a_dropped_model_is_freed_with_its_regulariser_and_monitor(tmp_path):
    import gc
    import weakref

    import nas_logger

    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
    reg = nas_logger.NASReg(model)
    streamed = nas_logger.watch(model, tmp_path / "stream", statistics="stream")
    probed = nas_logger.watch(model, tmp_path / "probe", probe=torch.randn(2, 1, 8, 8))
    model(torch.randn(2, 1, 8, 8)).sum().add(reg.penalty()).backward()
    probed.log(0)
    streamed.log(0)
    probed.close()
    streamed.close()
    alive = weakref.ref(model)
    del model, reg, streamed, probed
    gc.collect()
    assert alive() is None  # sweeps that build a model per trial must not pile up parameters


def test_an_exclusive_pass_at_every_log_makes_its_hook_functions_once(monkeypatch):
    # each torch.compiler.disable costs ~50 us: made at every probe pass, a quarter of a small model's log
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    tap = tap_for(model)
    made = []
    disable = torch.compiler.disable
    monkeypatch.setattr(torch.compiler, "disable", lambda fn: made.append(fn) or disable(fn))
    seen = []
    for _ in range(3):
        with tap.exclusive(lambda n, o: seen.append(n), {"0": model[0], "1": model[1]}):
            model(torch.randn(2, 3))
    assert len(made) == 2 and seen == ["0", "1"] * 3
    assert [len(m._forward_hooks) for m in model] == [0, 0]
