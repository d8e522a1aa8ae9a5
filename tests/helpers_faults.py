"""Test-only: the out-of-memory killer, played from inside a training job.

``KillWorkerAt`` (a hook; ``custom_imports`` loads this module, tests/ on PYTHONPATH) SIGKILLs
one of the job's own data loader workers at a chosen iteration, so that a test never races a log
line, and writes its pid to ``work_dir/killed.pid`` for the test to read.
"""
import multiprocessing
import os
import signal
import time
from pathlib import Path

from mmengine.hooks import Hook

from mmpose.registry import HOOKS


def _dead(pid: int) -> bool:
    """Whether ``pid`` has died (a zombie its parent has not reaped): read, not reaped, so that
    torch still finds out how it ended."""
    try:
        return Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()[0] in 'ZX'
    except FileNotFoundError:
        return True


@HOOKS.register_module()
class KillWorkerAt(Hook):
    """At the start of iteration ``iteration`` (1-based), after its batch was fetched, SIGKILL a
    data loader worker and wait until it is dead: the kernel's SIGCHLD reaches the main process
    in the middle of that iteration, the way an out-of-memory kill does.

    Args:
        iteration (int): The iteration in which the worker dies.
    """

    def __init__(self, iteration: int) -> None:
        self.iteration = iteration

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        if runner.iter + 1 != self.iteration:
            return
        workers = multiprocessing.active_children()  # the loader's (reaps only dead ones)
        assert workers, 'KillWorkerAt needs a data loader with workers'
        pid = workers[0].pid
        (Path(runner.work_dir) / 'killed.pid').write_text(str(pid))
        os.kill(pid, signal.SIGKILL)
        for _ in range(1000):  # the kernel ends it at once; bounded, in case it does not
            if _dead(pid):
                return
            time.sleep(0.01)
        raise AssertionError(f'worker {pid} still alive 10 s after SIGKILL')


def write_config(path: Path, base: Path, iteration: int) -> Path:
    """A config at ``path``: ``base`` with ``KillWorkerAt(iteration)`` added to its hooks."""
    from mmengine.config import Config
    hooks = Config.fromfile(str(base)).to_dict()['custom_hooks']
    hooks.append(dict(type='KillWorkerAt', iteration=iteration))
    path.write_text(
        f'_base_ = [{str(base)!r}]\n'
        "custom_imports = dict(imports=['mmpose_sam', 'mmpose_sam.upstream', 'helpers_faults'], "
        'allow_failed_imports=False)\n'
        f'custom_hooks = {hooks!r}\n')
    return path
