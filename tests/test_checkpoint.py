"""Checkpoint I/O: MMEngine's loaders replaced by ours, atomic saves with the usual file mode, and a
training killed (kill -9) while saving resumes from the last complete checkpoint.

Safe loading is in tests/test_safe_loading.py, the fit check in tests/test_checkpoint_fit.py.
"""
import os
import re
import signal
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.fileio import get_file_backend
from mmengine.runner import checkpoint as mmengine_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader, _load_checkpoint, save_checkpoint

import mmpose_sam  # noqa: F401  (registers the loaders and the storage backend)
from conftest import SB_SAMPLE_CONFIG, run_python
from mmpose_sam.checkpoint import CheckpointNotFoundError

# What MMEngine's runner pickles beside tensors: numpy scalars and dtypes in the message hub.
CHECKPOINT = {
    'meta': {'epoch': 2, 'seed': np.int64(7), 'dtype': np.dtype('float32')},
    'state_dict': {'w': torch.ones(2)},
    'message_hub': {'log_scalars': {'loss': np.float64(0.5)}},
}


def test_mmengine_loads_its_own_checkpoints(tmp_path):
    path = str(tmp_path / 'epoch_2.pth')
    save_checkpoint(CHECKPOINT, path)
    loaded = _load_checkpoint(path, map_location='cpu')
    assert loaded['meta']['seed'] == 7 and loaded['meta']['dtype'] == np.float32
    assert torch.equal(loaded['state_dict']['w'], torch.ones(2))


def test_the_allow_list_stays_inside_the_loaders(tmp_path):
    """A plain torch.load elsewhere in the process keeps torch's defaults: no numpy."""
    path = tmp_path / 'ckpt.pth'
    torch.save(CHECKPOINT, path)
    allowed = set(torch.serialization.get_safe_globals())  # torch allows some of its own
    _load_checkpoint(str(path))
    assert 'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD' not in os.environ
    assert set(torch.serialization.get_safe_globals()) == allowed
    with pytest.raises(Exception, match='Weights only load failed'):
        torch.load(path)


@pytest.mark.parametrize('name, loader', [
    ('/some/file.pth', 'load_from_local'), ('work_dirs/x/epoch_1.pth', 'load_from_local'),
    ('s3://bucket/file.pth', 'load_from_ceph'), ('cluster:s3://b/f.pth', 'load_from_ceph'),
    ('https://x/y.pth', 'load_from_http'), ('http://x/y.pth', 'load_from_http'),
    ('partial:work_dirs/x/epoch_1.pth', 'load_from_partial'),
    ('partial:s3://bucket/file.pth', 'load_from_partial')])
def test_our_loaders_are_registered(name, loader):
    found = CheckpointLoader._get_checkpoint_loader(name)
    assert (found.__module__, found.__name__) == ('mmpose_sam.checkpoint.loaders', loader)


def test_torchvision_and_other_url_schemes_download_through_our_http_loader():
    # MMEngine's torchvision://, mmcls://, open-mmlab:// loaders call this module global
    assert mmengine_checkpoint.load_from_http.__module__ == 'mmpose_sam.checkpoint.loaders'


def test_missing_checkpoint_is_one_line(tmp_path):
    with pytest.raises(CheckpointNotFoundError) as error:
        _load_checkpoint(str(tmp_path / 'nope.pth'))
    assert str(error.value) == f'{tmp_path}/nope.pth: no such checkpoint file'
    assert isinstance(error.value, FileNotFoundError)  # what MMEngine raised, for callers


# Atomic saves --------------------------------------------------------------------------------
def test_interrupted_save_leaves_no_partial_file(tmp_path, monkeypatch):
    path = tmp_path / 'epoch_1.pth'
    save_checkpoint(CHECKPOINT, str(path))
    good = path.read_bytes()

    def fail_midway(fd):
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(os, 'fsync', fail_midway)
    with pytest.raises(OSError, match='No space left on device'):
        save_checkpoint({**CHECKPOINT, 'meta': {'epoch': 3}}, str(path))
    assert path.read_bytes() == good  # the old checkpoint is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ['epoch_1.pth']  # no temp file left
    assert type(get_file_backend(str(path))).__name__ == 'AtomicLocalBackend'


def test_text_files_are_written_atomically_too(tmp_path, monkeypatch):
    """``last_checkpoint``, which ``--resume`` reads, goes through ``put_text``."""
    path = tmp_path / 'last_checkpoint'
    backend = get_file_backend(str(path))
    backend.put_text(str(tmp_path / 'epoch_1.pth'), str(path))
    monkeypatch.setattr(os, 'fsync', lambda fd: (_ for _ in ()).throw(OSError(5, 'I/O error')))
    with pytest.raises(OSError, match='I/O error'):
        backend.put_text(str(tmp_path / 'epoch_2.pth'), str(path))
    assert path.read_text() == str(tmp_path / 'epoch_1.pth')
    assert sorted(p.name for p in tmp_path.iterdir()) == ['last_checkpoint']


@pytest.mark.parametrize('umask', [0o022, 0o002, 0o077])
def test_saved_file_mode_is_that_of_a_plain_save(tmp_path, umask):
    old = os.umask(umask)
    try:
        torch.save(CHECKPOINT, tmp_path / 'plain.pth')
        save_checkpoint(CHECKPOINT, str(tmp_path / 'atomic.pth'))
    finally:
        os.umask(old)
    mode = (tmp_path / 'plain.pth').stat().st_mode & 0o7777
    assert mode == 0o666 & ~umask
    assert (tmp_path / 'atomic.pth').stat().st_mode & 0o7777 == mode


def test_overwriting_keeps_the_mode_of_the_existing_file(tmp_path):
    """As ``open(path, 'wb')`` does: e.g. a checkpoint made group-readable by hand stays so."""
    path = tmp_path / 'epoch_1.pth'
    save_checkpoint(CHECKPOINT, str(path))
    path.chmod(0o640)
    save_checkpoint(CHECKPOINT, str(path))
    assert path.stat().st_mode & 0o7777 == 0o640


# kill -9 while saving, then --resume ---------------------------------------------------------
# MMPose's tools/train.py, killed by SIGKILL just before the epoch-2 checkpoint is complete
# (after its bytes are written, before the rename): the worst moment for a plain open().
KILLED_TRAIN = '''
import os, signal, sys
import mmpose_sam
from mmpose_sam.mmpose_tools import run_mmpose_tool
fsync = os.fsync
def fsync_or_die(fd):
    if '.epoch_2.pth.' in os.readlink(f'/proc/self/fd/{fd}'):
        os.kill(os.getpid(), signal.SIGKILL)
    fsync(fd)
os.fsync = fsync_or_die
run_mmpose_tool('train.py', sys.argv[1:])
'''
# max_keep_ckpts=-1: with N > 0, MMEngine 0.10.7's CheckpointHook deletes the oldest checkpoint
# *before* it writes the new one, so a kill during the save can leave none (sample config: N=1).
QUICK = ['train_cfg.max_epochs=2', 'train_cfg.val_interval=100',
         'default_hooks.checkpoint.interval=1', 'default_hooks.checkpoint.save_best=None',
         'default_hooks.checkpoint.max_keep_ckpts=-1', 'default_hooks.logger.interval=1']


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='reads /proc/self/fd')
def test_kill_9_while_saving_then_resume(tmp_path):
    work = tmp_path / 'work'
    script = tmp_path / 'killed_train.py'
    script.write_text(KILLED_TRAIN)
    proc = run_python([script, SB_SAMPLE_CONFIG, '--work-dir', work, '--cfg-options', *QUICK],
                      check=False)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    names = sorted(p.name for p in work.iterdir() if p.is_file())
    # epoch 2 never appeared; its temporary file is left behind, hidden and not a .pth
    assert 'epoch_1.pth' in names and 'epoch_2.pth' not in names
    assert [n for n in names if n.startswith('.')] == \
        [n for n in names if re.fullmatch(r'\.epoch_2\.pth\.[0-9a-f]{8}\.tmp', n)] != []
    assert Path((work / 'last_checkpoint').read_text()).name == 'epoch_1.pth'

    from mmpose_sam.mmpose_tools import mmpose_tool_path
    proc = run_python([mmpose_tool_path('train.py'), SB_SAMPLE_CONFIG, '--work-dir', work,
                       '--resume', '--cfg-options', *QUICK])
    assert 'resumed epoch: 1, iter: 1' in proc.stdout + proc.stderr
    resumed = _load_checkpoint(str(work / 'epoch_2.pth'))
    assert (resumed['meta']['epoch'], resumed['meta']['iter']) == (2, 2)
