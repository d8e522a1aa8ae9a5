"""A day-long run survives divergence and preemption: real training processes on the bundled
sample (README "When things go wrong")."""
import math
import re
import signal
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch
from mmengine.hooks import Hook

from mmpose_sam.reliability.hooks import DivergenceError, DivergenceHook

from conftest import (NO_VALIDATION, ROOT, SB_SAMPLE_CONFIG, run_python, runner_log,
                      short_training_cfg, subprocess_env, tool_runner)
from toolkit.runners import build_runner  # a visualizer of its own (see there)
from helpers_preemption import PREEMPT_OPTS, same_weights, with_tests_on_path, write_config

TRAIN = [ROOT / 'tools' / 'train.py', SB_SAMPLE_CONFIG]


def last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


def test_exploding_loss_stops_with_one_line_and_keeps_the_last_good_checkpoint(tmp_path):
    """Also the command-line test of tools/train.py (exit 1, one line, no traceback); other
    tests of what it stops with build its runner in their process (conftest's tool_runner)."""
    # Adam at lr 3 takes the loss from 4e-3 to ~1e6 in its second step.
    opts = ['--cfg-options', 'train_cfg.max_epochs=30', 'train_cfg.val_interval=100',
            'default_hooks.checkpoint.interval=1', 'optim_wrapper.optimizer.lr=3.0',
            'param_scheduler=[]']
    proc = run_python([*TRAIN, '--work-dir', tmp_path, *opts], check=False)
    assert proc.returncode == 1
    assert 'Traceback' not in proc.stderr
    message = last_line(proc.stderr)
    good = tmp_path / 'epoch_1.pth'
    # The early value is the first iteration's loss, kept in the message hub of epoch_1.pth.
    early = torch.load(good, map_location='cpu', weights_only=False)[
        'message_hub']['runtime_info']['divergence_reference_loss']
    good_re, early_re = re.escape(str(good)), re.escape(f'{early:.3g}')
    pattern = (r'error: training diverged at iteration 2 \(epoch 2\): the loss (\S+) is (\S+)x '
               rf'its early value {early_re} \(limit 100x\); last good checkpoint: {good_re} '
               r'\(--resume continues from it with its optimizer state; to change the learning '
               rf'rate, start from its weights: load_from={good_re}\)')
    loss, ratio = re.fullmatch(pattern, message).groups()
    assert float(ratio) == pytest.approx(float(loss) / early, rel=0.01) and float(ratio) > 100
    assert sorted(p.name for p in tmp_path.glob('*.pth')) == ['epoch_1.pth']  # no diverged save
    # The last good checkpoint resumes (and, with its learning rate of 3, diverges again) ...
    # (in this process: the command line's one line and exit status are checked above)
    again = tool_runner(SB_SAMPLE_CONFIG, tmp_path, resume=True, options=opts[1:])
    with pytest.raises(DivergenceError) as error:
        again.train()
    assert 'resumed epoch: 1, iter: 1' in runner_log(again)
    assert f'error: {error.value}' == message
    # ... and its weights train on with a sane one.
    fixed = tool_runner(SB_SAMPLE_CONFIG, tmp_path / 'fixed', options=[
        f'load_from={good}', 'train_cfg.max_epochs=2', NO_VALIDATION])
    fixed.train()
    assert f'Load checkpoint from {good}' in runner_log(fixed)
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


class FaultAt(Hook):
    """Injects a fault into a real training run at one iteration (0-based ``iteration``):
    ``'nan loss'`` sets the head's last conv to NaN, ``'inf gradient'`` makes that conv's
    gradient infinite while the loss stays finite."""

    priority = 'VERY_HIGH'

    def __init__(self, iteration: int, fault: str):
        self.iteration, self.fault, self.handle = iteration, fault, None

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter != self.iteration:
            return
        weight = runner.model.head.final_layer.weight
        if self.fault == 'nan loss':
            with torch.no_grad():
                weight.fill_(math.nan)
        else:
            self.handle = weight.register_hook(lambda grad: torch.full_like(grad, math.inf))

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if self.handle is not None:
            self.handle.remove()
            self.handle = None


def train_with_fault(work_dir, fault: str, iteration: int, checkpoint_every_epoch: bool):
    """Two epochs of 3 iterations (batch 4 of the 12 people) of the SimpleBaseline sample config
    in this process, its own DivergenceHook checking at each epoch end (interval 100)."""
    cfg = short_training_cfg(work_dir=work_dir)
    cfg.train_cfg = dict(by_epoch=True, max_epochs=2, val_interval=10**6)
    cfg.train_dataloader.sampler = dict(type='DefaultSampler', shuffle=True)  # epochs that end
    cfg.custom_hooks = [dict(type='DivergenceHook', interval=100)]
    if checkpoint_every_epoch:
        cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=1)
    runner = build_runner(cfg)
    runner.register_hook(FaultAt(iteration, fault))
    with pytest.raises(DivergenceError) as info:
        runner.train()
    return str(info.value)


def test_nan_loss_in_a_real_run_stops_before_the_epoch_checkpoint(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    message = train_with_fault(tmp_path, 'nan loss', iteration=3, checkpoint_every_epoch=True)
    good = tmp_path / 'epoch_1.pth'
    assert message == (f'training diverged at iteration 4 (epoch 2): the loss is nan; last good '
                       f'checkpoint: {good} (--resume continues from it with its optimizer state; '
                       f'to change the learning rate, start from its weights: load_from={good})')
    assert sorted(p.name for p in tmp_path.glob('*.pth')) == ['epoch_1.pth']


def test_infinite_gradient_with_a_finite_loss_in_a_real_run(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    message = train_with_fault(tmp_path, 'inf gradient', iteration=1, checkpoint_every_epoch=False)
    assert message == ('training diverged at iteration 2 (epoch 1): the gradient norm is inf; '
                       'last good checkpoint: none saved yet')


def test_checks_before_every_other_save(tmp_path):
    """Saves outside the epoch end (best checkpoints, PreemptionHook) are checked too."""
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
# The child signals itself at a chosen iteration (helpers_preemption.PreemptAt): no race between
# the test reading the log and the training going on.
def train(work_dir, config=SB_SAMPLE_CONFIG):
    """Run tools/train.py in a session of its own (PreemptAt signals its whole process group);
    its exit status and log."""
    proc = subprocess.run([sys.executable, str(ROOT / 'tools' / 'train.py'), str(config),
                           '--work-dir', str(work_dir), *PREEMPT_OPTS], cwd=ROOT,
                          env=with_tests_on_path(subprocess_env()), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=600,
                          start_new_session=True)
    return proc.returncode, proc.stdout


def resume_in_this_process(work_dir, monkeypatch) -> str:
    """``tools/train.py SB_SAMPLE_CONFIG --work-dir W --resume`` with the preemption tests' options,
    built in this process (conftest's ``tool_runner``: the command line's --resume is
    test_faults.py's, test_train_loop.py's and test_preemption_ddp.py's); its log. One thread,
    as the children: the weights it ends with are bit-identical to theirs."""
    monkeypatch.chdir(ROOT)  # the sample config's data_root is relative to the repo root
    runner = tool_runner(SB_SAMPLE_CONFIG, work_dir, resume=True, options=PREEMPT_OPTS[1:])
    runner.train()
    return runner_log(runner)


@pytest.fixture(scope='module')
def uninterrupted(module_mktemp):
    """The final checkpoint of the sample trained without interruption."""
    work_dir = module_mktemp('whole')
    status, log = train(work_dir)
    assert status == 0, log[-3000:]
    return work_dir / 'epoch_2.pth'


@pytest.mark.parametrize('signum,status,repeat',
                         [('SIGTERM', 143, 'SIGTERM'), ('SIGINT', 130, None)],
                         ids=['SIGTERM-twice', 'SIGINT'])
def test_signal_saves_and_resume_continues_exactly(tmp_path, uninterrupted, signum, status, repeat,
                                                   monkeypatch):
    """SIGTERM comes twice, the second time in the middle of a slowed save (a launcher forwarding
    it, a cluster sending it again): the save is kept. The resume is SIGTERM's alone: what it
    reads, the save, is the same whichever signal asked for it (checked above for both)."""
    config = write_config(tmp_path / 'preempt.py', SB_SAMPLE_CONFIG, iteration=2, signum=signum,
                          save_delay=2.0 if repeat else 0.0, repeat=repeat)
    stopped, log = train(tmp_path / 'run', config)
    assert stopped == status, log[-3000:]
    checkpoint = tmp_path / 'run' / 'iter_2.pth'
    saved = [line.split(' - INFO - ')[1] for line in log.splitlines()
             if 'training stopped by' in line]
    assert saved == [f'training stopped by {signum} after iteration 2 (epoch 1): saved '
                     f'{checkpoint}; continue with --resume']
    assert ('PreemptionHook: ignored 1 further SIGTERM' in log) == bool(repeat)
    assert (tmp_path / 'run' / 'last_checkpoint').read_text() == str(checkpoint)
    meta = torch.load(checkpoint, map_location='cpu', weights_only=False)
    assert (meta['meta']['epoch'], meta['meta']['iter']) == (0, 2)
    assert {'optimizer', 'param_schedulers', 'message_hub'} <= set(meta)
    if signum != 'SIGTERM':
        return
    log = resume_in_this_process(tmp_path / 'run', monkeypatch)
    assert 'resumed epoch: 0, iter: 2' in log
    assert 'skipping its 2 batches trained before the interruption' in log
    assert same_weights(tmp_path / 'run' / 'epoch_2.pth', uninterrupted)


def test_second_sigint_stops_at_once(tmp_path):
    """Ctrl-C twice: the second one, in the middle of the save, stops without it."""
    config = write_config(tmp_path / 'preempt.py', SB_SAMPLE_CONFIG, iteration=2,
                          signum='SIGINT', save_delay=2.0, repeat='SIGINT')
    stopped, log = train(tmp_path, config)
    # A KeyboardInterrupt traceback. Plain Python would then kill itself with SIGINT (a shell
    # says 130); once torch._dynamo is imported (torchvision does) it exits with status 1.
    assert stopped in (1, -signal.SIGINT), log[-3000:]
    assert 'KeyboardInterrupt' in log and 'training stopped by' not in log
    assert not (tmp_path / 'iter_2.pth').exists() and not (tmp_path / 'last_checkpoint').exists()


def test_kill_9_then_resume_still_works(tmp_path, uninterrupted, monkeypatch):
    """No hook can act on SIGKILL: the last epoch checkpoint is what --resume takes, and from
    there the run ends as the uninterrupted one does."""
    config = write_config(tmp_path / 'kill.py', SB_SAMPLE_CONFIG, iteration=4, signum='SIGKILL')
    killed, log = train(tmp_path, config)  # in the first iteration of epoch 2
    assert killed == -signal.SIGKILL, log[-3000:]
    assert sorted(p.name for p in tmp_path.glob('*.pth')) == ['epoch_1.pth']
    assert 'resumed epoch: 1, iter: 3' in resume_in_this_process(tmp_path, monkeypatch)
    assert same_weights(tmp_path / 'epoch_2.pth', uninterrupted)
