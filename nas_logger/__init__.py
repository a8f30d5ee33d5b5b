"""nas-tensorboard's logging SDK: Neural Activation Sparsity (NAS) for PyTorch, written for TensorBoard.

    monitor = nas_logger.watch(model, "runs/exp1")
    monitor.log(epoch, test_loss=test_loss)
"""
from .detector import Alarm, OverfitDetector, generalisation_loss_stop, loss_minimum_step, nas_alarm
from .format import LayerInfo
from .monitor import Monitor, watch
from .nasreg import NASReg
from .sparsity import entropy, nas_sparsity, perplexity

__all__ = [
    "Alarm", "LayerInfo", "Monitor", "NASReg", "OverfitDetector", "entropy", "generalisation_loss_stop",
    "loss_minimum_step", "nas_alarm", "nas_sparsity", "perplexity", "watch",
]
__version__ = "0.1.0"
