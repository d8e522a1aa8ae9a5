"""Old checkpoints are removed only after the new one is written (mmpose_sam.engine.CheckpointHook)."""
import pytest
from mmengine.config import Config
from mmengine.runner import Runner
from mmpose.registry import HOOKS

from mmpose_sam.engine import CheckpointHook

from conftest import ROOT, SB_SAMPLE_CONFIG


def test_registered_under_mmengines_name_for_mmpose_configs():
    from mmengine.registry import init_default_scope
    init_default_scope('mmpose')
    assert HOOKS.get('CheckpointHook') is CheckpointHook


def test_a_failed_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # the sample config's data_root is relative to the repo root
    cfg = Config.fromfile(str(SB_SAMPLE_CONFIG))
    cfg.work_dir = str(tmp_path)
    cfg.train_cfg.max_epochs, cfg.train_cfg.val_interval = 2, 100
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=1, max_keep_ckpts=1)
    runner = Runner.from_cfg(cfg)
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
