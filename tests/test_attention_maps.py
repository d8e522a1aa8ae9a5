"""Spatial attention maps: hook capture (mmpose_sam.apis.attention) and
tools/visualize_attention.py, with an untrained SAM-R50 (the maps' values are arbitrary, their
shapes, range, source and pictures are not)."""
import json

import cv2
import pytest
import torch

from conftest import load_tool, SAM_SAMPLE_CONFIG, SAMPLE_DIR, SB_SAMPLE_CONFIG
from mmpose_sam.apis import capture_spatial_attention, spatial_attention_gates
from mmpose_sam.models import SAMResNet

IMAGE = SAMPLE_DIR / '000000000785.jpg'
MAP_SHAPES = [(64, 48), (32, 24), (16, 12), (8, 6)]  # strides 4, 8, 16, 32 of 256x192



visualize_attention = load_tool('visualize_attention')


@pytest.fixture(scope='module')
def sam_model():
    from mmpose.apis import init_model
    return init_model(str(SAM_SAMPLE_CONFIG), None, device='cpu')


@pytest.fixture(scope='module')
def checkpoint(sam_model, module_mktemp):
    """The untrained model saved as training saves it (weights and ``dataset_meta``)."""
    from mmengine.runner import save_checkpoint
    path = module_mktemp('checkpoint') / 'sam_r50_untrained.pth'
    save_checkpoint({'state_dict': sam_model.state_dict(),
                     'meta': {'dataset_meta': sam_model.dataset_meta}}, str(path))
    return path


def test_capture_every_stage_of_a_batch(sam_model):
    inputs = torch.randn(2, 3, 256, 192)
    maps = capture_spatial_attention(sam_model, inputs)
    assert [m.stage for m in maps] == [1, 2, 3, 4]
    assert [tuple(m.map.shape) for m in maps] == [(2, *shape) for shape in MAP_SHAPES]
    for _, attention in maps:
        assert ((attention > 0) & (attention < 1)).all()
    # No hook is left on the model.
    assert all(not gate._forward_hooks for _, gate in spatial_attention_gates(sam_model))

    # One image (3, H, W) gives (h, w) maps, the same as its row of the batch.
    single = capture_spatial_attention(sam_model, inputs[1])
    assert [tuple(m.map.shape) for m in single] == MAP_SHAPES
    torch.testing.assert_close(single[0].map, maps[0].map[1], atol=1e-5, rtol=1e-4)


def test_captured_map_is_the_spatial_gate_of_the_stage(sam_model):
    """Stage 1's map recomputed by hand from the backbone's modules."""
    backbone, inputs = sam_model.backbone, torch.randn(1, 3, 256, 192)
    with torch.no_grad():
        x = backbone.maxpool(backbone.relu(backbone.norm1(backbone.conv1(inputs))))
        for block in list(backbone.layer1)[:-1]:  # the bottlenecks before the attention
            x = block(x)
        attention = backbone.layer1[-1]
        spatial = attention.spatial
        expected = spatial.gate(spatial.convs(spatial.pool(attention.channel(x))))[0, 0]
    torch.testing.assert_close(capture_spatial_attention(sam_model, inputs[0])[0].map, expected)


def test_subset_of_attention_stages():
    backbone = SAMResNet(depth=18, attention_stages=(1, 3))
    backbone.eval()  # MMPose's ResNet.train() returns None, so no chaining
    maps = capture_spatial_attention(backbone, torch.randn(1, 3, 256, 192))
    assert [(m.stage, tuple(m.map.shape)) for m in maps] == [(2, (1, 32, 24)), (4, (1, 8, 6))]


def test_simplebaseline_has_no_attention():
    from mmpose.apis import init_model
    model = init_model(str(SB_SAMPLE_CONFIG), None, device='cpu')
    with pytest.raises(ValueError, match=r'^ResNet has no spatial attention \(it has no attention '
                       r"modules\): attention maps need a backbone with attention=dict\(type="
                       r"'StageAttention'\) or 'CBAM'"):
        capture_spatial_attention(model, torch.randn(1, 3, 256, 192))


def read_png(path):
    assert path.is_file(), f'{path} not written'
    picture = cv2.imread(str(path))
    assert picture is not None, f'{path} does not decode'
    return picture


def test_tool_one_box(checkpoint, tmp_path, capsys):
    visualize_attention.main([str(SAM_SAMPLE_CONFIG), str(checkpoint), '--input', str(IMAGE),
                              '--bbox', '277', '45', '502', '379', '--out-dir', str(tmp_path),
                              '--device', 'cpu'])
    overlays = [read_png(tmp_path / f'000000000785_stage{stage}.png') for stage in (1, 2, 3, 4)]
    # Overlays are at the model input size (H x W = 128 x 96 of the sample config), one per stage, all different.
    assert all(overlay.shape == (128, 96, 3) for overlay in overlays)
    assert all((a != b).any() for a, b in zip(overlays, overlays[1:]))
    grid = read_png(tmp_path / '000000000785_attention.png')
    assert grid.shape[1] > 2.5 * grid.shape[0]  # the crop and four overlays side by side
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ['000000000785_attention.png'] + [f'000000000785_stage{s}.png' for s in (1, 2, 3, 4)])
    assert capsys.readouterr().out.strip().splitlines()[-1] == (
        f'{IMAGE}: 1 crop(s) of 128x96, stage 1 32x24, stage 2 16x12, stage 3 8x6, '
        f'stage 4 4x3 -> {tmp_path / "000000000785_attention.png"}')


def test_tool_people_of_a_bbox_file(checkpoint, tmp_path):
    det_file = SAMPLE_DIR / 'test_coco_det_AP_H_56.json'
    people = [d for d in json.loads(det_file.read_text())
              if d['image_id'] == 785 and d['score'] >= 0.3]
    visualize_attention.main([str(SAM_SAMPLE_CONFIG), str(checkpoint), '--input', str(IMAGE),
                              '--bbox-file', str(det_file), '--out-dir', str(tmp_path),
                              '--device', 'cpu', '--normalize'])
    for index in range(len(people)):
        prefix = f'000000000785_person{index}'
        for stage in (1, 2, 3, 4):
            assert read_png(tmp_path / f'{prefix}_stage{stage}.png').shape == (128, 96, 3)
        read_png(tmp_path / f'{prefix}_attention.png')
    assert len(list(tmp_path.iterdir())) == 5 * len(people) == 10


def test_tool_most_confident_person_of_each_image(checkpoint, tmp_path):
    # Attention after stages 1 and 3 only: the other two stages' tensors load on purpose not.
    visualize_attention.main([str(SAM_SAMPLE_CONFIG), f'partial:{checkpoint}', '--input',
                              str(IMAGE), '--bbox-file',
                              str(SAMPLE_DIR / 'test_coco_det_AP_H_56.json'), '--max-people', '1', '--out-dir', str(tmp_path), '--device', 'cpu',
                              '--cfg-options', 'model.backbone.attention_stages=[0,2]'])
    # One person, so no _person{k}; only the stages with attention (1 and 3 here) get pictures.
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        '000000000785_attention.png', '000000000785_stage1.png', '000000000785_stage3.png']


def test_tool_refuses_a_model_without_attention(checkpoint):
    # The SAM checkpoint loaded into a plain ResNet (partially, on purpose): no attention.
    with pytest.raises(SystemExit) as exit_info:
        visualize_attention.main([str(SAM_SAMPLE_CONFIG), f'partial:{checkpoint}', '--input',
                                  str(IMAGE),
                                  '--device', 'cpu', '--cfg-options', 'model.backbone.type=ResNet'])
    assert str(exit_info.value).startswith(
        f'error: {SAM_SAMPLE_CONFIG}: ResNet has no spatial attention')
