"""ResNet with the paper's attention module after each stage (Fig. 1 of Tran et al.)."""
from typing import Sequence

from mmpose.registry import MODELS
from mmpose_sam.models.backbones.attention_backbones import AttentionResNet


@MODELS.register_module()
class SAMResNet(AttentionResNet):
    """ResNet whose stages each end in a :class:`~mmpose_sam.models.StageAttention` (channel
    attention, then spatial attention, then a residual add of the stage output): the paper's
    backbone, with the module's options as arguments of their own.

    ``SAMResNet(depth, spatial_kernel=k, attention_ratio=r)`` is
    ``AttentionResNet(depth, attention=dict(type='StageAttention', spatial_kernel=k, ratio=r))``
    (:class:`~mmpose_sam.models.backbones.attention_backbones.AttentionResNet`): everything else
    is MMPose's :class:`~mmpose.models.backbones.ResNet` (depths, ``out_indices``,
    ``frozen_stages``, ``norm_eval``, ``with_cp``). The attention module is the last element of
    its stage's ``ResLayer`` (``layer1.3`` for ResNet-50), so ResNet's parameter names are
    unchanged and ImageNet weights
    (``init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')``) load as they are,
    with only the attention modules missing, reported in one log line.

    Args:
        depth (int): ResNet depth, e.g. 50 or 101.
        attention_stages (Sequence[int]): Indices of the stages followed by attention.
            Defaults to all four, ``(0, 1, 2, 3)``, as in the paper.
        attention_ratio (int): Channel-attention reduction ratio ``r``. Defaults to 16.
        spatial_kernel (str): ``'3x3+3x3'`` (paper), ``'3x3//3x3'`` or ``'7x7'``.
        spatial_pooling (str): ``'avg'`` (paper) or ``'avg+max'`` (CBAM).
        attention_residual (bool): Residual add of the stage output. Defaults to ``True``.
        identity_init (bool): Start each attention module as an exact identity (see
            :class:`~mmpose_sam.models.StageAttention`), useful when fine-tuning from ImageNet
            weights. Defaults to ``False``.
        **kwargs: Passed to MMPose's ``ResNet``.

    Example:
        >>> import torch
        >>> from mmpose_sam.models import SAMResNet
        >>> model = SAMResNet(depth=50, out_indices=(0, 1, 2, 3))
        >>> model.eval()
        >>> [tuple(o.shape) for o in model(torch.rand(1, 3, 256, 192))]
        [(1, 256, 64, 48), (1, 512, 32, 24), (1, 1024, 16, 12), (1, 2048, 8, 6)]
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
