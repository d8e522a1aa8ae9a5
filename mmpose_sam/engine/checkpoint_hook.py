"""MMEngine's CheckpointHook, deleting old checkpoints only after the new one is written."""
from contextlib import contextmanager
from typing import Callable, List, Tuple

from mmengine.hooks import CheckpointHook as _MMEngineCheckpointHook

from mmpose.registry import HOOKS


class _DeferredRemoval:
    """A file backend whose ``remove``/``rmtree`` only note the path; the rest passes through."""

    def __init__(self, backend, deferred: List[Tuple[Callable, str]]):
        self._backend, self._deferred = backend, deferred

    def remove(self, path) -> None:
        self._deferred.append((self._backend.remove, path))

    def rmtree(self, path) -> None:
        self._deferred.append((self._backend.rmtree, path))

    def __getattr__(self, name):
        return getattr(self._backend, name)


@HOOKS.register_module(name='CheckpointHook')
class CheckpointHook(_MMEngineCheckpointHook):
    """MMEngine's ``CheckpointHook`` (same arguments, same files) that removes the checkpoints
    beyond ``max_keep_ckpts``, and the previous best one, *after* the new checkpoint is written.

    MMEngine 0.10.7 removes them first: with ``max_keep_ckpts=1`` a save that fails or is killed
    midway (full disk, preemption past the grace period) leaves no checkpoint at all, and
    ``last_checkpoint`` names a deleted file. Here a failed save keeps the old file. Registered
    in MMPose's registry under MMEngine's name, so ``default_hooks.checkpoint`` of every config
    with MMPose's scope gets it. Unnecessary once MMEngine saves before it deletes (not the case
    up to 0.10.7).
    """

    @contextmanager
    def _removals_after_save(self):
        backend, deferred = self.file_backend, []
        self.file_backend = _DeferredRemoval(backend, deferred)
        try:
            yield
        finally:
            self.file_backend = backend
        for remove, path in deferred:  # only reached when the save succeeded
            remove(path)

    def _save_checkpoint_with_step(self, runner, step, meta):
        with self._removals_after_save():
            super()._save_checkpoint_with_step(runner, step, meta)

    def _save_best_checkpoint(self, runner, metrics) -> None:
        with self._removals_after_save():
            super()._save_best_checkpoint(runner, metrics)
