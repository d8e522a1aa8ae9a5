"""Checkpoint I/O: MMEngine's loaders replaced by ours where our configs ask for it
(mmpose_sam.upstream), atomic saves with the usual file mode, a training killed (kill -9) while
saving resumes from the last complete checkpoint, and a full disk during a save is one line (the
file, the space needed and free, the intact checkpoint), after which --resume goes on.

Safe loading is in tests/test_safe_loading.py, the fit check in tests/test_checkpoint_fit.py,
checkpoints cut short in tests/test_untrusted_files.py.
"""
import errno
import os
import re
import shutil
import signal
import subprocess
import sys
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.fileio import LocalBackend, get_file_backend
from mmengine.runner import checkpoint as mmengine_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader, _load_checkpoint, save_checkpoint

import mmpose_sam.upstream  # noqa: F401  (our loaders, as our configs' custom_imports get them)
from conftest import NO_VALIDATION, SB_SAMPLE_CONFIG, run_python, runner_log, tool_runner
from helpers_full_disk import FillsUp  # the training child below uses it too
from mmpose_sam.reliability.checkpoint import (ATOMIC_BACKEND_ARGS, CheckpointNotFoundError,
                                               DiskFullError)
from mmpose_sam.reliability.checkpoint import atomic_save as atomic_save_module
from mmpose_sam.reliability.checkpoint.integrity import human_size

LOADERS = 'mmpose_sam.reliability.checkpoint.loaders'
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
    assert (found.__module__, found.__name__) == (LOADERS, loader)


def test_applying_twice_changes_nothing():
    from mmpose_sam.upstream import checkpoint_loading
    schemes = dict(CheckpointLoader._schemes)
    checkpoint_loading.apply()
    assert CheckpointLoader._schemes == schemes


def test_torchvision_and_other_url_schemes_download_through_our_http_loader():
    # MMEngine's torchvision://, mmcls://, open-mmlab:// loaders call this module global
    assert mmengine_checkpoint.load_from_http.__module__ == LOADERS


def test_missing_checkpoint_is_one_line(tmp_path):
    with pytest.raises(CheckpointNotFoundError) as error:
        _load_checkpoint(str(tmp_path / 'nope.pth'))
    assert str(error.value) == f'{tmp_path}/nope.pth: no such checkpoint file'
    assert isinstance(error.value, FileNotFoundError)  # what MMEngine raised, for callers


# Atomic saves --------------------------------------------------------------------------------
def atomic_save(checkpoint, path) -> None:
    """Save as AtomicCheckpointHook and PreemptionHook do: through the ``atomic_local`` backend."""
    save_checkpoint(checkpoint, str(path), backend_args=ATOMIC_BACKEND_ARGS)


def test_mmengines_local_backend_stays_mmengines():
    assert type(get_file_backend('/some/file.pth')) is LocalBackend
    assert type(get_file_backend('/some/file.pth', backend_args=ATOMIC_BACKEND_ARGS)) is \
        atomic_save_module.AtomicLocalBackend


def test_interrupted_save_leaves_no_partial_file(tmp_path, monkeypatch):
    path = tmp_path / 'epoch_1.pth'
    atomic_save(CHECKPOINT, path)
    good = path.read_bytes()

    def fail_midway(fd):
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(os, 'fsync', fail_midway)
    with pytest.raises(OSError, match='No space left on device'):
        atomic_save({**CHECKPOINT, 'meta': {'epoch': 3}}, path)
    assert path.read_bytes() == good  # the old checkpoint is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ['epoch_1.pth']  # no temp file left


def test_text_files_are_written_atomically_too(tmp_path, monkeypatch):
    """``last_checkpoint``, which ``--resume`` reads, goes through ``put_text``."""
    path = tmp_path / 'last_checkpoint'
    backend = get_file_backend(str(path), backend_args=ATOMIC_BACKEND_ARGS)
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
        atomic_save(CHECKPOINT, tmp_path / 'atomic.pth')
    finally:
        os.umask(old)
    mode = (tmp_path / 'plain.pth').stat().st_mode & 0o7777
    assert mode == 0o666 & ~umask
    assert (tmp_path / 'atomic.pth').stat().st_mode & 0o7777 == mode


def test_overwriting_keeps_the_mode_of_the_existing_file(tmp_path):
    """As ``open(path, 'wb')`` does: e.g. a checkpoint made group-readable by hand stays so."""
    path = tmp_path / 'epoch_1.pth'
    atomic_save(CHECKPOINT, path)
    path.chmod(0o640)
    atomic_save(CHECKPOINT, path)
    assert path.stat().st_mode & 0o7777 == 0o640


# kill -9 while saving, then --resume ---------------------------------------------------------
# MMPose's tools/train.py, killed by SIGKILL just before the epoch-2 checkpoint is complete
# (after its bytes are written, before the rename): the worst moment for a plain open().
KILLED_TRAIN = '''
import os, signal, sys
import mmpose_sam
from toolkit.mmpose_tools import run_mmpose_tool
fsync = os.fsync
def fsync_or_die(fd):
    if '.epoch_2.pth.' in os.readlink(f'/proc/self/fd/{fd}'):
        os.kill(os.getpid(), signal.SIGKILL)
    fsync(fd)
os.fsync = fsync_or_die
run_mmpose_tool('train.py', sys.argv[1:])
'''
# max_keep_ckpts=-1: every checkpoint kept, whatever removes old ones.
QUICK = ['train_cfg.max_epochs=2', NO_VALIDATION,
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

    runner = tool_runner(SB_SAMPLE_CONFIG, work, resume=True, options=QUICK)  # in this process
    runner.train()
    assert 'resumed epoch: 1, iter: 1' in runner_log(runner)
    resumed = _load_checkpoint(str(work / 'epoch_2.pth'))
    assert (resumed['meta']['epoch'], resumed['meta']['iter']) == (2, 2)


# A full disk during a save ---------------------------------------------------------------------
Usage = namedtuple('Usage', 'total used free')
FREE = 12 * 2**20


@pytest.fixture
def fill_disk(monkeypatch):
    """Call it, and saves write 100 bytes, then fail with ENOSPC; ``shutil.disk_usage`` reports
    12 MiB free."""
    fdopen = os.fdopen

    def fill():
        monkeypatch.setattr(atomic_save_module.os, 'fdopen',
                            lambda fd, mode: FillsUp(fdopen(fd, mode), 100))
        monkeypatch.setattr(atomic_save_module.shutil, 'disk_usage',
                            lambda path: Usage(1, 1, FREE))

    return fill


def saved_size(checkpoint) -> int:
    import io
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    return len(buffer.getvalue())


@pytest.mark.parametrize('before', ['last_checkpoint', 'same name', 'nothing'])
def test_full_disk_is_one_line_and_keeps_what_was_there(tmp_path, fill_disk, before):
    epoch_1, epoch_2 = tmp_path / 'epoch_1.pth', tmp_path / 'epoch_2.pth'
    if before != 'nothing':
        atomic_save(CHECKPOINT, epoch_1)  # before the disk filled up
        (tmp_path / 'last_checkpoint').write_text(str(epoch_1))
    target = epoch_1 if before == 'same name' else epoch_2
    good = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    fill_disk()
    new = {**CHECKPOINT, 'meta': {'epoch': 3}}
    with pytest.raises(DiskFullError) as error:
        atomic_save(new, target)
    intact = {'last_checkpoint': f'the last good checkpoint, {epoch_1}, is intact',
              'same name': 'the previous epoch_1.pth is intact',
              'nothing': f'there is no earlier checkpoint in {tmp_path}'}[before]
    assert str(error.value) == (
        f'{target}: not saved: No space left on device (the file needs '
        f'{human_size(saved_size(new))}, {human_size(FREE)} free in {tmp_path}); {intact}')
    assert isinstance(error.value, OSError) and error.value.errno == errno.ENOSPC
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == good  # no partial file


# MMPose's tools/train.py whose epoch-2 checkpoint meets a full disk: on a real (tmpfs) file
# system filled up just before that save when the test may mount one (root), else with ENOSPC
# injected at the write, after part of the bytes.
FULL_DISK_TRAIN = '''
import os, sys
sys.path.insert(0, {tests!r})
import mmpose_sam
from helpers_full_disk import FillsUp
from mmpose_sam.reliability.checkpoint import atomic_save
from toolkit.mmpose_tools import run_mmpose_tool
filler = os.environ.get('FILLER')
put, fdopen = atomic_save.AtomicLocalBackend.put, os.fdopen

def put_on_a_full_disk(self, obj, filepath):
    if not str(filepath).endswith('epoch_2.pth'):
        return put(self, obj, filepath)
    if filler:  # leave 1 MiB: the kernel refuses the rest
        stats = os.statvfs(os.path.dirname(filler))
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
        os.posix_fallocate(fd, 0, stats.f_bavail * stats.f_frsize - 2**20)
        os.close(fd)
        return put(self, obj, filepath)
    os.fdopen = lambda fd, mode: FillsUp(fdopen(fd, mode), 100)
    try:
        return put(self, obj, filepath)
    finally:
        os.fdopen = fdopen

atomic_save.AtomicLocalBackend.put = put_on_a_full_disk
run_mmpose_tool('train.py', sys.argv[1:])
'''
# The sample config's max_keep_ckpts=1: AtomicCheckpointHook removes epoch_1.pth only after
# epoch_2.pth is saved.
TWO_EPOCHS = ['train_cfg.max_epochs=2', NO_VALIDATION,
              'default_hooks.checkpoint.interval=1', 'default_hooks.checkpoint.save_best=None',
              'default_hooks.logger.interval=1']


@pytest.fixture
def small_disk(tmp_path):
    """A 1.5 GiB tmpfs (memory is used only for what is written; the sample's checkpoints are
    390 MiB) where this process may mount one (root), unmounted afterwards; else ``None``, and the
    fault is injected at the write. One or the other, not both: the injected fault's messages are
    checked in this process above, and each is a 40 s training child."""
    disk = tmp_path / 'disk'
    disk.mkdir()
    mounted = (sys.platform.startswith('linux') and hasattr(os, 'geteuid') and os.geteuid() == 0
               and shutil.which('mount') and subprocess.run(
                   ['mount', '-t', 'tmpfs', '-o', 'size=1536m', 'tmpfs', str(disk)],
                   capture_output=True).returncode == 0)
    yield disk if mounted else None
    if mounted:
        subprocess.run(['umount', '-l', str(disk)], check=False)


def test_full_disk_while_training_then_resume(tmp_path, small_disk):
    work = (small_disk or tmp_path) / 'work'
    filler = (small_disk / 'filler') if small_disk else None
    script = tmp_path / 'full_disk_train.py'
    script.write_text(FULL_DISK_TRAIN.format(tests=str(Path(__file__).parent)))
    proc = run_python([script, SB_SAMPLE_CONFIG, '--work-dir', work, '--cfg-options', *TWO_EPOCHS],
                      check=False, **({'FILLER': str(filler)} if filler else {}))
    assert proc.returncode == 1 and 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    print(f'{"tmpfs" if filler else "injected ENOSPC"}: {last}')
    size = r'[0-9.]+ [KMG]iB \([0-9,]+ bytes\)|[0-9]+ bytes'
    folder = re.escape(str(work))
    assert re.fullmatch(
        rf'error: {folder}/epoch_2\.pth: not saved: No space left on device \(the file needs '
        rf'(?P<needed>{size}), (?P<free>{size}) free in {folder}\); the last good checkpoint, '
        rf'{folder}/epoch_1\.pth, is intact', last), last
    # Nothing partial, nothing lost: epoch_1.pth is what --resume reads, and it loads.
    assert sorted(p.name for p in work.iterdir() if p.is_file() and p.suffix != '.py') == \
        ['epoch_1.pth', 'last_checkpoint']  # no epoch_2.pth, no hidden temporary file
    assert Path((work / 'last_checkpoint').read_text()).name == 'epoch_1.pth'
    assert _load_checkpoint(str(work / 'epoch_1.pth'))['meta']['epoch'] == 1

    if filler:
        filler.unlink()  # space freed, as a user would
    runner = tool_runner(SB_SAMPLE_CONFIG, work, resume=True, options=TWO_EPOCHS)
    runner.train()
    assert 'resumed epoch: 1, iter: 1' in runner_log(runner)
    resumed = _load_checkpoint(str(work / 'epoch_2.pth'))
    assert (resumed['meta']['epoch'], resumed['meta']['iter']) == (2, 2)
