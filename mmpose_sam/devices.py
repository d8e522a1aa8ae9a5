"""What speed/, reliability/ and upstream/ share about devices: whether an accelerator is
present, and the host-device transfers and collectives of our hooks (one tensor each)."""
from typing import Dict, TypeVar

import torch
from mmengine.device import is_mlu_available, is_musa_available, is_npu_available
from mmengine.dist import all_reduce, get_world_size

K = TypeVar('K')


def has_accelerator() -> bool:
    """Whether torch sees a CUDA, NPU, MLU or MUSA device."""
    return (torch.cuda.is_available() or is_npu_available() or is_mlu_available()
            or is_musa_available())


def read_back(values: Dict[K, torch.Tensor]) -> Dict[K, float]:
    """The scalar tensors ``values`` as floats, read from the device in one transfer."""
    if not values:
        return {}
    device = next(iter(values.values())).device
    read = torch.stack([value.to(device, torch.float64).reshape(()) for value in values.values()])
    return dict(zip(values, read.tolist()))


def across_ranks(value: float, op: str, runner) -> float:
    """``value`` reduced over every rank with ``op`` (``'min'``, ``'max'``), which every rank must
    call at the same point; ``value`` itself in one process."""
    if get_world_size() == 1:
        return value
    tensor = torch.tensor(value, dtype=torch.float64,
                          device=next(runner.model.parameters()).device)
    all_reduce(tensor, op=op)
    return tensor.item()
