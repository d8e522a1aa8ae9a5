"""Test-only: the cluster that preempts a training job, played from inside the job.

The child trains with a config written by ``write_config`` (``custom_imports`` loads this module,
tests/ on PYTHONPATH). Its ``PreemptAt`` hook sends the signals at a chosen iteration, so a test
never races a log line, and notes in the work dir each rank's pid and how its ``PreemptionHook``
ended (``rank<R>.pid``, ``rank<R>.exit``), which torchrun does not report once it is signalled
itself.
"""
import json
import os
import signal
import time
from pathlib import Path
from typing import Optional, Sequence

from mmengine.dist import get_rank, get_world_size
from mmengine.hooks import Hook

from mmpose.registry import HOOKS

# tools/train.py options of the preemption tests: batch 4, 3 iterations an epoch on one process
# (2 on each of 2 ranks), so that a signal can land inside an epoch; a checkpoint every epoch; no
# validation (conftest's NO_VALIDATION, spelt out: this module is imported by the children too).
PREEMPT_OPTS = ['--cfg-options', 'train_cfg.max_epochs=2', 'train_cfg.val_begin=1000000',
                'default_hooks.logger.interval=1', 'train_dataloader.batch_size=4',
                'randomness.seed=0', 'default_hooks.checkpoint.interval=1']


@HOOKS.register_module()
class PreemptAt(Hook):
    """At the end of iteration ``iteration`` (1-based, before ``PreemptionHook`` looks) rank 0
    sends ``signum`` to every rank's process group (data loader workers included, as slurm does)
    and, with ``launcher``, to its parent (torchrun, which forwards it to every rank).

    Args:
        iteration (int): The iteration after which to signal; 0 never does.
        signum (str): The signal, e.g. ``'SIGTERM'``.
        launcher (bool): Also signal the parent process. Defaults to False.
        save_delay (float): Seconds by which rank 0 slows the save that follows the signal (in
            ``before_save_checkpoint``). Defaults to 0.
        repeat (str, optional): A signal sent again to every rank halfway through that delay.
    """

    priority = 'NORMAL'  # before PreemptionHook (LOWEST) in the same iteration

    def __init__(self, iteration: int, signum: str = 'SIGTERM', launcher: bool = False,
                 save_delay: float = 0.0, repeat: Optional[str] = None) -> None:
        self.iteration, self.signum, self.launcher = iteration, signal.Signals[signum], launcher
        self.save_delay = save_delay
        self.repeat = signal.Signals[repeat] if repeat else None
        self.fired = False

    def before_train(self, runner) -> None:
        self.dir = Path(runner.work_dir)
        (self.dir / f'rank{get_rank()}.pid').write_text(str(os.getpid()))
        stopper = next(h for h in runner.hooks if type(h).__name__ == 'PreemptionHook')
        stop = stopper.after_train_iter

        def noted(*args, **kwargs):
            try:
                stop(*args, **kwargs)
            except SystemExit as stopped:
                (self.dir / f'rank{get_rank()}.exit').write_text(
                    json.dumps(dict(status=stopped.code, time=time.time())))
                raise

        stopper.after_train_iter = noted

    def _send(self, signum: signal.Signals, launcher: bool = False) -> None:
        for rank in range(get_world_size()):
            pid = int((self.dir / f'rank{rank}.pid').read_text())
            # Only a group of its own (torchrun's workers, a test's start_new_session child):
            # never the test runner's.
            if os.getpgid(pid) == pid:
                os.killpg(pid, signum)
            else:
                os.kill(pid, signum)
        if launcher:
            os.kill(os.getppid(), signum)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if runner.iter + 1 == self.iteration and get_rank() == 0:
            self.fired = True
            self._send(self.signum, self.launcher)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if not self.fired:  # an epoch checkpoint, or not rank 0
            return
        self.fired = False
        time.sleep(self.save_delay / 2)
        if self.repeat:
            self._send(self.repeat)
        time.sleep(self.save_delay / 2)


def write_config(path: Path, base: Path, drop: Sequence[str] = (), **preempt_at) -> Path:
    """A config at ``path``: ``base`` without the hooks named in ``drop``, with
    ``PreemptAt(**preempt_at)`` (given any) added, and ``PreemptionHook`` agreeing across ranks
    every iteration (2 ranks of the sample train 2 iterations an epoch, fewer than its default
    ``sync_interval``)."""
    from mmengine.config import Config
    hooks = [h for h in Config.fromfile(str(base)).to_dict()['custom_hooks']
             if h['type'] not in drop]
    for hook in hooks:
        if hook['type'] == 'PreemptionHook':
            hook['sync_interval'] = 1
    if preempt_at:
        hooks.append(dict(type='PreemptAt', **preempt_at))
    path.write_text(
        f'_base_ = [{str(base)!r}]\n'
        "custom_imports = dict(imports=['mmpose_sam', 'mmpose_sam.upstream', "
        "'helpers_preemption'], allow_failed_imports=False)\n"
        f'custom_hooks = {hooks!r}\n')
    return path


def with_tests_on_path(env: dict) -> dict:
    """``env`` (conftest's ``subprocess_env()``) with tests/ on PYTHONPATH, for this module."""
    env['PYTHONPATH'] = os.pathsep.join([str(Path(__file__).parent), env['PYTHONPATH']])
    return env


def same_weights(a: Path, b: Path) -> bool:
    """Whether two checkpoints hold bit-identical weights."""
    import torch
    x, y = (torch.load(p, map_location='cpu', weights_only=False)['state_dict'] for p in (a, b))
    return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)
