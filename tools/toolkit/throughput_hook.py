"""Training throughput (samples per second) as the runner sees it, data loading included."""
from typing import Optional

from mmengine.hooks import Hook

from mmpose.registry import HOOKS
from toolkit.analysis import synchronized_clock


@HOOKS.register_module()
class TrainThroughputHook(Hook):
    """Measure samples/s over the training iterations that follow a warm-up.

    The clock runs from the end of warm-up iteration ``warmup_iters - 1`` to the end of training:
    everything the runner does per iteration, data loading and other hooks included. CUDA is
    synchronised at both ends (kernels run asynchronously). The result is logged and kept in
    :attr:`samples_per_second`; ``first_iter_start``/``first_iter_end`` time the first iteration.

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
        self.first_iter_start: Optional[float] = None
        self.first_iter_end: Optional[float] = None

    @property
    def samples_per_second(self) -> Optional[float]:
        """Measured throughput; None until training has run past the warm-up."""
        return self.samples / self.seconds if self.seconds else None

    def before_train(self, runner) -> None:
        self.samples, self.seconds, self._start = 0, None, None

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        if self.first_iter_start is None:
            self.first_iter_start = synchronized_clock()

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if self.first_iter_end is None and self.first_iter_start is not None:
            self.first_iter_end = synchronized_clock()
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
