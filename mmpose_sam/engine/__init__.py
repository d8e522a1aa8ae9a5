"""Runner hooks, registered into ``mmpose.registry.HOOKS``, and our training loop
(``mmpose.registry.LOOPS``)."""
from .channels_last_hook import ChannelsLastHook
from .checkpoint_hook import CheckpointHook
from .device_setup_hook import DeviceSetupHook, UnusableGPUError, require_usable_gpu
from .divergence_hook import DivergenceError, DivergenceHook
from .lazy_runtime_info_hook import LazyRuntimeInfoHook
from .loops import DataLoaderWorkerDiedError, WorkerSafeEpochBasedTrainLoop
from .preemption_hook import PreemptionHook
from .throughput_hook import TrainThroughputHook

__all__ = [
    'ChannelsLastHook', 'CheckpointHook', 'DataLoaderWorkerDiedError', 'DeviceSetupHook',
    'DivergenceError', 'DivergenceHook', 'LazyRuntimeInfoHook', 'PreemptionHook',
    'TrainThroughputHook', 'UnusableGPUError', 'WorkerSafeEpochBasedTrainLoop',
    'require_usable_gpu'
]
