"""Heatmap head that upsamples by bilinear interpolation + conv instead of transposed convs."""
from typing import Optional, Sequence, Union

from mmcv.cnn import ConvModule
from torch import nn

from mmpose.models.heads import HeatmapHead
from mmpose.registry import MODELS

from mmpose_sam.models.attention import check_choice
from mmpose_sam.speed.device_accuracy import DeviceAccuracyMixin

UPSAMPLE_ORDERS = ('upsample_first', 'conv_first')


@MODELS.register_module()
class BilinearHeatmapHead(DeviceAccuracyMixin, HeatmapHead):
    """SimpleBaseline's :class:`~mmpose.models.heads.HeatmapHead` with the paper's upsampling
    blocks, bilinear x2 -> conv -> BN -> ReLU, in place of its transposed convs
    (README "The model"). The blocks keep the parent's attribute name ``deconv_layers``; the
    rest (final convs, loss, flip test, decoding) is inherited, with
    :class:`~mmpose_sam.speed.device_accuracy.DeviceAccuracyMixin`.

    Args:
        in_channels (int | Sequence[int]): Channels of the input feature map.
        out_channels (int): Number of heatmaps (keypoints).
        upsample_out_channels (Sequence[int]): Output channels of each x2 upsampling block.
            Defaults to ``(256, 256, 256)``.
        upsample_kernel_sizes (Sequence[int]): Odd conv kernel size of each block.
            Defaults to ``(3, 3, 3)``.
        upsample_order (str): ``'upsample_first'`` (the paper) or ``'conv_first'`` (conv at the
            lower resolution: same parameters, about a quarter of the MACs).
        conv_out_channels (Sequence[int], optional): HeatmapHead's conv layers after the
            upsampling. Defaults to ``(256, )``: one 3x3 conv, which the paper's parameter
            counts imply (docs/parameter_counts.md). ``None`` for none.
        conv_kernel_sizes (Sequence[int], optional): Their kernel sizes. Defaults to ``(3, )``.
        **kwargs: Passed to :class:`~mmpose.models.heads.HeatmapHead` (``loss``, ``decoder``,
            ``init_cfg`` ...).
    """

    def __init__(self,
                 in_channels: Union[int, Sequence[int]],
                 out_channels: int,
                 upsample_out_channels: Sequence[int] = (256, 256, 256),
                 upsample_kernel_sizes: Sequence[int] = (3, 3, 3),
                 upsample_order: str = 'upsample_first',
                 conv_out_channels: Optional[Sequence[int]] = (256, ),
                 conv_kernel_sizes: Optional[Sequence[int]] = (3, ),
                 **kwargs):
        for name in ('deconv_out_channels', 'deconv_kernel_sizes'):
            if name in kwargs:
                raise ValueError(f'{type(self).__name__} has no {name}; use '
                                 f'{name.replace("deconv", "upsample")}')
        check_choice('upsample_order', upsample_order, UPSAMPLE_ORDERS)
        bad = [k for k in upsample_kernel_sizes if not (isinstance(k, int) and k > 0 and k % 2)]
        if bad:
            raise ValueError('upsample_kernel_sizes must be odd positive integers (padding k//2 '
                             f'keeps the size), got {tuple(upsample_kernel_sizes)}')
        self.upsample_order = upsample_order  # read by _make_deconv_layers in super().__init__
        super().__init__(
            in_channels,
            out_channels,
            deconv_out_channels=upsample_out_channels,
            deconv_kernel_sizes=upsample_kernel_sizes,
            conv_out_channels=conv_out_channels,
            conv_kernel_sizes=conv_kernel_sizes,
            **kwargs)

    def _make_deconv_layers(self, in_channels: int, layer_out_channels: Sequence[int],
                            layer_kernel_sizes: Sequence[int]) -> nn.Module:
        """Build the bilinear upsampling blocks (in place of the parent's deconv layers)."""
        blocks = []
        for out_channels, kernel_size in zip(layer_out_channels, layer_kernel_sizes):
            upsample = nn.Upsample(scale_factor=2, mode='bilinear', align_corners=False)
            conv = ConvModule(
                in_channels, out_channels, kernel_size, padding=kernel_size // 2,
                norm_cfg=dict(type='BN'), act_cfg=dict(type='ReLU'))
            blocks.append(nn.Sequential(upsample, conv) if self.upsample_order ==
                          'upsample_first' else nn.Sequential(conv, upsample))
            in_channels = out_channels
        return nn.Sequential(*blocks)
