"""bf16 AMP for MMPose 1.3.x heads, applied when ``mmpose_sam`` is imported.

MMPose moves head outputs to numpy with ``mmpose.utils.tensor_utils.to_numpy`` (training
accuracy in ``HeatmapHead.loss``, decoding in ``BaseHead.decode``). Under
``AmpOptimWrapper(dtype='bfloat16')`` those outputs are bfloat16, which numpy has no type for, so
the first training iteration fails with ``TypeError: Got unsupported ScalarType BFloat16`` (seen
on an H200 with SimpleBaseline and SAM alike; fp16 is unaffected). The fix upcasts bfloat16
tensors to float32 inside ``to_numpy`` only: the loss and the backward pass are untouched, since
the losses never go through numpy.

MMPose's modules bind ``to_numpy`` by name when they are imported
(``from mmpose.utils.tensor_utils import to_numpy``), so the wrapper is put into each loaded
``mmpose`` module that holds the original, as well as into ``tensor_utils`` for later imports.
"""
import sys

import torch
from mmpose.utils import tensor_utils

_numpy_unsafe = tensor_utils.to_numpy


def to_numpy(x, return_device: bool = False, unzip: bool = False):
    """``mmpose.utils.tensor_utils.to_numpy`` that also takes bfloat16 tensors (as float32)."""
    if isinstance(x, torch.Tensor) and x.dtype == torch.bfloat16:
        x = x.float()  # same device: the returned device indicator is unchanged
    # Sequences recurse through tensor_utils.to_numpy, which is this function once patched.
    return _numpy_unsafe(x, return_device=return_device, unzip=unzip)


def patch_mmpose_to_numpy() -> int:
    """Put :func:`to_numpy` wherever an imported ``mmpose`` module holds the original; returns
    how many modules were patched (0 when called again)."""
    patched = 0
    for name, module in list(sys.modules.items()):
        if (name == 'mmpose' or name.startswith('mmpose.')) and \
                getattr(module, 'to_numpy', None) is _numpy_unsafe:
            module.to_numpy = to_numpy
            patched += 1
    return patched
