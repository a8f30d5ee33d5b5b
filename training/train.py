"""The paper's protocol (section 2.4): plain SGD without momentum, lr 0.01, batch 32, no schedule,
cross-entropy (+ the model's penalty), N epochs, repeated with different seeds; every run watched by
``nas_logger`` and logged per epoch with its test loss and accuracy.

The data lives on the training device as whole tensors; batches are index slices of one permutation per
epoch, and losses are summed on the device and read back once per epoch (no host sync per step).
"""
from __future__ import annotations

import json
import math
import multiprocessing
import os
import statistics
import threading
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

import nas_logger

from .augment import crop_and_flip
from .data import Data, Split
from .eb import eb_criterion
from .models import MODELS, build_model, nas_layers
from .penalties import make_penalty

PROBE_SIZE = 64  # test images run through the model at every log to measure NAS
RESULT_FILE = "result.json"  # written into a run's folder when it has finished; a later grid reuses the run


@dataclass(frozen=True)
class Protocol:
    epochs: int = 30
    lr: float = 0.01
    batch_size: int = 32
    width: float = 1.0  # channel factor applied to every layer
    nas_strength: float = 1.0  # NASReg's multiplier of lambda_i = 1 / r_i
    eb_batches: int = 4  # training batches per epoch (the first ones, before their step) on which EB is measured
    optimizer: str = "sgd"  # "sgd" or "adam"
    momentum: float = 0.0  # SGD's momentum
    weight_decay: float = 0.0
    augment: bool = False  # random crop (4 pixels) and horizontal flip of every training batch


@dataclass
class RunResult:
    """Per-epoch curves of one training: index e - 1 holds the end of epoch e."""

    model: str
    seed: int
    log_dir: str
    test_loss: list[float] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)  # cross-entropy part of the loss
    alarm_epoch: int | None = None  # when nas_logger's NAS-only overfitting alarm fired

    @property
    def peak_accuracy(self) -> float:
        return max(self.test_accuracy)

    @property
    def peak_epoch(self) -> int:
        return self.test_accuracy.index(self.peak_accuracy) + 1

    @property
    def overfit_epoch(self) -> int | None:
        """The moment of overfitting from the test loss: the minimum of its 3-epoch moving average over the
        epochs with a finite loss; None when the run diverged (no finite test loss)."""
        epochs = list(range(1, len(self.test_loss) + 1))
        return nas_logger.loss_minimum_step(epochs, self.test_loss)

    def summary(self) -> str:
        m = self.overfit_epoch
        alarm = f"epoch {self.alarm_epoch}" if self.alarm_epoch is not None else "none"
        if m is None:
            loss = "test loss diverged (not finite at any epoch)"
        else:
            loss = (f"test loss {_loss(self.test_loss[m - 1])} at its (smoothed) minimum, epoch {m}, "
                    f"{_loss(self.test_loss[-1])} at the end")
        return (
            f"{MODELS[self.model].paper_name} seed{self.seed}: peak test accuracy {self.peak_accuracy:.4f} "
            f"(epoch {self.peak_epoch}); {loss}; NAS overfitting alarm: {alarm}"
        )


def _loss(value: float) -> str:
    """A loss for the summary: 4 decimals, or what it is when the run diverged (``nan (diverged)``)."""
    return f"{value:.4f}" if math.isfinite(value) else f"{value} (diverged)"


def make_optimizer(model: nn.Module, protocol: Protocol) -> torch.optim.Optimizer:
    """SGD (with ``protocol.momentum``) or Adam at ``protocol.lr`` with ``protocol.weight_decay``."""
    if protocol.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=protocol.lr, weight_decay=protocol.weight_decay)
    return torch.optim.SGD(model.parameters(), lr=protocol.lr, momentum=protocol.momentum,
                           weight_decay=protocol.weight_decay)


def evaluate(model: nn.Module, split: Split, batch_size: int = 100) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean cross-entropy and accuracy of ``model`` on ``split``, as 0-d tensors on the model's device.
    Batches of 100: on CPU a batch of 1,000 28x28 images ran 2.9x slower (its activations leave the cache)."""
    model.eval()
    loss = torch.zeros((), device=split.x.device)
    correct = torch.zeros((), device=split.x.device)
    with torch.no_grad():
        for i in range(0, len(split), batch_size):
            logits = model(split.x[i : i + batch_size])
            y = split.y[i : i + batch_size]
            loss += F.cross_entropy(logits, y, reduction="sum")
            correct += (logits.argmax(1) == y).sum()
    return loss / len(split), correct / len(split)


def train_run(
    name: str,
    data: Data,
    protocol: Protocol,
    seed: int,
    log_dir: str | Path,
    progress: bool = True,
    bar_position: int | None = None,
) -> RunResult:
    """Train model ``name`` on ``data`` (already on its device) once with ``seed``. After every epoch e
    (step e = 1..N) NAS summaries, nas_logger's NAS-only overfitting alarm (once it fires) and the scalars
    ``test_loss``, ``test_accuracy``, ``train_loss`` (and ``distorted_test_loss``) go to ``log_dir``, with
    ``eb_criterion``, the EB criterion (training/eb.py) averaged over the epoch's first ``protocol.eb_batches``
    batches (none: no EB)."""
    device = data.train.x.device
    torch.manual_seed(seed)
    model = build_model(name, data.in_channels, data.image_size, data.classes, protocol.width).to(device)
    penalty = make_penalty(MODELS[name].penalty, model, protocol.nas_strength)
    optimizer = make_optimizer(model, protocol)
    order = torch.Generator().manual_seed(seed)
    result = RunResult(name, seed, str(log_dir))

    def log(epoch: int, train_loss: torch.Tensor, eb: list[float]) -> None:
        values = {"train_loss": train_loss}
        values["test_loss"], values["test_accuracy"] = evaluate(model, data.test)
        if data.distorted is not None:
            values["distorted_test_loss"], _ = evaluate(model, data.distorted)
        scalars = dict(zip(values, torch.stack(list(values.values())).tolist()))  # one sync per epoch
        if eb:
            scalars["eb_criterion"] = statistics.mean(eb)
        monitor.log(epoch, **scalars)
        result.test_loss.append(scalars["test_loss"])
        result.test_accuracy.append(scalars["test_accuracy"])
        result.train_loss.append(scalars["train_loss"])
        bar.set_postfix(test_loss=f"{scalars['test_loss']:.3f}", test_acc=f"{scalars['test_accuracy']:.3f}")

    monitor = nas_logger.watch(
        model, log_dir, probe=data.test.x[:PROBE_SIZE], layers=nas_layers(model), detect=True
    )
    desc = f"{MODELS[name].paper_name} seed{seed}"
    with monitor, tqdm(
        range(1, protocol.epochs + 1), desc=desc, unit="epoch", disable=not progress, position=bar_position,
        leave=bar_position is None,
    ) as bar:
        for epoch in bar:
            log(epoch, *train_epoch(model, data, protocol, optimizer, penalty, order))
    result.alarm_epoch = monitor.alarm.step if monitor.alarm is not None else None
    return result


def train_epoch(model: torch.nn.Module, data: Data, protocol: Protocol, optimizer: torch.optim.Optimizer,
                penalty, order: torch.Generator) -> tuple[torch.Tensor, list[float]]:
    """One epoch over ``data.train`` in the order drawn from ``order``: the mean cross-entropy (a tensor on the
    device, so the epoch needs no sync) and the EB criterion of its first ``protocol.eb_batches`` batches."""
    model.train()
    device, n = data.train.x.device, len(data.train)
    total = torch.zeros((), device=device)
    eb = []
    for i, batch in enumerate(torch.randperm(n, generator=order).to(device).split(protocol.batch_size)):
        x, y = data.train.x[batch], data.train.y[batch]
        if protocol.augment:
            x = crop_and_flip(x, order)
        if i < protocol.eb_batches and len(batch) > 1:
            eb.append(eb_criterion(model, x, y))
        cross_entropy = F.cross_entropy(model(x), y)
        loss = cross_entropy + penalty() if penalty is not None else cross_entropy
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += cross_entropy.detach() * len(batch)
    return total / n, eb


class LogDirConflict(ValueError):
    """A run's folder holds something a training must not overwrite."""


def run_setting(name: str, seed: int, data_fingerprint: str, protocol: Protocol) -> dict:
    """What makes two trainings the same run (as JSON): model, seed, data and protocol."""
    return {"model": name, "seed": seed, "data": data_fingerprint, **asdict(protocol)}


def _write_result(run_dir: Path, setting: dict, result: RunResult) -> None:
    partial = run_dir / (RESULT_FILE + ".partial")
    partial.write_text(json.dumps({"setting": setting, "result": asdict(result)}, indent=1))
    os.replace(partial, run_dir / RESULT_FILE)  # atomic: a crash leaves no half-written result


def finished_run(run_dir: Path, setting: dict) -> RunResult | None:
    """The run recorded in ``run_dir`` when it finished with ``setting``; None when ``run_dir`` holds no run.
    A run left unfinished (event files, no result) is removed so that it is trained again from its start;
    a finished run of another setting, or files that are not a run's, are an error: nothing is overwritten."""
    if not run_dir.exists():
        return None
    recorded = run_dir / RESULT_FILE
    if recorded.exists():
        try:
            saved = json.loads(recorded.read_text())
            recorded_setting, result = saved["setting"], RunResult(**saved["result"])
            if not isinstance(recorded_setting, dict):
                raise TypeError(f"its setting is {type(recorded_setting).__name__}, not an object")
        except (OSError, ValueError, KeyError, TypeError) as e:  # cut short, or written by another version
            raise LogDirConflict(
                f"{recorded} is not a finished run's record that this version can read ({type(e).__name__}: "
                f"{str(e)[:200]}); delete it to train that run again"
            ) from None
        if recorded_setting != setting:
            changed = [k for k in setting if recorded_setting.get(k) != setting[k]]
            was = "; ".join(f"{k} {recorded_setting.get(k)!r}, now {setting[k]!r}" for k in changed)
            raise LogDirConflict(
                f"{run_dir} holds a finished run trained with other settings ({was}); "
                "use another --logdir or remove that folder"
            )
        return result
    leftovers = [f for f in run_dir.iterdir() if not f.name.startswith("events.out.tfevents.") and f.name != RESULT_FILE + ".partial"]
    if leftovers:
        raise LogDirConflict(f"{run_dir} holds files that are not a run's ({leftovers[0].name}); use another --logdir")
    events = list(run_dir.iterdir())
    for f in events:
        f.unlink()
    tqdm.write(f"{run_dir}: an unfinished run (no {RESULT_FILE}); its {len(events)} file(s) removed, training it again")
    return None


def run_grid(
    names: list[str],
    data: Data,
    protocol: Protocol,
    repeats: int,
    log_dir: str | Path,
    first_seed: int = 0,
    progress: bool = True,
    jobs: int = 1,
    threads: int | None = None,
) -> dict[str, list[RunResult]]:
    """Every model ``repeats`` times (seeds ``first_seed``, ``first_seed + 1``, ...), each run logged to
    ``<log_dir>/<model>/seed<k>``; prints one summary line per run and per model. A run that finished
    before with the same setting is reused, not trained again, so that a grid can be completed in
    pieces: when a run has finished, :data:`RESULT_FILE` records it and its setting in its folder. ``jobs`` > 1 trains that many runs at a time in worker processes (``threads`` torch threads
    each; the data is copied to each worker once)."""
    fingerprint = data.fingerprint()
    done: dict[tuple[str, int], RunResult] = {}
    todo = []
    settings = {}
    for name in names:
        for seed in range(first_seed, first_seed + repeats):
            run_dir = Path(log_dir) / name / f"seed{seed}"
            settings[name, seed] = run_setting(name, seed, fingerprint, protocol)
            reused = finished_run(run_dir, settings[name, seed])
            if reused is not None:
                tqdm.write(f"{reused.summary()} (finished before: reused)")
                done[name, seed] = reused
            else:
                todo.append((name, seed, run_dir))

    def finished(name: str, seed: int, run_dir: Path, run: RunResult) -> None:
        _write_result(run_dir, settings[name, seed], run)
        done[name, seed] = run
        tqdm.write(run.summary())

    if jobs > 1 and len(todo) > 1:
        device = str(data.train.x.device)
        workers = min(jobs, len(todo))
        context = multiprocessing.get_context("spawn")  # fork would copy torch's thread pools and locks
        with ProcessPoolExecutor(workers, context, _start_worker, (data.to("cpu"), device, threads)) as pool:
            # One bar for the grid: the workers' own bars would interleave on one terminal.
            futures = {pool.submit(_train_in_worker, name, protocol, seed, run_dir, False, i % workers):
                       (name, seed, run_dir) for i, (name, seed, run_dir) in enumerate(todo)}
            with tqdm(total=len(todo), desc=f"{len(todo)} runs, {workers} at a time", unit="run",
                      disable=not progress) as bar:
                for future in as_completed(futures):
                    finished(*futures[future], future.result())
                    bar.update()
    else:
        for name, seed, run_dir in todo:
            finished(name, seed, run_dir, train_run(name, data, protocol, seed, run_dir, progress))
    results: dict[str, list[RunResult]] = {}
    for name, seed in sorted(done, key=lambda key: (names.index(key[0]), key[1])):
        results.setdefault(name, []).append(done[name, seed])
    for name, runs in results.items():
        tqdm.write(peak_accuracy_line(name, runs))
    return results


_worker_data: Data | None = None


def _start_worker(data: Data, device: str, threads: int | None) -> None:
    global _worker_data
    # A worker whose parent is killed (SIGTERM, SIGKILL, a crash) would go on training and writing into the
    # log dir, racing the next command's runs there; it leaves with its parent instead. The parent's
    # sentinel becomes ready when the parent process ends, whatever ended it.
    threading.Thread(target=_exit_with, args=(multiprocessing.parent_process(),), daemon=True).start()
    if threads:
        torch.set_num_threads(threads)
    _worker_data = data.to(device)


def _exit_with(parent) -> None:
    parent.join()
    os._exit(1)


def _train_in_worker(name: str, protocol: Protocol, seed: int, run_dir: Path, progress: bool, slot: int) -> RunResult:
    return train_run(name, _worker_data, protocol, seed, run_dir, progress, bar_position=slot)


def peak_accuracy_line(name: str, runs: list[RunResult]) -> str:
    """``NASReg: peak test accuracy 0.9120 +- 0.0040 (mean +- sd over 3 runs)``; one run: ``... 0.9120 (1 run)``."""
    peaks = [r.peak_accuracy for r in runs]
    if len(peaks) == 1:
        return f"{MODELS[name].paper_name}: peak test accuracy {peaks[0]:.4f} (1 run)"
    return (f"{MODELS[name].paper_name}: peak test accuracy {statistics.mean(peaks):.4f} +- {statistics.stdev(peaks):.4f} "
            f"(mean +- sd over {len(peaks)} runs)")
