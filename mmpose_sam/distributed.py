"""Distributed training without CUDA for MMEngine 0.10.x, applied when ``mmpose_sam`` is imported.

MMPose's ``tools/train.py --launcher pytorch`` is the one code path for multi-GPU, multi-node
(torchrun, slurm) and, here, a 2-process CPU check. MMEngine 0.10.7 assumes CUDA on that path in two
places, both of which raise on a machine without a GPU:

- ``_init_dist_pytorch`` calls ``torch.cuda.set_device(LOCAL_RANK)`` and uses the configured backend
  (MMPose's default runtime says ``nccl``, which needs GPUs);
- ``Runner.wrap_model`` passes ``device_ids=[LOCAL_RANK]`` to DistributedDataParallel, which
  PyTorch rejects for a module on the CPU.

Both are patched only where no accelerator is present: without a GPU the process group is initialised with
``gloo`` (when ``nccl`` was asked for) and DDP gets no ``device_ids``. With CUDA nothing changes.
A GPU that ``nvidia-smi`` lists but torch cannot use (an old driver) is not "no accelerator": the
launch stops in one line instead of training gloo DDP on the CPU
(:func:`~mmpose_sam.engine.device_setup_hook.require_usable_gpu`).
"""
import os

import torch
import torch.distributed as torch_dist
from mmengine.device import is_mlu_available, is_musa_available, is_npu_available
from mmengine.dist import utils as dist_utils
from mmengine.model import MMDistributedDataParallel

from .engine.device_setup_hook import require_usable_gpu

_init_dist_pytorch_with_cuda = dist_utils._init_dist_pytorch
_ddp_init = MMDistributedDataParallel.__init__


def _has_accelerator() -> bool:
    return (torch.cuda.is_available() or is_mlu_available() or is_npu_available()
            or is_musa_available())


def _init_dist_pytorch(backend, init_backend='torch', **kwargs) -> None:
    if _has_accelerator() or init_backend != 'torch':
        return _init_dist_pytorch_with_cuda(backend, init_backend=init_backend, **kwargs)
    require_usable_gpu()  # CPU on purpose (CUDA_VISIBLE_DEVICES=) or no GPU at all
    backend = 'gloo' if backend == 'nccl' else backend
    torch_dist.init_process_group(
        backend=backend, rank=int(os.environ['RANK']),
        world_size=int(os.environ['WORLD_SIZE']), **kwargs)


def _ddp_init_without_cpu_device_ids(self, module, *args, device_ids=None, **kwargs):
    on_cpu = all(p.device.type == 'cpu' for p in module.parameters())
    _ddp_init(self, module, *args, device_ids=None if on_cpu else device_ids, **kwargs)


dist_utils._init_dist_pytorch = _init_dist_pytorch
MMDistributedDataParallel.__init__ = _ddp_init_without_cpu_device_ids
