"""MMEngine's CheckpointHook, saving atomically and deleting old checkpoints only after the new one
is written."""
from contextlib import contextmanager
from typing import Callable, List, Tuple

from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend, get_file_backend
from mmengine.hooks import CheckpointHook

from mmpose.registry import HOOKS
from mmpose_sam.reliability.checkpoint.atomic_save import ATOMIC_BACKEND_ARGS, write_last_checkpoint


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
    truncated file, and that removes old checkpoints (beyond ``max_keep_ckpts``, the previous
    best) only *after* the new one is written: MMEngine 0.10.7 removes them first, so with
    ``max_keep_ckpts=1`` a save that fails midway (full disk, preemption) leaves no checkpoint and
    ``last_checkpoint`` names a deleted file. A local ``out_dir`` is written through
    ``atomic_local`` unless ``backend_args``/``file_client_args`` name another backend;
    ``last_checkpoint`` always is. In a config: ``default_hooks.checkpoint.type=
    'AtomicCheckpointHook'`` (README "When things go wrong").
    """

    def before_train(self, runner) -> None:
        out_dir = self.out_dir or runner.work_dir
        if self.backend_args is None and self.file_client_args is None and \
                isinstance(get_file_backend(out_dir), LocalBackend):
            self.backend_args = dict(ATOMIC_BACKEND_ARGS)
        super().before_train(runner)

    def _save_checkpoint_with_step(self, runner, step, meta) -> None:
        # MMEngine's, in another order: save, point last_checkpoint at the new file, then remove
        # the checkpoint beyond max_keep_ckpts.
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
        write_last_checkpoint(runner.work_dir, self.last_ckpt)
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
