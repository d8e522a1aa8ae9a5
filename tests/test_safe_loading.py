"""Checkpoints load weights-only with the MMEngine allow-list: real training checkpoints (and
``--resume`` from them) work, a file that would run code on load is refused in one line without
running it, ``MMPOSE_SAM_TRUST_CHECKPOINTS=1`` loads it with full pickle."""
import copy
import os
import pathlib

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader, _load_checkpoint

import mmpose_sam.upstream  # noqa: F401  (our loaders, as our configs' custom_imports get them)
from conftest import ROOT, SAM_SAMPLE_CONFIG, SB_SAMPLE_CONFIG, tool_runner
from toolkit.runners import build_runner  # a visualizer of its own (see there)
from mmpose_sam.reliability.checkpoint import TRUST_ENV, UnsafeCheckpointError
from mmpose_sam.reliability.checkpoint.allow_list import MMENGINE_GLOBALS, STATISTICS_METHODS
from mmpose_sam.reliability.checkpoint.safe_loading import mmengine_globals_allowed

WEIGHTS = {'w': torch.ones(2)}


def refusal(path, what: str) -> str:
    return (f'{path}: refused to load: it pickles {what}, which an MMEngine checkpoint never '
            f'contains; only if you trust the file: MMPOSE_SAM_TRUST_CHECKPOINTS=1 (loads it with '
            f'full pickle)')


class Exec:
    """Unpickling runs ``exec(code)``."""

    def __init__(self, code: str):
        self.code = code

    def __reduce__(self):
        return exec, (self.code,)


class Call:
    """Unpickling calls ``function(*args)``."""

    def __init__(self, function, *args):
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


def evil_checkpoint(path: pathlib.Path, payload) -> pathlib.Path:
    torch.save({'meta': {'epoch': 1, 'note': payload}, 'state_dict': WEIGHTS}, path)
    return path


@pytest.fixture
def marker(tmp_path):
    """A file that the evil checkpoints create when they are unpickled."""
    return tmp_path / 'pwned'


@pytest.mark.parametrize('make_payload, what', [
    (lambda m: Exec(f'open({str(m)!r}, "w").close()'), 'builtins.exec'),
    (lambda m: Call(os.system, f'touch {m}'), f'{os.system.__module__}.system'),
    (lambda m: Call(pathlib.Path.touch, pathlib.Path(m)), 'pathlib.Path'),
    # getattr is allowed for HistoryBuffer's statistics methods only
    (lambda m: Call(getattr, torch.Tensor, 'tolist'), "builtins.getattr(torch.Tensor, 'tolist')"),
], ids=['exec', 'os.system', 'Path.touch', 'getattr'])
def test_code_in_a_checkpoint_is_refused_and_not_run(tmp_path, marker, make_payload, what):
    path = evil_checkpoint(tmp_path / 'evil.pth', make_payload(marker))
    with pytest.raises(UnsafeCheckpointError) as error:
        _load_checkpoint(str(path))
    assert str(error.value) == refusal(path, what)
    assert not marker.exists()


def test_trusting_a_file_loads_it_with_full_pickle(tmp_path, marker, monkeypatch):
    path = evil_checkpoint(tmp_path / 'evil.pth', Exec(f'open({str(marker)!r}, "w").close()'))
    monkeypatch.setenv(TRUST_ENV, '1')
    assert torch.equal(_load_checkpoint(str(path))['state_dict']['w'], WEIGHTS['w'])
    assert marker.exists()  # what full pickle does: the reason it is opt-in


def test_a_history_buffer_cannot_swap_mmengine_statistics(tmp_path, monkeypatch):
    """HistoryBuffer.__setstate__ writes into a dict shared by every buffer of the process:
    ``mean`` replaced by another callable torch allows (``set``) is refused."""
    buffer = HistoryBuffer()
    buffer.update(1.0)
    path = tmp_path / 'tampered.pth'
    with monkeypatch.context() as patch:
        patch.setattr(HistoryBuffer, '__getstate__',
                      lambda self: dict(self.__dict__, statistics_methods={'mean': set}))
        torch.save({'message_hub': {'log_scalars': {'loss': buffer}}, 'state_dict': WEIGHTS},
                   path)
    mean = HistoryBuffer._statistics_methods['mean']
    with pytest.raises(UnsafeCheckpointError) as error:
        _load_checkpoint(str(path))
    assert HistoryBuffer._statistics_methods['mean'] is mean
    assert str(error.value) == refusal(
        path, "a HistoryBuffer whose statistics method 'mean' is builtins.set")


def test_object_arrays_are_refused(tmp_path):
    """numpy arrays of numbers and strings load; an array of references is never built."""
    path = tmp_path / 'objects.pth'
    torch.save({'meta': {'ids': np.array([1, 'a'], dtype=object)}, 'state_dict': WEIGHTS}, path)
    with pytest.raises(UnsafeCheckpointError, match='ObjectDType'):
        _load_checkpoint(str(path))
    path = tmp_path / 'values.pth'
    meta = {'names': np.array(['nose', 'eye']), 'sigmas': np.ones(3, np.float32),
            'flags': np.zeros(2, bool), 'seed': np.int64(3), 'ratio': np.float16(0.5)}
    torch.save({'meta': meta, 'state_dict': WEIGHTS}, path)
    loaded = _load_checkpoint(str(path))['meta']
    assert loaded['names'].tolist() == ['nose', 'eye'] and loaded['seed'] == 3


def test_statistics_methods_are_those_mmengine_registers():
    assert set(HistoryBuffer()._statistics_methods) >= set(STATISTICS_METHODS)
    names = {name for _, name in MMENGINE_GLOBALS}
    assert {'numpy.core.multiarray._reconstruct', 'numpy._core.multiarray._reconstruct',
            'builtins.getattr', 'mmengine.logging.history_buffer.HistoryBuffer'} <= names


def test_backbone_pretrained_init_from_a_local_file_is_safe_too(tmp_path, marker):
    from mmpose_sam.models import SAMResNet
    path = evil_checkpoint(tmp_path / 'evil.pth', Exec(f'open({str(marker)!r}, "w").close()'))
    model = SAMResNet(18, init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with pytest.raises(UnsafeCheckpointError, match='it pickles builtins.exec'):
        model.init_weights()
    assert not marker.exists()


def test_downloads_load_safely_and_imagenet_weights_still_load(tmp_path, marker, monkeypatch):
    """http(s) and torchvision:// (which resolves to an http URL) go through torch.hub with
    weights_only=True; torch.hub's default is full pickle."""
    served = {'resnet18-f37072fd.pth': torch.nn.Linear(2, 2).state_dict(),
              'evil.pth': {'state_dict': WEIGHTS, 'x': Exec(f'open({str(marker)!r}, "w")')}}

    def download(url, dst, *args, **kwargs):  # no network in tests
        torch.save(served[url.rsplit('/', 1)[-1]], dst)

    monkeypatch.setattr(torch.hub, 'download_url_to_file', download)
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    imagenet = CheckpointLoader.load_checkpoint('torchvision://resnet18')
    assert set(imagenet) == {'weight', 'bias'}
    url = 'https://example.com/evil.pth'
    with pytest.raises(UnsafeCheckpointError) as error:
        CheckpointLoader.load_checkpoint(url)
    assert str(error.value) == refusal(url, 'builtins.exec')
    assert not marker.exists()


def test_tools_test_refuses(tmp_path, marker):
    path = evil_checkpoint(tmp_path / 'evil.pth', Exec(f'open({str(marker)!r}, "w").close()'))
    runner = tool_runner(SB_SAMPLE_CONFIG, tmp_path / 'work', checkpoint=path)
    with pytest.raises(UnsafeCheckpointError) as error:
        runner.test()
    assert str(error.value) == refusal(path, 'builtins.exec')
    assert not marker.exists()


def test_demo_refuses_in_one_line(tmp_path, marker):
    from test_demo import IMAGE, run_demo
    path = evil_checkpoint(tmp_path / 'evil.pth', Exec(f'open({str(marker)!r}, "w").close()'))
    with pytest.raises(SystemExit) as exit_info:
        run_demo(path, '--input', IMAGE, '--out-dir', tmp_path / 'out')
    assert str(exit_info.value) == 'error: ' + refusal(path, 'builtins.exec')
    assert not marker.exists()


# Real training checkpoints -------------------------------------------------------------------
class StopAfterResume(Exception):
    pass


class ResumeProbe(Hook):
    """Records what ``--resume`` restored, at the start of training, then stops the run."""

    def before_train(self, runner) -> None:
        self.epoch, self.iter = runner.epoch, runner.iter
        self.optimizer = copy.deepcopy(runner.optim_wrapper.state_dict())
        self.schedulers = [copy.deepcopy(s.state_dict()) for s in runner.param_schedulers]
        self.loss = runner.message_hub.get_scalar('train/loss').data[0].copy()
        raise StopAfterResume


def sample_cfg(config, work_dir, epochs: int, resume: bool = False) -> Config:
    cfg = Config.fromfile(str(config))
    cfg.work_dir, cfg.resume = str(work_dir), resume
    cfg.train_cfg.max_epochs, cfg.train_cfg.val_begin = epochs, 10**6  # no validation
    cfg.default_hooks.checkpoint = dict(type='AtomicCheckpointHook', interval=1, save_best=None)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    cfg.randomness = dict(seed=0)
    return cfg


def same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


@pytest.mark.parametrize('config', [SB_SAMPLE_CONFIG, SAM_SAMPLE_CONFIG], ids=['SB', 'SAM'])
def test_training_checkpoint_loads_safely_and_resumes(config, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # the sample configs' data_root is relative to the repo root
    build_runner(sample_cfg(config, tmp_path, epochs=1)).train()
    path = tmp_path / 'epoch_1.pth'
    with mmengine_globals_allowed():  # nothing outside the allow-list
        assert torch.serialization.get_unsafe_globals_in_checkpoint(path) == []
    saved = _load_checkpoint(str(path))  # weights-only
    assert {'meta', 'state_dict', 'optimizer', 'param_schedulers', 'message_hub'} <= set(saved)

    runner = build_runner(sample_cfg(config, tmp_path, epochs=2, resume=True))
    probe = ResumeProbe()
    runner.register_hook(probe)
    with pytest.raises(StopAfterResume):
        runner.train()
    assert (probe.epoch, probe.iter) == (saved['meta']['epoch'], saved['meta']['iter']) == (1, 1)
    assert same(probe.optimizer, saved['optimizer'])
    assert same(probe.schedulers, saved['param_schedulers'])
    assert np.array_equal(probe.loss,
                          saved['message_hub']['log_scalars']['train/loss'].data[0])
