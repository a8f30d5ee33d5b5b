"""Hugging Face transformers: ``Trainer(..., callbacks=[NASTrainerCallback()])`` logs NAS at every evaluation."""
from __future__ import annotations

import os
from typing import Any

from transformers import TrainerCallback

from ..monitor import Monitor, watch
from .rewind import DEFAULT_KEEP
from .stopping import AlarmStop


class NASTrainerCallback(TrainerCallback):
    """Watches the model when training begins and logs at every evaluation, with ``eval_loss`` as the
    test loss, at step ``state.global_step``. ``log_dir`` defaults to ``<args.logging_dir>/nas`` (or
    ``<args.output_dir>/nas``). Other keyword arguments go to :func:`nas_logger.watch`; the probe
    defaults to the first training batch's first tensor input, ``step_unit`` to ``"global step"`` (what
    ``state.global_step`` counts: optimiser steps, whatever the evaluation strategy).

    ``stop_on_alarm=True`` turns the NAS alarm on and sets ``control.should_training_stop`` when it fires;
    ``restore="onset"`` then loads the weights of the evaluation where the climb became significant, kept on the CPU for the
    last ``keep`` evaluations (``keep`` copies of the state dict; see ``nas_logger.integrations.rewind``)."""

    def __init__(self, log_dir: str | os.PathLike | None = None, *, stop_on_alarm: bool = False,
                 restore: str | None = None, keep: int = DEFAULT_KEEP, **watch_options: Any) -> None:
        self.log_dir = log_dir
        self.stop = AlarmStop(stop_on_alarm, restore, keep)
        self.watch_options = self.stop.watch_options({"step_unit": "global step", **watch_options})
        self.monitor: Monitor | None = None
        self.model: Any = None

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        if not state.is_world_process_zero:
            return
        log_dir = self.log_dir or os.path.join(getattr(args, "logging_dir", None) or args.output_dir, "nas")
        self.monitor = watch(model, log_dir, **self.watch_options)
        self.model = model

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: dict | None = None, **kwargs: Any) -> None:
        if self.monitor is None or not self.monitor.ready:
            return
        loss = (metrics or {}).get("eval_loss")
        self.monitor.log(int(state.global_step), test_loss=loss)
        model = kwargs.get("model")
        if self.stop.after_log(self.monitor, self.model if model is None else model, int(state.global_step)):
            control.should_training_stop = True

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.monitor is not None:
            self.monitor.close()
            self.monitor = None
