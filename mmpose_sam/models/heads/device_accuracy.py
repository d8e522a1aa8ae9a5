"""MMPose's training accuracy (``acc_pose``) computed on the device, without leaving the GPU.

``HeatmapHead.loss`` logs ``acc_pose``, a PCK@0.05 between the argmax of the predicted and target
heatmaps, every iteration. MMPose 1.3.2 computes it in numpy: all heatmaps of the batch are copied
to the host (64 x 17 x 64 x 48 floats at 256x192) and the CPU waits for the GPU to get there, once
per iteration. That wait is a host-device synchronisation: the CPU can no longer queue the next
iteration's work while the GPU runs this one, so data loading and kernel launches stop overlapping
with compute.

MMPose's own switch ``model.train_cfg.compute_acc`` (True by default, False to skip) gains a third
value here, ``'device'``: the same number, computed by :func:`heatmap_pck_accuracy` in torch on the
heatmaps' device and returned as a tensor that nothing reads back until the logger does. True and
False keep MMPose's behaviour. :func:`enable_device_accuracy` (called by ``import mmpose_sam``)
wraps ``HeatmapHead.loss``, so SimpleBaseline's head and ours (a subclass) take the same path.
"""
import torch
from torch import Tensor

from mmpose.models.heads import HeatmapHead

_mmpose_heatmap_loss = HeatmapHead.loss


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
    # Python scalars, not a (2,) tensor built from a list: that would be a host-to-device copy,
    # and the CPU waiting for it, every iteration.
    offsets = pred - gt
    distances = torch.hypot(offsets[..., 0] / h, offsets[..., 1] / w)
    mask = mask.bool()
    counted = mask.sum(dim=0)
    hits = ((distances < thr) & mask).sum(dim=0)
    per_keypoint = hits / counted.clamp(min=1)
    valid = counted > 0
    return (per_keypoint * valid).sum() / valid.sum().clamp(min=1)


def _loss_with_device_accuracy(self, feats, batch_data_samples, train_cfg: dict = {}) -> dict:
    if train_cfg.get('compute_acc', True) != 'device':
        return _mmpose_heatmap_loss(self, feats, batch_data_samples, train_cfg)
    # MMPose's HeatmapHead.loss, with the accuracy in torch instead of numpy.
    pred_fields = self.forward(feats)
    gt_heatmaps = torch.stack([d.gt_fields.heatmaps for d in batch_data_samples])
    keypoint_weights = torch.cat(
        [d.gt_instance_labels.keypoint_weights for d in batch_data_samples])
    loss = self.loss_module(pred_fields, gt_heatmaps, keypoint_weights)
    accuracy = heatmap_pck_accuracy(pred_fields.detach(), gt_heatmaps, keypoint_weights > 0)
    return dict(loss_kpt=loss, acc_pose=accuracy)


def enable_device_accuracy() -> None:
    """Let ``model.train_cfg.compute_acc='device'`` select :func:`heatmap_pck_accuracy`."""
    HeatmapHead.loss = _loss_with_device_accuracy
