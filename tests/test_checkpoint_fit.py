"""A checkpoint that does not fit the pose estimator it is loaded into is one error line, whatever
loads it (init_model, the inferencer, the demo, tools/test.py, load_from, --resume); partial:
loads what fits on purpose; what MMEngine and MMPose add or convert never trips the check.

The checkpoints are untrained sample models (saved by fixtures): only their keys and shapes
matter here.
"""
from collections import OrderedDict

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner, save_checkpoint
from mmpose.apis import init_model

from conftest import ROOT, SAM_SAMPLE_CONFIG, SB_SAMPLE_CONFIG, runner_log, tool_runner
from toolkit.runners import build_runner  # a visualizer of its own (see there)
from mmpose_sam.reliability.checkpoint import CheckpointMismatchError
from mmpose_sam.reliability.checkpoint import fit as fit_module
from mmpose_sam.reliability.checkpoint.fit import checkpoint_attention, model_attention

SB, SAM = str(SB_SAMPLE_CONFIG), str(SAM_SAMPLE_CONFIG)
SB_INTO_SAM = (
    '{path} does not fit TopdownPoseEstimator(SAMResNet, BilinearHeatmapHead): missing 32 '
    'attention tensors (backbone.layer1.3.channel.conv1.conv.weight, ...), missing 21 head '
    'tensors (head.deconv_layers.0.1.conv.weight, ...), unexpected 15 head tensors '
    '(head.deconv_layers.0.weight, ...): no attention weights: a SimpleBaseline checkpoint? Use a '
    'SimpleBaseline config')
SAM_INTO_SB = (
    '{path} does not fit TopdownPoseEstimator(ResNet, HeatmapHead): missing 15 head tensors '
    '(head.deconv_layers.0.weight, ...), unexpected 32 attention tensors '
    '(backbone.layer1.3.channel.conv1.conv.weight, ...), unexpected 21 head tensors '
    '(head.deconv_layers.0.1.conv.weight, ...): attention weights: a SAM checkpoint? Use a SAM '
    'config')


def save_model(config: str, path, state_dict=None, **cfg_options):
    """An untrained model of ``config`` saved as training saves it; ``state_dict`` edits it."""
    model = init_model(config, None, device='cpu', cfg_options=cfg_options or None)
    weights = model.state_dict() if state_dict is None else state_dict(model.state_dict())
    save_checkpoint({'state_dict': weights, 'meta': {'dataset_meta': model.dataset_meta}},
                    str(path))
    return path


@pytest.fixture(scope='module')
def checkpoints(module_mktemp):
    folder = module_mktemp('fit')
    return {'SB': save_model(SB, folder / 'sb.pth'), 'SAM': save_model(SAM, folder / 'sam.pth')}


@pytest.mark.parametrize('config, name, message', [(SAM, 'SB', SB_INTO_SAM),
                                                   (SB, 'SAM', SAM_INTO_SB)],
                         ids=['SB-into-SAM', 'SAM-into-SB'])
def test_init_model_names_the_parts_and_the_likely_architecture(checkpoints, config, name,
                                                                message):
    path = checkpoints[name]
    with pytest.raises(CheckpointMismatchError) as error:
        init_model(config, str(path), device='cpu')
    assert str(error.value) == message.format(path=path)


def test_the_inferencer(checkpoints):
    from mmpose.apis import MMPoseInferencer
    with pytest.raises(CheckpointMismatchError) as error:
        MMPoseInferencer(pose2d=SAM, pose2d_weights=str(checkpoints['SB']), device='cpu',
                         det_model='whole_image')
    assert str(error.value) == SB_INTO_SAM.format(path=checkpoints['SB'])


def test_the_demo(checkpoints, tmp_path):
    from test_demo import IMAGE, run_demo
    with pytest.raises(SystemExit) as exit_info:
        run_demo(checkpoints['SB'], '--input', IMAGE, '--out-dir', tmp_path)
    assert str(exit_info.value) == 'error: ' + SB_INTO_SAM.format(path=checkpoints['SB'])


def test_tools_test_stops_instead_of_ap_zero(checkpoints, tmp_path):
    runner = tool_runner(SAM, tmp_path, checkpoint=checkpoints['SB'])
    with pytest.raises(CheckpointMismatchError) as error:
        runner.test()
    assert str(error.value) == SB_INTO_SAM.format(path=checkpoints['SB'])
    assert 'coco/AP:' not in runner_log(runner)


def sample_runner(config: str, work_dir, **cfg) -> Runner:
    config = Config.fromfile(config)
    config.work_dir = str(work_dir)
    config.train_cfg.max_epochs, config.train_cfg.val_begin = 1, 10**6  # no validation
    config.default_hooks.checkpoint = dict(type='AtomicCheckpointHook', interval=1, save_best=None)
    config.merge_from_dict(cfg)
    return build_runner(config)


def test_load_from_and_resume(checkpoints, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # the sample configs' data_root is relative to the repo root
    for resume in (False, True):
        runner = sample_runner(SAM, tmp_path / str(resume), load_from=str(checkpoints['SB']),
                               resume=resume)
        with pytest.raises(CheckpointMismatchError) as error:
            runner.train()
        assert str(error.value) == SB_INTO_SAM.format(path=checkpoints['SB'])


def test_partial_load_from_fine_tunes_sam_from_a_simplebaseline(checkpoints, tmp_path,
                                                                monkeypatch):
    monkeypatch.chdir(ROOT)
    lines = []
    monkeypatch.setattr(fit_module, 'print_log', lambda msg, **kwargs: lines.append(msg))
    runner = sample_runner(SAM, tmp_path, load_from=f'partial:{checkpoints["SB"]}')
    runner.train()
    assert lines == [
        f'{checkpoints["SB"]}: loaded 267 of 320 tensors of TopdownPoseEstimator(SAMResNet, '
        'BilinearHeatmapHead) (partial:); not loaded: missing 32 attention tensors '
        '(backbone.layer1.3.channel.conv1.conv.weight, ...), missing 21 head tensors '
        '(head.deconv_layers.0.1.conv.weight, ...), unexpected 15 head tensors '
        '(head.deconv_layers.0.weight, ...)']
    assert (tmp_path / 'epoch_1.pth').is_file()


def test_partial_loads_what_fits_and_keeps_the_rest(checkpoints):
    torch.manual_seed(1)
    model = init_model(SAM, f'partial:{checkpoints["SB"]}', device='cpu')
    torch.manual_seed(1)
    fresh = init_model(SAM, None, device='cpu')  # the same initial values
    sb = torch.load(checkpoints['SB'], weights_only=False)['state_dict']
    assert torch.equal(model.backbone.conv1.weight, sb['backbone.conv1.weight'])
    assert torch.equal(model.head.final_layer.weight, sb['head.final_layer.weight'])
    assert torch.equal(model.backbone.layer1[3].channel.conv1.conv.weight,
                       fresh.backbone.layer1[3].channel.conv1.conv.weight)


def test_partial_with_nothing_that_fits_is_still_an_error(tmp_path):
    path = tmp_path / 'detector.pth'
    torch.save({'state_dict': {'roi_head.bbox_head.fc_cls.weight': torch.ones(2, 2)}}, path)
    with pytest.raises(CheckpointMismatchError, match=r'\(nothing fits, not even partially\)$'):
        init_model(SB, f'partial:{path}', device='cpu')


def test_another_depth_and_other_shapes(tmp_path):
    r101 = save_model(SB, tmp_path / 'r101.pth', **{'model.backbone.depth': 101})
    with pytest.raises(CheckpointMismatchError) as error:
        init_model(SB, str(r101), device='cpu')
    assert str(error.value) == (
        f'{r101} does not fit TopdownPoseEstimator(ResNet, HeatmapHead): unexpected 255 backbone '
        'tensors (backbone.layer3.6.conv1.weight, ...): a ResNet-101 backbone')
    with pytest.raises(CheckpointMismatchError) as error:
        init_model(SAM, str(r101), device='cpu')
    # layer3.6 is SAM-R50's attention module and SimpleBaseline-R101's 7th block: kept apart
    assert str(error.value).endswith(
        'unexpected 255 backbone tensors (backbone.layer3.6.conv1.weight, ...), unexpected 15 '
        'head tensors (head.deconv_layers.0.weight, ...): a ResNet-101 backbone, no attention '
        'weights: a SimpleBaseline checkpoint? Use a SimpleBaseline res101 config')

    keypoints14 = save_model(SB, tmp_path / 'k14.pth', **{'model.head.out_channels': 14})
    with pytest.raises(CheckpointMismatchError) as error:
        init_model(SB, str(keypoints14), device='cpu')
    assert str(error.value) == (
        f'{keypoints14} does not fit TopdownPoseEstimator(ResNet, HeatmapHead): 2 head tensors '
        'have other shapes (head.final_layer.weight: checkpoint [14, 256, 1, 1], model [17, 256, '
        '1, 1], ...)')


def test_attention_in_other_stages(checkpoints):
    with pytest.raises(CheckpointMismatchError) as error:
        init_model(SAM, str(checkpoints['SAM']), device='cpu',
                   cfg_options={'model.backbone.attention_stages': [0, 2]})
    assert str(error.value) == (
        f'{checkpoints["SAM"]} does not fit TopdownPoseEstimator(SAMResNet, BilinearHeatmapHead): '
        'unexpected 16 attention tensors (backbone.layer2.4.channel.conv1.conv.weight, ...): '
        'attention after stages 1, 2, 3, 4 (the model: 1, 3)')


@pytest.mark.parametrize('edit', [
    # DDP-saved keys: MMEngine's revise_keys strips "module."
    lambda sd: OrderedDict((f'module.{k}', v) for k, v in sd.items()),
    # data preprocessor buffers of older MMPose checkpoints (MMPose's pre-hook drops them)
    lambda sd: OrderedDict(sd, **{'data_preprocessor.mean': torch.zeros(3),
                                  'data_preprocessor.std': torch.ones(3)}),
    # checkpoints from before BatchNorm counted its batches
    lambda sd: OrderedDict((k, v) for k, v in sd.items() if 'num_batches_tracked' not in k),
    # MMPose 0.x names (keypoint_head), converted by MMPose's own load hooks
    lambda sd: OrderedDict((k.replace('head.', 'keypoint_head.', 1), v) for k, v in sd.items()),
], ids=['module-prefix', 'preprocessor-buffers', 'no-num-batches-tracked', 'mmpose-0.x-names'])
def test_what_mmengine_and_mmpose_handle_does_not_trip_the_check(tmp_path, edit):
    path = save_model(SB, tmp_path / 'edited.pth', state_dict=edit)
    model = init_model(SB, str(path), device='cpu')
    weights = torch.load(path, weights_only=False)['state_dict']
    final = next(v for k, v in weights.items() if k.endswith('head.final_layer.weight'))
    assert torch.equal(model.head.final_layer.weight, final)


def test_state_dicts_built_in_memory_keep_pytorch_semantics():
    sam = init_model(SAM, None, device='cpu')
    sb = init_model(SB, None, device='cpu')
    missing, unexpected = sam.load_state_dict(sb.state_dict(), strict=False)
    assert missing and unexpected  # no error: only checkpoint files are checked


def test_a_plain_mmpose_estimator_keeps_mmengines_semantics(checkpoints):
    """Only CheckedTopdownPoseEstimator (our configs' model.type) checks: MMPose's own loads what
    fits and logs the rest, as without the plugin."""
    model = init_model(SAM, str(checkpoints['SB']), device='cpu',
                       cfg_options={'model.type': 'TopdownPoseEstimator'})
    assert type(model).__name__ == 'TopdownPoseEstimator'


def test_attention_keys_are_recognised_on_both_sides():
    model = init_model(SAM, None, device='cpu',
                       cfg_options={'model.backbone.identity_init': True})
    attention = [k for k in model.state_dict() if '.channel.' in k or '.spatial.' in k
                 or k.endswith('.scale')]
    assert len(attention) == 36  # 4 stages x (4 channel, 4 spatial, 1 scale)
    for prefixes in (model_attention(model), checkpoint_attention(model.state_dict())):
        assert prefixes == ('backbone.layer1.3.', 'backbone.layer2.4.', 'backbone.layer3.6.',
                            'backbone.layer4.3.')
        assert all(key.startswith(prefixes) for key in attention)
