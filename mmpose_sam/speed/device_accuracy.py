"""MMPose's heatmap head with its training accuracy (``acc_pose``) computed on the device, and bf16
heatmaps decoded (:class:`DeviceAccuracyMixin`, :class:`DeviceAccuracyHeatmapHead`).

``HeatmapHead.loss`` logs ``acc_pose``, a PCK@0.05 between the argmax of the predicted and target
heatmaps, every iteration. MMPose 1.3.2 computes it in numpy: all heatmaps of the batch are copied
to the host (64 x 17 x 64 x 48 floats at 256x192) and the CPU waits for the GPU to get there, once
per iteration. That wait is a host-device synchronisation: the CPU can no longer queue the next
iteration's work while the GPU runs this one, so data loading and kernel launches stop overlapping
with compute.

MMPose's own switch ``model.train_cfg.compute_acc`` (True by default, False to skip) gains a third
value here, ``'device'``: the same number, computed by :func:`heatmap_pck_accuracy` in torch on the
heatmaps' device and returned as a tensor that nothing reads back until the logger does. True and
False keep MMPose's results.

Under bf16 autocast (:class:`~mmpose_sam.speed.amp.BF16AmpOptimWrapper`) the head's heatmaps are
bfloat16, which numpy has no type for: MMPose's ``to_numpy`` (numpy accuracy, ``decode``) failed
on the first iteration with ``TypeError: Got unsupported ScalarType BFloat16`` (seen on an H200
with SimpleBaseline and SAM alike). The mixin hands numpy and decoding float32 heatmaps; losses
never go through numpy, so training is untouched.
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
    heatmaps' device: the mean over keypoints (those with at least one visible instance) of the
    share of visible instances whose argmax lies within ``thr`` of the target's argmax.

    Distances are normalised by ``(H, W)`` applied to ``(x, y)``, exactly as MMPose does (its
    ``normalize`` defaults to ``[H, W]`` against ``x, y`` locations), so the numbers match the
    numpy version's.

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
    """For a subclass of MMPose's ``HeatmapHead``: ``train_cfg.compute_acc='device'`` (accuracy in
    torch, :func:`heatmap_pck_accuracy`) next to MMPose's True (numpy ``pose_pck_accuracy``) and
    False (none), and bf16 heatmaps upcast before numpy or decoding. Put it first among the bases:
    ``class Head(DeviceAccuracyMixin, HeatmapHead)``."""

    def loss(self,
             feats: Tuple[Tensor],
             batch_data_samples: OptSampleList,
             train_cfg: ConfigType = {}) -> dict:
        """MMPose's ``HeatmapHead.loss``, with ``acc_pose`` as ``train_cfg.compute_acc`` says.

        Args:
            feats (Tuple[Tensor]): The multi-stage features.
            batch_data_samples (List[PoseDataSample]): The batch's data samples.
            train_cfg (dict): ``compute_acc``: ``'device'``, True (MMPose's default) or False.

        Returns:
            dict: ``loss_kpt`` and, unless ``compute_acc`` is False, ``acc_pose``.
        """
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
        """MMPose's ``decode``, given float32 where the heatmaps are bfloat16.

        Args:
            batch_outputs (Tensor): ``(N, K, H, W)`` heatmaps.

        Returns:
            List[InstanceData]: The decoded keypoints of each sample.
        """
        if isinstance(batch_outputs, Tensor) and batch_outputs.dtype == torch.bfloat16:
            batch_outputs = batch_outputs.float()
        return super().decode(batch_outputs)


@MODELS.register_module()
class DeviceAccuracyHeatmapHead(DeviceAccuracyMixin, HeatmapHead):
    """MMPose's :class:`~mmpose.models.heads.HeatmapHead` (same arguments, same weights) with
    :class:`DeviceAccuracyMixin`."""
