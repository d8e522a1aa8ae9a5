"""Save a resumable checkpoint when training is told to stop, and resume it exactly."""
import itertools
import os
import os.path as osp
import signal
import threading
from typing import Callable, Dict, List, Optional

import torch
from mmengine.dist import all_gather, get_rank, get_world_size, is_main_process
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmpose.registry import HOOKS
from mmpose_sam.devices import across_ranks
from mmpose_sam.reliability.checkpoint.atomic_save import ATOMIC_BACKEND_ARGS, write_last_checkpoint

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


def _exit_on_parents_sigterm_only() -> None:
    """In a data loader worker: exit on its parent's SIGTERM, ignore everyone else's.

    PyTorch's workers die of a SIGTERM from anyone but their parent, and the main process then
    raises ``DataLoader worker (pid N) is killed by signal: Terminated`` wherever it is, in the
    middle of a save too. Clusters signal every process of a job (slurm) and torchrun signals each
    rank's process group, so the workers get the SIGTERM as well, and must keep loading batches
    until the iteration at which the ranks stop. The parent's SIGTERM (the loader shutting its
    workers down) still ends them as PyTorch's handler does; SIGKILL ends them as always.
    """
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # threads started later inherit it

    def wait() -> None:  # the only thread that takes SIGTERM, and it sees who sent it
        while True:
            if signal.sigwaitinfo({signal.SIGTERM}).si_pid == os.getppid():
                os._exit(0)

    threading.Thread(target=wait, name='sigterm', daemon=True).start()


class _WorkerInit:
    """A loader's ``worker_init_fn`` that first applies ``_exit_on_parents_sigterm_only``; a
    class, not a closure, so that spawned workers can unpickle it.

    Args:
        init (callable, optional): The loader's own ``worker_init_fn`` (MMEngine's seeding).
    """

    def __init__(self, init: Optional[Callable[[int], None]]) -> None:
        self.init = init

    def __call__(self, worker_id: int) -> None:
        _exit_on_parents_sigterm_only()
        if self.init is not None:
            self.init(worker_id)


def iteration_checkpoint(work_dir: str, completed: int) -> str:
    """The path of the checkpoint after ``completed`` iterations in ``work_dir``."""
    return osp.join(work_dir, f'iter_{completed}.pth')


def save_iteration_checkpoint(runner, completed: int) -> str:
    """Save ``work_dir/iter_<completed>.pth``, resumable in the middle of an epoch, and point
    ``work_dir/last_checkpoint`` (what ``--resume`` reads) at it; only rank 0 writes.

    Args:
        runner: The runner, between two iterations: ``completed`` of them are trained, the
            optimizer and schedulers are consistent with them.
        completed (int): Iterations trained, in all epochs.

    Returns:
        str: The checkpoint's path (written on rank 0 only).
    """
    path = iteration_checkpoint(runner.work_dir, completed)
    # The epoch in progress, not the next one: MMEngine's default meta for an epoch-based save
    # assumes the epoch has ended. PreemptionHook skips the batches already trained on resume.
    # Both files written atomically (a temporary file renamed into place), as by
    # AtomicCheckpointHook: a stop past the grace period never leaves half of either.
    runner.save_checkpoint(runner.work_dir, osp.basename(path), save_optimizer=True,
                           save_param_scheduler=True,
                           meta=dict(epoch=runner.epoch, iter=completed),
                           backend_args=ATOMIC_BACKEND_ARGS)
    if is_main_process():
        write_last_checkpoint(runner.work_dir, path)
    return path


@HOOKS.register_module()
class PreemptionHook(Hook):
    """On SIGTERM or SIGINT, finish the current iteration, save ``iter_<N>.pth`` (optimizer,
    schedulers, under DDP every rank's batch-norm statistics) and exit 128 + the signal number;
    ``--resume`` continues at the same iteration with the same data order
    (README "When things go wrong").

    The signal only sets a flag. A repeated SIGTERM (torchrun forwarding it, the cluster repeating
    it) is counted and ignored, so it never costs the save; a second SIGINT stops at once. Only
    rank 0 writes; the other ranks wait for that write before they exit, or torchrun (srun's
    ``--kill-on-bad-exit``) would take their exit for a failure and kill rank 0 mid-write. The
    ranks agree every ``sync_interval`` iterations (one tiny all-reduce), so they all stop at the
    same one. Data loader workers ignore a SIGTERM that does not come from their main process.

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
        self.ignored = 0  # repeated SIGTERMs
        self._previous: Dict[int, object] = {}
        self._rank_buffers: Optional[List[Dict[str, torch.Tensor]]] = None  # rank 0, to save

    def _on_signal(self, signum: int, frame) -> None:
        if self.received is None:
            self.received = signum
        elif signum == signal.SIGINT:  # Ctrl-C twice: stop now, with the handler from before
            signal.signal(signum, self._previous.get(signum, signal.SIG_DFL))
            os.kill(os.getpid(), signum)
        else:  # counted only: logging here could interleave with a record being written
            self.ignored += 1

    def before_train(self, runner) -> None:
        self.received, self.ignored = None, 0
        if threading.current_thread() is threading.main_thread():  # signal's own rule
            for signum in STOP_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._on_signal)
        if hasattr(signal, 'sigwaitinfo'):  # not on macOS: its workers die of SIGTERM as before
            for loop in (runner.train_loop, runner.val_loop):
                loader = getattr(loop, 'dataloader', None)
                if getattr(loader, 'num_workers', 0) and \
                        not isinstance(loader.worker_init_fn, _WorkerInit):
                    loader.worker_init_fn = _WorkerInit(loader.worker_init_fn)
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
        if get_world_size() > 1 and not self.every_n_train_iters(runner, self.sync_interval):
            return False
        return bool(across_ranks(float(self.received is not None), 'max', runner))

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if not self._stop_requested(runner):
            return
        signum = self.received or signal.SIGTERM  # a rank that has no signal (yet) stops too
        completed = runner.iter + 1
        path = iteration_checkpoint(runner.work_dir, completed)
        self._gather_rank_buffers(runner)
        saved = False
        try:
            save_iteration_checkpoint(runner, completed)  # rank 0 writes; the others return
            if is_main_process():
                # Before the barrier: once another rank has exited, srun --kill-on-bad-exit
                # or torchrun may kill this one.
                if self.ignored:
                    runner.logger.info(f'PreemptionHook: ignored {self.ignored} further SIGTERM '
                                       '(SIGKILL is the hard stop)')
                runner.logger.info(
                    f'training stopped by {signal.Signals(signum).name} after iteration '
                    f'{completed} (epoch {runner.epoch + 1}): saved {path}; continue with --resume')
            saved = True
        finally:  # also when rank 0's save fails: the others must not wait for it forever
            # a barrier (until rank 0 has written) that also carries the outcome
            saved = bool(across_ranks(float(saved), 'min', runner))
        if not saved:  # rank 0 raised its own error above; the others say what happened
            raise RuntimeError(f'rank 0 failed to save {path}: see its log')
        raise SystemExit(128 + signum)

    def _gather_rank_buffers(self, runner) -> None:
        """Keep every rank's floating-point buffers for the checkpoint (rank 0 saves them)."""
        if get_world_size() == 1:
            return
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        buffers = {name: b for name, b in model.named_buffers() if b.is_floating_point()}
        if not buffers:
            return
        # float64 holds every float32/16 value exactly: one tensor, one collective
        flat = torch.cat([b.detach().double().reshape(-1) for b in buffers.values()])
        ranks = all_gather(flat)
        if is_main_process():
            self._rank_buffers = [
                {name: chunk.view_as(b).to(b.dtype).cpu() for (name, b), chunk in
                 zip(buffers.items(), rank.split([b.numel() for b in buffers.values()]))}
                for rank in ranks]

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if self._rank_buffers is not None:  # only the save of a stop
            checkpoint['rank_buffers'], self._rank_buffers = self._rank_buffers, None

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        # Before MMEngine loads state_dict into the model: this rank's statistics instead of
        # rank 0's. On another number of ranks every rank starts from rank 0's, as without.
        ranks = checkpoint.get('rank_buffers')
        if ranks is not None and len(ranks) == get_world_size():
            state = checkpoint['state_dict']
            state.update({k: v for k, v in ranks[get_rank()].items() if k in state})
