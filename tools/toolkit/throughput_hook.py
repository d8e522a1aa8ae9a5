"""Training throughput (samples per second) as the runner sees it, data loading included."""
from typing import Optional

from mmengine.hooks import Hook

from mmpose.registry import HOOKS
from toolkit.analysis import synchronized_clock


@HOOKS.register_module()
class TrainThroughputHook(Hook):
    """Measure samples/s over the training iterations that follow a warm-up.

    The clock starts when warm-up iteration ``warmup_iters - 1`` has finished and stops at the
    end of training, so it covers everything the runner does per iteration: waiting for the data
    loader, the data preprocessor, forward, backward, optimizer step and the other hooks. CUDA is
    synchronised at both ends because kernels run asynchronously: without it, work queued before
    the start would be counted and work queued before the end would not. The result is logged at
    the end of training and kept in :attr:`samples_per_second`.

    Use it in a config as ``custom_hooks = [dict(type='TrainThroughputHook', warmup_iters=50)]``.

    Args:
        warmup_iters (int): Iterations left out of the measurement (cuDNN autotuning, allocator
            growth, data loader workers starting). Must be at least 1. Defaults to 50.
    """

    priority = 'LOWEST'  # after the optimizer step and the logging of every iteration

    def __init__(self, warmup_iters: int = 50) -> None:
        if warmup_iters < 1:
            raise ValueError(f'warmup_iters must be at least 1, got {warmup_iters}')
        self.warmup_iters = warmup_iters
        self.samples = 0
        self.seconds: Optional[float] = None
        self._start: Optional[float] = None

    @property
    def samples_per_second(self) -> Optional[float]:
        """Measured throughput; None until training has run past the warm-up."""
        return self.samples / self.seconds if self.seconds else None

    def before_train(self, runner) -> None:
        self.samples, self.seconds, self._start = 0, None, None

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        # `runner.iter` is still the index of the iteration that has just finished.
        if runner.iter == self.warmup_iters - 1:
            self._start = synchronized_clock()
        elif self._start is not None:
            self.samples += len(data_batch['data_samples'])

    def after_train(self, runner) -> None:
        if self._start is None or not self.samples:
            runner.logger.warning(
                f'TrainThroughputHook: training ended within the {self.warmup_iters} warm-up '
                'iterations; nothing was measured')
            return
        self.seconds = synchronized_clock() - self._start
        runner.logger.info(
            f'training throughput: {self.samples_per_second:.1f} samples/s '
            f'({self.samples} samples in {self.seconds:.2f} s after {self.warmup_iters} warm-up '
            'iterations, data loading included)')
