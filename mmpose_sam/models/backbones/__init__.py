from mmpose_sam.models.backbones.attention_backbones import (AttentionHRNet, AttentionResNet,
                                                             AttentionResNetV1d, AttentionResNeXt,
                                                             AttentionSEResNet)
from mmpose_sam.models.backbones.sam_resnet import SAMResNet

__all__ = [
    'SAMResNet', 'AttentionResNet', 'AttentionResNetV1d', 'AttentionResNeXt', 'AttentionSEResNet',
    'AttentionHRNet'
]
