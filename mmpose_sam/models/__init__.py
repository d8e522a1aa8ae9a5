"""The paper's model: the spatial-attention module (:mod:`.attention`), backbones with it after
each stage (:mod:`.backbones`) and the bilinear-upsampling heatmap head (:mod:`.heads`)."""
from mmpose_sam.models.attention import (CBAM, AttentionModule, ChannelAttention, SEAttention,
                                         SpatialAttention, StageAttention)
from mmpose_sam.models.backbones import (AttentionHRNet, AttentionResNet, AttentionResNetV1d,
                                         AttentionResNeXt, AttentionSEResNet, SAMResNet)
from mmpose_sam.models.heads import BilinearHeatmapHead

__all__ = [
    'SAMResNet', 'BilinearHeatmapHead', 'StageAttention', 'ChannelAttention', 'SpatialAttention',
    'AttentionModule', 'CBAM', 'SEAttention', 'AttentionResNet', 'AttentionResNetV1d',
    'AttentionResNeXt', 'AttentionSEResNet', 'AttentionHRNet'
]
