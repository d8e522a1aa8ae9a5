"""Make a pose estimator run faster for inference: bf16, channels_last, conv+BN folding, compile.

MMPose's inference APIs (``init_model`` + ``inference_topdown``, ``MMPoseInferencer``,
``Runner.test``) all call ``model.test_step`` -> ``backbone`` -> ``head.predict`` ->
``head.forward`` -> decoding. :func:`optimize_for_inference` changes only the network part of
that path, in place, so each of those APIs keeps working on the returned model:

- **channels_last**: weights and input batches in NHWC, the layout of tensor cores and of
  oneDNN's CPU convolutions (measured on this project's 2-core CPU: 1.37x for SAM-R50, fp32);
- **conv + BN folding**: in eval mode a batch norm is an affine map, folded into the preceding
  convolution's weights (``torch.fx``), one pass over the activations less per conv;
- **bf16**: the backbone and the head's layers run under bf16 autocast; the heatmaps are handed to
  decoding in float32. Fast only where the hardware computes in bf16 (Ampere+ GPUs, CPUs with
  AVX-512-BF16 or AMX); elsewhere it is emulated and many times slower, so ``dtype='auto'`` (the
  default) picks bf16 only there;
- **compile**: ``torch.compile`` of the backbone and of the head's forward (minutes of compiling
  on a CPU; worth it for long videos or servers).

Usage::

    from mmpose.apis import init_model, inference_topdown
    from mmpose_sam.apis import optimize_for_inference
    model = optimize_for_inference(init_model(config, checkpoint, device='cuda:0'))
    results = inference_topdown(model, image, boxes)

    # or with MMPose's inferencer
    inferencer = MMPoseInferencer(pose2d=config, pose2d_weights=checkpoint)
    optimize_for_inference(inferencer.inferencer.model)
"""
import functools
import logging
from typing import Callable

import torch
from mmengine.logging import print_log
from torch import nn
from torch.fx.experimental.optimization import fuse as fx_fuse_conv_bn

from mmpose_sam.speed.amp import bf16_is_native
from mmpose_sam.speed.channels_last_hook import _inputs_to_channels_last

DTYPES = ('auto', 'bf16', 'fp32')


def resolve_dtype(dtype: str, device: torch.device) -> str:
    """``'bf16'`` or ``'fp32'``: ``'auto'`` is bf16 where ``device`` computes in it natively."""
    if dtype not in DTYPES:
        raise ValueError(f'dtype must be one of {", ".join(map(repr, DTYPES))}, got {dtype!r}')
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

    The returned ``GraphModule`` keeps the leaf modules it calls under their names (the attention
    gates included, so forward hooks on them still work), but not the classes of the modules it
    traced through: look for ``StageAttention`` modules before folding, or pass ``fold_bn=False``.
    A module that ``torch.fx`` cannot trace is returned unchanged, with a log line.
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
                           compile: bool = False,
                           fold_bn: bool = True) -> nn.Module:
    """Prepare an MMPose top-down estimator (from ``init_model``) for faster inference.

    The model is changed in place, put in eval mode and returned; it is for inference only
    (``train()`` would not unfold the batch norms). Outputs match the original up to floating-point
    order in fp32, and to bf16 rounding in bf16 (measured on the bundled images: see README).

    Args:
        model (nn.Module): An MMPose pose estimator with ``backbone``, ``head`` and
            ``data_preprocessor``, on the device it will run on.
        dtype (str): ``'auto'`` (bf16 where the device computes in it natively, else fp32),
            ``'bf16'`` or ``'fp32'``. Defaults to ``'auto'``.
        channels_last (bool): NHWC weights and inputs. Defaults to True.
        compile (bool): ``torch.compile`` the backbone and the head's forward. Defaults to False.
        fold_bn (bool): Fold each conv's batch norm into its weights. Defaults to True.

    Returns:
        nn.Module: ``model``, with ``model.inference_dtype`` set to the dtype used.
    """
    device = next(model.parameters()).device
    dtype = resolve_dtype(dtype, device)
    model.eval()
    if fold_bn:
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
