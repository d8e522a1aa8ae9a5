"""MMEngine checkpoints load on torch>=2.6 through MMEngine only; saves are atomic."""
import os

import numpy as np
import pytest
import torch
from mmengine.fileio import get_file_backend
from mmengine.runner.checkpoint import CheckpointLoader, _load_checkpoint, save_checkpoint

import mmpose_sam  # noqa: F401  (applies the fixes)

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


def test_weights_only_stays_on_for_the_rest_of_the_process(tmp_path):
    """The fix is at MMEngine's call sites: a plain torch.load keeps refusing arbitrary pickles."""
    path = tmp_path / 'ckpt.pth'
    torch.save(CHECKPOINT, path)
    assert 'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD' not in os.environ
    with pytest.raises(Exception, match='Weights only load failed'):
        torch.load(path)


def test_loader_is_registered_for_local_paths():
    assert CheckpointLoader._get_checkpoint_loader('/some/file.pth').__module__ == \
        'mmpose_sam.checkpoint'
    assert CheckpointLoader._get_checkpoint_loader('s3://bucket/file.pth').__module__ == \
        'mmpose_sam.checkpoint'
    # ImageNet weights (http, torchvision://) are plain tensors and keep torch's safe default.
    assert CheckpointLoader._get_checkpoint_loader('https://x/y.pth').__module__ == \
        'mmengine.runner.checkpoint'


def test_missing_checkpoint_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=f'{tmp_path}/nope.pth can not be found'):
        _load_checkpoint(str(tmp_path / 'nope.pth'))


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
