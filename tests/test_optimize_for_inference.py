"""optimize_for_inference keeps what MMPose's inference computes (trained sample checkpoints), and
tools/benchmark_inference.py runs. Speed is the benchmark's business, not these tests'."""
import copy
import json

import numpy as np
import pytest
import torch
from mmpose.apis import init_model

from mmpose_sam.apis import optimize_for_inference
from mmpose_sam.apis.optimize import resolve_dtype

from conftest import load_tool, run_python, SAM_SAMPLE_CONFIG, SAMPLE_DIR, SB_SAMPLE_CONFIG



benchmark = load_tool('benchmark_inference')


@pytest.fixture(scope='module')
def people():
    return benchmark.sample_people()


@pytest.fixture(scope='module', params=['SimpleBaseline', 'SAM'])
def trained(request, trained_checkpoints, people):
    """The eager model, its keypoints and the heatmaps they were decoded from."""
    config, checkpoint = trained_checkpoints[request.param]
    model = init_model(str(config), str(checkpoint), device='cpu')
    reference = copy.deepcopy(model)
    heatmaps = record_decoded_heatmaps(reference)
    return model, benchmark.predicted_keypoints(reference, people), torch.cat(heatmaps)


# A keypoint is where its heatmap peaks; where the top two pixels differ by less than float
# rounding, either may win, and the two refined positions lie up to a heatmap pixel apart (seen on
# the AVX2 machine's SAM checkpoint: two pixels 2.4e-7 apart, one keypoint of score 0.54 moved
# 0.55 px while the heatmaps differed by at most 2.0e-6). HEATMAP_TOLERANCE is 5x that difference.
HEATMAP_TOLERANCE = 1e-5


def test_fp32_with_channels_last_and_folded_batch_norms_keeps_the_keypoints(trained, people):
    model, reference, reference_heatmaps = trained
    fast = optimize_for_inference(copy.deepcopy(model), dtype='fp32')
    assert fast.inference_dtype == 'fp32'
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.backbone.modules())
    assert fast.backbone.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    heatmaps = record_decoded_heatmaps(fast)
    keypoints = benchmark.predicted_keypoints(fast, people)
    assert (torch.cat(heatmaps) - reference_heatmaps).abs().max() < HEATMAP_TOLERANCE
    top_two = torch.topk(reference_heatmaps.flatten(2), 2).values
    clear_peak = (top_two[..., 0] - top_two[..., 1] > HEATMAP_TOLERANCE).numpy()
    assert clear_peak.sum() >= 0.95 * clear_peak.size  # 203 and 204 of 204 measured
    distance = np.linalg.norm(keypoints - reference, axis=-1)
    assert distance[clear_peak].max() < 0.01, distance.max()


def test_bf16_keypoints_within_1px_mean_3px_max(trained, people):
    """The issue's tolerance for the fast path; bf16 is emulated on this CPU, but computes the
    same numbers as AMX or a GPU would, only slowly."""
    model, reference, _ = trained
    fast = optimize_for_inference(copy.deepcopy(model), dtype='bf16')
    decoded = record_decoded_heatmaps(fast)
    keypoints = benchmark.predicted_keypoints(fast, people)
    deviation = benchmark.keypoint_deviation(reference, keypoints)
    assert deviation['mean_px'] <= 1 and deviation['max_px'] <= 3, deviation
    # Decoding got float32 heatmaps: checked where predict hands them over, before our heads'
    # decode would upcast bf16 itself (a head that is not ours would not).
    assert {heatmaps.dtype for heatmaps in decoded} == {torch.float32}


def record_decoded_heatmaps(model) -> list:
    """The heatmaps ``model.head.decode`` receives from now on, one batch an item, as given."""
    batches, decode = [], model.head.decode

    def recording_decode(batch_outputs):
        batches.append(batch_outputs.detach().clone())
        return decode(batch_outputs)

    model.head.decode = recording_decode
    return batches


def test_auto_picks_bf16_only_where_it_is_native(monkeypatch, cpu_amp_mode):
    from mmpose_sam.speed import amp
    native = cpu_amp_mode == 'auto' and bool(amp.torch_reports_native_bf16())
    assert resolve_dtype('auto', torch.device('cpu')) == ('bf16' if native else 'fp32')
    monkeypatch.setattr(amp, 'cpu_has_native_bf16', lambda: False)
    assert resolve_dtype('auto', torch.device('cpu')) == 'fp32'
    monkeypatch.setattr(amp, 'cpu_has_native_bf16', lambda: True)
    assert resolve_dtype('auto', torch.device('cpu')) == 'bf16'
    with pytest.raises(ValueError, match="dtype must be one of 'auto', 'bf16', 'fp32', got 'fp16'"):
        resolve_dtype('fp16', torch.device('cpu'))


def test_mmposes_inferencer_runs_the_optimized_model(trained_checkpoints, tmp_path):
    from mmpose.apis import MMPoseInferencer
    config, checkpoint = trained_checkpoints['SAM']
    inferencer = MMPoseInferencer(pose2d=str(config), pose2d_weights=str(checkpoint),
                                  det_model='whole_image', device='cpu')
    image = str(SAMPLE_DIR / '000000000785.jpg')
    before = next(inferencer(image))['predictions'][0][0]['keypoints']
    optimize_for_inference(inferencer.inferencer.model, dtype='fp32')
    after = next(inferencer(image))['predictions'][0][0]['keypoints']
    assert np.abs(np.array(before) - np.array(after)).max() < 0.01


def test_benchmark_reports_every_mode_and_the_keypoint_deviation(trained_checkpoints, tmp_path):
    out = tmp_path / 'latency.md'
    run_python(['tools/benchmark_inference.py', '--sb-config', SB_SAMPLE_CONFIG,
                '--sam-config', SAM_SAMPLE_CONFIG,
                '--sb-checkpoint', trained_checkpoints['SimpleBaseline'][1],
                '--sam-checkpoint', trained_checkpoints['SAM'][1],
                '--batch-sizes', '1', '2', '--warmup', '0', '--repeats', '1',
                '--modes', 'fp32', 'channels-last', 'optimized-fp32', 'optimized-bf16',
                '--work-dir', tmp_path, '--out', out], timeout=900)
    table = out.read_text()
    rows = [line.split(' | ') for line in table.splitlines() if line.startswith('| SAM |')]
    assert [row[1] for row in rows] == ['fp32', 'channels-last', 'optimized-fp32',
                                        'optimized-bf16']
    assert rows[0][4] == '1.000x' and rows[0][5].startswith('0.000 / 0.000')
    report = json.loads(out.with_suffix('.json').read_text())
    for name in ('SimpleBaseline', 'SAM'):
        modes = report['results'][name]['modes']
        assert modes['fp32']['1'] > 0 and modes['optimized-fp32']['2'] > 0
        # The mean: a tie between two heatmap pixels may move one keypoint (see above).
        assert modes['optimized-fp32']['keypoints']['mean_px'] < 0.01
    assert '| SAM / SB | fp32 |' in table
