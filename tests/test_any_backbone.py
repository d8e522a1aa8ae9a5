"""The paper's attention (and the CBAM / SE controls) on MMPose's ResNet, ResNetV1d, ResNeXt,
SEResNet and HRNet: build, forward, backward, two training iterations, parameter names, ImageNet
init report, and the tools that must find the attention modules by type (attention maps, MAC
counts, the checkpoint fit check, optimize_for_inference, ONNX parity for SAM-HRNet).

Everything is untrained and small: ResNet-18 where the backbone has that depth, ResNet-50-sized
ResNeXt/SEResNet at 64x64 inputs, and a one-block-per-branch HRNet (``TINY_HRNET``)."""
import copy

import pytest
import torch
from mmengine.config import Config
from mmpose.models.backbones import HRNet, ResNet, ResNetV1d, ResNeXt, SEResNet

from conftest import ROOT, SB_SAMPLE_CONFIG, load_tool, short_training_cfg
from mmpose_sam.models import (CBAM, AttentionHRNet, AttentionModule, AttentionResNet,
                               AttentionResNetV1d, AttentionResNeXt, AttentionSEResNet, SEAttention,
                               StageAttention)
from mmpose_sam.models.backbones import attention_backbones

TINY_HRNET = dict(
    stage1=dict(num_modules=1, num_branches=1, block='BOTTLENECK', num_blocks=(1, ),
                num_channels=(16, )),
    stage2=dict(num_modules=1, num_branches=2, block='BASIC', num_blocks=(1, 1),
                num_channels=(16, 32)),
    stage3=dict(num_modules=2, num_branches=3, block='BASIC', num_blocks=(1, 1, 1),
                num_channels=(16, 32, 64)),
    stage4=dict(num_modules=1, num_branches=4, block='BASIC', num_blocks=(1, 1, 1, 1),
                num_channels=(16, 32, 64, 128)))

# (ours, MMPose's, constructor arguments of both): a quarter of the usual widths.
NARROW = dict(stem_channels=16, base_channels=16)
BACKBONES = {
    'ResNet': (AttentionResNet, ResNet, dict(depth=18, **NARROW)),
    'ResNetV1d': (AttentionResNetV1d, ResNetV1d, dict(depth=18, **NARROW)),
    'ResNeXt': (AttentionResNeXt, ResNeXt, dict(depth=50, groups=4, width_per_group=4, **NARROW)),
    'SEResNet': (AttentionSEResNet, SEResNet, dict(depth=50, **NARROW)),
    'HRNet': (AttentionHRNet, HRNet, dict(extra=TINY_HRNET)),
}
ATTENTION = {
    'sam': (dict(type='StageAttention'), StageAttention),
    'cbam': (dict(type='CBAM'), CBAM),
    'se': (dict(type='SEAttention'), SEAttention),
}
# Where the modules go: ResNet-18 (2 blocks a stage), ResNet-50-sized (3, 4, 6, 3), and HRNet:
# after layer1's one bottleneck, after each stage's HR modules, once per branch it outputs
# (stage 4 without multiscale_output: branch 0 only).
PLACES = {
    'ResNet': ['layer1.2', 'layer2.2', 'layer3.2', 'layer4.2'],
    'ResNeXt': ['layer1.3', 'layer2.4', 'layer3.6', 'layer4.3'],
    'HRNet': ['layer1.1', 'stage2.1.0', 'stage2.1.1', 'stage3.2.0', 'stage3.2.1', 'stage3.2.2',
              'stage4.1.0'],
}
PLACES.update(ResNetV1d=PLACES['ResNet'], SEResNet=PLACES['ResNeXt'])


def build(name, attention='sam', **kwargs):
    ours, theirs, args = BACKBONES[name]
    args = dict(args, **kwargs)
    return ours(attention=ATTENTION[attention][0], **args), theirs(**args)


def count(module):
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize('attention', list(ATTENTION))
@pytest.mark.parametrize('name', list(BACKBONES))
def test_forward_backward_and_parameter_names(name, attention):
    model, plain = build(name, attention, zero_init_residual=False)
    kind = ATTENTION[attention][1]
    modules = model.attention_modules()
    assert [n for n, m in model.named_modules() if isinstance(m, AttentionModule)] == PLACES[name]
    assert all(type(m) is kind for m in modules)
    # The plain backbone's names and shapes, plus the attention modules' tensors only.
    ours, theirs = model.state_dict(), plain.state_dict()
    assert {k: v.shape for k, v in ours.items() if k in theirs} == \
        {k: v.shape for k, v in theirs.items()}
    extra = set(ours) - set(theirs)
    assert extra and all(k.startswith(tuple(p + '.' for p in PLACES[name])) for k in extra)
    assert count(model) == count(plain) + sum(count(m) for m in modules)

    model.init_weights()
    x = torch.rand(2, 3, 64, 64)
    plain.eval(), model.eval()
    with torch.no_grad():
        assert [o.shape for o in model(x)] == [o.shape for o in plain(x)]
    model.train()
    out = model(x)[-1]
    assert torch.isfinite(out).all()
    out.square().mean().backward()
    # Every tensor is in the graph (a squeeze unit of a tiny stage may have a dead ReLU, so a
    # zero gradient is no error), and the attention modules get gradients.
    assert [n for n, p in model.named_parameters() if p.grad is None] == []
    assert all(any(p.grad.any() for p in m.parameters()) for m in modules)


@pytest.mark.parametrize('kernel', ['3x3//3x3', '7x7'])
def test_spatial_variants_on_hrnet(kernel):
    model = AttentionHRNet(TINY_HRNET, attention=dict(type='StageAttention',
                                                      spatial_kernel=kernel))
    assert {m.spatial.kernel for m in model.attention_modules()} == {kernel}
    model.eval()
    assert model(torch.rand(1, 3, 64, 64))[0].shape == (1, 16, 16, 16)


def test_hrnet_multiscale_output_gets_attention_on_every_branch():
    extra = copy.deepcopy(TINY_HRNET)
    extra['stage4']['multiscale_output'] = True
    model = AttentionHRNet(extra, attention=dict(type='CBAM'))
    assert [(m.stage, m.branch, m.out_channels) for m in model.attention_modules()][-4:] == [
        (4, 0, 16), (4, 1, 32), (4, 2, 64), (4, 3, 128)]
    model.eval()
    assert [o.shape[1] for o in model(torch.rand(1, 3, 64, 64))] == [16, 32, 64, 128]


@pytest.mark.parametrize('name', ['ResNeXt', 'HRNet'])
def test_frozen_stages_cover_attention(name):
    model, _ = build(name, 'cbam', frozen_stages=2)
    for mode in ('built', 'train'):  # frozen as soon as built (the optimizer may be made then)
        if mode == 'train':
            model.train()
        for module in model.attention_modules():
            frozen = module.stage <= 2
            assert all(p.requires_grad is not frozen for p in module.parameters()), mode
            assert mode == 'built' or module.training is not frozen


def test_cbam_is_timms_layout():
    """Channel gate: one bias-free MLP on the average- and max-pooled input, summed, sigmoid;
    then the spatial gate: a 7x7 conv + BN on the channel average and max, sigmoid."""
    module = CBAM(32, ratio=4).eval()
    x = torch.randn(2, 32, 6, 5)
    channel, spatial = module.channel, module.spatial
    mlp = torch.nn.Sequential(channel.fc1, torch.nn.ReLU(), channel.fc2)
    assert channel.fc1.bias is None and channel.fc2.bias is None
    y = x * torch.sigmoid(mlp(x.mean((2, 3), keepdim=True)) + mlp(x.amax((2, 3), keepdim=True)))
    pooled = torch.cat([y.mean(1, keepdim=True), y.amax(1, keepdim=True)], 1)
    expected = y * torch.sigmoid(spatial.conv.bn(spatial.conv.conv(pooled)))
    assert spatial.conv.conv.kernel_size == (7, 7) and spatial.conv.conv.bias is None
    with torch.no_grad():
        torch.testing.assert_close(module(x), expected)
    assert module.spatial_gate is spatial.gate
    assert sum(p.numel() for p in module.parameters()) == 2 * 32 * 8 + 2 * 49 + 2


def test_se_attention_is_mmposes_se_layer():
    from mmpose.models.backbones.utils import SELayer
    module = SEAttention(32, ratio=4)
    reference = SELayer(32, ratio=4)
    reference.load_state_dict({k[len('channel.'):]: v for k, v in module.state_dict().items()})
    x = torch.randn(2, 32, 6, 5)
    with torch.no_grad():
        torch.testing.assert_close(module(x), reference(x))
    assert module.spatial_gate is None


def test_bad_attention_config_is_one_clear_error():
    with pytest.raises(ValueError, match=r"^attention must be a dict with a 'type'"):
        AttentionResNet(18, attention='CBAM')
    with pytest.raises(ValueError, match=r'attention_stages must be indices in \(0, 1, 2, 3\), '
                                         r'got \(4,\)'):
        AttentionHRNet(TINY_HRNET, attention_stages=(4, ))
    with pytest.raises(ValueError, match=r"^attention type 'SpatialAttention' is not an "
                                         r'AttentionModule \(StageAttention, CBAM, SEAttention'):
        AttentionResNet(18, attention=dict(type='SpatialAttention'))
    with pytest.raises(ValueError, match=r'ratio must be a positive integer dividing '
                                         r'channels=16, got 32'):
        AttentionHRNet(TINY_HRNET, attention=dict(type='CBAM', ratio=32))


# ImageNet initialisation ------------------------------------------------------------------
@pytest.mark.parametrize('name,classifier,ignored', [
    ('ResNetV1d', {'fc.weight': torch.zeros(2)}, 'ignored fc.weight'),
    ('SEResNet', {'fc.weight': torch.zeros(2)}, 'ignored fc.weight'),
    # HRNet's ImageNet model has a classification head of its own
    ('HRNet', {f'{m}.{i}.weight': torch.zeros(2) for m in ('incre_modules', 'classifier')
               for i in range(3)}, 'ignored 6 tensors of classifier, incre_modules'),
])
def test_imagenet_init_reports_fresh_attention_in_one_line(name, classifier, ignored, tmp_path,
                                                          monkeypatch):
    _, plain = build(name)
    path = tmp_path / 'imagenet.pth'
    torch.save({**plain.state_dict(), **classifier}, path)
    model, _ = build(name, init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    lines = []
    monkeypatch.setattr(attention_backbones, 'print_log', lambda msg, **kwargs: lines.append(msg))
    model.init_weights()
    modules = model.attention_modules()
    fresh = sum(len(m.state_dict()) for m in modules)
    assert lines == [f'{type(model).__name__}: loaded {len(plain.state_dict())} {name} tensors '
                     f'from {path}; {fresh} attention tensors in {len(modules)} modules keep '
                     f'their fresh init; {ignored}']
    state = model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in plain.state_dict().items())


def test_imagenet_init_refuses_tensors_of_its_own_modules(tmp_path):
    _, plain = build('HRNet')
    path = tmp_path / 'deeper.pth'
    torch.save({**plain.state_dict(), 'stage2.0.branches.0.7.conv1.weight': torch.zeros(1)}, path)
    model, _ = build('HRNet', init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with pytest.raises(ValueError, match=r"deeper.pth does not match AttentionHRNet: missing \[\], "
                                         r"unexpected \['stage2.0.branches.0.7.conv1.weight'\]"):
        model.init_weights()


# Two training iterations, through MMEngine's runner ------------------------------------------
@pytest.mark.parametrize('name,attention', [('ResNet', 'cbam'), ('ResNetV1d', 'se'),
                                            ('ResNeXt', 'sam'), ('SEResNet', 'cbam'),
                                            ('HRNet', 'sam')])
def test_two_training_iterations(name, attention, tmp_path, monkeypatch):
    from toolkit.runners import build_runner
    monkeypatch.chdir(ROOT)  # the sample config's data_root is relative to it
    cfg = short_training_cfg(SB_SAMPLE_CONFIG, tmp_path, iters=2, batch_size=2)
    ours, _, args = BACKBONES[name]
    cfg.model.backbone = dict(type=ours.__name__, attention=ATTENTION[attention][0], **args)
    if name == 'HRNet':  # MMPose's HRNet head: a 1x1 conv on the stride-4 branch
        cfg.model.head.update(in_channels=16, deconv_out_channels=None)
    else:  # stage 4 of the narrow ResNets: 128 (BasicBlock) or 512 (Bottleneck) channels
        cfg.model.head.update(in_channels=128 if args['depth'] == 18 else 512,
                              deconv_out_channels=(32, 32, 32))
    runner = build_runner(cfg)
    backbone = runner.model.backbone
    before = {n: p.detach().clone() for n, p in backbone.named_parameters()}
    runner.train()
    losses = runner.message_hub.get_scalar('train/loss').data[0].tolist()
    assert len(losses) == 2 and all(torch.isfinite(torch.tensor(losses)))
    # Every attention module learnt (a tiny stage's single squeeze unit may have a dead ReLU, so
    # not necessarily every tensor).
    names = {id(p): n for n, p in backbone.named_parameters()}
    modules = backbone.attention_modules()
    assert len(modules) == len(PLACES[name])
    assert all(any(not torch.equal(before[names[id(p)]], p) for p in m.parameters())
               for m in modules)


# The tools, on SAM-HRNet -------------------------------------------------------------------
def sam_hrnet_cfg() -> Config:
    """The bundled sample's SimpleBaseline config with a tiny SAM-HRNet and MMPose's HRNet head."""
    cfg = Config.fromfile(str(SB_SAMPLE_CONFIG))
    cfg.model.backbone = dict(type='AttentionHRNet', extra=TINY_HRNET,
                              attention=dict(type='StageAttention'))
    cfg.model.head.update(in_channels=16, deconv_out_channels=None)
    return cfg


@pytest.fixture(scope='module')
def sam_hrnet(module_mktemp):
    """``(config file, checkpoint, model)``: the tiny SAM-HRNet, untrained, saved as training
    saves it."""
    from mmengine.runner import save_checkpoint
    from mmpose.apis import init_model
    folder = module_mktemp('sam_hrnet')
    config = folder / 'sam_hrnet.py'
    sam_hrnet_cfg().dump(str(config))
    model = init_model(str(config), None, device='cpu')
    checkpoint = folder / 'sam_hrnet.pth'
    save_checkpoint({'state_dict': model.state_dict(),
                     'meta': {'dataset_meta': model.dataset_meta}}, str(checkpoint))
    return config, checkpoint, model


def test_attention_maps_on_every_branch(sam_hrnet):
    from mmpose_sam.apis import capture_spatial_attention
    maps = capture_spatial_attention(sam_hrnet[2], torch.randn(2, 3, 128, 96))
    assert [(m.stage, tuple(m.map.shape)) for m in maps] == [
        (1, (2, 32, 24)), ('2.1', (2, 32, 24)), ('2.2', (2, 16, 12)), ('3.1', (2, 32, 24)),
        ('3.2', (2, 16, 12)), ('3.3', (2, 8, 6)), (4, (2, 32, 24))]
    assert all(((m.map > 0) & (m.map < 1)).all() for m in maps)


def test_channel_only_attention_has_no_maps():
    from mmpose_sam.apis import spatial_attention_gates
    with pytest.raises(ValueError, match=r'^AttentionHRNet has no spatial attention \(its '
                                         r'SEAttention modules have no spatial map\)'):
        spatial_attention_gates(AttentionHRNet(TINY_HRNET, attention=dict(type='SEAttention')))


@pytest.mark.parametrize('attention,label', [(dict(type='StageAttention'), 'sam-3x3+3x3'),
                                             (dict(type='CBAM'), 'cbam'),
                                             (dict(type='SEAttention'), 'se')])
def test_complexity_counts_attention_on_hrnet(attention, label):
    from toolkit.analysis import attention_label, build_model, count_complexity
    cfg = sam_hrnet_cfg()
    cfg.model.backbone.attention = attention
    counts = count_complexity(build_model(cfg), (128, 96))
    plain_cfg = copy.deepcopy(cfg)
    plain_cfg.model.backbone = dict(type='HRNet', extra=TINY_HRNET)
    plain = count_complexity(build_model(plain_cfg), (128, 96))
    assert attention_label(build_model(cfg)) == label and attention_label(build_model(plain_cfg)) \
        == 'none'
    assert counts.counters_agree and counts.macs > plain.macs
    assert counts.elementwise_ops > 0 == plain.elementwise_ops
    # The element-wise ops are the sum over the 7 modules of each module's own count.
    shapes = [(1, 64, 32, 24), (1, 16, 32, 24), (1, 32, 16, 12), (1, 16, 32, 24), (1, 32, 16, 12),
              (1, 64, 8, 6), (1, 16, 32, 24)]
    model = build_model(cfg)
    modules = model.backbone.attention_modules()
    assert counts.elementwise_ops == sum(m.elementwise_ops(s) for m, s in zip(modules, shapes))


def test_fit_check_names_plain_hrnet_checkpoints(sam_hrnet, tmp_path):
    from mmengine.runner import save_checkpoint
    from mmpose.apis import init_model

    from mmpose_sam.reliability.checkpoint import CheckpointMismatchError
    config, _, model = sam_hrnet
    attention = tuple(f'backbone.{p}.' for p in PLACES['HRNet'])
    plain = {k: v for k, v in model.state_dict().items() if not k.startswith(attention)}
    assert len(model.state_dict()) - len(plain) == 7 * 8  # 4 channel, 4 spatial tensors each
    path = tmp_path / 'hrnet.pth'
    save_checkpoint({'state_dict': plain}, str(path))
    with pytest.raises(CheckpointMismatchError) as error:
        init_model(str(config), str(path), device='cpu')
    assert str(error.value) == (
        f'{path} does not fit TopdownPoseEstimator(AttentionHRNet, HeatmapHead): missing 56 '
        'attention tensors (backbone.layer1.1.channel.conv1.conv.weight, ...): no attention '
        'weights: a plain HRNet checkpoint? Use a plain HRNet config')

    # A checkpoint with attention after stages 1 and 4 only, into the model with all four.
    ours = init_model(str(config), None, device='cpu',
                      cfg_options={'model.backbone.attention_stages': [0, 3]})
    path = tmp_path / 'stages14.pth'
    save_checkpoint({'state_dict': ours.state_dict()}, str(path))
    with pytest.raises(CheckpointMismatchError) as error:
        init_model(str(config), str(path), device='cpu')
    assert str(error.value).endswith(': attention after stages 1, 4 (the model: 1, 2, 3, 4)')


def test_optimize_for_inference_matches_eager(sam_hrnet):
    from mmpose.apis import init_model

    from mmpose_sam.apis import optimize_for_inference
    config, checkpoint, _ = sam_hrnet
    model = init_model(str(config), str(checkpoint), device='cpu')
    x = torch.randn(2, 3, 128, 96)
    with torch.no_grad():
        expected = model(x, None, mode='tensor')
        fast = optimize_for_inference(model, dtype='fp32')
        actual = fast(x.contiguous(memory_format=torch.channels_last), None, mode='tensor')
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=1e-4)


def test_onnx_export_parity(sam_hrnet, tmp_path, capsys):
    """The export tool's own check, then heatmaps of a batch of 3 against PyTorch."""
    pytest.importorskip('onnxruntime', reason='the deploy extra: pip install -e .[deploy]')
    from mmpose_sam.deploy.export import HeatmapNetwork
    from mmpose_sam.deploy.onnxruntime_model import OnnxPoseModel
    config, checkpoint, model = sam_hrnet
    onnx_file = tmp_path / 'sam_hrnet.onnx'
    load_tool('deploy/export_onnx').main([str(config), str(checkpoint), '--out', str(onnx_file)])
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert 'input (batch, 3, 128, 96) -> heatmaps (batch, 17, 32, 24)' in line
    assert line.endswith('on 2 random crops: ok')
    inputs = torch.randn(3, 3, 128, 96)
    with torch.no_grad():
        expected = HeatmapNetwork(model.eval())(inputs).numpy()
    actual = OnnxPoseModel(onnx_file).run(inputs.numpy())
    assert actual.shape == expected.shape == (3, 17, 32, 24)
    assert abs(actual - expected).max() < 1e-5
