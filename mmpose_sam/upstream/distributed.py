"""``--launcher pytorch`` without a GPU: replaces ``mmengine.dist.utils._init_dist_pytorch``.

MMPose's ``tools/train.py --launcher pytorch`` is the one code path for multi-GPU, multi-node
(torchrun, slurm) and, here, a 2-process CPU check. MMEngine 0.10.7's ``_init_dist_pytorch`` calls
``torch.cuda.set_device(LOCAL_RANK)`` and uses the configured backend (MMPose's default runtime
says ``nccl``, which needs GPUs), so it raises on a machine without one. After :func:`apply`, where
no accelerator is present, the process group is initialised with ``gloo`` (when ``nccl`` was asked
for); with CUDA (or an NPU/MLU/MUSA) MMEngine's function runs. A GPU that ``nvidia-smi`` lists but
torch cannot use (an old driver) is not "no accelerator": the launch stops in one line instead of
training gloo DDP on the CPU
(:func:`~mmpose_sam.reliability.hooks.device_setup_hook.require_usable_gpu`).

No registered component reaches it: the ``Runner`` starts the process group in ``setup_env``
(``init_dist``, ``env_cfg.dist_cfg``) before it builds anything a config names, and the backend
is a config value that cannot depend on the machine; only a Runner subclass (``runner_type``)
could, replacing the runner of every run of our configs for one function of the CPU path. The
DDP wrapper's half of a CPU run is a registered name
(:class:`~mmpose_sam.speed.ddp.AnyDeviceDistributedDataParallel`). Checked up to MMEngine
0.10.7; unnecessary once MMEngine initialises a CPU process group itself.
"""
import os

import mmengine
import torch
import torch.distributed as torch_dist
from mmengine.device import is_mlu_available, is_musa_available, is_npu_available
from mmengine.dist import utils as dist_utils
from mmengine.utils import digit_version

from mmpose_sam.reliability.hooks.device_setup_hook import require_usable_gpu

LAST_CHECKED = '0.10.7'
REPLACES = ('mmengine.dist.utils._init_dist_pytorch', )


def _has_accelerator() -> bool:
    return (torch.cuda.is_available() or is_mlu_available() or is_npu_available()
            or is_musa_available())


def apply() -> None:
    """Put a CPU-capable ``_init_dist_pytorch`` into ``mmengine.dist.utils`` (MMEngine <=
    :data:`LAST_CHECKED` only; once)."""
    mmengine_init = dist_utils._init_dist_pytorch
    if digit_version(mmengine.__version__) > digit_version(LAST_CHECKED) or \
            getattr(mmengine_init, '_mmpose_sam', False):
        return

    def _init_dist_pytorch(backend: str, init_backend: str = 'torch', **kwargs) -> None:
        if _has_accelerator() or init_backend != 'torch':
            return mmengine_init(backend, init_backend=init_backend, **kwargs)
        require_usable_gpu()  # CPU on purpose (CUDA_VISIBLE_DEVICES=) or no GPU at all
        torch_dist.init_process_group(
            backend='gloo' if backend == 'nccl' else backend, rank=int(os.environ['RANK']),
            world_size=int(os.environ['WORLD_SIZE']), **kwargs)

    _init_dist_pytorch._mmpose_sam = True
    dist_utils._init_dist_pytorch = _init_dist_pytorch
