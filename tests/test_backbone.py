import pytest
import torch
import torchvision
from mmpose.models.backbones import ResNet

from mmpose_sam.models import SAMResNet, StageAttention
from mmpose_sam.models.backbones import attention_backbones

# Channel attention after stages of 256, 512, 1024, 2048 channels with r=16: two 1x1 convs with
# bias each, C*C/16 + C/16 + C/16*C + C.
CHANNEL_ATTENTION = sum(2 * c * c // 16 + c // 16 + c for c in (256, 512, 1024, 2048))
SPATIAL = {'3x3+3x3': 20, '3x3//3x3': 20, '7x7': 50}


def count(module):
    return sum(p.numel() for p in module.parameters())


def test_resnet_part_counts():
    assert count(ResNet(50)) == 23_508_032  # torchvision resnet50 without fc
    assert count(ResNet(101)) == 42_500_160
    assert CHANNEL_ATTENTION == 700_400


@pytest.mark.parametrize('depth,base', [(50, 23_508_032), (101, 42_500_160)])
@pytest.mark.parametrize('kernel', ['3x3+3x3', '3x3//3x3', '7x7'])
def test_parameter_counts(depth, base, kernel):
    model = SAMResNet(depth, spatial_kernel=kernel)
    assert count(model) == base + CHANNEL_ATTENTION + 4 * SPATIAL[kernel]


def test_stage_shapes_and_attention_placement():
    model = SAMResNet(50, out_indices=(0, 1, 2, 3))
    model.eval()  # MMPose's ResNet.train() returns None, so no chaining
    with torch.no_grad():
        outs = model(torch.rand(2, 3, 256, 192))
    assert [tuple(o.shape) for o in outs] == [(2, 256, 64, 48), (2, 512, 32, 24),
                                               (2, 1024, 16, 12), (2, 2048, 8, 6)]
    # The attention module is the last element of each stage, after the ResNet blocks.
    assert [type(getattr(model, f'layer{i}')[-1]) for i in range(1, 5)] == [StageAttention] * 4
    assert len(model.layer1) == 3 + 1 and len(model.layer3) == 6 + 1


def test_attention_stages_subset():
    model = SAMResNet(50, attention_stages=(1, 3))
    assert [isinstance(getattr(model, f'layer{i}')[-1], StageAttention)
            for i in range(1, 5)] == [False, True, False, True]
    assert count(model) == 23_508_032 + sum(
        2 * c * c // 16 + c // 16 + c for c in (512, 2048)) + 2 * 20


def test_every_parameter_gets_a_gradient():
    # zero_init_residual (MMPose's default) zeroes each block's last BN, which would legitimately
    # stop gradients inside the residual branches at step 0.
    model = SAMResNet(50, out_indices=(3, ), zero_init_residual=False)
    model.init_weights()
    out = model(torch.rand(2, 3, 128, 96))[-1]
    assert torch.isfinite(out).all()
    out.square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert missing == []


def test_frozen_stages_cover_attention():
    model = SAMResNet(50, frozen_stages=2)
    model.train()
    for i in (1, 2):
        attention = getattr(model, f'layer{i}')[-1]
        assert not attention.training
        assert all(not p.requires_grad for p in attention.parameters())
    assert all(p.requires_grad for p in model.layer3[-1].parameters())
    assert model.layer3[-1].training


def test_norm_eval_keeps_batchnorm_statistics():
    model = SAMResNet(50, norm_eval=True)
    model.train()
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(not m.training for m in bns)
    before = model.norm1.running_mean.clone()
    model(torch.rand(2, 3, 64, 64))
    assert torch.equal(before, model.norm1.running_mean)


@pytest.mark.parametrize('kwargs,message', [
    (dict(attention_stages=(0, 4)), 'attention_stages must be indices in (0, 1, 2, 3), got (0, 4)'),
    (dict(spatial_kernel='3x3'), "kernel must be one of '3x3+3x3', '3x3//3x3', '7x7', got '3x3'"),
    (dict(spatial_pooling='sum'), "pooling must be one of 'avg', 'avg+max', got 'sum'"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError) as error:
        SAMResNet(50, **kwargs)
    assert message in str(error.value)


@pytest.fixture(scope='module')
def torchvision_resnet50(module_mktemp):
    """A torchvision-format ResNet-50 state dict saved locally (random weights, no download)."""
    path = module_mktemp('pretrained') / 'resnet50-torchvision.pth'
    torch.manual_seed(1)
    torch.save(torchvision.models.resnet50().state_dict(), path)
    return path


def test_imagenet_init_loads_resnet_part_and_reports_one_line(torchvision_resnet50,
                                                              monkeypatch):
    reference = torch.load(torchvision_resnet50)
    model = SAMResNet(
        50, identity_init=True, init_cfg=dict(type='Pretrained', checkpoint=str(torchvision_resnet50)))
    lines = []
    monkeypatch.setattr(attention_backbones, 'print_log', lambda msg, **kwargs: lines.append(msg))
    model.init_weights()
    # 318 = torchvision's 320 entries less fc; 36 = 4 stages x (4 channel, 4 spatial, 1 scale)
    assert lines == [f'SAMResNet: loaded 318 ResNet tensors from {torchvision_resnet50}; '
                     '36 attention tensors in 4 modules keep their fresh init; '
                     'ignored fc.bias, fc.weight']
    state = model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in reference.items() if not k.startswith('fc.'))

    # identity_init: the attention modules pass pretrained features through unchanged, so the
    # backbone computes exactly torchvision's ResNet-50 features.
    tv = torchvision.models.resnet50()
    tv.load_state_dict(reference)
    tv.eval(), model.eval()
    x = torch.rand(1, 3, 128, 96)
    with torch.no_grad():
        expected = tv.layer4(tv.layer3(tv.layer2(tv.layer1(tv.maxpool(tv.relu(tv.bn1(tv.conv1(x))))))))
        assert torch.allclose(model(x)[-1], expected, atol=1e-5)


def test_pretrained_with_prefix_from_a_pose_checkpoint(tmp_path):
    source = SAMResNet(50)
    path = tmp_path / 'pose.pth'
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in source.state_dict().items()}}, path)
    model = SAMResNet(50, init_cfg=dict(type='Pretrained', checkpoint=str(path), prefix='backbone.'))
    model.init_weights()
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                  source.state_dict().values()))


def test_pretrained_of_the_wrong_depth_is_an_error(tmp_path):
    path = tmp_path / 'resnet18.pth'
    torch.save(torchvision.models.resnet18().state_dict(), path)
    model = SAMResNet(50, init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with pytest.raises(ValueError, match=r'resnet18.pth does not match SAMResNet\(depth=50\)'):
        model.init_weights()
