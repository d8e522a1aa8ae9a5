"""No host-device wait per training iteration from our code or our configs (the GPU path).

On a GPU, every read-back (``.item()``, ``bool(t)``, ``.tolist()``, ``.cpu()``...) and every
tensor built from Python data (``torch.tensor([...])``, ``t.new_tensor([...])``, indexing with a
Python list) makes the CPU wait for the GPU's queue: the CPU then cannot prepare the next
iteration while the GPU runs this one. A CPU has no such waits to measure, so this test counts
the *calls* that would wait, with a ``TorchFunctionMode`` around real training iterations of our
COCO settings (the sample config inherits every one of them), and names each call's site.
``tools/benchmark_train.py --sync-check`` lists the real ones on a GPU.
"""
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch
from mmengine.hooks import Hook
from torch.overrides import TorchFunctionMode

from conftest import SB_SAMPLE_CONFIG

# What waits for the GPU when the tensor lives there (reads), and what copies Python data to it.
READS = {'item', '__bool__', '__float__', '__int__', '__index__', 'tolist', 'numpy', 'cpu',
         'nonzero', 'unique', 'masked_select'}
FROM_PYTHON = {'tensor', 'as_tensor', 'new_tensor'}
TORCH_DIR = str(Path(torch.__file__).parent)
# Adam reads its step counter with `.item()` every step; the counter is a CPU tensor by design
# (non-fused, non-capturable Adam), in fresh runs and, with DeviceSetupHook, in resumed ones
# (tested below), so those reads never wait for a GPU.
OPTIMIZER_DIR = str(Path(torch.__file__).parent / 'optim')


def _has_python_list(index) -> bool:
    """Whether an index (``t[index]``) holds a Python list, which torch copies to the device."""
    if isinstance(index, list):
        return True
    return isinstance(index, tuple) and any(_has_python_list(i) for i in index)


class WaitRecorder(TorchFunctionMode):
    """Counts calls that would make the host wait for the GPU, by iteration and by site."""

    def __init__(self):
        super().__init__()
        self.iteration = None
        self.sites = Counter()  # (iteration, op, 'file:line')

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, '__name__', '')
        waits = (name in READS or
                 (name in FROM_PYTHON and args and not isinstance(args[-1], torch.Tensor)) or
                 (name in ('__getitem__', '__setitem__') and len(args) > 1 and
                  _has_python_list(args[1])))
        if waits and self.iteration is not None:
            site = self._site()
            if not site.startswith(OPTIMIZER_DIR):
                self.sites[(self.iteration, name, site)] += 1
        return func(*args, **(kwargs or {}))

    @staticmethod
    def _site() -> str:
        """The innermost caller outside torch itself (our code, MMEngine's or MMPose's)."""
        frame = sys._getframe(2)
        while frame is not None:
            filename = frame.f_code.co_filename
            if filename.startswith(OPTIMIZER_DIR):
                return filename
            if not filename.startswith(TORCH_DIR) and filename != __file__:
                return f'{filename}:{frame.f_lineno}'
            frame = frame.f_back
        return '?'


class _IterationMarker(Hook):
    priority = 'HIGHEST'

    def __init__(self, recorder: WaitRecorder):
        self.recorder = recorder

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.recorder.iteration = runner.iter

    def after_train(self, runner):
        self.recorder.iteration = None


LOG_INTERVAL = 5  # DivergenceHook checks every 10: its boundaries are log boundaries too


def _train_and_record(tmp_path, iters=16):
    from mmengine.config import Config
    from toolkit.runners import build_runner
    cfg = Config.fromfile(str(SB_SAMPLE_CONFIG))
    cfg.work_dir = str(tmp_path)
    cfg.train_cfg = dict(by_epoch=False, max_iters=iters, val_interval=10**6)
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.test_cfg = cfg.test_dataloader = cfg.test_evaluator = None
    cfg.param_scheduler = None
    cfg.default_hooks.checkpoint = None
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=LOG_INTERVAL)
    loader = cfg.train_dataloader
    # One worker: the pipeline runs in it, as in every real run; the main process is measured.
    loader.update(batch_size=2, num_workers=1, persistent_workers=True,
                  sampler=dict(type='InfiniteSampler', shuffle=True))
    cfg.randomness = dict(seed=0)
    runner = build_runner(cfg)
    recorder = WaitRecorder()
    runner.register_hook(_IterationMarker(recorder))
    with recorder:
        runner.train()
    return recorder


@pytest.fixture(scope='module')
def recorded(module_mktemp):
    return _train_and_record(module_mktemp('waits'))


def test_recorder_sees_what_waits():
    """The recorder itself: each kind of wait is counted, ordinary device work is not."""
    recorder = WaitRecorder()
    recorder.iteration = 0
    x = torch.ones(2, 3)
    with recorder:
        x.sum().item()
        x.new_tensor([3, 4])
        x[:, [2, 1, 0]]
        bool(x.sum() > 0)
        x.flip(1) / 3
        torch.hypot(x[..., 0] / 3, x[..., 1] / 4)
    assert sorted(op for _, op, _ in recorder.sites) == ['__bool__', '__getitem__', 'item',
                                                         'new_tensor']


def test_no_waits_between_log_intervals(recorded):
    """Iterations strictly inside a log interval (past the first) wait for nothing; each
    interval's boundary reads everything back once (loss, accuracy, gradient norms)."""
    inside = {it for it in range(LOG_INTERVAL + 1, 3 * LOG_INTERVAL)
              if (it + 1) % LOG_INTERVAL != 0}
    waits = {site: n for site, n in recorded.sites.items() if site[0] in inside}
    assert waits == {}, '\n'.join(f'iteration {it}: {op} at {where} x{n}'
                                  for (it, op, where), n in sorted(waits.items()))
    boundaries = {it for it, _, _ in recorded.sites}
    assert boundaries & {LOG_INTERVAL - 1, 2 * LOG_INTERVAL - 1}, recorded.sites


class _OnAnotherDevice(torch.Tensor):
    """A CPU tensor that says it is on a GPU, as MMEngine's resume leaves a step counter.
    What torch computes from it is a plain tensor again."""

    __torch_function__ = torch._C._disabled_torch_function_impl

    @property
    def device(self):
        return torch.device('cuda', 0)


def test_resumed_step_counters_go_back_to_the_cpu():
    from mmpose_sam.reliability.hooks import DeviceSetupHook
    step = torch.tensor(7.).as_subclass(_OnAnotherDevice)
    exp_avg = torch.zeros(3).as_subclass(_OnAnotherDevice)
    checkpoint = dict(optimizer=dict(state={0: dict(step=step, exp_avg=exp_avg)},
                                     param_groups=[]))
    DeviceSetupHook().after_load_checkpoint(None, checkpoint)
    state = checkpoint['optimizer']['state'][0]
    assert type(state['step']) is torch.Tensor and state['step'].device.type == 'cpu'
    assert state['step'].item() == 7 and state['exp_avg'] is exp_avg  # moments stay put
    wrapped = dict(optimizer=dict(backbone=dict(state={0: dict(step=step)})))  # OptimWrapperDict
    DeviceSetupHook().after_load_checkpoint(None, wrapped)
    assert type(wrapped['optimizer']['backbone']['state'][0]['step']) is torch.Tensor
