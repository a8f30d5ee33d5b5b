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


def _finishes(target, timeout: float = 60.0) -> bool:
    import threading

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(timeout)
    return not t.is_alive()


def test_gate_is_released_when_a_forward_raises_so_a_later_probe_pass_from_another_thread_runs():
    from nas_logger.forward_gate import ForwardGate, GuardedForwards

    class Failing(nn.Module):
        def forward(self, x):
            raise ValueError("bad input")

    model, gate = Failing(), ForwardGate()
    guard = GuardedForwards(gate)
    guard.add(model)
    try:
        model(torch.randn(1))
    except ValueError:
        pass

    def probe_pass():
        with gate.probe_pass():
            pass

    assert _finishes(probe_pass)
    guard.remove()
    assert not model._forward_hooks and not model._forward_pre_hooks


def test_gate_lets_a_thread_start_a_probe_pass_inside_its_own_forward_and_nest_forwards():
    from nas_logger.forward_gate import ForwardGate, GuardedForwards

    gate, passes = ForwardGate(), []

    class LogsInForward(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = nn.Linear(2, 2)

        def forward(self, x):
            if x.shape[0] == 1:  # the probe's own forward, nested in the pass
                return self.inner(x)
            with gate.probe_pass():  # as log() called from a forward hook would
                self(x[:1])
            return self.inner(x)

    model = LogsInForward()
    guard = GuardedForwards(gate)
    guard.add(model)
    assert _finishes(lambda: passes.append(model(torch.randn(3, 2)).shape))
    assert passes == [(3, 2)]

    def other_thread_probe_pass():
        with gate.probe_pass():
            passes.append("pass")

    assert _finishes(other_thread_probe_pass)  # nothing is left held
    guard.remove()


def test_probe_pass_waits_for_a_running_forward_of_another_thread():
    import threading

    from nas_logger.forward_gate import ForwardGate, GuardedForwards

    gate, order = ForwardGate(), []
    entered, release = threading.Event(), threading.Event()

    class Slow(nn.Module):
        def forward(self, x):
            entered.set()
            release.wait(60)
            order.append("forward ends")
            return x

    model = Slow()
    GuardedForwards(gate).add(model)
    trainer = threading.Thread(target=lambda: model(torch.zeros(1)))
    trainer.start()
    assert entered.wait(60)

    def probe_pass():
        with gate.probe_pass():
            order.append("probe pass")

    logger = threading.Thread(target=probe_pass)
    logger.start()
    logger.join(0.2)  # not a timing assertion: the pass must still be waiting whatever the load
    assert order == []
    release.set()
    trainer.join(60)
    logger.join(60)
    assert order == ["forward ends", "probe pass"]


def test_a_pass_started_inside_a_forward_waits_for_the_other_threads_forward_then_runs():
    import threading

    from nas_logger.forward_gate import ForwardGate

    gate, order = ForwardGate(), []
    b_entered, b_release = threading.Event(), threading.Event()

    def thread_b():
        gate.enter_forward()
        b_entered.set()
        b_release.wait(60)
        order.append("b leaves")
        gate.leave_forward()

    def thread_a():
        gate.enter_forward()
        with gate.probe_pass():  # log() from a hook of A's own forward
            order.append("a's pass")
        gate.leave_forward()

    b = threading.Thread(target=thread_b, daemon=True)
    b.start()
    assert b_entered.wait(60)
    a = threading.Thread(target=thread_a, daemon=True)
    a.start()
    a.join(0.2)
    assert order == []
    b_release.set()
    a.join(60)
    b.join(60)
    assert order == ["b leaves", "a's pass"] and not a.is_alive()


def test_exclusive_routing_applies_to_the_calling_thread_only():
    import threading

    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    tap = tap_for(model)
    persistent, probe = [], []
    tap.subscribe(lambda n, o: persistent.append(n), {"0": model[0], "1": model[1]})
    with tap.exclusive(lambda n, o: probe.append(n), {"0": model[0], "1": model[1]}):
        other = threading.Thread(target=lambda: model(torch.randn(5, 3)))
        other.start()
        other.join(60)
        assert persistent == ["0", "1"] and probe == []  # the other thread's forward kept its subscribers
        model(torch.randn(5, 3))
    assert probe == ["0", "1"] and persistent == ["0", "1"]


def test_a_model_with_the_forward_gate_still_pickles_and_its_copy_runs(tmp_path):
    import nas_logger

    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    with nas_logger.watch(model, tmp_path, probe=torch.randn(2, 3)):
        path = tmp_path / "model.pt"
        torch.save(model, path)
        copy = torch.load(path, weights_only=False)
    x = torch.randn(2, 3)
    torch.testing.assert_close(copy(x), model(x))
