"""Save a resumable checkpoint when training is told to stop, and resume it exactly."""
import itertools
import os
import os.path as osp
import signal
import threading
from typing import Dict, Optional

import torch
from mmengine.dist import all_reduce, get_world_size, is_main_process
from mmengine.fileio import put_text
from mmengine.hooks import Hook

from mmpose.registry import HOOKS

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _skip_first(sampler, count: int) -> None:
    """Make the next ``iter(sampler)`` start ``count`` indices in (once).

    ``iter()`` looks ``__iter__`` up on the class, so the sampler gets a subclass of its own
    class that skips; the DataLoader and its workers keep the same sampler object."""
    base = type(sampler)

    class SkippingSampler(base):
        def __iter__(self):
            skip, self._skip_once = getattr(self, '_skip_once', 0), 0
            return itertools.islice(super().__iter__(), skip, None)

    SkippingSampler.__name__ = f'Skipping{base.__name__}'
    sampler.__class__ = SkippingSampler
    sampler._skip_once = count


@HOOKS.register_module()
class PreemptionHook(Hook):
    """On SIGTERM or SIGINT, finish the current iteration, save a checkpoint, and exit.

    A cluster that preempts a job (slurm's ``scancel``, ``--time`` limits with ``--signal``, spot
    instances) sends SIGTERM and kills it a grace period later; Ctrl-C sends SIGINT. Without this
    hook the run loses everything since its last epoch checkpoint. With it, the signal only sets a
    flag; at the end of the iteration in flight (weights, optimizer and schedulers consistent),
    the hook writes ``iter_<N>.pth`` with the optimizer and scheduler state, points
    ``work_dir/last_checkpoint`` at it (what ``--resume`` reads), logs one line and exits with
    status 128 + the signal number (143 for SIGTERM, 130 for SIGINT). A second signal while
    saving stops at once.

    Resuming from such a mid-epoch checkpoint is exact: MMEngine restores the epoch, iteration,
    optimizer and schedulers, and restarts the interrupted epoch from its first batch; this hook
    makes the sampler skip the batches already trained (same seed, so the same order), so the run
    goes on as if it had never stopped.

    Data loader workers are started after this hook installs its handlers, so they inherit them
    and keep working when the whole process group gets the signal; the main process shuts them
    down. With several processes the ranks agree every ``sync_interval`` iterations (one tiny
    all-reduce), so they all stop at the same iteration.

    Use it in a config as ``custom_hooks = [dict(type='PreemptionHook')]`` (ours have it).

    Args:
        sync_interval (int): Iterations between the ranks' agreements when distributed.
            Defaults to 10.
    """

    priority = 'LOWEST'  # after the optimizer step and every other hook of the iteration

    def __init__(self, sync_interval: int = 10) -> None:
        if sync_interval < 1:
            raise ValueError(f'sync_interval must be at least 1, got {sync_interval}')
        self.sync_interval = sync_interval
        self.received: Optional[int] = None
        self._previous: Dict[int, object] = {}

    def _on_signal(self, signum, frame) -> None:
        if self.received is not None:  # a second signal: stop now
            signal.signal(signum, self._previous.get(signum, signal.SIG_DFL))
            os.kill(os.getpid(), signum)
            return
        self.received = signum

    def before_train(self, runner) -> None:
        self.received = None
        if threading.current_thread() is threading.main_thread():  # signal's own rule
            for signum in STOP_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._on_signal)
        self._skip_trained_batches(runner)

    def after_train(self, runner) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def _skip_trained_batches(self, runner) -> None:
        loop = runner.train_loop
        if not hasattr(loop, 'max_epochs'):
            return  # iteration-based loops skip data themselves when resuming
        done = runner.iter - runner.epoch * len(loop.dataloader)
        if done <= 0:
            return
        sampler = loop.dataloader.sampler
        # MMEngine builds the sampler with the seed of this run before it resumes the seed of the
        # interrupted one: the same permutation needs the resumed seed.
        if hasattr(sampler, 'seed') and runner.seed is not None:
            sampler.seed = runner.seed
        _skip_first(sampler, done * loop.dataloader.batch_size)
        runner.logger.info(f'PreemptionHook: resuming inside epoch {runner.epoch + 1}: skipping '
                           f'its {done} batches trained before the interruption')

    def _stop_requested(self, runner) -> bool:
        if get_world_size() == 1:
            return self.received is not None
        if not self.every_n_train_iters(runner, self.sync_interval):
            return False
        flag = torch.tensor(float(self.received is not None),
                            device=next(runner.model.parameters()).device)
        all_reduce(flag, op='max')
        return bool(flag.item())

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if not self._stop_requested(runner):
            return
        signum = self.received or signal.SIGTERM
        completed = runner.iter + 1
        filename = f'iter_{completed}.pth'
        # The epoch in progress, not the next one: MMEngine's default meta for an epoch-based
        # save assumes the epoch has ended.
        runner.save_checkpoint(
            runner.work_dir, filename, save_optimizer=True, save_param_scheduler=True,
            meta=dict(epoch=runner.epoch, iter=completed))
        path = osp.join(runner.work_dir, filename)
        if is_main_process():  # what --resume reads; written atomically by the file backend
            put_text(path, osp.join(runner.work_dir, 'last_checkpoint'))
        runner.logger.info(
            f'training stopped by {signal.Signals(signum).name} after iteration {completed} '
            f'(epoch {runner.epoch + 1}): saved {path}; continue with --resume')
        raise SystemExit(128 + signum)
