"""MMEngine's RuntimeInfoHook, reading the training outputs off the GPU once per log interval."""
from typing import Dict, List, Optional

import torch
from mmengine.hooks import LoggerHook, RuntimeInfoHook

from mmpose.registry import HOOKS


@HOOKS.register_module()
class LazyRuntimeInfoHook(RuntimeInfoHook):
    """``RuntimeInfoHook`` that passes the model's outputs (``loss``, ``acc_pose``...) to the
    message hub in batches instead of one ``.item()`` per value per iteration.

    Each ``.item()`` of a CUDA tensor waits for the GPU to finish everything queued before it: a
    host-device synchronisation per iteration, after which the CPU starts loading and launching
    the next iteration only when the GPU has gone idle. This hook keeps the detached output tensors
    and reads them all back with one transfer every ``interval`` iterations, at the end of each
    epoch, before a checkpoint is saved and when training ends. The message hub receives the same
    values, one per iteration, in the same order, before the logger reads them, so logs, the JSON
    scalars and checkpoints are unchanged.

    Replace MMEngine's default with ``default_hooks = dict(runtime_info=dict(type=
    'LazyRuntimeInfoHook'))``.

    Args:
        interval (int, optional): Iterations between read-backs. Defaults to None: the
            ``LoggerHook``'s interval, so that the logger always finds every value.
    """

    def __init__(self, interval: Optional[int] = None) -> None:
        if interval is not None and interval < 1:
            raise ValueError(f'interval must be at least 1, got {interval}')
        self.interval = interval
        self._every = interval or 1
        self._pending: List[Dict[str, object]] = []

    def before_train(self, runner) -> None:
        super().before_train(runner)
        if self.interval is None:
            loggers = [hook for hook in runner.hooks if isinstance(hook, LoggerHook)]
            self._every = loggers[0].interval if loggers else 1

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if outputs is not None:
            self._pending.append({key: value.detach() if isinstance(value, torch.Tensor)
                                  else value for key, value in outputs.items()})
        if (self.every_n_inner_iters(batch_idx, self._every)
                or self.end_of_epoch(runner.train_dataloader, batch_idx)):
            self.flush(runner)

    def after_train_epoch(self, runner) -> None:
        self.flush(runner)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        self.flush(runner)  # the message hub's history is saved with the checkpoint

    def after_train(self, runner) -> None:
        self.flush(runner)
        super().after_train(runner)

    def flush(self, runner) -> None:
        """Pass every pending value to the message hub (one device-to-host transfer)."""
        pending, self._pending = self._pending, []
        tensors = [v for outputs in pending for v in outputs.values()
                   if isinstance(v, torch.Tensor)]
        if tensors:
            device = tensors[0].device
            read = iter(torch.stack([t.to(device, torch.float32).reshape(())
                                     for t in tensors]).tolist())
        for outputs in pending:
            for key, value in outputs.items():
                runner.message_hub.update_scalar(
                    f'train/{key}', next(read) if isinstance(value, torch.Tensor) else value)
