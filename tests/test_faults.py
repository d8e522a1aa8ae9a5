"""Cluster faults and files from elsewhere: a data loader worker killed as the out-of-memory killer
does (a real training child), and the config text a checkpoint embeds, which MMEngine executes
(README "When things go wrong")."""
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.runner.checkpoint import _load_checkpoint

import mmpose_sam.upstream  # noqa: F401  (our loaders, as our configs' custom_imports get them)
from mmpose_sam.reliability.checkpoint.embedded_config import parse_config_text
from mmpose_sam.reliability.hooks.loops import worker_death

from conftest import (NO_VALIDATION, ROOT, SB_SAMPLE_CONFIG, runner_log, short_training_cfg,
                      subprocess_env, tool_runner)
from toolkit.runners import build_runner  # a visualizer of its own (see there)
from helpers_faults import write_config
from helpers_preemption import with_tests_on_path

# Batch 6: 2 iterations an epoch of the 12 people; one persistent worker, as our configs use.
FAULT_OPTS = ['--cfg-options', 'train_cfg.max_epochs=2', NO_VALIDATION,
              'default_hooks.logger.interval=1', 'train_dataloader.batch_size=6',
              'randomness.seed=0', 'default_hooks.checkpoint.interval=1',
              'train_dataloader.num_workers=1', 'train_dataloader.persistent_workers=True']


def train(config, work_dir):
    """tools/train.py in a child (its exit status, stdout and stderr)."""
    return subprocess.run(
        [sys.executable, str(ROOT / 'tools' / 'train.py'), str(config), '--work-dir',
         str(work_dir), *FAULT_OPTS], cwd=ROOT, env=with_tests_on_path(subprocess_env()),
        capture_output=True, text=True, timeout=900)


def test_killed_loader_worker_saves_the_last_iteration_and_resume_finishes(tmp_path,
                                                                          monkeypatch):
    """The worker dies in the middle of iteration 3 (the first of epoch 2): that iteration is
    finished and saved, the death reported at the next fetch."""
    config = write_config(tmp_path / 'kill.py', SB_SAMPLE_CONFIG, iteration=3)
    run = tmp_path / 'run'
    killed = train(config, run)
    assert killed.returncode == 1, killed.stdout[-3000:] + killed.stderr[-3000:]
    assert 'Traceback' not in killed.stderr
    pid = int((run / 'killed.pid').read_text())
    checkpoint = run / 'iter_3.pth'
    assert killed.stderr.strip().splitlines()[-1] == (
        f'error: data loader worker (pid {pid}) was killed by SIGKILL after iteration 3 '
        f'(epoch 2), most likely by the out-of-memory killer; saved {checkpoint}; lower '
        "train_dataloader's num_workers (now 1), batch_size (6) or prefetch_factor (2), or give "
        'the job more memory; then continue with --resume')
    assert (run / 'last_checkpoint').read_text() == str(checkpoint)
    assert sorted(p.name for p in run.glob('*.pth')) == ['epoch_1.pth', 'iter_3.pth']
    saved = torch.load(checkpoint, map_location='cpu', weights_only=False)
    assert (saved['meta']['epoch'], saved['meta']['iter']) == (1, 3)
    assert {'optimizer', 'param_schedulers', 'message_hub'} <= set(saved)

    # --resume, built in this process (conftest's tool_runner): the command line's is covered by
    # test_train_loop.py and test_preemption_ddp.py.
    monkeypatch.chdir(ROOT)  # the sample config's data_root is relative to the repo root
    resumed = tool_runner(SB_SAMPLE_CONFIG, run, resume=True, options=FAULT_OPTS[1:])
    resumed.train()
    log = runner_log(resumed)
    assert 'resumed epoch: 1, iter: 3' in log
    assert 'skipping its 1 batches trained before the interruption' in log
    assert (run / 'epoch_2.pth').is_file()


@pytest.mark.parametrize('message,expected', [
    ('DataLoader worker (pid 77) is killed by signal: Bus error. It is possible that ...',
     (77, 'was killed by SIGBUS (Bus error)', 'most likely out of shared memory (/dev/shm)')),
    ('DataLoader worker (pid 78) exited unexpectedly with exit code 3. Details are lost ...',
     (78, 'exited with status 3', '')),
    ('DataLoader worker (pid(s) 79, 80) exited unexpectedly', (79, 'exited unexpectedly', '')),
    ('Caught ValueError in DataLoader worker process 0.', None),
], ids=['SIGBUS', 'exit-code', 'periodic-check', 'error-in-worker'])
def test_worker_deaths_are_told_from_torch_messages(message, expected):
    assert worker_death(RuntimeError(message)) == expected


def test_the_cause_of_a_chained_worker_death_is_named():
    """torch's periodic check raises 'exited unexpectedly' from the SIGCHLD handler's error."""
    try:
        try:
            raise RuntimeError('DataLoader worker (pid 81) is killed by signal: Killed. ')
        except RuntimeError as cause:
            raise RuntimeError('DataLoader worker (pid(s) 81) exited unexpectedly') from cause
    except RuntimeError as error:
        assert worker_death(error) == (81, 'was killed by SIGKILL',
                                       'most likely by the out-of-memory killer')


# Config text embedded in a checkpoint ----------------------------------------------------------
def test_resume_never_executes_the_config_a_checkpoint_embeds(tmp_path, monkeypatch):
    """MMEngine's Runner.resume runs Config.fromstring(meta['config'], '.py'), its inferencers
    the text of meta['cfg'] or message_hub.runtime_info['cfg']: all three come back as data."""
    monkeypatch.chdir(ROOT)
    cfg = short_training_cfg(work_dir=tmp_path)
    runner = build_runner(cfg)
    # What RuntimeInfoHook.before_run keeps in every training checkpoint's message hub
    runner.message_hub.update_info('cfg', runner.cfg.pretty_text)
    runner.save_checkpoint(str(tmp_path), 'good.pth', save_optimizer=False,
                           save_param_scheduler=False)

    marker = tmp_path / 'ran'
    crafted = torch.load(tmp_path / 'good.pth', map_location='cpu', weights_only=False)
    payload = f"_ = open({str(marker)!r}, 'w').close()\ngpu_ids = [0]\n"
    crafted['meta']['config'] = crafted['meta']['cfg'] = payload
    crafted['message_hub']['runtime_info']['cfg'] = payload
    torch.save(crafted, tmp_path / 'crafted.pth')

    cfg = short_training_cfg(work_dir=tmp_path / 'resumed')
    cfg.load_from, cfg.resume = str(tmp_path / 'crafted.pth'), True
    runner = build_runner(cfg)
    runner.load_or_resume()
    assert not marker.exists()
    assert runner.iter == crafted['meta']['iter']
    loaded = _load_checkpoint(str(tmp_path / 'crafted.pth'))
    assert 'config' not in loaded['meta'] and 'cfg' not in loaded['meta']
    assert 'cfg' not in loaded['message_hub']['runtime_info']

    good = _load_checkpoint(str(tmp_path / 'good.pth'))
    # What MMEngine wrote is still the same config (less custom_imports: never imported from a
    # checkpoint), and still what MMEngine's own parser reads.
    written = Config.fromfile(str(SB_SAMPLE_CONFIG)).to_dict()
    for text in (good['meta']['cfg'], good['message_hub']['runtime_info']['cfg']):
        data = Config.fromstring(text, '.py').to_dict()
        assert 'custom_imports' not in data
        assert data['model'] == written['model'] and data['codec'] == written['codec']


@pytest.mark.parametrize('text', [
    "import os\n", "x = __import__('os')\n", 'x = dict(**y)\n', 'x = [i for i in range(3)]\n',
    "x = 'a'.join('bc')\n", "x = print(end='')\n", 'x = lambda: 0\n', 'x = y = 1\n',
    'x.y = 1\n', 'x = (\n'])
def test_config_text_that_is_not_plain_data_is_refused(text):
    with pytest.raises(ValueError, match='^line 1: '):
        parse_config_text(text)


def test_config_text_of_plain_data_is_read():
    assert parse_config_text("a = dict(b=[1, -2.5, (None, True)], c={'d e': 'f'})\n") == \
        dict(a=dict(b=[1, -2.5, (None, True)], c={'d e': 'f'}))
