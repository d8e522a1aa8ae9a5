"""Hooks and a loop that make a run fail safely: a GPU torch cannot use, a diverged loss, a
preemption signal, a killed data loader worker, a save interrupted halfway. Registered into
MMPose's ``HOOKS`` and ``LOOPS``; our configs choose them by name."""
from mmpose_sam.reliability.hooks.checkpoint_hook import AtomicCheckpointHook
from mmpose_sam.reliability.hooks.device_setup_hook import DeviceSetupHook
from mmpose_sam.reliability.hooks.divergence_hook import DivergenceError, DivergenceHook
from mmpose_sam.reliability.hooks.loops import WorkerSafeEpochBasedTrainLoop
from mmpose_sam.reliability.hooks.preemption_hook import PreemptionHook

__all__ = [
    'AtomicCheckpointHook', 'DeviceSetupHook', 'DivergenceError', 'DivergenceHook',
    'PreemptionHook', 'WorkerSafeEpochBasedTrainLoop'
]
