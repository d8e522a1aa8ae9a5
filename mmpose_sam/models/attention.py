"""Attention modules that a backbone places after its stages, built from the config's
``attention=dict(type=...)`` (README "The model"): the paper's :class:`StageAttention` and the
controls :class:`CBAM` and :class:`SEAttention`. Every one is an :class:`AttentionModule`, which
is how the tools find them in any backbone.
"""
import re
from typing import Iterable, Optional, Sequence, Tuple

import torch
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmpose.models.backbones.utils import SELayer
from mmpose.registry import MODELS

SPATIAL_KERNELS = ('3x3+3x3', '3x3//3x3', '7x7')
SPATIAL_POOLINGS = ('avg', 'avg+max')
# Every AttentionModule keeps its weights under children named `channel` and/or `spatial`, so that
# a checkpoint's attention tensors are recognisable from their keys alone (no model needed).
_ATTENTION_KEY = re.compile(r'^(.*?\.)(?:channel|spatial)\.')


def check_choice(name: str, value, allowed: Sequence) -> None:
    if value not in allowed:
        raise ValueError(f'{name} must be one of {", ".join(map(repr, allowed))}, got {value!r}')


def _check_ratio(channels: int, ratio) -> None:
    if not isinstance(ratio, int) or ratio < 1 or channels % ratio:
        raise ValueError(f'ratio must be a positive integer dividing channels={channels}, '
                         f'got {ratio!r}')


def attention_key_prefixes(keys: Iterable[str]) -> Tuple[str, ...]:
    """Prefixes (``'backbone.layer1.3.'``) of the attention modules whose tensors are among the
    state dict ``keys``: the parents of ``channel``/``spatial`` children."""
    return tuple(sorted({match.group(1) for match in map(_ATTENTION_KEY.match, keys) if match}))


class AttentionModule(BaseModule):
    """Base class of the modules a backbone places after a stage: ``(N, C, H, W)`` in, the same
    shape out. Subclasses keep their weights under children named ``channel`` and/or ``spatial``
    (:func:`attention_key_prefixes` relies on it; :attr:`spatial_gate`, the submodule whose
    output is the ``(N, 1, H, W)`` map, is the ``gate`` of the ``spatial`` child, if any) and
    provide :meth:`elementwise_ops` and :attr:`label` (``'sam-3x3+3x3'``, ``'cbam'``, ``'se'``).
    The backbone sets ``stage`` (1-based) and ``branch`` (0-based resolution branch, or ``None``).

    Args:
        channels (int): Channels ``C`` of the stage output.
        init_cfg (dict, optional): MMEngine initialisation config.
    """
    stage: Optional[int] = None
    branch: Optional[int] = None

    def __init__(self, channels: int, init_cfg: Optional[dict] = None):
        super().__init__(init_cfg)
        self.out_channels = channels  # MMPose's ResNet reads it off each stage's last module

    @property
    def spatial_gate(self) -> Optional[nn.Module]:
        return getattr(getattr(self, 'spatial', None), 'gate', None)

    @property
    def label(self) -> str:
        raise NotImplementedError

    def elementwise_ops(self, shape: Tuple[int, ...]) -> int:
        """Element-wise ops on an ``N x C x H x W`` input that neither MAC counter of
        :mod:`toolkit.analysis` includes, one op per element per operation."""
        raise NotImplementedError


@MODELS.register_module()
class ChannelAttention(SELayer):
    """The paper's channel attention: MMPose's squeeze-and-excitation ``SELayer``, ratio checked.

    Args:
        channels (int): Number of input (and output) channels ``C``.
        ratio (int): Reduction ratio ``r`` of the bottleneck. The paper uses 16.
    """

    def __init__(self, channels: int, ratio: int = 16):
        _check_ratio(channels, ratio)
        super().__init__(channels, ratio)
        self.ratio = ratio

    def elementwise_ops(self, shape: Tuple[int, ...]) -> int:
        """ReLU on the ``C/r`` squeeze, sigmoid on the ``C`` gate, ``x * gate`` over ``C*H*W``
        (the global average pool is not here: FlopAnalyzer counts it)."""
        batch, channels, height, width = shape
        return batch * (channels // self.ratio + channels + channels * height * width)


@MODELS.register_module()
class SpatialAttention(BaseModule):
    """Spatial gate: pool over channels -> conv(s) -> sigmoid, multiplied onto the input.

    Args:
        kernel (str): The convs on the pooled map (the paper's Table 1): ``'3x3+3x3'`` (two in
            sequence, the paper's), ``'3x3//3x3'`` (two in parallel, summed) or ``'7x7'``.
        pooling (str): ``'avg'`` (the paper: channel average) or ``'avg+max'`` (CBAM).

    The sigmoid is the submodule ``gate``, so a forward hook on it sees the map itself.
    """

    def __init__(self, kernel: str = '3x3+3x3', pooling: str = 'avg'):
        super().__init__()
        check_choice('kernel', kernel, SPATIAL_KERNELS)
        check_choice('pooling', pooling, SPATIAL_POOLINGS)
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
class StageAttention(AttentionModule):
    """The paper's attention module (AT) after one backbone stage:
    ``out = x + spatial(channel(x))``.

    Args:
        channels (int): Channels of the stage output.
        ratio (int): Channel-attention reduction ratio. Defaults to 16 (the paper).
        spatial_kernel (str): See :class:`SpatialAttention`. Defaults to ``'3x3+3x3'``.
        spatial_pooling (str): See :class:`SpatialAttention`. Defaults to ``'avg'``.
        residual (bool): Add the stage output back (the paper). ``False`` returns the attended
            features alone, for ablation. Defaults to ``True``.
        identity_init (bool): Scale the attended branch by a learnable scalar that starts at 0:
            an exact identity at initialisation, so pretrained features pass through unchanged.
            Needs ``residual=True``. Defaults to ``False`` (the paper's plain add).
    """

    def __init__(self,
                 channels: int,
                 ratio: int = 16,
                 spatial_kernel: str = '3x3+3x3',
                 spatial_pooling: str = 'avg',
                 residual: bool = True,
                 identity_init: bool = False):
        super().__init__(channels)
        if identity_init and not residual:
            raise ValueError('identity_init=True needs residual=True: without the residual add '
                             'a sigmoid gate cannot be an identity')
        self.channel = ChannelAttention(channels, ratio)
        self.spatial = SpatialAttention(spatial_kernel, spatial_pooling)
        self.residual = residual
        self.scale = nn.Parameter(torch.zeros(1)) if identity_init else None

    @property
    def label(self) -> str:
        return f'sam-{self.spatial.kernel}'

    def forward(self, x: Tensor) -> Tensor:
        attended = self.spatial(self.channel(x))
        if self.scale is not None:
            attended = attended * self.scale
        return x + attended if self.residual else attended

    def elementwise_ops(self, shape: Tuple[int, ...]) -> int:
        """The channel gate's (:meth:`ChannelAttention.elementwise_ops`); the spatial gate's
        channel mean over ``C*H*W`` (plus the channel max for ``avg+max``), the sum of the two
        ``3x3//3x3`` branches (and, as counted since the first version, one op per pixel between
        the two ``3x3+3x3`` convs) over ``H*W``, its sigmoid over ``H*W`` and ``x * gate`` over
        ``C*H*W``; then the learnable scale (``identity_init``) and the residual add, ``C*H*W``
        each. Conv biases are left out, as both counters leave them out everywhere."""
        batch, channels, height, width = shape
        chw, hw = channels * height * width, height * width
        spatial = self.spatial
        ops = chw * (2 if spatial.pooling == 'avg+max' else 1)  # channel pooling
        ops += hw if spatial.kernel in ('3x3+3x3', '3x3//3x3') else 0
        ops += hw + chw  # spatial sigmoid and multiply
        ops += chw * ((self.scale is not None) + self.residual)
        return self.channel.elementwise_ops(shape) + batch * ops


class _CBAMChannelGate(BaseModule):
    """CBAM's channel gate: one bias-free MLP (1x1 convs C->C/r->C) on the average- and the
    max-pooled input, the two outputs summed, sigmoid, multiplied onto the input (timm's
    ``ChannelAttn``)."""

    def __init__(self, channels: int, ratio: int):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels // ratio, 1, bias=False)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(channels // ratio, channels, 1, bias=False)
        self.gate = nn.Sigmoid()

    def forward(self, x: Tensor) -> Tensor:
        average = self.fc2(self.act(self.fc1(x.mean((2, 3), keepdim=True))))
        peak = self.fc2(self.act(self.fc1(x.amax((2, 3), keepdim=True))))
        return x * self.gate(average + peak)


class _CBAMSpatialGate(BaseModule):
    """CBAM's spatial gate: channel average and max stacked, a 7x7 conv with batch norm, sigmoid,
    multiplied onto the input (timm's ``SpatialAttn``)."""

    def __init__(self, kernel_size: int):
        super().__init__()
        self.conv = ConvModule(2, 1, kernel_size, padding=kernel_size // 2,
                               norm_cfg=dict(type='BN'), act_cfg=None)
        self.gate = nn.Sigmoid()

    def forward(self, x: Tensor) -> Tensor:
        pooled = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1)
        return x * self.gate(self.conv(pooled))


@MODELS.register_module()
class CBAM(AttentionModule):
    """CBAM (Woo et al., ECCV 2018), the control the paper's module derives from, after timm's
    ``layers/cbam.py``; no residual add (in CBAM the residual is the block's).

    Args:
        channels (int): Channels of the stage output.
        ratio (int): Reduction ratio of the channel MLP. Defaults to 16 (CBAM, and the paper).
        spatial_kernel_size (int): Odd kernel size of the spatial conv. Defaults to 7.
    """

    label = 'cbam'

    def __init__(self, channels: int, ratio: int = 16, spatial_kernel_size: int = 7):
        super().__init__(channels)
        _check_ratio(channels, ratio)
        if not isinstance(spatial_kernel_size, int) or spatial_kernel_size % 2 == 0:
            raise ValueError(f'spatial_kernel_size must be an odd integer, got '
                             f'{spatial_kernel_size!r}')
        self.ratio = ratio
        self.channel = _CBAMChannelGate(channels, ratio)
        self.spatial = _CBAMSpatialGate(spatial_kernel_size)

    def forward(self, x: Tensor) -> Tensor:
        return self.spatial(self.channel(x))

    def elementwise_ops(self, shape: Tuple[int, ...]) -> int:
        """Channel gate: mean and max over ``C*H*W``, the MLP's two ReLUs over ``C/r``, the sum
        and the sigmoid over ``C``, ``x * gate`` over ``C*H*W``; spatial gate: mean and max over
        ``C*H*W``, sigmoid over ``H*W``, ``x * gate`` over ``C*H*W`` (its batch norm is counted
        by FlopAnalyzer)."""
        batch, channels, height, width = shape
        chw = channels * height * width
        return batch * (6 * chw + 2 * (channels // self.ratio) + 2 * channels + height * width)


@MODELS.register_module()
class SEAttention(AttentionModule):
    """The squeeze-and-excitation channel gate alone (Hu et al., CVPR 2018) after a stage: the
    paper's module without its spatial attention and residual add.

    Args:
        channels (int): Channels of the stage output.
        ratio (int): Reduction ratio. Defaults to 16.
    """

    label = 'se'

    def __init__(self, channels: int, ratio: int = 16):
        super().__init__(channels)
        self.channel = ChannelAttention(channels, ratio)

    def forward(self, x: Tensor) -> Tensor:
        return self.channel(x)

    def elementwise_ops(self, shape: Tuple[int, ...]) -> int:
        return self.channel.elementwise_ops(shape)
