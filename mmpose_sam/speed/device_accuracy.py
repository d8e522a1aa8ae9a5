"""``model.train_cfg.compute_acc='device'``: MMPose's training ``acc_pose`` in torch on the
heatmaps' device (README "Training speed"), next to MMPose's True (numpy: the whole batch of
heatmaps copied to the host, a wait every iteration) and False.

Under bf16 autocast the heatmaps are bfloat16, which numpy has no type for (MMPose's ``to_numpy``
failed with ``TypeError: Got unsupported ScalarType BFloat16``): numpy and decoding get float32.
"""
from typing import Tuple

import torch
from mmpose.models.heads import HeatmapHead
from mmpose.models.heads.heatmap_heads import heatmap_head as mmpose_heatmap_head
from mmpose.registry import MODELS
from mmpose.utils.tensor_utils import to_numpy
from mmpose.utils.typing import ConfigType, InstanceList, OptSampleList
from torch import Tensor


def _heatmap_argmax(heatmaps: Tensor) -> Tensor:
    """``(N, K, 2)`` x, y of each heatmap's maximum; -1 where the maximum is <= 0, as MMPose's
    ``get_heatmap_maximum``."""
    n, k, h, w = heatmaps.shape
    flat = heatmaps.reshape(n, k, h * w)
    values, index = flat.max(dim=-1)
    locations = torch.stack((index % w, torch.div(index, w, rounding_mode='floor')), -1)
    return torch.where((values > 0)[..., None], locations.float(), torch.full_like(
        locations, -1, dtype=torch.float))


def heatmap_pck_accuracy(output: Tensor, target: Tensor, mask: Tensor,
                         thr: float = 0.05) -> Tensor:
    """MMPose's ``pose_pck_accuracy(output, target, mask, thr)[1]`` as a 0-d tensor on the
    heatmaps' device. Distances are normalised by ``(H, W)`` applied to ``(x, y)``, as MMPose's
    default ``normalize`` does, so the numbers match.

    Args:
        output (Tensor): ``(N, K, H, W)`` predicted heatmaps (any float dtype).
        target (Tensor): ``(N, K, H, W)`` target heatmaps.
        mask (Tensor): ``(N, K)`` bool, which instances' keypoints count.
        thr (float): PCK threshold. Defaults to 0.05.
    """
    _, _, h, w = output.shape
    pred, gt = _heatmap_argmax(output.float()), _heatmap_argmax(target.float())
    offsets = pred - gt
    # Divided by Python scalars, not by a (2,) tensor built from a list: that would be a
    # host-to-device copy, and the CPU waiting for it, every iteration.
    distances = torch.hypot(offsets[..., 0] / h, offsets[..., 1] / w)
    mask = mask.bool()
    counted = mask.sum(dim=0)
    hits = ((distances < thr) & mask).sum(dim=0)
    per_keypoint = hits / counted.clamp(min=1)
    valid = counted > 0
    return (per_keypoint * valid).sum() / valid.sum().clamp(min=1)


class DeviceAccuracyMixin:
    """``compute_acc='device'`` and float32 decoding for a subclass of MMPose's ``HeatmapHead``;
    put it first among the bases: ``class Head(DeviceAccuracyMixin, HeatmapHead)``."""

    def loss(self,
             feats: Tuple[Tensor],
             batch_data_samples: OptSampleList,
             train_cfg: ConfigType = {}) -> dict:
        """MMPose's ``HeatmapHead.loss``, with ``acc_pose`` as ``train_cfg.compute_acc``
        (``'device'``, True or False) says."""
        pred_fields = self.forward(feats)
        gt_heatmaps = torch.stack([d.gt_fields.heatmaps for d in batch_data_samples])
        keypoint_weights = torch.cat(
            [d.gt_instance_labels.keypoint_weights for d in batch_data_samples])
        losses = dict(loss_kpt=self.loss_module(pred_fields, gt_heatmaps, keypoint_weights))
        compute_acc = train_cfg.get('compute_acc', True)
        if compute_acc == 'device':
            losses['acc_pose'] = heatmap_pck_accuracy(pred_fields.detach(), gt_heatmaps,
                                                      keypoint_weights > 0)
        elif compute_acc:
            # Through MMPose's module, as MMPose's own loss calls it.
            _, avg_acc, _ = mmpose_heatmap_head.pose_pck_accuracy(
                output=to_numpy(pred_fields.float()), target=to_numpy(gt_heatmaps),
                mask=to_numpy(keypoint_weights) > 0)
            losses['acc_pose'] = torch.tensor(avg_acc, device=gt_heatmaps.device)
        return losses

    def decode(self, batch_outputs: Tensor) -> InstanceList:
        """MMPose's ``decode``, given float32 where the heatmaps are bfloat16."""
        if isinstance(batch_outputs, Tensor) and batch_outputs.dtype == torch.bfloat16:
            batch_outputs = batch_outputs.float()
        return super().decode(batch_outputs)


@MODELS.register_module()
class DeviceAccuracyHeatmapHead(DeviceAccuracyMixin, HeatmapHead):
    """MMPose's :class:`~mmpose.models.heads.HeatmapHead` (same arguments, same weights) with
    :class:`DeviceAccuracyMixin`."""
