"""The paper's attention module: channel attention, then spatial attention, then a residual add.

Tran et al., "Efficient Spatial-Attention module for human pose estimation" (Sec. 3.1, Fig. 2).
The module sits after a ResNet stage; it follows CBAM (channel then spatial, combined by
element-wise multiplication) with two differences the paper makes: the spatial map is pooled by
channel *average* only, and its 7x7 conv is replaced by two 3x3 convs.
"""
from typing import Sequence

import torch
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmpose.registry import MODELS

SPATIAL_KERNELS = ('3x3+3x3', '3x3//3x3', '7x7')
SPATIAL_POOLINGS = ('avg', 'avg+max')


def _check_choice(name: str, value, allowed: Sequence) -> None:
    if value not in allowed:
        raise ValueError(f'{name} must be one of {", ".join(map(repr, allowed))}, got {value!r}')


@MODELS.register_module()
class ChannelAttention(BaseModule):
    """Squeeze-and-excitation style channel gate: GAP -> 1x1 conv C->C/r -> ReLU -> 1x1 conv
    C/r->C -> sigmoid, multiplied onto the input.

    Args:
        channels (int): Number of input (and output) channels ``C``.
        ratio (int): Reduction ratio ``r`` of the bottleneck. The paper uses 16.
    """

    def __init__(self, channels: int, ratio: int = 16):
        super().__init__()
        if not isinstance(ratio, int) or ratio < 1 or channels % ratio:
            raise ValueError(f'ratio must be a positive integer dividing channels={channels}, '
                             f'got {ratio!r}')
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.squeeze = ConvModule(channels, channels // ratio, 1, act_cfg=dict(type='ReLU'))
        self.excite = ConvModule(channels // ratio, channels, 1, act_cfg=dict(type='Sigmoid'))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.excite(self.squeeze(self.pool(x)))


@MODELS.register_module()
class SpatialAttention(BaseModule):
    """Spatial gate: pool over channels -> conv(s) -> sigmoid, multiplied onto the input.

    Args:
        kernel (str): The conv stack on the pooled map, the variants of the paper's Table 1:

            - ``'3x3+3x3'``: two 3x3 convs in sequence (the paper's choice, after VGG: the
              receptive field of a 5x5 conv with fewer weights). The paper names no activation
              between them and none is used: a ReLU on a one-channel map dies easily.
            - ``'3x3//3x3'``: two 3x3 convs in parallel, summed.
            - ``'7x7'``: one 7x7 conv, as in CBAM and the authors' earlier attention module.
        pooling (str): ``'avg'`` (the paper: channel average, an H x W x 1 map) or
            ``'avg+max'`` (CBAM: average and max maps stacked, H x W x 2).

    The sigmoid is the submodule ``gate``: a forward hook on it sees the attention map itself
    (``tools/visualize_attention.py`` uses this).
    """

    def __init__(self, kernel: str = '3x3+3x3', pooling: str = 'avg'):
        super().__init__()
        _check_choice('kernel', kernel, SPATIAL_KERNELS)
        _check_choice('pooling', pooling, SPATIAL_POOLINGS)
        self.kernel, self.pooling = kernel, pooling
        in_channels = 1 if pooling == 'avg' else 2
        if kernel == '7x7':
            self.convs = nn.Conv2d(in_channels, 1, 7, padding=3)
        elif kernel == '3x3+3x3':
            # No ReLU between the two: on a one-channel map it dies easily (seen here with default
            # init: zero output everywhere, a constant gate, no gradient to the first conv).
            self.convs = nn.Sequential(
                nn.Conv2d(in_channels, 1, 3, padding=1), nn.Conv2d(1, 1, 3, padding=1))
        else:
            self.convs = _ParallelSum(
                nn.Conv2d(in_channels, 1, 3, padding=1), nn.Conv2d(in_channels, 1, 3, padding=1))
        self.gate = nn.Sigmoid()

    def pool(self, x: Tensor) -> Tensor:
        mean = x.mean(dim=1, keepdim=True)
        return mean if self.pooling == 'avg' else torch.cat([mean, x.amax(1, keepdim=True)], 1)

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gate(self.convs(self.pool(x)))


class _ParallelSum(nn.ModuleList):
    """Applies every branch to the same input and sums the outputs."""

    def __init__(self, *branches: nn.Module):
        super().__init__(branches)

    def forward(self, x: Tensor) -> Tensor:
        return sum(branch(x) for branch in self)


@MODELS.register_module()
class StageAttention(BaseModule):
    """The paper's attention module (AT) after one backbone stage:
    ``out = x + spatial(channel(x))``.

    Args:
        channels (int): Channels of the stage output.
        ratio (int): Channel-attention reduction ratio. Defaults to 16 (the paper).
        spatial_kernel (str): See :class:`SpatialAttention`. Defaults to ``'3x3+3x3'``.
        spatial_pooling (str): See :class:`SpatialAttention`. Defaults to ``'avg'``.
        residual (bool): Add the stage output back (the paper). ``False`` returns the attended
            features alone, for ablation. Defaults to ``True``.
        identity_init (bool): Scale the attended branch by a learnable scalar that starts at 0, so
            the module is an exact identity at initialisation and pretrained ResNet features pass
            through unchanged; the network then learns how much attention to add. Needs
            ``residual=True``. Defaults to ``False`` (the paper's plain add).
    """

    def __init__(self,
                 channels: int,
                 ratio: int = 16,
                 spatial_kernel: str = '3x3+3x3',
                 spatial_pooling: str = 'avg',
                 residual: bool = True,
                 identity_init: bool = False):
        super().__init__()
        if identity_init and not residual:
            raise ValueError('identity_init=True needs residual=True: without the residual add '
                             'a sigmoid gate cannot be an identity')
        self.out_channels = channels  # MMPose's ResNet reads it off each stage's last module
        self.channel = ChannelAttention(channels, ratio)
        self.spatial = SpatialAttention(spatial_kernel, spatial_pooling)
        self.residual = residual
        self.scale = nn.Parameter(torch.zeros(1)) if identity_init else None

    def forward(self, x: Tensor) -> Tensor:
        attended = self.spatial(self.channel(x))
        if self.scale is not None:
            attended = attended * self.scale
        return x + attended if self.residual else attended
