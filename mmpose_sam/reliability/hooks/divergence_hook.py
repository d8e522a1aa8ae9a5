"""Stop a training run that diverges, before it saves diverged weights."""
import math
from typing import Dict, Optional

import torch
from mmengine.hooks import CheckpointHook, Hook

from mmpose.registry import HOOKS
from mmpose_sam.devices import across_ranks, read_back
from mmpose_sam.errors import UserError
from mmpose_sam.reliability.checkpoint.atomic_save import read_last_checkpoint

REFERENCE_KEY = 'divergence_reference_loss'  # message hub info: saved with checkpoints


class DivergenceError(UserError):
    """Training diverged; the message names the iteration and the last good checkpoint."""


@HOOKS.register_module()
class DivergenceHook(Hook):
    """Stop training with one line when the loss or the gradient norm stops being finite, or the
    loss explodes past ``explosion_factor`` times its early value (README "When things go wrong").

    MMEngine's ``CheckInvalidLossHook`` looks at one iteration in 50, only for a non-finite loss.
    Here every iteration's loss and gradient norm (from an optimizer step pre-hook: before the
    update) stay on the device and are read back in one transfer every ``interval`` iterations
    and before every checkpoint, so no checkpoint of a diverged state is written; with several
    processes the verdict is all-reduced, so that every rank stops at the same iteration. The
    reference is the loss of the run's first iteration (a heatmap MSE loss only falls in a
    healthy run; a median of early iterations would let a run that blows up in its second set its
    own reference), kept in the message hub, so it is saved with checkpoints and survives
    ``--resume``.

    Args:
        interval (int): Iterations between checks. Defaults to 10.
        explosion_factor (float): Stop when the loss exceeds this multiple of the reference.
            Heatmap MSE losses start at their largest and fall; 100x is far outside any healthy
            run. Defaults to 100.
        check_grad_norm (bool): Also stop on a non-finite gradient norm. Steps that a float16
            GradScaler skips are not counted (that is its normal work). Defaults to True.
    """

    priority = 'ABOVE_NORMAL'  # before the checkpoint and logger hooks of the same iteration

    def __init__(self,
                 interval: int = 10,
                 explosion_factor: float = 100.,
                 check_grad_norm: bool = True) -> None:
        if interval < 1:
            raise ValueError(f'interval must be at least 1, got {interval}')
        if not explosion_factor > 1:
            raise ValueError(f'explosion_factor must be > 1, got {explosion_factor}')
        self.interval = interval
        self.explosion_factor = explosion_factor
        self.check_grad_norm = check_grad_norm
        self._losses: Dict[int, torch.Tensor] = {}
        self._grad_norms: Dict[int, torch.Tensor] = {}
        self._iter = 0
        self._handle = None

    def before_train(self, runner) -> None:
        self._losses, self._grad_norms = {}, {}
        if self.check_grad_norm and self._handle is None:
            self._handle = runner.optim_wrapper.optimizer.register_step_pre_hook(
                self._record_grad_norm)

    def after_train(self, runner) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        self._iter = runner.iter

    def _record_grad_norm(self, optimizer, args, kwargs) -> None:
        grads = [p.grad for group in optimizer.param_groups for p in group['params']
                 if p.grad is not None]
        if grads:
            self._grad_norms[self._iter] = torch.nn.utils.get_total_norm(grads).detach()

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if outputs is not None and isinstance(outputs.get('loss'), torch.Tensor):
            self._losses[runner.iter] = outputs['loss'].detach()
        if self.every_n_train_iters(runner, self.interval) or self._checkpoint_due(runner):
            self.check(runner)

    def after_train_epoch(self, runner) -> None:
        # Before the CheckpointHook's after_train_epoch (this hook's priority is higher): it
        # deletes the checkpoints beyond max_keep_ckpts *before* saving the new one, so stopping
        # in before_save_checkpoint alone could leave no good checkpoint at all.
        self.check(runner)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        # Every other save (best checkpoints, PreemptionHook). Runner.save_checkpoint runs on
        # the main process only, so no collective here: the ranks agreed in the checks above.
        self.check(runner, collective=False)

    @staticmethod
    def _checkpoint_due(runner) -> bool:
        """Whether an iteration-based CheckpointHook saves at the end of this iteration."""
        return any(
            not hook.by_epoch and (hook.every_n_train_iters(runner, hook.interval) or
                                   (hook.save_last and hook.is_last_train_iter(runner)))
            for hook in runner.hooks if isinstance(hook, CheckpointHook))

    def check(self, runner, collective: bool = True) -> None:
        """Read the pending losses and gradient norms back and stop at the first bad one; with
        ``collective`` (every rank calls it at the same point), at the first bad one of any rank.
        """
        iterations = sorted(set(self._losses) | set(self._grad_norms))
        losses, norms = read_back(self._losses), read_back(self._grad_norms)
        self._losses, self._grad_norms = {}, {}
        reference = runner.message_hub.get_info(REFERENCE_KEY)
        problem: Optional[str] = None
        for iteration in iterations:
            loss, norm = losses.get(iteration), norms.get(iteration)
            problem = self._problem(loss, norm, reference)
            if problem:
                break
            if reference is None and loss is not None:
                reference = loss
                runner.message_hub.update_info(REFERENCE_KEY, reference)
        first_bad = iteration if problem else math.inf
        if collective:  # every rank must stop at the same place
            verdict = across_ranks(first_bad, 'min', runner)
            if verdict < first_bad:
                first_bad, problem = int(verdict), 'it diverged in another process'
        if problem:
            resume = read_last_checkpoint(runner.work_dir)
            raise DivergenceError(
                f'training diverged at iteration {int(first_bad) + 1} (epoch {runner.epoch + 1}): '
                f'{problem}; last good checkpoint: '
                + (f'{resume} (--resume continues from it with its optimizer state; to change '
                   f'the learning rate, start from its weights: load_from={resume})'
                   if resume else 'none saved yet'))

    def _problem(self, loss: Optional[float], norm: Optional[float],
                 reference: Optional[float]) -> Optional[str]:
        if loss is not None and not math.isfinite(loss):
            return f'the loss is {loss}'
        if norm is not None and not math.isfinite(norm):
            return f'the gradient norm is {norm}'
        if loss is not None and reference and loss > self.explosion_factor * reference:
            return (f'the loss {loss:.3g} is {loss / reference:.3g}x its early value '
                    f'{reference:.3g} (limit {self.explosion_factor:g}x)')
        return None
