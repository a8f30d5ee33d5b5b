"""Stop at the NAS alarm and go back to the weights of the onset of the climb, for any training loop.

    rewind = Rewind(model, keep=8)
    for epoch in range(epochs):
        train_one_epoch(model)
        monitor.log(epoch, test_loss=evaluate(model))
        rewind.save(epoch)
        if monitor.alarm is not None:
            rewind.restore(monitor.alarm.onset)  # the weights of the epoch where the climb became significant
            break

Memory: ``keep`` copies of the model's state dict (parameters and buffers) in CPU memory, e.g. 8 x 44 MB for a
ResNet-18; :attr:`Rewind.nbytes` says how much is held.
"""
from __future__ import annotations

import logging
from collections import OrderedDict

import torch
from torch import nn

logger = logging.getLogger("nas_logger")

DEFAULT_KEEP = 8  # logged steps whose weights are kept: the onset is found a few epochs before the alarm


class Rewind:
    """The CPU state dicts of ``model`` at its last ``keep`` saved steps, to load one of them back."""

    def __init__(self, model: nn.Module, keep: int = DEFAULT_KEEP) -> None:
        if not isinstance(keep, int) or isinstance(keep, bool) or keep < 1:
            raise ValueError(f"keep must be an int >= 1 (state dicts held in CPU memory); got {keep!r}")
        self.model, self.keep = model, keep
        self._saved: OrderedDict[int, dict[str, torch.Tensor]] = OrderedDict()

    @property
    def steps(self) -> list[int]:
        """The saved steps, oldest first."""
        return list(self._saved)

    @property
    def nbytes(self) -> int:
        """CPU memory held by the saved state dicts, in bytes."""
        return sum(t.numel() * t.element_size() for state in self._saved.values() for t in state.values())

    def save(self, step: int) -> None:
        """Keep a CPU copy of the model's state dict as the weights of ``step``; the oldest beyond ``keep`` goes."""
        state = {k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()}
        self._saved.pop(int(step), None)
        self._saved[int(step)] = state
        while len(self._saved) > self.keep:
            self._saved.popitem(last=False)

    def restore(self, step: int | None) -> int | None:
        """Load the weights saved at ``step`` (the latest kept before it when it was not saved; the oldest kept
        when it is older than all, with a warning; ``step`` None: the oldest kept). Returns the step loaded, or
        None when nothing was saved."""
        if not self._saved:
            return None
        before = [s for s in self._saved if step is not None and s <= int(step)]
        chosen = max(before) if before else min(self._saved)
        if step is not None and not before:
            logger.warning("NAS alarm: the weights of step %s are no longer kept (kept: %s); loading step %d, the "
                           "oldest (a larger keep holds more)", step, ", ".join(map(str, self._saved)), chosen)
        self.model.load_state_dict(self._saved[chosen])
        return chosen
