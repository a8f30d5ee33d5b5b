"""nas-tensorboard's logging SDK: Neural Activation Sparsity (NAS) for PyTorch, written for TensorBoard.

    monitor = nas_logger.watch(model, "runs/exp1")
    monitor.log(epoch, test_loss=test_loss)

The torch-based names (``watch``, ``Monitor``, ``NASReg``, the sparsity functions) are imported on first
use, so that the TensorBoard plugin, which reads the shared format and detector modules only, does not
load torch into the TensorBoard process (hundreds of MiB of resident memory).
"""
import importlib

from .detector import Alarm, OverfitDetector, loss_minimum_step, nas_alarm
from .format import LayerInfo

_LAZY = {
    "Monitor": "monitor", "watch": "monitor", "NASReg": "nasreg", "WatchOptions": "options",
    "entropy": "sparsity", "nas_sparsity": "sparsity", "perplexity": "sparsity",
}

__all__ = [
    "Alarm", "LayerInfo", "Monitor", "NASReg", "OverfitDetector", "WatchOptions", "entropy", "loss_minimum_step",
    "nas_alarm", "nas_sparsity", "perplexity", "watch",
]
__version__ = "0.2.0"


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
