"""bf16 AMP through MMPose's heads (mmpose_sam.amp): found on an H200, reproduced here with CPU
autocast, which produces the same bfloat16 head outputs."""
import sys

import numpy as np
import pytest
import torch
from mmpose.models.heads import HeatmapHead
from mmpose.testing import get_packed_inputs

import mmpose_sam  # noqa: F401  (applies the patch)
from mmpose_sam import amp
from mmpose_sam.models import BilinearHeatmapHead

CODEC = dict(type='MSRAHeatmap', input_size=(192, 256), heatmap_size=(48, 64), sigma=2)


def test_unpatched_mmpose_to_numpy_rejects_bfloat16():
    # Why the patch exists; if MMPose ever converts bfloat16 itself, this says so.
    with pytest.raises(TypeError, match='BFloat16'):
        amp._numpy_unsafe(torch.ones(2, dtype=torch.bfloat16))


def test_to_numpy_upcasts_bfloat16_only():
    x = torch.tensor([0.5, 1.5], dtype=torch.bfloat16)
    array, device = amp.to_numpy(x, return_device=True)
    assert array.dtype == np.float32 and array.tolist() == [0.5, 1.5] and device == x.device
    assert amp.to_numpy(torch.ones(2, dtype=torch.float16)).dtype == np.float16
    pair = amp.to_numpy([x, x])  # sequences recurse through the patched tensor_utils function
    assert [a.dtype for a in pair] == [np.float32, np.float32]


def test_no_loaded_mmpose_module_keeps_the_unsafe_function():
    holders = [name for name, module in list(sys.modules.items())
               if name.startswith('mmpose') and getattr(module, 'to_numpy', None) is not None]
    assert 'mmpose.models.heads.heatmap_heads.heatmap_head' in holders
    assert [name for name in holders
            if sys.modules[name].to_numpy is amp._numpy_unsafe] == []
    assert amp.patch_mmpose_to_numpy() == 0  # idempotent


# Narrow heads: bf16 convolutions are slow on CPUs without bf16 instructions.
@pytest.mark.parametrize('head_type,widths', [
    (HeatmapHead, dict(deconv_out_channels=(32, 32, 32))),
    (BilinearHeatmapHead, dict(upsample_out_channels=(32, 32, 32), conv_out_channels=(32, ))),
])
def test_heads_train_and_predict_under_bf16_autocast(head_type, widths):
    head = head_type(in_channels=64, out_channels=17, decoder=CODEC, **widths)
    head.init_weights()
    packed = get_packed_inputs(batch_size=2, with_heatmap=True)['data_samples']
    feats = (torch.rand(2, 64, 8, 6), )
    with torch.autocast('cpu', dtype=torch.bfloat16):
        assert head.forward(feats).dtype == torch.bfloat16  # what broke MMPose's numpy calls
        losses = head.loss(feats, packed)
        preds = head.predict(feats, packed, test_cfg=dict(flip_test=False))
    losses['loss_kpt'].backward()
    assert torch.isfinite(losses['loss_kpt']) and 0 <= float(losses['acc_pose']) <= 1
    assert all(p.grad is not None for p in head.parameters())
    assert preds[0].keypoints.shape == (1, 17, 2) and np.isfinite(preds[0].keypoints).all()
