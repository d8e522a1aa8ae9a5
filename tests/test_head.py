import pytest
import torch
from mmengine.analysis import FlopAnalyzer
from mmpose.models.heads import HeatmapHead
from mmpose.testing import get_packed_inputs

from mmpose_sam.models import BilinearHeatmapHead

CODEC = dict(type='MSRAHeatmap', input_size=(192, 256), heatmap_size=(48, 64), sigma=2)
# 3x3 convs 2048->256, 256->256 x3 (three upsampling blocks and the extra conv), BN after each,
# the extra conv's bias, final 1x1 conv 256->17 with bias.
PAPER_HEAD = 2048 * 256 * 9 + 3 * 256 * 256 * 9 + 4 * 2 * 256 + 256 + 256 * 17 + 17


def count(module):
    return sum(p.numel() for p in module.parameters())


def head(**kwargs):
    return BilinearHeatmapHead(in_channels=2048, out_channels=17, decoder=CODEC, **kwargs)


def test_parameter_count_matches_the_paper_head():
    assert count(head()) == PAPER_HEAD == 6_494_737
    # SimpleBaseline's deconv head, for comparison: 4x4 deconvs, no extra conv.
    assert count(HeatmapHead(in_channels=2048, out_channels=17)) == 10_491_665


@pytest.mark.parametrize('input_hw,heatmap_hw', [((8, 6), (64, 48)), ((12, 9), (96, 72))])
@pytest.mark.parametrize('order', ['upsample_first', 'conv_first'])
def test_heatmap_shapes(input_hw, heatmap_hw, order):
    model = head(upsample_order=order)
    out = model((torch.rand(2, 2048, *input_hw), ))
    assert out.shape == (2, 17, *heatmap_hw)
    assert torch.isfinite(out).all()


def test_blocks_are_bilinear_then_conv_bn_relu():
    block = head().deconv_layers[0]
    upsample, conv = block
    assert isinstance(upsample, torch.nn.Upsample) and upsample.mode == 'bilinear'
    assert conv.conv.kernel_size == (3, 3) and conv.conv.bias is None
    assert isinstance(conv.norm, torch.nn.BatchNorm2d) and isinstance(conv.activate, torch.nn.ReLU)
    conv_first = head(upsample_order='conv_first').deconv_layers[0]
    assert isinstance(conv_first[1], torch.nn.Upsample)


def test_conv_first_has_same_parameters_and_fewer_flops():
    paper, efficient = head(), head(upsample_order='conv_first')
    assert count(paper) == count(efficient)
    x = (torch.rand(1, 2048, 8, 6), )
    paper_flops = FlopAnalyzer(paper, (x, )).total()
    efficient_flops = FlopAnalyzer(efficient, (x, )).total()
    # The three blocks cost a quarter; the extra conv at 1/4 resolution is the same in both.
    assert efficient_flops < 0.55 * paper_flops


def test_every_parameter_gets_a_gradient():
    model = head()
    model.init_weights()
    model((torch.rand(2, 2048, 8, 6), )).square().mean().backward()
    assert [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()] == []


def test_loss_and_flip_predict_on_packed_inputs():
    model = head()
    model.init_weights()
    packed = get_packed_inputs(batch_size=2, with_heatmap=True)['data_samples']
    feats = (torch.rand(2, 2048, 8, 6), )
    losses = model.loss(feats, packed)
    assert set(losses) == {'loss_kpt', 'acc_pose'} and torch.isfinite(losses['loss_kpt'])
    preds, heatmaps = model.predict(
        [feats, feats], packed,
        test_cfg=dict(flip_test=True, flip_mode='heatmap', shift_heatmap=True,
                      output_heatmaps=True))
    assert len(preds) == 2 and heatmaps[0].heatmaps.shape == (17, 64, 48)
    assert preds[0].keypoints.shape == (1, 17, 2)
    assert preds[0].keypoint_scores.shape == (1, 17)


@pytest.mark.parametrize('kwargs,message', [
    (dict(upsample_order='deconv'),
     "upsample_order must be one of 'upsample_first', 'conv_first', got 'deconv'"),
    (dict(upsample_kernel_sizes=(3, 4, 3)),
     'upsample_kernel_sizes must be odd positive integers (padding k//2 keeps the size), '
     'got (3, 4, 3)'),
    (dict(upsample_out_channels=(256, 256), upsample_kernel_sizes=(3, 3, 3)),
     '"deconv_out_channels" and "deconv_kernel_sizes" should be integer sequences with the same '
     'length'),
    (dict(deconv_out_channels=(256, )),
     'BilinearHeatmapHead has no deconv_out_channels; use upsample_out_channels'),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError) as error:
        head(**kwargs)
    assert message in str(error.value)
