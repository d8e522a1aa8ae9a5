"""Start a run only on a device it can use, and keep it free of needless host-device waits."""
import os
from typing import Iterator

import torch
from mmengine.hooks import Hook

from mmpose.registry import HOOKS

from mmpose_sam.reliability.gpu import gpu_problem
from mmpose_sam.errors import UserError

# cuBLAS is deterministic only with a fixed workspace (CUDA's "Reproducibility" notes); without
# it torch raises at the first matmul once deterministic algorithms are on.
CUBLAS_DETERMINISTIC_WORKSPACE = ':4096:8'


class UnusableGPUError(UserError):
    """``nvidia-smi`` lists a GPU that the installed torch cannot use."""


def require_usable_gpu() -> None:
    """Raise :class:`UnusableGPUError` (one line: the driver, what torch needs, the fix) when a
    listed GPU cannot be used (:func:`~mmpose_sam.reliability.gpu.gpu_problem`)."""
    problem = gpu_problem(torch)
    if problem:
        raise UnusableGPUError(f'{problem[0]} Fix: {problem[1]}')


def _optimizer_states(state_dict) -> Iterator[dict]:
    """The per-parameter state dicts of an optimizer's (or an ``OptimWrapperDict``'s) state."""
    if not isinstance(state_dict, dict):
        return
    if isinstance(state_dict.get('state'), dict):
        yield from (s for s in state_dict['state'].values() if isinstance(s, dict))
        return
    for value in state_dict.values():  # OptimWrapperDict: one optimizer state per name
        yield from _optimizer_states(value)


@HOOKS.register_module()
class DeviceSetupHook(Hook):
    """What a run needs of its device, checked and set before anything runs on it (our configs
    have it in ``custom_hooks``; README "When things go wrong"):

    - no silent CPU runs: a GPU that ``nvidia-smi`` lists but torch cannot use stops the run in
      one line (:func:`require_usable_gpu`); ``CUDA_VISIBLE_DEVICES=`` runs on the CPU on purpose;
    - ``randomness=dict(deterministic=True)`` on CUDA: MMEngine's
      ``torch.use_deterministic_algorithms`` raises in the backward of ops without a
      deterministic kernel (SAM's bilinear upsampling, adaptive pooling); here they warn instead
      and cuBLAS gets the fixed workspace it needs;
    - resuming: MMEngine maps the optimizer's ``step`` counters onto the GPU, where Adam (neither
      fused nor capturable) reads each back with ``.item()`` every step; they go back to the CPU.
    """

    priority = 'VERY_HIGH'

    def before_run(self, runner) -> None:
        require_usable_gpu()
        if (torch.are_deterministic_algorithms_enabled()
                and not torch.is_deterministic_algorithms_warn_only_enabled()):
            os.environ.setdefault('CUBLAS_WORKSPACE_CONFIG', CUBLAS_DETERMINISTIC_WORKSPACE)
            torch.use_deterministic_algorithms(True, warn_only=True)
            runner.logger.info(
                'DeviceSetupHook: deterministic algorithms on; ops without a deterministic CUDA '
                'kernel (bilinear upsampling and adaptive pooling backward) warn instead of '
                'raising, so runs repeat exactly only up to those ops')

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        for state in _optimizer_states(checkpoint.get('optimizer')):
            step = state.get('step')
            if isinstance(step, torch.Tensor) and step.device.type != 'cpu':
                state['step'] = torch.tensor(step.item(), dtype=step.dtype)  # once, at resume
