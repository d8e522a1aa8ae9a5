"""bf16 mixed precision (AMP) without loss scaling, and on CPUs (:class:`BF16AmpOptimWrapper`).

Chosen by name in our configs (``optim_wrapper=dict(type='BF16AmpOptimWrapper',
dtype='bfloat16')``); MMEngine's own ``AmpOptimWrapper`` (what MMPose's ``tools/train.py --amp``
selects) stays MMEngine's. MMEngine 0.10.7's wrapper

- always builds a ``GradScaler``. Loss scaling exists for float16's narrow exponent range; bfloat16
  has float32's, so the scaler only costs: its ``step`` reads ``found_inf`` back to the host every
  iteration, a host-device synchronisation that stops the CPU from queueing the next iteration
  while the GPU works. With ``dtype='bfloat16'`` there is no scaler here;
- asserts a GPU/NPU/MLU/MUSA. CPU autocast is real but bfloat16 only, and fast only where the CPU
  computes in bfloat16 (AVX-512-BF16 or AMX). There, this wrapper runs bf16 autocast (what
  MMEngine's own ``autocast`` picks on a CPU when no dtype is given). A CPU without them emulates
  bfloat16: measured on this project's AVX2-only 2-core machine, a SimpleBaseline forward pass
  took 28x longer in bf16 than in float32. There the wrapper trains in float32 and says so in one
  warning line, so that the same config runs everywhere at the best speed the hardware has.
  Asking for float16 on a CPU, or bfloat16 on a GPU older than Ampere, is refused in one line;
- is traced whole by MMEngine's ``compile`` option, which compiles ``model.train_step``: the
  optimizer step reads the learning rate as a Python float, which TorchDynamo guards on, so every
  iteration of a warm-up (MMPose's COCO configs: 500 iterations of LinearLR) recompiled until
  Dynamo's recompile limit made it give up on the frame. ``update_params`` (backward, step,
  zero_grad) is excluded from tracing here: Dynamo compiles forward and loss (and AOTAutograd
  their backward), the step runs as it always did.

**Environment switch** ``MMPOSE_SAM_CPU_AMP`` (``auto``, the default, or ``off``): with ``off``
:func:`cpu_has_native_bf16` answers False whatever the CPU, so AMP on a CPU trains in float32 and
``optimize_for_inference(dtype='auto')`` picks fp32: the same precision on every CPU. The test
suite sets ``off`` for itself and the processes it starts (tests/conftest.py), so that its numbers
do not depend on the machine; tests about bf16 switch it back to ``auto`` (native bf16 where the
CPU has it) and also run with it forced ``off``. GPUs are not affected.

float16 on a GPU keeps MMEngine's behaviour (dynamic loss scaling), for GPUs older than Ampere.
Checkpoints stay interchangeable: a bf16 run writes no ``loss_scaler`` state and ignores one when
resuming. The heads that bf16 heatmaps reach are :mod:`mmpose_sam.speed.device_accuracy`'s.
"""
import logging
import os
from contextlib import contextmanager
from typing import FrozenSet, Optional, Union

import torch
from mmengine.device import is_mlu_available, is_musa_available, is_npu_available
from mmengine.logging import print_log
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS
from torch import nn

from mmpose_sam.errors import UserError

CPU_AMP_ENV = 'MMPOSE_SAM_CPU_AMP'
CPU_AMP_MODES = ('auto', 'off')
# /proc/cpuinfo flags of a CPU that computes in bfloat16 (Linux's names).
CPUINFO_BF16_FLAGS = frozenset({'avx512_bf16', 'amx_bf16'})


def cpu_amp_mode() -> str:
    """``MMPOSE_SAM_CPU_AMP``: ``'auto'`` (default: bf16 where the CPU has it natively) or
    ``'off'`` (float32 on every CPU); anything else is a :class:`UserError`."""
    mode = os.environ.get(CPU_AMP_ENV, 'auto').strip().lower() or 'auto'
    if mode not in CPU_AMP_MODES:
        raise UserError(f'{CPU_AMP_ENV} must be one of {", ".join(CPU_AMP_MODES)}, '
                        f'got {os.environ[CPU_AMP_ENV]!r}')
    return mode


def cpuinfo_flags(path: str = '/proc/cpuinfo') -> Optional[FrozenSet[str]]:
    """The CPU flags in ``/proc/cpuinfo`` (Linux), or None where it cannot be read."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith('flags'):
                    return frozenset(line.partition(':')[2].split())
    except OSError:
        return None
    return None


def torch_reports_native_bf16() -> Optional[bool]:
    """What torch's (private) CPU checks say about AVX-512-BF16 or AMX, or None where this torch
    has neither check."""
    checks = [getattr(torch.cpu, name, None)
              for name in ('_is_avx512_bf16_supported', '_is_amx_tile_supported')]
    checks = [check for check in checks if callable(check)]
    if not checks:
        return None
    return any(check() for check in checks)


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes in bfloat16 (AVX-512-BF16 or AMX), rather than emulating it, and
    bf16 is allowed on it (``MMPOSE_SAM_CPU_AMP`` is not ``off``, see the module docstring).

    The hardware answer is torch's CPU check; where this torch lacks it (private API), the flags in
    /proc/cpuinfo; where neither exists, False (float32: slower at worst, never wrong).
    """
    if cpu_amp_mode() == 'off':
        return False
    reported = torch_reports_native_bf16()
    if reported is not None:
        return reported
    flags = cpuinfo_flags()
    return bool(flags and flags & CPUINFO_BF16_FLAGS)


def bf16_is_native(device: Union[str, torch.device]) -> bool:
    """Whether bfloat16 runs at full speed on ``device``: a CUDA GPU of compute capability 8.0
    (Ampere) or newer, or a CPU with :func:`cpu_has_native_bf16`."""
    device = torch.device(device)
    if device.type == 'cuda':
        return torch.cuda.get_device_capability(device)[0] >= 8
    return device.type == 'cpu' and cpu_has_native_bf16()


def _has_accelerator() -> bool:
    return (torch.cuda.is_available() or is_npu_available() or is_mlu_available()
            or is_musa_available())


def _as_dtype(dtype: Union[str, torch.dtype, None]) -> Optional[torch.dtype]:
    if isinstance(dtype, str):
        if dtype not in AmpOptimWrapper.valid_dtypes:
            raise UserError(f'optim_wrapper.dtype must be one of '
                            f'{", ".join(AmpOptimWrapper.valid_dtypes)}, got {dtype!r}')
        return getattr(torch, dtype)
    return dtype


@OPTIM_WRAPPERS.register_module()
class BF16AmpOptimWrapper(AmpOptimWrapper):
    """MMEngine's ``AmpOptimWrapper`` without loss scaling for bfloat16, with CPU autocast, and
    with the optimizer step left out of ``torch.compile`` (see the module docstring).

    Args:
        loss_scale (str | float | dict): ``GradScaler`` settings, used for float16 only.
            Defaults to ``'dynamic'``.
        dtype (str | torch.dtype, optional): Autocast dtype: ``'bfloat16'``, ``'float16'`` (GPU
            only) or None (float16 on a GPU, bfloat16 on a CPU, as MMEngine's ``autocast``).
        use_fsdp (bool): ``ShardedGradScaler`` for FSDP (float16 only). Defaults to False.
        **kwargs: Passed to :class:`~mmengine.optim.OptimWrapper`.
    """

    def __init__(self,
                 loss_scale: Union[str, float, dict] = 'dynamic',
                 dtype: Union[str, torch.dtype, None] = None,
                 use_fsdp: bool = False,
                 **kwargs):
        dtype = _as_dtype(dtype)
        if _has_accelerator() and dtype != torch.bfloat16:
            super().__init__(loss_scale=loss_scale, dtype=dtype, use_fsdp=use_fsdp, **kwargs)
            return
        if not _has_accelerator() and dtype not in (None, torch.bfloat16):
            raise UserError(f'BF16AmpOptimWrapper(dtype={str(dtype).split(".")[-1]!r}) needs a '
                            'GPU: CPU autocast supports bfloat16 only '
                            '(optim_wrapper.dtype=bfloat16)')
        if torch.cuda.is_available() and not bf16_is_native('cuda'):
            raise UserError('BF16AmpOptimWrapper(dtype=\'bfloat16\'): '
                            f'{torch.cuda.get_device_name()} has no bfloat16 tensor cores '
                            '(Ampere or newer needed); use optim_wrapper.dtype=float16')
        # MMEngine's __init__ would assert an accelerator and build a GradScaler: neither is
        # wanted for bfloat16, so only the plain wrapper is initialised.
        OptimWrapper.__init__(self, **kwargs)
        self._scale_update_param = None
        self.loss_scaler = None
        self.cast_dtype = torch.bfloat16
        self.autocast_enabled = _has_accelerator() or cpu_has_native_bf16()
        if not self.autocast_enabled:
            why = (f'{CPU_AMP_ENV}=off: for AMP this CPU has no native bfloat16'
                   if cpu_amp_mode() == 'off' else
                   'this CPU has no native bfloat16 (AVX-512-BF16/AMX) and would emulate it many '
                   'times slower than float32')
            print_log(f'BF16AmpOptimWrapper: {why}, so training runs in float32',
                      logger='current', level=logging.WARNING)

    @contextmanager
    def optim_context(self, model: nn.Module):
        if getattr(self, 'autocast_enabled', True):
            with super().optim_context(model):
                yield
        else:
            with OptimWrapper.optim_context(self, model):
                yield

    # Eager under MMEngine's `compile`: the learning rate, a Python float, would otherwise be a
    # Dynamo guard that every scheduler step breaks (a recompile per warm-up iteration).
    @torch.compiler.disable
    def update_params(self,
                      loss: torch.Tensor,
                      step_kwargs: Optional[dict] = None,
                      zero_kwargs: Optional[dict] = None) -> None:
        """MMEngine's ``update_params`` (backward, step, zero_grad), never traced.

        Args:
            loss (torch.Tensor): The loss to back-propagate.
            step_kwargs (dict, optional): Arguments for ``optimizer.step``.
            zero_kwargs (dict, optional): Arguments for ``optimizer.zero_grad``.
        """
        super().update_params(loss, step_kwargs=step_kwargs, zero_kwargs=zero_kwargs)

    def backward(self, loss: torch.Tensor, **kwargs) -> None:
        if self.loss_scaler is None:
            return OptimWrapper.backward(self, loss, **kwargs)
        return super().backward(loss, **kwargs)

    def step(self, **kwargs) -> None:
        if self.loss_scaler is None:
            return OptimWrapper.step(self, **kwargs)
        return super().step(**kwargs)

    def state_dict(self) -> dict:
        if self.loss_scaler is None:
            return OptimWrapper.state_dict(self)
        return super().state_dict()

    def load_state_dict(self, state_dict: dict) -> None:
        if self.loss_scaler is None:  # e.g. resuming a float16 run in bfloat16
            state_dict = {k: v for k, v in state_dict.items() if k != 'loss_scaler'}
        super().load_state_dict(state_dict)
