"""A day-long run survives divergence and preemption: real training processes on the bundled
sample (README "When things go wrong")."""
import math
import os
import signal
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch

from mmpose_sam.engine import DivergenceError, DivergenceHook

from conftest import ROOT, SB_SAMPLE_CONFIG, run_python, subprocess_env

TRAIN = [ROOT / 'tools' / 'train.py', SB_SAMPLE_CONFIG]


def last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


def test_exploding_loss_stops_with_one_line_and_keeps_the_last_good_checkpoint(tmp_path):
    # Adam at lr 3 takes the loss from 4e-3 to ~1e6 in its second step.
    opts = ['--cfg-options', 'train_cfg.max_epochs=30', 'train_cfg.val_interval=100',
            'default_hooks.checkpoint.interval=1', 'optim_wrapper.optimizer.lr=3.0',
            'param_scheduler=[]']
    proc = run_python([*TRAIN, '--work-dir', tmp_path, *opts], check=False)
    assert proc.returncode == 1
    assert 'Traceback' not in proc.stderr
    message = last_line(proc.stderr)
    good = tmp_path / 'epoch_1.pth'
    assert message.startswith('error: training diverged at iteration 2 (epoch 2): the loss ')
    assert message.endswith(f'x its early value {message.split("early value ")[1].split()[0]} '
                            f'(limit 100x); last good checkpoint: {good} (--resume continues '
                            'from it with its optimizer state; to change the learning rate, '
                            f'start from its weights: load_from={good})')
    assert sorted(p.name for p in tmp_path.glob('*.pth')) == ['epoch_1.pth']  # no diverged save
    # The last good checkpoint resumes (and, with its learning rate of 3, diverges again) ...
    again = run_python([*TRAIN, '--work-dir', tmp_path, '--resume', *opts], check=False)
    assert 'resumed epoch: 1, iter: 1' in again.stdout + again.stderr
    assert last_line(again.stderr) == message
    # ... and its weights train on with a sane one.
    fixed = run_python([*TRAIN, '--work-dir', tmp_path / 'fixed', '--cfg-options',
                        f'load_from={good}', 'train_cfg.max_epochs=2', 'train_cfg.val_interval=100'])
    assert f'Load checkpoint from {good}' in fixed.stdout + fixed.stderr
    assert (tmp_path / 'fixed' / 'epoch_2.pth').is_file()


class _Runner(SimpleNamespace):
    """What DivergenceHook reads of a runner, for the checks that need no training."""

    def __init__(self, work_dir):
        from mmengine.logging import MessageHub
        model = torch.nn.Linear(2, 2)
        super().__init__(iter=0, epoch=0, work_dir=str(work_dir), hooks=[], model=model,
                         message_hub=MessageHub.get_instance('divergence-test'),
                         optim_wrapper=SimpleNamespace(
                             optimizer=torch.optim.SGD(model.parameters(), lr=0.1)))


def _step(hook, runner, loss, grad=1.0):
    hook.before_train_iter(runner, runner.iter)
    for p in runner.model.parameters():
        p.grad = torch.full_like(p, grad)
    runner.optim_wrapper.optimizer.step()
    hook.after_train_iter(runner, runner.iter, outputs=dict(loss=torch.tensor(loss)))
    runner.iter += 1


def test_non_finite_gradient_norm_stops_at_its_iteration(tmp_path):
    runner = _Runner(tmp_path)
    runner.message_hub.runtime_info.clear()
    hook = DivergenceHook(interval=4)
    hook.before_train(runner)
    _step(hook, runner, 0.004)
    _step(hook, runner, 0.003, grad=math.inf)  # finite loss, infinite gradients
    _step(hook, runner, 0.003)
    with pytest.raises(DivergenceError) as info:
        _step(hook, runner, 0.003)  # the 4th iteration reads all four back
    assert str(info.value) == ('training diverged at iteration 2 (epoch 1): the gradient norm '
                               'is inf; last good checkpoint: none saved yet')
    hook.after_train(runner)


def test_nan_loss_and_checks_before_every_save(tmp_path):
    runner = _Runner(tmp_path)
    runner.message_hub.runtime_info.clear()
    (tmp_path / 'last_checkpoint').write_text(f'{tmp_path}/epoch_3.pth')
    hook = DivergenceHook(interval=100, check_grad_norm=False)
    hook.before_train(runner)
    _step(hook, runner, 0.004)
    _step(hook, runner, float('nan'))
    with pytest.raises(DivergenceError, match=r'^training diverged at iteration 2 \(epoch 1\): '
                       rf'the loss is nan; last good checkpoint: {tmp_path}/epoch_3.pth'):
        hook.before_save_checkpoint(runner, {})


def test_arguments_are_checked():
    with pytest.raises(ValueError, match='interval must be at least 1, got 0'):
        DivergenceHook(interval=0)
    with pytest.raises(ValueError, match='explosion_factor must be > 1, got 1'):
        DivergenceHook(explosion_factor=1)


# Preemption ------------------------------------------------------------------------------------
# batch 4: 3 iterations an epoch, so that a signal can land inside an epoch.
PREEMPT_OPTS = ['--cfg-options', 'train_cfg.max_epochs=2', 'train_cfg.val_interval=100',
                'default_hooks.logger.interval=1', 'train_dataloader.batch_size=4',
                'randomness.seed=0', 'default_hooks.checkpoint.interval=1']


def train_until(work_dir, signum=None, after_line=None, extra=()):
    """Run tools/train.py; with ``signum``, send it once ``after_line`` shows in its log."""
    proc = subprocess.Popen([sys.executable, *map(str, TRAIN), '--work-dir', str(work_dir),
                             *extra, *PREEMPT_OPTS], cwd=ROOT, env=subprocess_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log = []
    for line in proc.stdout:
        log.append(line)
        if signum and after_line in line:
            proc.send_signal(signum)
            signum = None
    return proc.wait(timeout=600), ''.join(log)


def state_dict(path):
    return torch.load(path, map_location='cpu', weights_only=False)['state_dict']


@pytest.mark.parametrize('signum,status', [(signal.SIGTERM, 143), (signal.SIGINT, 130)],
                         ids=['SIGTERM', 'SIGINT'])
def test_signal_saves_and_resume_continues_exactly(tmp_path, signum, status):
    stopped, log = train_until(tmp_path / 'run', signum, 'Epoch(train) [1][1/3]')
    assert stopped == status
    saved = [line for line in log.splitlines() if 'training stopped by' in line]
    name = signal.Signals(signum).name
    assert len(saved) == 1 and saved[0].split(' - INFO - ')[1].startswith(
        f'training stopped by {name} after iteration ')
    iteration = int(saved[0].split('after iteration ')[1].split()[0])
    assert 1 <= iteration < 3  # inside the first epoch
    checkpoint = tmp_path / 'run' / f'iter_{iteration}.pth'
    assert saved[0].endswith(f'(epoch 1): saved {checkpoint}; continue with --resume')
    assert (tmp_path / 'run' / 'last_checkpoint').read_text() == str(checkpoint)
    meta = torch.load(checkpoint, map_location='cpu', weights_only=False)
    assert (meta['meta']['epoch'], meta['meta']['iter']) == (0, iteration)
    assert {'optimizer', 'param_schedulers', 'message_hub'} <= set(meta)

    resumed, log = train_until(tmp_path / 'run', extra=['--resume'])
    assert resumed == 0
    assert f'resumed epoch: 0, iter: {iteration}' in log
    assert f'skipping its {iteration} batches trained before the interruption' in log

    whole, _ = train_until(tmp_path / 'whole')
    assert whole == 0
    a, b = state_dict(tmp_path / 'run' / 'epoch_2.pth'), state_dict(tmp_path / 'whole' /
                                                                      'epoch_2.pth')
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_kill_9_then_resume_still_works(tmp_path):
    """No hook can act on SIGKILL: the last epoch checkpoint is what --resume takes."""
    proc = subprocess.Popen([sys.executable, *map(str, TRAIN), '--work-dir', str(tmp_path),
                             *PREEMPT_OPTS], cwd=ROOT, env=subprocess_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:
        if 'Epoch(train) [2][1/3]' in line:
            os.kill(proc.pid, signal.SIGKILL)
            break
    proc.wait(timeout=60)
    resumed, log = train_until(tmp_path, extra=['--resume'])
    assert resumed == 0 and 'resumed epoch: 1, iter: 3' in log
