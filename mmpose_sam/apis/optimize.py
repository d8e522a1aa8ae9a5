"""Make a pose estimator faster for inference, in place: channels_last, conv+BN folding, bf16
autocast with fp32 heatmaps, ``torch.compile`` (README "Fast inference"). Only the network part
of ``test_step`` changes, so every MMPose inference API keeps working on the model.
"""
import functools
import logging
from typing import Callable

import torch
from mmengine.logging import print_log
from torch import nn
from torch.fx.experimental.optimization import fuse as fx_fuse_conv_bn

from mmpose_sam.models.attention import check_choice
from mmpose_sam.speed.amp import bf16_is_native
from mmpose_sam.speed.channels_last_hook import _inputs_to_channels_last

DTYPES = ('auto', 'bf16', 'fp32')


def resolve_dtype(dtype: str, device: torch.device) -> str:
    """``'bf16'`` or ``'fp32'``: ``'auto'`` is bf16 where ``device`` computes in it natively."""
    check_choice('dtype', dtype, DTYPES)
    if dtype == 'auto':
        return 'bf16' if bf16_is_native(device) else 'fp32'
    return dtype


def _autocast_bf16(forward: Callable, device_type: str, float_output: bool) -> Callable:
    @functools.wraps(forward)
    def wrapped(*args, **kwargs):
        with torch.autocast(device_type, dtype=torch.bfloat16):
            out = forward(*args, **kwargs)
        return out.float() if float_output and isinstance(out, torch.Tensor) else out

    return wrapped


def fold_batch_norms(module: nn.Module) -> nn.Module:
    """``module`` traced with ``torch.fx``, each conv + eval-mode BN pair folded into one conv.

    The ``GraphModule`` keeps the leaf modules it calls under their names (forward hooks on the
    attention gates still work), not the classes of those it traced through: look for
    ``StageAttention`` modules before folding. A module ``torch.fx`` cannot trace is returned
    unchanged, with a log line.
    """
    module.eval()  # not chained: MMPose's ResNet.train() returns None, so .eval() does too
    try:
        return fx_fuse_conv_bn(module)
    except Exception as error:  # tracing is an optimisation: never a reason to fail inference
        print_log(f'optimize_for_inference: {type(module).__name__} not folded '
                  f'({type(error).__name__}: {error})', logger='current', level=logging.WARNING)
        return module


def optimize_for_inference(model: nn.Module,
                           dtype: str = 'auto',
                           channels_last: bool = True,
                           compile: bool = False) -> nn.Module:
    """Prepare an MMPose top-down estimator (from ``init_model``) for faster inference.

    The model is changed in place, put in eval mode and returned; it is for inference only
    (``train()`` would not unfold the batch norms). Batch norms are always folded.

    Args:
        model (nn.Module): An MMPose pose estimator with ``backbone``, ``head`` and
            ``data_preprocessor``, on the device it will run on.
        dtype (str): ``'auto'`` (bf16 where the device computes in it natively, else fp32),
            ``'bf16'`` or ``'fp32'``. Defaults to ``'auto'``.
        channels_last (bool): NHWC weights and inputs. Defaults to True.
        compile (bool): ``torch.compile`` the backbone and the head's forward. Defaults to False.

    Returns:
        nn.Module: ``model``, with ``model.inference_dtype`` set to the dtype used.
    """
    device = next(model.parameters()).device
    dtype = resolve_dtype(dtype, device)
    model.eval()
    model.backbone = fold_batch_norms(model.backbone)
    for name, layers in list(model.head.named_children()):  # HeatmapHead's conv stacks
        if isinstance(layers, nn.Sequential):
            setattr(model.head, name, fold_batch_norms(layers))
    if channels_last:
        model.to(memory_format=torch.channels_last)
        model.data_preprocessor.register_forward_hook(_inputs_to_channels_last)
    if dtype == 'bf16':
        model.backbone.forward = _autocast_bf16(model.backbone.forward, device.type, False)
        model.head.forward = _autocast_bf16(model.head.forward, device.type, True)
    if compile:
        model.backbone.compile()
        model.head.forward = torch.compile(model.head.forward)
    model.inference_dtype = dtype
    return model
