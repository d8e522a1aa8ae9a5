from .attention import (CBAM, AttentionModule, ChannelAttention, SEAttention, SpatialAttention,
                        StageAttention)
from .backbones import (AttentionHRNet, AttentionResNet, AttentionResNetV1d, AttentionResNeXt,
                        AttentionSEResNet, SAMResNet)
from .data_preprocessors import StackedPoseDataPreprocessor, stack_collate
from .heads import BilinearHeatmapHead

__all__ = [
    'SAMResNet', 'BilinearHeatmapHead', 'StageAttention', 'ChannelAttention', 'SpatialAttention',
    'AttentionModule', 'CBAM', 'SEAttention', 'AttentionResNet', 'AttentionResNetV1d',
    'AttentionResNeXt', 'AttentionSEResNet', 'AttentionHRNet', 'StackedPoseDataPreprocessor',
    'stack_collate'
]
