"""PyTorch Lightning: ``Trainer(callbacks=[NASCallback()])`` logs NAS after every validation epoch."""
from __future__ import annotations

import os
from typing import Any

import lightning.pytorch as pl

from ..monitor import Monitor, watch
from .rewind import DEFAULT_KEEP
from .stopping import AlarmStop


class NASCallback(pl.Callback):
    """Watches the LightningModule when fitting starts and logs at the end of every validation epoch,
    with the validation loss (``loss_key``, default ``val_loss`` in ``trainer.callback_metrics``) as
    the test loss.

    ``log_dir``: default the TensorBoardLogger's run (its SummaryWriter is shared) or else
    ``<trainer.default_root_dir>/nas``. Other keyword arguments go to :func:`nas_logger.watch`;
    ``step_unit`` defaults to ``"epoch"`` (it logs at ``trainer.current_epoch``).

    ``stop_on_alarm=True`` turns the NAS alarm on and sets ``trainer.should_stop`` when it fires;
    ``restore="onset"`` then loads the weights of the epoch where the climb became significant, kept on the CPU for the last
    ``keep`` validation epochs (``keep`` copies of the state dict; see ``nas_logger.integrations.rewind``).
    """

    def __init__(self, log_dir: str | os.PathLike | None = None, loss_key: str = "val_loss", *,
                 stop_on_alarm: bool = False, restore: str | None = None, keep: int = DEFAULT_KEEP,
                 **watch_options: Any) -> None:
        self.log_dir, self.loss_key = log_dir, loss_key
        self.stop = AlarmStop(stop_on_alarm, restore, keep)
        self.watch_options = self.stop.watch_options({"step_unit": "epoch", **watch_options})
        self.monitor: Monitor | None = None

    def _target(self, trainer: pl.Trainer) -> Any:
        if self.log_dir is not None:
            return self.log_dir
        from torch.utils.tensorboard import SummaryWriter

        experiment = getattr(trainer.logger, "experiment", None)
        if isinstance(experiment, SummaryWriter):
            return experiment
        return os.path.join(trainer.default_root_dir, "nas")

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.monitor = watch(pl_module, self._target(trainer), **self.watch_options)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.monitor is None or trainer.sanity_checking or not self.monitor.ready:
            return
        loss = trainer.callback_metrics.get(self.loss_key)
        self.monitor.log(trainer.current_epoch, test_loss=loss)
        if self.stop.after_log(self.monitor, pl_module, trainer.current_epoch):
            trainer.should_stop = True

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.monitor is not None:
            self.monitor.close()
            self.monitor = None
