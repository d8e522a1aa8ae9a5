"""The spatial attention maps of any attention backbone, captured by forward hooks on each
module's ``spatial_gate`` for one forward pass (the model keeps no state), and pictures of them.

Stages are numbered 1..4 as in the papers (``attention_stages`` index + 1); a stage with attention
on several resolution branches (HRNet) gives one map per branch, ``'S.B'`` (B=1 the highest).
"""
from collections import Counter
from pathlib import Path
from typing import List, NamedTuple, Sequence, Tuple, Union

import cv2
import numpy as np
import torch
from torch import Tensor, nn

from mmpose_sam.models import AttentionModule

Stage = Union[int, str]


class StageMap(NamedTuple):
    """The spatial attention map of one stage: ``stage`` 1..4 (``'S.B'`` for branch B of a
    multi-branch stage), ``map`` ``(h, w)`` (or ``(B, h, w)`` for a batch), on the CPU."""
    stage: Stage
    map: Tensor


def spatial_attention_gates(model: nn.Module) -> List[Tuple[Stage, nn.Module]]:
    """``(stage, gate module)`` of every attention module with a spatial map, in stage order, for
    a pose estimator or a bare backbone.

    Raises:
        ValueError: the backbone has no spatial attention (e.g. SimpleBaseline's ``ResNet``, or
            channel-only ``SEAttention`` modules).
    """
    backbone = getattr(model, 'backbone', model)
    modules = [m for m in backbone.modules() if isinstance(m, AttentionModule)]
    spatial = sorted((m for m in modules if m.spatial_gate is not None),
                     key=lambda m: (m.stage or 0, m.branch or 0))
    if not spatial:
        kinds = sorted({type(m).__name__ for m in modules})
        what = (f'its {", ".join(kinds)} modules have no spatial map' if kinds else
                'it has no attention modules')
        raise ValueError(f'{type(backbone).__name__} has no spatial attention ({what}): attention '
                         "maps need a backbone with attention=dict(type='StageAttention') or "
                         "'CBAM', e.g. a td-hm_sam-* config")
    per_stage = Counter(module.stage for module in spatial)
    return [(module.stage if per_stage[module.stage] == 1 or module.branch is None else
             f'{module.stage}.{module.branch + 1}', module.spatial_gate) for module in spatial]


def capture_spatial_attention(model: nn.Module, inputs: Tensor) -> List[StageMap]:
    """Run the backbone once on ``inputs`` and return the spatial attention map of each stage.

    Args:
        model: a top-down pose estimator with an attention backbone, or the backbone itself. It is
            run as it is (``model.eval()`` first for inference behaviour), without gradients.
        inputs: preprocessed images (normalised, as after the model's ``data_preprocessor``),
            ``(B, 3, H, W)``, or one image ``(3, H, W)``.

    Returns:
        One :class:`StageMap` per spatial attention module, in stage order; maps are
        ``(B, h, w)`` for a batch, ``(h, w)`` for one image, e.g. 64x48, 32x24, 16x12, 8x6 for a
        256x192 input.

    Raises:
        ValueError: the model has no spatial attention (see :func:`spatial_attention_gates`).
    """
    gates = spatial_attention_gates(model)
    backbone = getattr(model, 'backbone', model)
    single = inputs.dim() == 3
    batch = inputs[None] if single else inputs
    device = next(backbone.parameters()).device
    captured = {}

    def hook_for(stage: int):

        def hook(module: nn.Module, args, output: Tensor) -> None:
            captured[stage] = output.detach()[:, 0].float().cpu()

        return hook

    handles = [gate.register_forward_hook(hook_for(stage)) for stage, gate in gates]
    try:
        with torch.no_grad():
            backbone(batch.to(device))
    finally:  # never leave a hook behind, even if the forward pass fails
        for handle in handles:
            handle.remove()
    return [StageMap(stage, captured[stage][0] if single else captured[stage])
            for stage, _ in gates]


def topdown_inputs(model: nn.Module, image: np.ndarray,
                   boxes: np.ndarray) -> Tuple[Tensor, List[np.ndarray]]:
    """Run MMPose's test pipeline (crop by box, affine to the input size) and data preprocessor.

    Args:
        model: a pose estimator from ``mmpose.apis.init_model``.
        image: BGR image.
        boxes: ``(N, 4+)`` boxes ``x1, y1, x2, y2[, score]``, ``N >= 1``.

    Returns:
        The model inputs ``(N, 3, H, W)`` on the model's device, and the N crops as the model
        sees them (BGR ``uint8``, ``H x W``, before normalisation).
    """
    from mmengine.dataset import Compose, pseudo_collate
    from mmengine.registry import init_default_scope
    init_default_scope(model.cfg.get('default_scope', 'mmpose'))
    pipeline = Compose(model.cfg.test_dataloader.dataset.pipeline)
    samples = [
        pipeline(dict(img=image, bbox=np.asarray(box[None, :4], np.float32),
                      bbox_score=np.ones(1, np.float32), **model.dataset_meta))
        for box in boxes
    ]
    batch = pseudo_collate(samples)
    crops = [np.ascontiguousarray(crop.permute(1, 2, 0).numpy()) for crop in batch['inputs']]
    with torch.no_grad():
        inputs = model.data_preprocessor(batch, training=False)['inputs']
    return inputs, crops


def overlay_attention(crop: np.ndarray, attention: Union[Tensor, np.ndarray], alpha: float = 0.5,
                      normalize: bool = False) -> np.ndarray:
    """A jet-coloured attention map, resized (bilinear) to the crop, blended onto the crop.

    Args:
        crop: BGR ``uint8`` image, ``H x W``.
        attention: ``(h, w)`` map in (0, 1).
        alpha: weight of the colour map.
        normalize: stretch the map to its own min..max; by default 0 is blue and 1 red, so that
            stages and models compare on one scale.

    Returns:
        BGR ``uint8`` image of the crop's size.
    """
    attention = np.asarray(attention, dtype=np.float32)
    if normalize:
        attention = (attention - attention.min()) / max(float(np.ptp(attention)), 1e-12)
    height, width = crop.shape[:2]
    resized = cv2.resize(attention, (width, height), interpolation=cv2.INTER_LINEAR)
    colored = cv2.applyColorMap(np.uint8(np.clip(resized, 0, 1) * 255), cv2.COLORMAP_JET)
    return cv2.addWeighted(colored, alpha, crop, 1 - alpha, 0)


def save_attention_pictures(crop: np.ndarray,
                            maps: Sequence[StageMap],
                            out_prefix: Union[str, Path],
                            alpha: float = 0.5,
                            normalize: bool = False) -> List[Path]:
    """Save ``<prefix>_stage{s}.png`` (each map over the crop, at the crop's size) and
    ``<prefix>_attention.png`` (crop and overlays side by side, titled by stage and map size).

    Args:
        crop: BGR ``uint8`` model input crop (see :func:`topdown_inputs`).
        maps: the ``(h, w)`` maps of one person (see :func:`capture_spatial_attention`).
        out_prefix: folder and file-name stem of the pictures.

    Returns:
        The paths written, per-stage pictures first, the grid last.
    """
    # The Figure API (no pyplot) draws with Agg: no display, no global figure state.
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure
    prefix = Path(out_prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    paths, panels = [], [('input crop', crop)]
    for stage, attention in maps:
        overlay = overlay_attention(crop, attention, alpha, normalize)
        path = prefix.with_name(f'{prefix.name}_stage{stage}.png')
        cv2.imwrite(str(path), overlay)
        paths.append(path)
        height, width = attention.shape[-2:]
        panels.append((f'stage {stage} ({height}x{width})', overlay))
    figure = Figure(figsize=(2.2 * len(panels) + 0.6, 3.4))
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    for axis, (title, picture) in zip(axes, panels):
        axis.imshow(picture[..., ::-1])
        axis.set_title(title, fontsize=9)
        axis.axis('off')
    # OpenCV's and matplotlib's jet are the same map, so one colour bar explains every overlay.
    colorbar = figure.colorbar(ScalarMappable(Normalize(0, 1), cmap='jet'), ax=list(axes),
                               fraction=0.015, pad=0.01)
    colorbar.set_ticks([0, 1], labels=['min', 'max'] if normalize else ['0', '1'])
    figure.suptitle('spatial attention' + (' (each map from its min to its max)' if normalize
                                            else ''), fontsize=10)
    grid = prefix.with_name(f'{prefix.name}_attention.png')
    figure.savefig(str(grid), dpi=100, bbox_inches='tight')
    paths.append(grid)
    return paths


def person_prefixes(out_dir: Union[str, Path], stem: str, count: int) -> List[Path]:
    """File prefixes for ``count`` people of an image: ``<stem>`` for one person,
    ``<stem>_person{k}`` (k = 0..) for several."""
    out_dir = Path(out_dir)
    if count == 1:
        return [out_dir / stem]
    return [out_dir / f'{stem}_person{index}' for index in range(count)]

