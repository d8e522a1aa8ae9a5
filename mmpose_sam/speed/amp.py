"""bf16 mixed precision without loss scaling, also on CPUs (README "Training speed").

MMEngine 0.10.7's ``AmpOptimWrapper`` always builds a ``GradScaler``, whose ``found_inf`` read-back
makes the host wait for the GPU every step (bf16 has fp32's range: no scaling needed), asserts an
accelerator, and is traced whole under ``compile``, optimizer step included. On a CPU without
native bf16 (emulated bf16 ran 28x slower here) :class:`BF16AmpOptimWrapper` trains in fp32 with
one warning. ``MMPOSE_SAM_CPU_AMP=off`` makes :func:`cpu_has_native_bf16` False on every CPU
(tests/conftest.py sets it, so test numbers do not depend on the machine).
"""
import logging
import os
from contextlib import contextmanager
from typing import FrozenSet, Optional, Union

import torch
from mmengine.logging import print_log
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS
from torch import nn

from mmpose_sam.devices import has_accelerator
from mmpose_sam.errors import UserError

CPU_AMP_ENV = 'MMPOSE_SAM_CPU_AMP'
CPU_AMP_MODES = ('auto', 'off')
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
    """Whether this CPU computes in bfloat16 (AVX-512-BF16 or AMX) and ``MMPOSE_SAM_CPU_AMP`` is not
    ``off``: torch's (private) CPU check, else /proc/cpuinfo's flags, else False (fp32 is never
    wrong, only slower)."""
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
    with the optimizer step left out of ``torch.compile``. float16 keeps MMEngine's behaviour
    (GPU only); a bf16 run writes no ``loss_scaler`` state and ignores one when resuming.

    Args:
        loss_scale (str | float | dict): ``GradScaler`` settings, used for float16 only.
            Defaults to ``'dynamic'``.
        dtype (str | torch.dtype, optional): Autocast dtype: ``'bfloat16'``, ``'float16'`` (GPU
            only) or None (float16 on a GPU, bfloat16 on a CPU, as MMEngine's ``autocast``).
        **kwargs: Passed to :class:`~mmengine.optim.AmpOptimWrapper` (float16) or
            :class:`~mmengine.optim.OptimWrapper`.
    """

    def __init__(self,
                 loss_scale: Union[str, float, dict] = 'dynamic',
                 dtype: Union[str, torch.dtype, None] = None,
                 **kwargs):
        dtype = _as_dtype(dtype)
        accelerator = has_accelerator()
        if accelerator and dtype != torch.bfloat16:
            super().__init__(loss_scale=loss_scale, dtype=dtype, **kwargs)
            return
        if not accelerator and dtype not in (None, torch.bfloat16):
            raise UserError(f'BF16AmpOptimWrapper(dtype={str(dtype).split(".")[-1]!r}) needs a '
                            'GPU: CPU autocast supports bfloat16 only '
                            '(optim_wrapper.dtype=bfloat16)')
        if torch.cuda.is_available() and not bf16_is_native('cuda'):
            raise UserError('BF16AmpOptimWrapper(dtype=\'bfloat16\'): '
                            f'{torch.cuda.get_device_name()} has no bfloat16 tensor cores '
                            '(Ampere or newer needed); use optim_wrapper.dtype=float16')
        # Not AmpOptimWrapper.__init__: it asserts an accelerator and builds a GradScaler.
        OptimWrapper.__init__(self, **kwargs)
        self._scale_update_param = None
        self.loss_scaler = None
        self.cast_dtype = torch.bfloat16
        self.autocast_enabled = accelerator or cpu_has_native_bf16()
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
