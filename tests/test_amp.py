"""bf16 AMP through MMPose's heads (mmpose_sam.speed): found on an H200, reproduced here with CPU
autocast, which produces the same bfloat16 head outputs."""
import numpy as np
import pytest
import torch
from mmpose.testing import get_packed_inputs
from mmpose.utils import tensor_utils

from mmpose_sam.models import BilinearHeatmapHead
from mmpose_sam.speed import DeviceAccuracyHeatmapHead, amp

CODEC = dict(type='MSRAHeatmap', input_size=(192, 256), heatmap_size=(48, 64), sigma=2)


def test_mmposes_to_numpy_rejects_bfloat16():
    # Why our heads upcast; if MMPose ever converts bfloat16 itself, this says so.
    with pytest.raises(TypeError, match='BFloat16'):
        tensor_utils.to_numpy(torch.ones(2, dtype=torch.bfloat16))


# Narrow heads: bf16 convolutions are slow on CPUs without bf16 instructions.
@pytest.mark.parametrize('head_type,widths', [
    (DeviceAccuracyHeatmapHead, dict(deconv_out_channels=(32, 32, 32))),
    (BilinearHeatmapHead, dict(upsample_out_channels=(32, 32, 32), conv_out_channels=(32, ))),
])
@pytest.mark.parametrize('compute_acc', [True, 'device'])
def test_heads_train_and_predict_under_bf16_autocast(head_type, widths, compute_acc):
    head = head_type(in_channels=64, out_channels=17, decoder=CODEC, **widths)
    head.init_weights()
    packed = get_packed_inputs(batch_size=2, with_heatmap=True)['data_samples']
    feats = (torch.rand(2, 64, 8, 6), )
    with torch.autocast('cpu', dtype=torch.bfloat16):
        assert head.forward(feats).dtype == torch.bfloat16  # what broke MMPose's numpy calls
        losses = head.loss(feats, packed, dict(compute_acc=compute_acc))
        preds = head.predict(feats, packed, test_cfg=dict(flip_test=False))
    losses['loss_kpt'].backward()
    assert torch.isfinite(losses['loss_kpt']) and 0 <= float(losses['acc_pose']) <= 1
    assert all(p.grad is not None for p in head.parameters())
    assert preds[0].keypoints.shape == (1, 17, 2) and np.isfinite(preds[0].keypoints).all()


# Which precision a CPU trains in (MMPOSE_SAM_CPU_AMP) ---------------------------------------


def test_suite_runs_float32_on_every_cpu():
    """conftest sets MMPOSE_SAM_CPU_AMP=off for this process and the ones it starts."""
    from conftest import subprocess_env
    import os
    assert os.environ['MMPOSE_SAM_CPU_AMP'] == 'off'
    assert subprocess_env()['MMPOSE_SAM_CPU_AMP'] == 'off'
    assert amp.cpu_has_native_bf16() is False


def test_torch_and_proc_cpuinfo_agree_on_native_bf16(monkeypatch):
    """``cpu_has_native_bf16`` asks torch's private CPU checks; /proc/cpuinfo must say the same,
    so that a torch whose checks vanished or answer wrongly shows up here."""
    flags = amp.cpuinfo_flags()
    if flags is None:
        pytest.skip('no /proc/cpuinfo flags on this system')
    reported = amp.torch_reports_native_bf16()
    assert reported is not None, 'torch.cpu lost _is_avx512_bf16_supported/_is_amx_tile_supported'
    assert reported == bool(flags & amp.CPUINFO_BF16_FLAGS), sorted(flags & {
        'avx512_bf16', 'amx_bf16', 'amx_tile', 'avx512f'})
    monkeypatch.setenv('MMPOSE_SAM_CPU_AMP', 'auto')
    assert amp.cpu_has_native_bf16() is reported
    # Where torch has no check, /proc/cpuinfo answers.
    monkeypatch.setattr(amp, 'torch_reports_native_bf16', lambda: None)
    assert amp.cpu_has_native_bf16() is reported


def test_cpuinfo_flags_parsing(tmp_path):
    cpuinfo = tmp_path / 'cpuinfo'
    cpuinfo.write_text('processor\t: 0\nflags\t\t: fpu avx2 avx512_bf16 amx_tile\n\n')
    assert amp.cpuinfo_flags(str(cpuinfo)) == {'fpu', 'avx2', 'avx512_bf16', 'amx_tile'}
    assert amp.cpuinfo_flags(str(tmp_path / 'missing')) is None


def test_unknown_cpu_amp_mode_is_one_line(monkeypatch):
    monkeypatch.setenv('MMPOSE_SAM_CPU_AMP', 'on')
    with pytest.raises(amp.UserError, match="^MMPOSE_SAM_CPU_AMP must be one of auto, off, "
                                            "got 'on'$"):
        amp.cpu_has_native_bf16()


def test_amp_optim_wrapper_precision_on_this_cpu(cpu_amp_mode):
    """Both kinds: ``auto`` autocasts in bf16 where the CPU has it natively (else float32, as
    ``off`` always does), whatever the config asks for."""
    from mmpose_sam.speed.amp import BF16AmpOptimWrapper
    native = cpu_amp_mode == 'auto' and bool(amp.torch_reports_native_bf16())
    model = torch.nn.Linear(4, 2)
    wrapper = BF16AmpOptimWrapper(optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                              dtype='bfloat16')
    assert wrapper.loss_scaler is None and wrapper.autocast_enabled is native
    with wrapper.optim_context(model):
        out = model(torch.ones(1, 4))
    assert out.dtype == (torch.bfloat16 if native else torch.float32)
    wrapper.update_params(out.float().sum())  # backward and step in either precision


def test_off_turns_native_bf16_off(monkeypatch):
    """What ``off`` does on a CPU with native bf16 (simulated where this one has none)."""
    from mmpose_sam.speed.amp import BF16AmpOptimWrapper
    from mmpose_sam.apis.optimize import resolve_dtype
    monkeypatch.setattr(amp, 'torch_reports_native_bf16', lambda: True)
    expected = {'auto': (True, torch.bfloat16, 'bf16'), 'off': (False, torch.float32, 'fp32')}
    for mode, (native, dtype, inference) in expected.items():
        monkeypatch.setenv('MMPOSE_SAM_CPU_AMP', mode)
        model = torch.nn.Linear(4, 2)
        wrapper = BF16AmpOptimWrapper(optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                                  dtype='bfloat16')
        with wrapper.optim_context(model):
            out = model(torch.ones(1, 4))
        assert (amp.cpu_has_native_bf16(), wrapper.autocast_enabled, out.dtype) == \
            (native, native, dtype), mode
        assert resolve_dtype('auto', torch.device('cpu')) == inference
