"""Support, not the paper: the training and inference speed settings of our configs (README
"Training speed"), each a registered class that a config chooses by name."""
from mmpose_sam.speed.amp import BF16AmpOptimWrapper
from mmpose_sam.speed.channels_last_hook import ChannelsLastHook
from mmpose_sam.speed.ddp import AnyDeviceDistributedDataParallel
from mmpose_sam.speed.device_accuracy import (DeviceAccuracyHeatmapHead, DeviceAccuracyMixin,
                                              heatmap_pck_accuracy)
from mmpose_sam.speed.lazy_runtime_info_hook import LazyRuntimeInfoHook
from mmpose_sam.speed.stacked_batch import StackedPoseDataPreprocessor, stack_collate

__all__ = [
    'AnyDeviceDistributedDataParallel', 'BF16AmpOptimWrapper', 'ChannelsLastHook',
    'DeviceAccuracyHeatmapHead', 'DeviceAccuracyMixin', 'LazyRuntimeInfoHook',
    'StackedPoseDataPreprocessor', 'heatmap_pck_accuracy', 'stack_collate'
]
