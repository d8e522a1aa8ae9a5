"""Heatmap head that upsamples by bilinear interpolation + conv instead of transposed convs."""
from typing import Optional, Sequence, Union

from mmcv.cnn import ConvModule
from torch import nn

from mmpose.models.heads import HeatmapHead
from mmpose.registry import MODELS

from mmpose_sam.speed.device_accuracy import DeviceAccuracyMixin

UPSAMPLE_ORDERS = ('upsample_first', 'conv_first')


@MODELS.register_module()
class BilinearHeatmapHead(DeviceAccuracyMixin, HeatmapHead):
    """SimpleBaseline's :class:`~mmpose.models.heads.HeatmapHead` with its transposed convs
    replaced by the paper's up-sampling blocks: bilinear x2 -> conv -> BN -> ReLU (Fig. 2).

    Interpolation has no parameters, so the head is about 4M parameters lighter than the deconv
    head at the same widths. Everything after the upsampling (the optional ``conv_out_channels``
    layers, the final 1x1 conv, ``loss``, ``predict`` with flip test and heatmap shift, decoding)
    is inherited unchanged, with our configs' ``compute_acc='device'`` and bf16 decoding
    (:class:`~mmpose_sam.speed.device_accuracy.DeviceAccuracyMixin`). The upsampling blocks keep
    the parent's attribute name ``deconv_layers``.

    Args:
        in_channels (int): Channels of the input feature map.
        out_channels (int): Number of heatmaps (keypoints).
        upsample_out_channels (Sequence[int]): Output channels of each upsampling block; one x2
            block per entry. Defaults to ``(256, 256, 256)`` (x8: 1/32 -> 1/4 of the input).
        upsample_kernel_sizes (Sequence[int]): Conv kernel size of each block; odd, so that
            ``padding=k // 2`` keeps the size. Defaults to ``(3, 3, 3)``.
        upsample_order (str): ``'upsample_first'`` (the paper: interpolate, then conv at the
            higher resolution) or ``'conv_first'`` (conv at the lower resolution, then
            interpolate: the same parameters for about a quarter of the MACs).
        conv_out_channels (Sequence[int], optional): Output channels of the conv + BN + ReLU
            layers after the upsampling (HeatmapHead's argument). Defaults to ``(256, )``: one
            3x3 conv, which the paper's text leaves open and its parameter counts imply (30.7M
            for SAM-R50, 49.7M for SAM-R101; see docs/parameter_counts.md). ``None`` for none.
        conv_kernel_sizes (Sequence[int], optional): Their kernel sizes. Defaults to ``(3, )``.
        align_corners (bool): ``align_corners`` of the bilinear interpolation.
            Defaults to ``False``.
        **kwargs: Passed to :class:`~mmpose.models.heads.HeatmapHead` (``conv_out_channels``,
            ``conv_kernel_sizes``, ``loss``, ``decoder``, ``init_cfg`` ...).
    """

    def __init__(self,
                 in_channels: Union[int, Sequence[int]],
                 out_channels: int,
                 upsample_out_channels: Sequence[int] = (256, 256, 256),
                 upsample_kernel_sizes: Sequence[int] = (3, 3, 3),
                 upsample_order: str = 'upsample_first',
                 conv_out_channels: Optional[Sequence[int]] = (256, ),
                 conv_kernel_sizes: Optional[Sequence[int]] = (3, ),
                 align_corners: bool = False,
                 **kwargs):
        for name in ('deconv_out_channels', 'deconv_kernel_sizes'):
            if name in kwargs:
                raise ValueError(f'{type(self).__name__} has no {name}; use '
                                 f'{name.replace("deconv", "upsample")}')
        if upsample_order not in UPSAMPLE_ORDERS:
            raise ValueError(f'upsample_order must be one of {", ".join(map(repr, UPSAMPLE_ORDERS))}'
                             f', got {upsample_order!r}')
        bad = [k for k in upsample_kernel_sizes if not (isinstance(k, int) and k > 0 and k % 2)]
        if bad:
            raise ValueError('upsample_kernel_sizes must be odd positive integers (padding k//2 '
                             f'keeps the size), got {tuple(upsample_kernel_sizes)}')
        # Read by _make_deconv_layers(), which HeatmapHead.__init__ calls.
        self.upsample_order = upsample_order
        self.align_corners = align_corners  # MMPose 1.3.2's HeatmapHead takes no align_corners
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
            upsample = nn.Upsample(
                scale_factor=2, mode='bilinear', align_corners=self.align_corners)
            conv = ConvModule(
                in_channels, out_channels, kernel_size, padding=kernel_size // 2,
                norm_cfg=dict(type='BN'), act_cfg=dict(type='ReLU'))
            blocks.append(nn.Sequential(upsample, conv) if self.upsample_order ==
                          'upsample_first' else nn.Sequential(conv, upsample))
            in_channels = out_channels
        return nn.Sequential(*blocks)
