from .attention import ChannelAttention, SpatialAttention, StageAttention
from .backbones import SAMResNet
from .data_preprocessors import StackedPoseDataPreprocessor, stack_collate
from .heads import BilinearHeatmapHead

__all__ = [
    'SAMResNet', 'BilinearHeatmapHead', 'StageAttention', 'ChannelAttention', 'SpatialAttention',
    'StackedPoseDataPreprocessor', 'stack_collate'
]
