"""Runner hooks, registered into ``mmpose.registry.HOOKS``."""
from .throughput_hook import TrainThroughputHook

__all__ = ['TrainThroughputHook']
