"""The training loop of our configs: a data loader worker that dies costs one line, not the run.

PyTorch's SIGCHLD handler raises ``DataLoader worker (pid N) is killed by signal: Killed.``
wherever the main process is (a forward pass, an optimizer step, a save), although the model,
optimizer and schedulers there are intact; the out-of-memory killer often picks a worker.
"""
import re
import signal
import threading
from contextlib import contextmanager
from typing import Callable, Iterator, Optional, Tuple

from mmengine.dist import get_rank, get_world_size, is_main_process
from mmengine.runner import EpochBasedTrainLoop

from mmpose.registry import LOOPS

from mmpose_sam.errors import UserError
from mmpose_sam.reliability.hooks.preemption_hook import save_iteration_checkpoint

# What torch's messages about a dead worker start with; the first two name the pid and the
# cause, the third (from its periodic check of the workers) only the pid.
_KILLED = re.compile(r'DataLoader worker \(pid (\d+)\) is killed by signal: ([^.]+)\.')
_EXITED = re.compile(r'DataLoader worker \(pid (\d+)\) exited unexpectedly with exit code (-?\d+)')
_GONE = re.compile(r'DataLoader worker \(pid\(s\) (\d+)[\d, ]*\) exited unexpectedly')
# What a signal that killed a worker most likely means.
_LIKELY = {signal.SIGKILL: 'most likely by the out-of-memory killer',
           signal.SIGBUS: 'most likely out of shared memory (/dev/shm)'}


class DataLoaderWorkerDiedError(UserError, RuntimeError):
    """A data loader worker process died (killed, crashed); the message says what to do."""


def worker_death(error: BaseException) -> Optional[Tuple[int, str, str]]:
    """What ``error`` (or an exception it was raised from) says of a data loader worker's death:
    its pid, what happened (``'was killed by SIGKILL'``) and the likely reason (``''`` when none
    is); ``None`` for any other error."""
    found, seen = None, set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        text = str(error)
        killed, exited = _KILLED.search(text), _EXITED.search(text)
        if killed:
            pid, description = int(killed.group(1)), killed.group(2)
            signum = {signal.strsignal(s): s for s in signal.Signals}.get(description)
            if signum is None:
                return pid, f'was killed by signal "{description}"', ''
            name = signum.name if signum == signal.SIGKILL else f'{signum.name} ({description})'
            return pid, f'was killed by {name}', _LIKELY.get(signum, '')
        if exited:
            return int(exited.group(1)), f'exited with status {exited.group(2)}', ''
        gone = _GONE.search(text)
        if gone and found is None:  # the exception it was raised from may say more
            found = int(gone.group(1)), 'exited unexpectedly', ''
        error = error.__cause__ or error.__context__
    return found


class _DeathsAtFetch:
    """Holds the report of a worker's death (torch's SIGCHLD handler, which raises) back to the
    next fetch of a batch, so that it never interrupts an iteration or a save: while the main
    process trains, a SIGCHLD is only noted; torch's handler is in place during each fetch and
    is called first if a SIGCHLD came since the last one."""

    def __init__(self) -> None:
        self.report = None  # the handler to restore and to report with (torch's once it is set)
        self.pending = False

    def _note(self, signum: int, frame) -> None:
        self.pending = True

    @contextmanager
    def deferred(self) -> Iterator[None]:
        """Note SIGCHLD instead of reporting it in this block (main thread, POSIX only)."""
        if not hasattr(signal, 'SIGCHLD') or \
                threading.current_thread() is not threading.main_thread():
            yield
            return
        self.report = signal.signal(signal.SIGCHLD, self._note)
        try:
            yield
        finally:
            signal.signal(signal.SIGCHLD, self.report)
            self.report = None

    def fetch(self, fetch: Callable, *args):
        """``fetch(*args)`` (``iter(loader)``, ``next(batches)``) with worker deaths reported."""
        if self.report is None:  # not deferring
            return fetch(*args)
        signal.signal(signal.SIGCHLD, self.report)
        try:
            if self.pending:
                self.pending = False
                if callable(self.report):
                    self.report(signal.SIGCHLD, None)  # torch's: raises if a worker died
            return fetch(*args)
        finally:
            # torch installs its handler when it starts its first workers, in this fetch
            self.report = signal.signal(signal.SIGCHLD, self._note)


@LOOPS.register_module()
class WorkerSafeEpochBasedTrainLoop(EpochBasedTrainLoop):
    """MMEngine's ``EpochBasedTrainLoop``; when a data loader worker dies, it saves
    ``iter_<N>.pth`` of the last completed iteration as
    :class:`~.preemption_hook.PreemptionHook` does on SIGTERM, and ends in one line that says what
    killed the worker and what to lower (README "When things go wrong"). A death is reported at
    the next fetch of a batch, never inside an iteration or a save (:class:`_DeathsAtFetch`).
    Only rank 0 writes checkpoints; the loader named is the one in use when the death was noticed
    (a persistent, idle worker of the other one may have been the one killed).

    In a config: ``train_cfg = dict(type='WorkerSafeEpochBasedTrainLoop', max_epochs=...,
    val_interval=...)`` (without ``by_epoch``, which MMEngine refuses next to ``type``).
    Arguments are those of ``EpochBasedTrainLoop``.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._deaths = _DeathsAtFetch()
        self._loader_in_use = 'train_dataloader'

    def run(self):
        try:
            return super().run()
        except RuntimeError as error:
            death = worker_death(error)
            if death is None:
                raise
            raise self._stopped(*death) from None

    def run_epoch(self) -> None:
        """Iterate one epoch (as MMEngine does), worker deaths reported only at a fetch."""
        self._loader_in_use = 'train_dataloader'
        self.runner.call_hook('before_train_epoch')
        self.runner.model.train()
        with self._deaths.deferred():
            for idx, data_batch in enumerate(self._batches()):
                self.run_iter(idx, data_batch)
            self.runner.call_hook('after_train_epoch')
        self._epoch += 1
        self._loader_in_use = 'val_dataloader'  # until the next epoch starts

    def _batches(self) -> Iterator:
        """The epoch's batches, each fetched with worker deaths reported."""
        batches = self._deaths.fetch(iter, self.dataloader)
        while True:
            try:
                yield self._deaths.fetch(next, batches)
            except StopIteration:
                return

    def _stopped(self, pid: int, what: str, likely: str) -> DataLoaderWorkerDiedError:
        """Save the last completed iteration (rank 0) and say what happened and what to do."""
        runner, completed = self.runner, self.runner.iter
        when = (f'after iteration {completed} (epoch {runner.epoch + 1})'
                if self._loader_in_use == 'train_dataloader' else
                f'in the validation after epoch {runner.epoch}')
        if is_main_process():
            with self._deaths.deferred():  # the next worker to die must not stop this save
                saved = f'saved {save_iteration_checkpoint(runner, completed)}'
        else:
            saved = (f'rank {get_rank()} saves no checkpoint (rank 0 writes them): --resume '
                     'continues from the last one')
        loader = getattr(runner, self._loader_in_use, None)
        knobs = (f"lower {self._loader_in_use}'s num_workers (now "
                 f'{getattr(loader, "num_workers", "?")}), batch_size '
                 f'({getattr(loader, "batch_size", "?")}) or prefetch_factor '
                 f'({getattr(loader, "prefetch_factor", "?")})')
        rank = f'rank {get_rank()}: ' if get_world_size() > 1 else ''
        likely = f', {likely}' if likely else ''
        return DataLoaderWorkerDiedError(
            f'{rank}data loader worker (pid {pid}) {what} {when}{likely}; {saved}; {knobs}, or '
            'give the job more memory; then continue with --resume')
