"""``watch(model, log_dir)`` and ``monitor.log(step, test_loss=...)``: NAS logging in two lines."""
from __future__ import annotations

import logging
import os
import tempfile
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.tensorboard import SummaryWriter

from . import format as fmt
from .detector import Alarm, OverfitDetector
from .hooks import tap_for
from .layers import layer_kind, select_layers, unwrap
from .probe import MAX_PROBE, first_input, looks_like_image, probe_tensor, to_display_image
from .statistics import distribution, field_sparsity, heatmap
from .summaries import alarm_summary, nas_summary

logger = logging.getLogger(__name__)


def _is_writer_rank() -> bool:
    dist = torch.distributed
    return not (dist.is_available() and dist.is_initialized() and dist.get_rank() != 0)


def _open_writer(log_dir: str | os.PathLike) -> SummaryWriter:
    """A SummaryWriter on ``log_dir``, created if needed; OSError if it cannot be written."""
    path = Path(log_dir)
    path.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=path):
        pass
    return SummaryWriter(str(path))


class Monitor:
    """Writes NAS statistics of a model's layers to TensorBoard; create it with :func:`watch`.

    At each :meth:`log` the probe batch is run through the model (eval mode, no grad, the previous
    train/eval mode of every submodule restored afterwards) with temporary hooks on the watched
    layers; training forwards carry no hooks of the monitor's.
    """

    def __init__(
        self,
        model: nn.Module,
        log_dir: str | os.PathLike | SummaryWriter,
        probe: Any = None,
        layers: Iterable[str | nn.Module] | str | None = None,
        heatmap_side: int = fmt.MAX_HEATMAP_SIDE,
        max_probe: int = MAX_PROBE,
        detect: bool | OverfitDetector = False,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise ValueError(f"model must be a torch.nn.Module; got {type(model).__name__}")
        if heatmap_side < 1 or max_probe < 1:
            raise ValueError(
                f"heatmap_side and max_probe must be >= 1; got {heatmap_side} and {max_probe}"
            )
        self.model = unwrap(model)
        self._modules = select_layers(self.model, layers)
        self._kinds = {name: layer_kind(m) for name, m in self._modules.items()}
        self.heatmap_side = heatmap_side
        self.max_probe = max_probe
        self.detector = OverfitDetector() if detect is True else (detect or None)
        self.layers: dict[str, fmt.LayerInfo] = {}
        self._written_tags: set[str] = set()
        self._warned: set[str] = set()
        self._probe_image_written = False
        self._owns_writer = not isinstance(log_dir, SummaryWriter)
        self._writes = _is_writer_rank()
        self._io_warned = False
        self.writer: SummaryWriter | None = None
        if self._writes:
            if self._owns_writer:
                try:
                    self.writer = _open_writer(log_dir)
                except OSError as e:
                    raise ValueError(f"log_dir {str(log_dir)!r} is not writable: {e}") from None
            else:
                self.writer = log_dir
        self._log_dir = log_dir if self._owns_writer else log_dir.log_dir
        self._capture = None
        self.probe: torch.Tensor | None = None
        if probe is None:
            # No probe given: the first batch the model sees becomes the probe.
            self._capture = model.register_forward_pre_hook(self._capture_probe)
        else:
            self.probe = probe_tensor(probe, max_probe)
            self._check_probe()

    @property
    def log_dir(self) -> str:
        return str(self._log_dir)

    def _capture_probe(self, module: nn.Module, args: tuple) -> None:
        x = first_input(args)
        if x is not None:
            self.probe = x[: self.max_probe].detach().clone()
            self._capture.remove()
            self._capture = None

    def _check_probe(self) -> None:
        try:
            self._probe_pass()
        except Exception as e:
            raise ValueError(
                f"probe of shape {tuple(self.probe.shape)} and dtype {self.probe.dtype} cannot be fed to "
                f"{type(self.model).__name__}: {type(e).__name__}: {e}"
            ) from e

    def _device(self) -> torch.device:
        for p in self.model.parameters():
            return p.device
        return self.probe.device

    def _probe_pass(self) -> dict[str, tuple[torch.Tensor, torch.Tensor, int]]:
        """Run the probe; per executed layer (in execution order) its stats, heatmap and R."""
        results: dict[str, tuple[torch.Tensor, torch.Tensor, int]] = {}

        def consume(name: str, output: torch.Tensor) -> None:
            if name in results:  # a module called twice per forward: its first call counts
                return
            s = field_sparsity(output, self._kinds[name])
            results[name] = (distribution(s), heatmap(s[0], self.heatmap_side), s[0].numel())

        modes = {m: m.training for m in self.model.modules()}
        self.model.eval()
        try:
            with torch.no_grad(), tap_for(self.model).exclusive(consume, self._modules):
                self.model(self.probe.to(self._device()))
        finally:
            for m, training in modes.items():
                m.training = training
        return results

    def log(self, step: int, test_loss: float | torch.Tensor | None = None, **scalars: Any) -> dict[str, float]:
        """Evaluate the probe and write every watched layer's NAS statistics and heatmap at ``step``.

        ``test_loss`` and the keyword ``scalars`` are written as ordinary TensorBoard scalars. Ends with
        a flush, so a crash later loses nothing written here. Returns the median NAS per layer.
        Only rank 0 of a distributed job writes; other ranks return an empty dict.
        """
        if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 0:
            raise ValueError(f"step must be a non-negative int; got {step!r}")
        if not self._writes:
            return {}
        if self.probe is None:
            raise RuntimeError(
                "no probe yet: pass probe= to watch() or run one forward pass of the model before log()"
            )
        results = self._probe_pass()
        for name, (_, _, fields) in results.items():
            if name not in self.layers:
                kind = self._kinds[name]
                filters = self._modules[name].weight.shape[0]
                self.layers[name] = fmt.LayerInfo(name, kind, filters, fields, len(self.layers))
        # One device-to-host copy for all layers.
        flat = torch.cat([t.reshape(-1) for st, hm, _ in results.values() for t in (st, hm)]).cpu().numpy()
        records: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        offset = 0
        for name, (st, hm, _) in results.items():
            stats = flat[offset : offset + st.numel()]
            offset += st.numel()
            grid = flat[offset : offset + hm.numel()].reshape(hm.shape)
            offset += hm.numel()
            if not np.isfinite(stats).all():
                stats = np.full_like(stats, np.nan)
                if name not in self._warned:
                    self._warned.add(name)
                    warnings.warn(
                        f"NAS of layer {name!r} is not finite at step {step}: its pre-activations hold "
                        "NaN or inf; its statistics are written as NaN",
                        RuntimeWarning,
                        stacklevel=2,
                    )
            records[name] = (stats, grid)
        medians = {name: float(stats[fmt.STAT_FIELDS.index("median")]) for name, (stats, _) in records.items()}
        alarm = self.detector.update(int(step), medians) if self.detector is not None else None
        if test_loss is not None:
            scalars = {"test_loss": test_loss, **scalars}
        try:
            self._write(int(step), records, alarm, {tag: float(v) for tag, v in scalars.items()})
        except OSError as e:  # disk full, log dir gone, ...: training must go on
            self._write_failed(f"writing NAS summaries to {self.log_dir!r} failed at step {step}: {e}")
        return medians

    def _live_writer(self) -> SummaryWriter:
        """The writer, reopened (on a recreated directory) after a failure or a removed log dir."""
        if self._owns_writer and self.writer is not None and not os.path.isdir(self.writer.log_dir):
            self._write_failed(f"log_dir {self.log_dir!r} was removed while logging; it is created anew")
        if self.writer is None:
            self.writer = _open_writer(self._log_dir)
            self._written_tags.clear()
            self._probe_image_written = False
        return self.writer

    def _write(self, step: int, records: dict[str, tuple[np.ndarray, np.ndarray]], alarm: Alarm | None,
               scalars: dict[str, float]) -> None:
        writer = self._live_writer()
        file_writer = writer._get_file_writer()
        for name, (stats, grid) in records.items():
            info = self.layers[name]
            for record, values in ((fmt.STATS, stats), (fmt.HEATMAP, grid)):
                tag = fmt.tag_for(name, record)
                file_writer.add_summary(nas_summary(info, record, values, tag not in self._written_tags), step)
                self._written_tags.add(tag)
        if alarm is not None:
            file_writer.add_summary(alarm_summary(alarm.layers), global_step=step)
            logger.warning("NAS overfitting alarm at step %d, raised by layers %s", step, ", ".join(alarm.layers))
        if not self._probe_image_written and looks_like_image(self.probe[0]):
            writer.add_image(fmt.PROBE_IMAGE_TAG, to_display_image(self.probe[0]), step)
        self._probe_image_written = True
        for tag, value in scalars.items():
            writer.add_scalar(tag, value, step)
        writer.flush()

    def _write_failed(self, message: str) -> None:
        """Warn once per monitor; drop a writer we own so that the next log reopens it."""
        if not self._io_warned:
            self._io_warned = True
            warnings.warn(f"{message}; training goes on and the monitor retries at every log", RuntimeWarning, stacklevel=3)
        if self._owns_writer and self.writer is not None:
            try:
                self.writer.close()
            except OSError:
                pass
            self.writer = None

    @property
    def alarm(self) -> Alarm | None:
        """The NAS overfitting alarm once it has fired (``detect=True``), else None."""
        return self.detector.alarm if self.detector is not None else None

    def flush(self) -> None:
        if self.writer is not None:
            try:
                self.writer.flush()
            except OSError as e:
                self._write_failed(f"flushing NAS summaries to {self.log_dir!r} failed: {e}")

    def close(self) -> None:
        """Remove the probe-capture hook and flush; closes the writer if the monitor opened it."""
        if self._capture is not None:
            self._capture.remove()
            self._capture = None
        self.flush()
        if self.writer is not None and self._owns_writer:
            self.writer.close()
            self.writer = None

    def __enter__(self) -> "Monitor":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def watch(
    model: nn.Module,
    log_dir: str | os.PathLike | SummaryWriter,
    probe: Any = None,
    **options: Any,
) -> Monitor:
    """Watch every Conv1d/2d/3d and Linear layer of ``model`` (or ``layers=[names, globs, modules]``)
    and return a :class:`Monitor` whose ``log(step, test_loss=...)`` writes NAS summaries to ``log_dir``
    (a directory or an existing ``SummaryWriter``).

    ``probe``: a tensor, an (inputs, targets) batch or a DataLoader; if omitted, the first input the
    model sees is captured (up to ``max_probe=64`` samples, detached, on the model's device).
    Other options: ``heatmap_side`` (default 64), the largest side a stored heatmap keeps;
    ``detect=True`` (or an :class:`~nas_logger.detector.OverfitDetector`) runs the NAS-only overfitting
    detector at every ``log`` and writes its alarm once, as ``nas/overfit_alarm``; ``monitor.alarm``.
    """
    return Monitor(model, log_dir, probe=probe, **options)
