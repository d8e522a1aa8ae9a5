"""The training speed settings (README "Training speed"): each one builds and trains on the CPU and
computes what MMPose's own path computes. Timings are the benchmarks' business, not these tests'.
"""
import copy
import logging

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.runner import Runner
from mmpose.evaluation.functional import pose_pck_accuracy
from mmpose.models.data_preprocessors import PoseDataPreprocessor
from mmpose.registry import MODELS

import mmpose_sam  # noqa: F401  (registers everything)
from mmpose_sam.errors import UserError
from mmpose_sam.speed import (BF16AmpOptimWrapper, StackedPoseDataPreprocessor, amp,
                              device_accuracy, heatmap_pck_accuracy, stack_collate)

from conftest import ROOT, SAM_SAMPLE_CONFIG, SB_SAMPLE_CONFIG, short_training_cfg
from toolkit.runners import build_runner  # a visualizer of its own (see there)


def train(cfg) -> Runner:
    runner = build_runner(cfg)
    runner.train()
    return runner


def history(runner, key: str) -> list:
    return runner.message_hub.get_scalar(f'train/{key}').data[0].tolist()


@pytest.fixture
def in_repo(monkeypatch):
    monkeypatch.chdir(ROOT)  # the sample configs' data_root is relative to the repo root


# Configs -------------------------------------------------------------------------------------


@pytest.mark.parametrize('config,head', [(SB_SAMPLE_CONFIG, 'DeviceAccuracyHeatmapHead'),
                                         (SAM_SAMPLE_CONFIG, 'BilinearHeatmapHead')],
                         ids=['SB', 'SAM'])
def test_speed_settings_are_on_in_every_config(config, head):
    cfg = Config.fromfile(str(config))
    assert cfg.optim_wrapper.type == 'BF16AmpOptimWrapper' and \
        cfg.optim_wrapper.dtype == 'bfloat16'
    assert cfg.model.head.type == head
    assert cfg.model_wrapper_cfg.type == 'AnyDeviceDistributedDataParallel'
    assert cfg.model.data_preprocessor.type == 'StackedPoseDataPreprocessor'
    assert cfg.model.data_preprocessor.non_blocking is True
    assert cfg.model.train_cfg.compute_acc == 'device'
    assert cfg.train_dataloader.collate_fn.type == 'stack_collate'
    assert cfg.train_dataloader.pin_memory is True
    assert cfg.default_hooks.runtime_info.type == 'LazyRuntimeInfoHook'
    assert cfg.env_cfg.cudnn_benchmark is True
    hooks = [h['type'] for h in cfg.custom_hooks]
    assert hooks == ['DeviceSetupHook', 'SyncBuffersHook', 'ChannelsLastHook', 'DivergenceHook',
                     'PreemptionHook']


# bf16 AMP ------------------------------------------------------------------------------------


def _wrapper(**kwargs):
    model = torch.nn.Linear(4, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    return model, BF16AmpOptimWrapper(optimizer=optimizer, **kwargs)


def test_bf16_has_no_loss_scaler_and_resumes_float16_state():
    _, wrapper = _wrapper(dtype='bfloat16')
    assert wrapper.loss_scaler is None and wrapper.cast_dtype == torch.bfloat16
    state = wrapper.state_dict()
    assert 'loss_scaler' not in state
    state['loss_scaler'] = {'scale': 65536.0}  # a float16 run's checkpoint
    wrapper.load_state_dict(state)


def test_float16_amp_on_a_cpu_is_one_line():
    with pytest.raises(UserError) as info:
        _wrapper(dtype='float16')
    assert str(info.value) == ("BF16AmpOptimWrapper(dtype='float16') needs a GPU: CPU "
                               'autocast supports bfloat16 only (optim_wrapper.dtype=bfloat16)')


@pytest.mark.parametrize('mode,why', [
    ('auto', 'this CPU has no native bfloat16 (AVX-512-BF16/AMX) and would emulate it many times '
             'slower than float32'),
    ('off', 'MMPOSE_SAM_CPU_AMP=off: for AMP this CPU has no native bfloat16')])
def test_cpu_without_native_bf16_trains_in_float32_and_says_so(monkeypatch, mode, why):
    monkeypatch.setenv('MMPOSE_SAM_CPU_AMP', mode)
    monkeypatch.setattr(amp, 'cpu_has_native_bf16', lambda: False)
    logged = []
    monkeypatch.setattr(amp, 'print_log', lambda msg, **kw: logged.append((msg, kw['level'])))
    model, wrapper = _wrapper(dtype='bfloat16')
    assert not wrapper.autocast_enabled and wrapper.loss_scaler is None
    with wrapper.optim_context(model):
        assert model(torch.rand(3, 4)).dtype == torch.float32
    assert logged == [(f'BF16AmpOptimWrapper: {why}, so training runs in float32',
                       logging.WARNING)]


def test_cpu_with_native_bf16_autocasts(monkeypatch):
    monkeypatch.setattr(amp, 'cpu_has_native_bf16', lambda: True)
    model, wrapper = _wrapper(dtype=None)  # MMEngine's default: the device's autocast dtype
    with wrapper.optim_context(model):
        out = model(torch.rand(3, 4))
    assert out.dtype == torch.bfloat16
    wrapper.update_params(out.float().sum())
    assert model.weight.grad is None  # stepped and zeroed, no scaler involved


def test_bf16_autocast_trains_the_sample_model_two_iterations(tmp_path, in_repo, monkeypatch):
    """The real thing on a CPU: the whole config under CPU bf16 autocast (emulated here, hence
    a batch of 2)."""
    monkeypatch.setattr(amp, 'cpu_has_native_bf16', lambda: True)
    runner = train(short_training_cfg(SAM_SAMPLE_CONFIG, tmp_path, batch_size=2))
    assert runner.optim_wrapper.autocast_enabled
    losses = history(runner, 'loss')
    assert len(losses) == 2 and all(np.isfinite(losses))
    assert 0 <= history(runner, 'acc_pose')[-1] <= 1


# acc_pose on the device ----------------------------------------------------------------------


@pytest.mark.parametrize('seed', range(5))
def test_device_accuracy_equals_mmposes_numpy_accuracy(seed):
    generator = torch.Generator().manual_seed(seed)
    output = torch.rand(6, 17, 16, 12, generator=generator) - 0.1
    target = torch.zeros(6, 17, 16, 12)
    peaks = torch.randint(0, 16 * 12, (6, 17), generator=generator)
    target.view(6, 17, -1).scatter_(2, peaks[..., None], 1.0)
    target[0, 3] = 0  # a keypoint without target: MMPose locates it at (-1, -1)
    output[:, :5] = target[:, :5] * 2  # some exact hits
    mask = torch.rand(6, 17, generator=generator) > 0.3
    mask[:, 7] = False  # a keypoint with no visible instance: left out of the mean
    _, expected, _ = pose_pck_accuracy(output.numpy(), target.numpy(), mask.numpy())
    assert float(heatmap_pck_accuracy(output, target, mask)) == pytest.approx(expected, abs=1e-6)


def test_device_accuracy_needs_no_numpy_and_matches_in_training(in_repo, monkeypatch):
    cfg = Config.fromfile(str(SB_SAMPLE_CONFIG))
    model = MODELS.build(cfg.model)
    model.init_weights()
    batch = model.data_preprocessor(pseudo_collate(_samples(cfg, 4)), True)
    numpy_losses = model.head.loss(model.extract_feat(batch['inputs']), batch['data_samples'],
                                   dict(compute_acc=True))
    import mmpose.models.heads.heatmap_heads.heatmap_head as heatmap_head

    def no_numpy(*args, **kwargs):
        raise AssertionError('the device path must not copy heatmaps to numpy')

    monkeypatch.setattr(heatmap_head, 'to_numpy', no_numpy)
    monkeypatch.setattr(device_accuracy, 'to_numpy', no_numpy)
    device_losses = model.head.loss(model.extract_feat(batch['inputs']), batch['data_samples'],
                                    dict(compute_acc='device'))
    assert isinstance(device_losses['acc_pose'], torch.Tensor)
    assert float(device_losses['acc_pose']) == pytest.approx(float(numpy_losses['acc_pose']),
                                                             abs=1e-6)
    assert torch.equal(device_losses['loss_kpt'], numpy_losses['loss_kpt'])


# Stacked batches -----------------------------------------------------------------------------


def _samples(cfg, count):
    from mmpose.registry import DATASETS
    from mmengine.registry import init_default_scope
    init_default_scope('mmpose')
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    return [dataset[i % len(dataset)] for i in range(count)]


def test_stack_collate_sends_three_tensors_and_the_model_sees_the_same_batch(in_repo):
    cfg = Config.fromfile(str(SB_SAMPLE_CONFIG))
    samples = _samples(cfg, 5)
    stacked = stack_collate(copy.deepcopy(samples))
    tensors = [stacked['inputs'], *stacked['stacked_fields'].values()]
    assert stacked['inputs'].shape == (5, 3, 128, 96) and stacked['inputs'].dtype == torch.uint8
    assert set(stacked['stacked_fields']) == {'gt_fields.heatmaps',
                                              'gt_instance_labels.keypoint_weights'}
    leftover = [v for s in stacked['data_samples'] for e in s.values() if hasattr(e, 'values')
                for v in e.values() if isinstance(v, torch.Tensor)]
    assert len(tensors) == 3 and leftover == []  # instead of 3 per crop

    kwargs = {k: v for k, v in cfg.model.data_preprocessor.items() if k != 'type'}
    ours = StackedPoseDataPreprocessor(**kwargs)(stacked, training=True)
    mmpose = PoseDataPreprocessor(**kwargs)(pseudo_collate(samples), training=True)
    assert torch.equal(ours['inputs'], mmpose['inputs'])
    for a, b in zip(ours['data_samples'], mmpose['data_samples']):
        assert torch.equal(a.gt_fields.heatmaps, b.gt_fields.heatmaps)
        assert torch.equal(a.gt_instance_labels.keypoint_weights,
                           b.gt_instance_labels.keypoint_weights)
        assert a.metainfo['pad_shape'] == (128, 96)  # MMPose 1.3.2 reads a stacked batch wrong
    # Batches of pseudo_collate (testing, the inferencer) take MMPose's path unchanged.
    plain = StackedPoseDataPreprocessor(**kwargs)(pseudo_collate(samples), training=False)
    assert torch.equal(plain['inputs'], mmpose['inputs'])


# Hooks ---------------------------------------------------------------------------------------


def test_lazy_runtime_info_gives_the_logger_the_same_values(tmp_path, in_repo):
    def losses_with(runtime_info, work_dir):
        cfg = short_training_cfg(work_dir=work_dir, iters=5)
        cfg.default_hooks.runtime_info = dict(type=runtime_info)
        cfg.default_hooks.logger.interval = 2
        runner = train(cfg)
        return history(runner, 'loss'), history(runner, 'acc_pose')

    lazy = losses_with('LazyRuntimeInfoHook', tmp_path / 'lazy')
    eager = losses_with('RuntimeInfoHook', tmp_path / 'eager')
    assert len(lazy[0]) == 5 and lazy == eager


def test_channels_last_hook_converts_weights_and_every_batch(tmp_path, in_repo):
    runner = train(short_training_cfg(work_dir=tmp_path))
    conv = runner.model.backbone.conv1.weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    batch = runner.model.data_preprocessor(
        pseudo_collate(_samples(runner.cfg, 2)), training=False)
    assert batch['inputs'].is_contiguous(memory_format=torch.channels_last)
    assert all(np.isfinite(history(runner, 'loss')))


def settings_in_effect(runner) -> dict:
    """What the run actually used, read off the runner, for each speed setting that can be off."""
    wrapper, loader = runner.optim_wrapper, runner.train_dataloader
    collate = getattr(loader.collate_fn, 'func', loader.collate_fn)
    return {
        'optim_wrapper': (type(wrapper).__name__, getattr(wrapper, 'loss_scaler', None)),
        'data path': (type(runner.model.data_preprocessor).__name__, collate.__name__),
        'acc_pose': dict(runner.accuracy_calls),
        'memory format': runner.model.backbone.conv1.weight.is_contiguous(
            memory_format=torch.channels_last),
        'workers': loader.num_workers,
    }


def train_counting_accuracy(cfg) -> Runner:
    """Train ``cfg``, counting calls of the two ``acc_pose`` implementations: MMPose's numpy
    ``pose_pck_accuracy`` and our torch ``heatmap_pck_accuracy``."""
    import mmpose.models.heads.heatmap_heads.heatmap_head as mmpose_head
    calls = {'numpy': 0, 'device': 0}

    def counting(name, function):
        def counted(*args, **kwargs):
            calls[name] += 1
            return function(*args, **kwargs)
        return counted

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(mmpose_head, 'pose_pck_accuracy',
                      counting('numpy', mmpose_head.pose_pck_accuracy))
        patch.setattr(device_accuracy, 'heatmap_pck_accuracy',
                      counting('device', device_accuracy.heatmap_pck_accuracy))
        runner = train(cfg)
    runner.accuracy_calls = calls
    return runner


ALL_ON = {'optim_wrapper': ('BF16AmpOptimWrapper', None),  # bf16: no GradScaler
          'data path': ('StackedPoseDataPreprocessor', 'stack_collate'),
          'acc_pose': {'numpy': 0, 'device': 2},
          'memory format': True,
          'workers': 0}


@pytest.fixture(scope='module')
def all_settings_on(module_mktemp):
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(ROOT)
        work_dir = module_mktemp('on')
        runner = train_counting_accuracy(short_training_cfg(work_dir=work_dir))
    return settings_in_effect(runner), history(runner, 'loss')


def test_every_speed_setting_is_on_in_the_sample_config(all_settings_on):
    settings, losses = all_settings_on
    assert settings == ALL_ON
    assert len(losses) == 2 and all(np.isfinite(losses))


@pytest.mark.parametrize('setting,change,off', [
    ('optim_wrapper', dict(optim_wrapper=dict(_delete_=True, type='OptimWrapper',
                                              optimizer=dict(type='Adam', lr=2e-3))),
     ('OptimWrapper', None)),
    ('data path', dict(model=dict(data_preprocessor=dict(type='PoseDataPreprocessor')),
                       train_dataloader=dict(collate_fn=dict(type='pseudo_collate'))),
     ('PoseDataPreprocessor', 'pseudo_collate')),
    ('acc_pose', dict(model=dict(train_cfg=dict(compute_acc=True))), {'numpy': 2, 'device': 0}),
    ('memory format', dict(custom_hooks=[]), False),
    ('workers', dict(train_dataloader=dict(num_workers=2, persistent_workers=True)), 2),
])
def test_each_setting_can_be_turned_off_alone(tmp_path, in_repo, all_settings_on, setting,
                                              change, off):
    """Off means off (read off the runner), the others stay on, and the model still trains."""
    cfg = short_training_cfg(work_dir=tmp_path)
    cfg.merge_from_dict(change)
    runner = train_counting_accuracy(cfg)
    assert settings_in_effect(runner) == {**ALL_ON, setting: off}
    losses = history(runner, 'loss')
    assert len(losses) == 2 and all(np.isfinite(losses))


def test_mmengine_compile_option_trains(tmp_path, in_repo):
    """MMEngine's `compile` compiles the whole train_step; the `eager` backend runs TorchDynamo's
    tracing (where our data preprocessor and the optimizer step opt out) without minutes of
    inductor code generation on 2 cores."""
    cfg = short_training_cfg(work_dir=tmp_path, iters=3, batch_size=2)
    # A learning rate that changes every iteration, as in a warm-up: it must not recompile.
    cfg.param_scheduler = [dict(type='LinearLR', begin=0, end=3, start_factor=0.1, by_epoch=False)]
    cfg.compile = dict(backend='eager')
    torch._dynamo.reset()
    with torch._dynamo.config.patch(recompile_limit=2, fail_on_recompile_limit_hit=True):
        losses = history(train(cfg), 'loss')
    torch._dynamo.reset()
    assert len(losses) == 3 and all(np.isfinite(losses))
