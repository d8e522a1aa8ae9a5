"""Distributed data parallel training on GPUs and on CPUs alike (our configs' model wrapper)."""
from typing import List, Optional

from mmengine.model import MMDistributedDataParallel
from mmengine.registry import MODEL_WRAPPERS
from torch import nn


@MODEL_WRAPPERS.register_module()
class AnyDeviceDistributedDataParallel(MMDistributedDataParallel):
    """MMEngine's ``MMDistributedDataParallel``, also for a module on the CPU: MMEngine 0.10.7
    passes ``device_ids=[LOCAL_RANK]``, which torch refuses for a CPU module, so that one gets
    none. (A CPU run's process group is :mod:`mmpose_sam.upstream.distributed`'s.)

    Args:
        module (nn.Module): The model to wrap.
        device_ids (List[int], optional): The module's GPU; dropped for a CPU module.
        **kwargs: Passed to :class:`~mmengine.model.MMDistributedDataParallel`.
    """

    def __init__(self, module: nn.Module, device_ids: Optional[List[int]] = None, **kwargs):
        on_cpu = all(p.device.type == 'cpu' for p in module.parameters())
        super().__init__(module=module, device_ids=None if on_cpu else device_ids, **kwargs)
