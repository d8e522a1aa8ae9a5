"""``--launcher pytorch`` without a GPU: replaces ``mmengine.dist.utils._init_dist_pytorch``,
which calls ``torch.cuda.set_device`` and uses MMPose's default ``nccl`` backend. Where no
accelerator is present the process group starts with ``gloo`` instead; a GPU that ``nvidia-smi``
lists but torch cannot use stops the launch in one line
(:func:`~mmpose_sam.reliability.hooks.device_setup_hook.require_usable_gpu`). Why no registered
name reaches it, and what retires it: README "Upstream fixes".
"""
import os

import mmengine
import torch.distributed as torch_dist
from mmengine.dist import utils as dist_utils
from mmengine.utils import digit_version

from mmpose_sam.devices import has_accelerator
from mmpose_sam.reliability.hooks.device_setup_hook import require_usable_gpu

LAST_CHECKED = '0.10.7'
REPLACES = ('mmengine.dist.utils._init_dist_pytorch', )


def apply() -> None:
    """Put a CPU-capable ``_init_dist_pytorch`` into ``mmengine.dist.utils`` (MMEngine <=
    :data:`LAST_CHECKED` only; once)."""
    mmengine_init = dist_utils._init_dist_pytorch
    if digit_version(mmengine.__version__) > digit_version(LAST_CHECKED) or \
            getattr(mmengine_init, '_mmpose_sam', False):
        return

    def _init_dist_pytorch(backend: str, init_backend: str = 'torch', **kwargs) -> None:
        if has_accelerator() or init_backend != 'torch':
            return mmengine_init(backend, init_backend=init_backend, **kwargs)
        require_usable_gpu()  # CPU on purpose (CUDA_VISIBLE_DEVICES=) or no GPU at all
        torch_dist.init_process_group(
            backend='gloo' if backend == 'nccl' else backend, rank=int(os.environ['RANK']),
            world_size=int(os.environ['WORLD_SIZE']), **kwargs)

    _init_dist_pytorch._mmpose_sam = True
    dist_utils._init_dist_pytorch = _init_dist_pytorch
