"""AtomicCheckpointHook: old checkpoints are removed only after the new one is written, and the
checkpoints and last_checkpoint are written atomically."""
import os

import pytest
from mmengine.config import Config
from mmengine.hooks import CheckpointHook
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmpose.registry import HOOKS

from mmpose_sam.reliability.hooks.checkpoint_hook import AtomicCheckpointHook

from conftest import ROOT, SB_SAMPLE_CONFIG
from toolkit.runners import build_runner  # a visualizer of its own (see there)


def test_registered_under_its_own_name_mmengines_stays_mmengines():
    init_default_scope('mmpose')
    assert HOOKS.get('AtomicCheckpointHook') is AtomicCheckpointHook
    assert 'CheckpointHook' not in HOOKS.module_dict  # not shadowed in MMPose's registry
    assert HOOKS.get('CheckpointHook') is CheckpointHook


def two_epochs(tmp_path, monkeypatch, **hook) -> Runner:
    monkeypatch.chdir(ROOT)  # the sample config's data_root is relative to the repo root
    cfg = Config.fromfile(str(SB_SAMPLE_CONFIG))
    cfg.work_dir = str(tmp_path)
    cfg.train_cfg.max_epochs, cfg.train_cfg.val_begin = 2, 10**6  # no validation
    cfg.default_hooks.checkpoint = dict(type='AtomicCheckpointHook', interval=1, **hook)
    return build_runner(cfg)


def test_a_failed_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    runner = two_epochs(tmp_path, monkeypatch, max_keep_ckpts=1)
    save = runner.save_checkpoint

    def full_disk(out_dir, filename, *args, **kwargs):
        if filename == 'epoch_2.pth':
            raise OSError(28, 'No space left on device')
        return save(out_dir, filename, *args, **kwargs)

    monkeypatch.setattr(runner, 'save_checkpoint', full_disk)
    with pytest.raises(OSError, match='No space left on device'):
        runner.train()
    # MMEngine 0.10.7 deleted epoch_1.pth before trying epoch_2.pth: nothing left to resume.
    assert sorted(p.name for p in tmp_path.glob('*.pth')) == ['epoch_1.pth']
    assert (tmp_path / 'last_checkpoint').read_text() == str(tmp_path / 'epoch_1.pth')


def test_checkpoints_and_last_checkpoint_go_through_the_atomic_backend(tmp_path, monkeypatch):
    runner = two_epochs(tmp_path, monkeypatch, max_keep_ckpts=1)
    renamed = []
    replace = os.replace

    def note(source, target):  # the atomic backend's rename into place
        renamed.append(os.path.basename(target))
        replace(source, target)

    monkeypatch.setattr(os, 'replace', note)
    runner.train()
    assert renamed == ['epoch_1.pth', 'last_checkpoint', 'epoch_2.pth', 'last_checkpoint']
    assert sorted(p.name for p in tmp_path.glob('*.pth')) == ['epoch_2.pth']
    assert (tmp_path / 'last_checkpoint').read_text() == str(tmp_path / 'epoch_2.pth')


def test_backend_args_of_the_config_are_kept(tmp_path, monkeypatch):
    runner = two_epochs(tmp_path, monkeypatch, backend_args=dict(backend='local'))
    hook = next(h for h in runner.hooks if isinstance(h, AtomicCheckpointHook))
    hook.before_train(runner)
    assert hook.backend_args == dict(backend='local')
    assert type(hook.file_backend).__name__ == 'LocalBackend'
