"""What the trainer callbacks share: when to stop at the NAS alarm and which weights to go back to."""
from __future__ import annotations

import logging

from torch import nn

from ..monitor import Monitor
from .rewind import DEFAULT_KEEP, Rewind

logger = logging.getLogger("nas_logger")
RESTORE_CHOICES = (None, "onset")


class AlarmStop:
    """After each log of ``monitor``: saves the weights (``restore="onset"``) and, once the alarm has fired and
    ``stop_on_alarm``, says to stop and loads the weights of the alarm's onset into the model."""

    def __init__(self, stop_on_alarm: bool = False, restore: str | None = None, keep: int = DEFAULT_KEEP) -> None:
        if restore not in RESTORE_CHOICES:
            raise ValueError(f"restore must be None or 'onset' (the weights where the NAS climb became significant); got {restore!r}")
        if restore is not None and not stop_on_alarm:
            raise ValueError("restore='onset' loads the onset's weights when training stops at the alarm: "
                             "it needs stop_on_alarm=True")
        if not isinstance(keep, int) or isinstance(keep, bool) or keep < 1:
            raise ValueError(f"keep must be an int >= 1 (state dicts held in CPU memory); got {keep!r}")
        self.stop_on_alarm, self.restore, self.keep = stop_on_alarm, restore, keep
        self.rewind: Rewind | None = None
        self.restored_step: int | None = None

    def watch_options(self, options: dict) -> dict:
        """``watch`` options with the detector on when stopping at the alarm."""
        return {**options, "detect": options.get("detect") or True} if self.stop_on_alarm else options

    def after_log(self, monitor: Monitor, model: nn.Module, step: int) -> bool:
        """Call after ``monitor.log(step)``; True when training should stop now (the onset's weights are loaded)."""
        if self.restore is not None:
            if self.rewind is None or self.rewind.model is not model:
                self.rewind = Rewind(model, self.keep)
            self.rewind.save(step)
        alarm = monitor.alarm
        if not self.stop_on_alarm or alarm is None:
            return False
        if self.rewind is not None and self.restored_step is None:
            self.restored_step = self.rewind.restore(alarm.onset)
            logger.warning("NAS alarm at step %d: training stops; weights of step %s loaded (the climb became significant at %s)",
                           alarm.step, self.restored_step, alarm.onset)
        return True
