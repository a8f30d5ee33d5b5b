"""monitor.log() from another thread than the training loop: the training forwards it overlaps keep their
train mode and their NASReg terms, and log() measures the probe alone."""
import threading
import time

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import nas_logger


class RecordingDropout(nn.Dropout):
    """Dropout that notes, at every forward with gradients enabled (a training forward), whether it
    was in train mode; in a no-grad forward (the probe pass) it yields the GIL for a moment, so that a
    training thread can run in the middle of the probe pass if nothing stops it."""

    def __init__(self) -> None:
        super().__init__(0.5)
        self.training_modes: list[bool] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled():
            self.training_modes.append(self.training)
        else:
            time.sleep(0.002)  # pacing only: gives the other thread the interpreter mid-pass
        return super().forward(x)


class DropoutNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.drop = RecordingDropout()
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.fc1 = nn.Linear(8 * 64, 16)
        self.fc2 = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop(torch.relu(self.conv1(x)))
        x = torch.relu(self.conv2(x))
        return self.fc2(torch.relu(self.fc1(x.flatten(1))))


def test_log_from_another_thread_leaves_concurrent_training_forwards_alone(tmp_path):
    torch.manual_seed(0)
    model = DropoutNet()
    reg = nas_logger.NASReg(model, strength=0.01)
    probe = torch.randn(8, 1, 8, 8)
    batch, labels = torch.randn(16, 1, 8, 8), torch.randint(0, 10, (16,))
    monitor = nas_logger.watch(model, tmp_path, probe=probe)
    model.train()
    reference = monitor.log(0)  # single-threaded; the weights never change below (no optimiser step)
    assert set(reference) == {"conv1", "conv2", "fc1", "fc2"}
    model.drop.training_modes.clear()

    steps, training_errors, logged = 60, [], []
    done = threading.Event()

    def train() -> None:
        for _ in range(steps):
            try:
                loss = F.cross_entropy(model(batch), labels) + reg.penalty()
                loss.backward()
            except Exception as e:  # reported by the assertion below, not lost in the thread
                training_errors.append(e)
            model.zero_grad(set_to_none=True)
        done.set()

    def log() -> None:
        step = 1
        while not done.is_set():
            logged.append(monitor.log(step))
            step += 1

    threads = [threading.Thread(target=train), threading.Thread(target=log)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    monitor.close()
    assert not any(t.is_alive() for t in threads)
    modes = model.drop.training_modes
    wrong = [m for m in logged if m.keys() != reference.keys()
             or any(m[n] != pytest.approx(reference[n], rel=1e-6, abs=1e-7) for n in reference)]
    assert logged, "the logging thread never logged"
    assert (len(training_errors), modes.count(False), len(wrong)) == (0, 0, 0), (
        f"{len(training_errors)} of {steps} training steps raised ({training_errors[:1]}), "
        f"{modes.count(False)} of {len(modes)} training forwards ran in eval mode, "
        f"{len(wrong)} of {len(logged)} logs returned other medians than the single-threaded log"
    )
    assert len(modes) == steps
