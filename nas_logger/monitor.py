"""``watch(model, log_dir)`` and ``monitor.log(step, test_loss=...)``: NAS logging in two lines."""
from __future__ import annotations

import logging
import os
import warnings
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import scalar as scalar_summary

from . import format as fmt
from . import namespaces
from .arguments import check_step, scalar_values
from .detector import Alarm, OverfitDetector
from .hooks import tap_for
from .layers import is_sharded, layer_kind, normalised_layers, select_layers, unwrap
from .options import PROBE_IMAGES, LayerChoice, WatchOptions
from .probe import MAX_PROBE, Probe, capture_call, describe, first_images, prepare_probe
from .sharded import every_rank, share_probe
from .sources import LayerResult, ProbeStatistics, StreamStatistics
from .streaming import DEFAULT_BINS
from .summaries import alarm_status_summary, probe_summary, step_summary
from .writer import ResilientWriter, log_dir_of

logger = logging.getLogger(__name__)


def _is_writer_rank() -> bool:
    dist = torch.distributed
    return not (dist.is_available() and dist.is_initialized() and dist.get_rank() != 0)


def _check_process_group(ranks: str) -> None:
    if ranks == "all" and not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        raise ValueError(
            "ranks='all' merges the histograms of all torch.distributed ranks, but no process group is "
            "initialised: call torch.distributed.init_process_group() before watch(), or use ranks='0'"
        )


def _to_host(results: dict[str, LayerResult]) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """Every layer's statistics and heatmap as numpy arrays, through one device-to-host copy."""
    tensors = [t for r in results.values() for t in (r.stats, r.heatmap) if t is not None]
    flat = torch.cat([t.reshape(-1) for t in tensors]).cpu().numpy() if tensors else np.zeros(0)
    arrays, offset = [], 0
    for t in tensors:
        arrays.append(flat[offset : offset + t.numel()].reshape(t.shape))
        offset += t.numel()
    pieces = iter(arrays)
    return {name: (next(pieces), None if r.heatmap is None else next(pieces)) for name, r in results.items()}


class Monitor:
    """Writes NAS statistics of a model's layers to TensorBoard; create it with :func:`watch`.

    ``statistics="probe"`` (default): at each :meth:`log` the probe batch is run through the model
    (eval mode, no grad, every submodule's train/eval mode restored) with hooks that exist for that
    pass only, so training forwards carry none of the monitor's layer hooks. ``log`` may run on another
    thread than the training loop: the probe pass waits for running forwards of the model to end, and
    forwards that start meanwhile wait for it (two lock round trips per training forward, no device work).
    ``statistics="stream"``: s_k of the
    training forwards since the last ``log`` (every ``stream_every``-th one) is accumulated in a
    ``bins``-bin histogram per layer on the device; no probe, no heatmaps, quantiles within 1/bins.
    ``ranks="all"``: under torch.distributed every rank measures (its probe or its batches) and the
    histograms are all-reduced, so every rank must call ``log``; default ``"0"``: rank 0 alone.
    FSDP2 (``fully_shard``): the probe pass is a collective forward, so ``watch`` and ``log`` must be
    called on every rank, at the same steps; a rank without a probe runs rank 0's; rank 0 writes.
    """

    def __init__(
        self,
        model: nn.Module,
        log_dir: str | os.PathLike | SummaryWriter,
        probe: Any = None,
        options: WatchOptions = WatchOptions(),
    ) -> None:
        if not isinstance(model, nn.Module):
            raise ValueError(f"model must be a torch.nn.Module; got {type(model).__name__}")
        _check_process_group(options.ranks)
        namespaces.check(log_dir, options.name)
        self.options = options
        self.step_unit = options.step_unit
        self.max_probe, self.probe_images = options.max_probe, options.probe_images
        self.model = unwrap(model)
        self._sharded = is_sharded(self.model)
        self._modules = select_layers(self.model, options.layers)
        self._kinds = {name: layer_kind(m) for name, m in self._modules.items()}
        self._merge_ranks = options.ranks == "all"
        # Whether every rank takes part in log: to merge histograms, or to join a sharded probe forward.
        self._joins = self._merge_ranks or (self._sharded and options.statistics == "probe")
        self._source = self._make_source(options)
        self.detector = OverfitDetector() if options.detect is True else (options.detect or None)
        if self.detector is not None and not self.detector.normalised:
            self.detector.normalised = normalised_layers(self.model, self._modules)
        self._start_output(log_dir)
        self._capture = None
        self.probe: Probe | None = None
        self._take_probe(model, probe)
        # Several monitors per run: a second one on this run gets a name that prefixes its layers and tags.
        self.name = namespaces.claim(self, self._log_dir, options.name, type(self.model).__name__)
        self._tap = tap_for(self.model)
        self._tap.guarded_forwards.add(self.model)  # log() on another thread waits for running forwards

    def _make_source(self, options: WatchOptions) -> ProbeStatistics | StreamStatistics:
        if options.statistics == "stream":
            return StreamStatistics(self.model, self._modules, self._kinds, self._merge_ranks, options.bins,
                                    options.stream_every)
        return ProbeStatistics(self.model, self._modules, self._kinds, options.heatmap_side, self._merge_ranks,
                               options.bins, options.probe_images)

    def _start_output(self, log_dir: str | os.PathLike | SummaryWriter) -> None:
        """The writer (rank 0 only) and what the written records remember across logs."""
        self.layers: dict[str, fmt.LayerInfo] = {}
        self._table_layers: list[str] = []  # rows of the stats table, fixed at the first log
        self._warned: set[str] = set()
        self._writes = _is_writer_rank()
        self._probe_warned = False
        self._unmeasured_warned = False
        self._pending_alarm: Alarm | None = None  # fired, not yet written (its log's write failed)
        self._closed = False
        self._out = ResilientWriter(log_dir) if self._writes else None
        self._log_dir = log_dir_of(log_dir)

    def _take_probe(self, model: nn.Module, probe: Any) -> None:
        """The given probe, checked against the model; or, with none, a hook that captures the first batch."""
        if not self._source.needs_probe:
            if probe is not None:
                raise ValueError("statistics='stream' measures the training batches and takes no probe")
            return
        self.probe = None if probe is None else prepare_probe(probe, self.max_probe)
        everyone = self.probe is not None
        if self._sharded:
            self.probe, everyone = share_probe(self.probe, self._source.device())
        if self.probe is None:
            self._capture = model.register_forward_pre_hook(self._capture_probe, with_kwargs=True)
        elif everyone:  # under FSDP the check pass is a forward of every rank
            self._check_probe()

    @property
    def ready(self) -> bool:
        """Whether ``log`` has something to measure: a probe, or streaming statistics."""
        return self.probe is not None or not self._source.needs_probe

    @property
    def log_dir(self) -> str:
        return str(self._log_dir)

    @property
    def writer(self) -> SummaryWriter | None:
        """The SummaryWriter this monitor writes to now; None on other ranks, after a failure and after close."""
        return self._out.writer if self._out is not None else None

    def _capture_probe(self, module: nn.Module, args: tuple, kwargs: dict[str, Any]) -> None:
        probe = capture_call(args, kwargs, self.max_probe)
        if probe is not None:
            self.probe = probe
            self._capture.remove()
            self._capture = None

    def _probe_error(self, e: Exception) -> ValueError:
        return ValueError(
            f"probe of {describe(self.probe)} cannot be fed to {type(self.model).__name__}: {type(e).__name__}: {e}"
        )

    def _check_probe(self) -> None:
        try:
            with tap_for(self.model).gate.probe_pass():
                ProbeStatistics(self.model, self._modules, self._kinds, 1, False, 2).collect(self.probe)
        except Exception as e:
            raise self._probe_error(e) from e

    def _collect(self, step: int) -> dict[str, LayerResult]:
        """The statistics of this log; none while the probe pass fails, with one warning (training goes on)."""
        try:
            # Mode switch, hook routing and restore happen with no forward of another thread running.
            with self._tap.gate.probe_pass():
                results = self._source.collect(self.probe)
        except Exception as e:
            if self._sharded:
                e.add_note("under FSDP every rank must call log() at the same step, with a probe the model takes")
            if not self._source.needs_probe or self._sharded:
                raise
            if not self._probe_warned:
                self._probe_warned = True
                warnings.warn(
                    f"{self._probe_error(e)} (at step {step}); NAS is not logged while this fails, training goes "
                    "on and the monitor retries at every log",
                    RuntimeWarning,
                    stacklevel=3,
                )
            return {}
        if self._source.needs_probe:
            self._warn_unmeasured(results)
        return results

    def _warn_unmeasured(self, results: dict[str, LayerResult]) -> None:
        """Once: the watched layers that did not run as modules in a probe pass (a branch the probe does not
        take, a weight applied with F.linear), which log() therefore leaves out."""
        missing = [name for name in self._modules if name not in results]
        if missing and not self._unmeasured_warned:
            self._unmeasured_warned = True
            warnings.warn(
                f"layers {missing} of {type(self.model).__name__} did not run as modules in the probe pass "
                "(a branch the probe does not take, or a weight applied with F.linear/F.conv*): their NAS is not "
                "measured; watch only layers the forward calls (layers=...)",
                RuntimeWarning,
                stacklevel=4,
            )

    def log(self, step: int, test_loss: float | torch.Tensor | None = None, **scalars: Any) -> dict[str, float]:
        """Evaluate the probe and write every watched layer's NAS statistics and heatmap at ``step``.

        ``test_loss`` and the keyword ``scalars`` are written as ordinary TensorBoard scalars. Ends with
        a flush, so a crash later loses nothing written here. Returns the median NAS per layer.
        Only rank 0 of a distributed job writes; other ranks return an empty dict. Under FSDP2 the probe
        pass is a collective: call ``log`` on every rank at the same step (a rank that skips it leaves the
        others waiting in the forward until the process group's timeout) and its errors are raised. Every
        argument is checked before any work: ``step`` an int in [0, 2**53 - 1], the scalars real numbers or
        one-element tensors (ValueError naming the argument). A probe the model cannot take warns once
        and logs no NAS (the scalars still) until it can. RuntimeError after :meth:`close`.
        """
        self._check_open()
        step = check_step(step)
        values = scalar_values(test_loss, scalars)
        if not self._writes and not self._joins:
            return {}
        self._check_ready()
        results = self._collect(step)
        if not self._writes:
            return {}
        self._describe_layers(results)
        records = self._host_records(results, step)
        medians = {name: float(stats[fmt.STAT_FIELDS.index("median")]) for name, (stats, _) in records.items()}
        self._update_detector(step, medians)
        try:
            self._write(step, records, values)
        except OSError as e:  # disk full, log dir gone, ...: training must go on
            self._out.failed(f"writing NAS summaries to {self.log_dir!r} failed at step {step}: {e}")
        return medians

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(
                "monitor is closed: log() after close() would start a new event file; call log() before "
                "close(), or watch() the model again"
            )

    def _check_ready(self) -> None:
        """RuntimeError while there is no probe to measure (collective under FSDP: every rank answers)."""
        if not self._source.needs_probe:
            return
        if self._sharded:  # every rank runs the probe forward
            ready = every_rank(self.probe is not None, self._source.device())
        else:
            ready = self.probe is not None or not self._writes
        if not ready:
            raise RuntimeError(
                "no probe yet: pass probe= to watch() or run one forward pass of the model before log()"
                + (" (under FSDP on every rank: each rank runs the probe forward)" if self._sharded else "")
            )

    def _describe_layers(self, results: dict[str, LayerResult]) -> None:
        """A LayerInfo for each layer the first time it is measured, its depth in order of first measure."""
        for name, result in results.items():
            if name not in self.layers:
                filters = self._modules[name].weight.shape[0]
                self.layers[name] = fmt.LayerInfo(name, self._kinds[name], filters, result.fields, len(self.layers))

    def _host_records(self, results: dict[str, LayerResult], step: int) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
        """Statistics and heatmaps on the host; a layer's non-finite statistics become NaN, with one warning per layer."""
        records = _to_host(results)
        for name, (stats, grid) in records.items():
            if not np.isfinite(stats).all():
                records[name] = (np.full_like(stats, np.nan), grid)
                if name not in self._warned:
                    self._warned.add(name)
                    warnings.warn(
                        f"NAS of layer {name!r} is not finite at step {step}: its pre-activations hold "
                        "NaN or inf; its statistics are written as NaN",
                        RuntimeWarning,
                        stacklevel=3,
                    )
        return records

    def _update_detector(self, step: int, medians: dict[str, float]) -> None:
        """Feed the overfitting detector this log's medians; an alarm it raises waits in ``_pending_alarm``
        until a write carries it."""
        if self.detector is None or not medians:
            return
        alarm = self.detector.update(step, medians)
        if alarm is not None:
            self._pending_alarm = alarm
            logger.warning("NAS overfitting alarm at step %d, raised by layers %s", step, ", ".join(alarm.layers))

    def _write(self, step: int, records: dict[str, tuple[np.ndarray, np.ndarray | None]],
               scalars: dict[str, float]) -> None:
        out = self._out
        out.open()  # a reopened event file starts with no tag's metadata, and without the probe image
        if not self._table_layers:
            self._table_layers = list(records)
        alarm = self._pending_alarm
        alarm_layers = alarm.layers if alarm is not None and alarm.step == step else None
        if alarm is not None and alarm_layers is None:  # it fired at an earlier log whose write failed
            out.add_summary(step_summary(self.layers, {}, self._table_layers, out.tags, alarm.layers, self.name,
                                         self.step_unit), alarm.step)
        summary = step_summary(self.layers, records, self._table_layers, out.tags, alarm_layers, self.name,
                               self.step_unit)
        # The scalars ride in the step's event: one event to queue and wake the writer thread for, not 1 + one per scalar.
        summary.value.extend(value for tag, v in scalars.items() for value in scalar_summary(tag, v).value)
        if self.detector is not None:
            status = self.detector.status(self.step_unit)
            summary.value.extend(alarm_status_summary(fmt.encode_alarm_status(**status), self.name,
                                                      self.step_unit).value)
        out.add_summary(summary, step)
        image_tag = fmt.probe_tag(self.name)
        if image_tag not in out.tags:
            images = first_images(self.probe, self.probe_images) if self.probe is not None else None
            if images is not None:
                out.add_summary(probe_summary(images, self.name, self.step_unit), step)
            out.tags.add(image_tag)
        out.flush()
        self._pending_alarm = None  # written once the flush went through

    @property
    def alarm(self) -> Alarm | None:
        """The NAS overfitting alarm once it has fired (``detect=True``), else None."""
        return self.detector.alarm if self.detector is not None else None

    @property
    def alarm_status(self) -> dict | None:
        """What the alarm can say at the latest log (``detect=True``; else None): ``{state, message,
        epochs_needed, onset, alarm}``, state one of warming_up, watching, fired, cannot_judge
        (:meth:`OverfitDetector.status`). It is written to the event file at every log."""
        return self.detector.status(self.step_unit) if self.detector is not None else None

    def flush(self) -> None:
        """Flush the writer; nothing to do after :meth:`close`."""
        if not self._closed:
            self._flush()

    def _flush(self) -> None:
        if self._out is not None:
            try:
                self._out.flush()
            except OSError as e:
                self._out.failed(f"flushing NAS summaries to {self.log_dir!r} failed: {e}")

    def close(self) -> None:
        """Remove the probe-capture hook and flush; closes the writer if the monitor opened it. Later
        ``log`` calls raise; ``flush`` and ``close`` do nothing."""
        if self._closed:
            return
        self._closed = True
        namespaces.release(self)
        if self._capture is not None:
            self._capture.remove()
            self._capture = None
        self._source.close()
        self._tap.guarded_forwards.remove()
        self._flush()
        if self._out is not None:
            self._out.close()

    def __enter__(self) -> "Monitor":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def watch(
    model: nn.Module,
    log_dir: str | os.PathLike | SummaryWriter,
    probe: Any = None,
    *,
    layers: LayerChoice = None,
    heatmap_side: int = fmt.MAX_HEATMAP_SIDE,
    max_probe: int = MAX_PROBE,
    probe_images: int = PROBE_IMAGES,
    detect: bool | OverfitDetector = False,
    statistics: str = "probe",
    ranks: str = "0",
    bins: int = DEFAULT_BINS,
    stream_every: int = 1,
    name: str | None = None,
    step_unit: str = fmt.DEFAULT_STEP_UNIT,
) -> Monitor:
    """Watch every Conv1d/2d/3d and Linear layer of ``model`` (or ``layers=[names, globs, modules]``)
    and return a :class:`Monitor` whose ``log(step, test_loss=...)`` writes NAS summaries to ``log_dir``
    (a directory or an existing ``SummaryWriter``).

    ``probe``: a tensor, an (inputs, targets) batch, a DataLoader or a dict of keyword tensors; if
    omitted, the model's first call is captured whole, every argument (tensors detached and copied, those
    with the batch along dim 0 cut to ``max_probe=64`` samples) and replayed at every ``log``.
    ``layers=[]`` raises ValueError; ``ranks="all"`` needs torch.distributed initialised first.
    Other options: ``heatmap_side`` (default 64), the largest side a stored heatmap keeps;
    ``probe_images`` (default 4): heatmaps and probe images are written for the probe's first that many
    samples, so the NAS tab can switch between them;
    ``statistics="stream"`` (histograms over the training batches instead of a probe; ``bins``,
    ``stream_every``); ``ranks="all"`` (merge all ranks' histograms under torch.distributed);
    ``detect=True`` (or an :class:`~nas_logger.detector.OverfitDetector`) runs the NAS-only overfitting
    detector at every ``log`` and writes its alarm once, as ``nas/overfit_alarm``; ``monitor.alarm``.
    ``name``: several monitors per run (a GAN's two models on one log dir or ``SummaryWriter``): a
    name that prefixes this monitor's layers (``D/conv1``) and tags; by default the run's first open
    monitor has none and every other one its model's class name (``monitor.name``).
    ``step_unit`` (default ``"epoch"``): what the ``step`` of ``log`` counts, e.g. ``"global step"`` when
    logging every N optimiser steps; the NAS tab labels its step axes, tooltips and CSV with it.
    The keywords are checked together as a :class:`~nas_logger.options.WatchOptions` (ValueError naming
    the bad value) before the model is touched. ``log`` may be called from another thread than the
    training loop: its probe pass and the model's forwards never overlap.
    """
    options = WatchOptions(layers=layers, heatmap_side=heatmap_side, max_probe=max_probe, probe_images=probe_images,
                           detect=detect, statistics=statistics, ranks=ranks, bins=bins, stream_every=stream_every,
                           name=name, step_unit=step_unit)
    return Monitor(model, log_dir, probe, options)
