"""MMEngine's RuntimeInfoHook, reading the training outputs off the GPU once per log interval."""
from typing import Dict, List, Optional

import torch
from mmengine.hooks import LoggerHook, RuntimeInfoHook

from mmpose.registry import HOOKS
from mmpose_sam.devices import read_back


@HOOKS.register_module()
class LazyRuntimeInfoHook(RuntimeInfoHook):
    """``RuntimeInfoHook`` that reads the model's outputs (``loss``, ``acc_pose``...) back in one
    transfer per log interval instead of one ``.item()`` (a host-device wait) per value per
    iteration (README "Training speed").

    It also flushes at the end of each epoch, before a checkpoint is saved and when training
    ends: the message hub gets the same values in the same order before the logger reads them.

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
        read = read_back({(index, key): value for index, outputs in enumerate(pending)
                          for key, value in outputs.items() if isinstance(value, torch.Tensor)})
        for index, outputs in enumerate(pending):
            for key, value in outputs.items():
                runner.message_hub.update_scalar(f'train/{key}', read.get((index, key), value))
