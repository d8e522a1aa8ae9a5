"""ResNet with the paper's attention module after each stage."""
from typing import Sequence

from mmpose.registry import MODELS
from mmpose_sam.models.backbones.attention_backbones import AttentionResNet


@MODELS.register_module()
class SAMResNet(AttentionResNet):
    """The paper's backbone (README "The model"): ``SAMResNet(depth, spatial_kernel=k,
    attention_ratio=r)`` is ``AttentionResNet(depth, attention=dict(type='StageAttention',
    spatial_kernel=k, ratio=r))``, the module's options as arguments of their own.

    Args:
        depth (int): ResNet depth, e.g. 50 or 101.
        attention_stages (Sequence[int]): Indices of the stages followed by attention.
            Defaults to all four, ``(0, 1, 2, 3)``, as in the paper.
        attention_ratio (int): Channel-attention reduction ratio ``r``. Defaults to 16.
        spatial_kernel (str): ``'3x3+3x3'`` (paper), ``'3x3//3x3'`` or ``'7x7'``.
        spatial_pooling (str): ``'avg'`` (paper) or ``'avg+max'`` (CBAM).
        attention_residual (bool): Residual add of the stage output. Defaults to ``True``.
        identity_init (bool): Start each attention module as an exact identity (see
            :class:`~mmpose_sam.models.StageAttention`). Defaults to ``False``.
        **kwargs: Passed to MMPose's ``ResNet``.
    """

    def __init__(self,
                 depth: int,
                 attention_stages: Sequence[int] = (0, 1, 2, 3),
                 attention_ratio: int = 16,
                 spatial_kernel: str = '3x3+3x3',
                 spatial_pooling: str = 'avg',
                 attention_residual: bool = True,
                 identity_init: bool = False,
                 **kwargs):
        attention = dict(
            type='StageAttention',
            ratio=attention_ratio,
            spatial_kernel=spatial_kernel,
            spatial_pooling=spatial_pooling,
            residual=attention_residual,
            identity_init=identity_init)
        super().__init__(depth, attention=attention, attention_stages=attention_stages, **kwargs)
