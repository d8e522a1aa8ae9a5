"""MMEngine's CheckpointHook, saving atomically and deleting old checkpoints only after the new one
is written."""
import os.path as osp
from contextlib import contextmanager
from typing import Callable, List, Tuple

from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend, get_file_backend
from mmengine.hooks import CheckpointHook

from mmpose.registry import HOOKS
from mmpose_sam.reliability.checkpoint.atomic_save import ATOMIC_BACKEND_ARGS, AtomicLocalBackend


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


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """MMEngine's ``CheckpointHook`` (same arguments, same files) whose saves never leave a
    truncated file, and that removes the checkpoints beyond ``max_keep_ckpts``, and the previous
    best one, *after* the new checkpoint is written.

    - A local ``out_dir`` (by default the work dir) is written through the ``atomic_local`` file
      backend (:mod:`mmpose_sam.reliability.checkpoint.atomic_save`) unless ``backend_args`` or
      ``file_client_args`` name another; ``last_checkpoint`` (what ``--resume`` reads, always in
      the work dir) always is. A full disk is one line.
    - MMEngine 0.10.7 removes old checkpoints first: with ``max_keep_ckpts=1`` a save that fails
      or is killed midway (full disk, preemption past the grace period) leaves no checkpoint at
      all, and ``last_checkpoint`` names a deleted file. Here a failed save keeps the old file.

    In a config: ``default_hooks.checkpoint.type='AtomicCheckpointHook'`` (ours). Unnecessary once
    MMEngine saves atomically and before it deletes (not the case up to 0.10.7).
    """

    def before_train(self, runner) -> None:
        out_dir = self.out_dir or runner.work_dir
        if self.backend_args is None and self.file_client_args is None and \
                isinstance(get_file_backend(out_dir), LocalBackend):
            self.backend_args = dict(ATOMIC_BACKEND_ARGS)
        super().before_train(runner)

    def _save_checkpoint_with_step(self, runner, step, meta) -> None:
        # MMEngine's, in another order: save, point last_checkpoint at the new file (MMEngine
        # writes it with open(): a kill in between leaves it empty, and --resume starts from
        # scratch), then remove the checkpoint beyond max_keep_ckpts.
        outdated = None
        # _save_checkpoint and _save_best_checkpoint may both save this step
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and
                                            self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                outdated = self.keep_ckpt_ids.popleft()
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))
        filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        runner.save_checkpoint(
            self.out_dir, filename, self.file_client_args, save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler, meta=meta, by_epoch=self.by_epoch,
            backend_args=self.backend_args, **self.args)
        if not is_main_process():  # rank 0 writes the files
            return
        AtomicLocalBackend().put_text(self.last_ckpt, osp.join(runner.work_dir, 'last_checkpoint'))
        if outdated is not None:
            path = self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(outdated))
            if self.file_backend.isfile(path):
                self.file_backend.remove(path)
            elif self.file_backend.isdir(path):  # DeepSpeed saves folders
                self.file_backend.rmtree(path)

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

    def _save_best_checkpoint(self, runner, metrics) -> None:
        with self._removals_after_save():
            super()._save_best_checkpoint(runner, metrics)
