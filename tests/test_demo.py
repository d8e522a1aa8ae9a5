"""tools/demo.py and mmpose_sam.apis.inference on the bundled COCO sample.

The checkpoint is an untrained SAM-R50 (random weights, saved by a fixture): its keypoints are
meaningless, but where they land, how many people there are and every file and message are not.
Flip test is off (``--cfg-options``) to halve the CPU time.
"""
import importlib.util
import json
import shutil
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch

from conftest import ROOT, SAM_SAMPLE_CONFIG, SAMPLE_DIR, run_python
from mmpose_sam.apis import (BBoxFile, InvalidInputError, detect_people, estimate_poses,
                             load_image, people_to_json, select_boxes)

IMAGE = SAMPLE_DIR / '000000000785.jpg'
DET_FILE = SAMPLE_DIR / 'test_coco_det_AP_H_56.json'
FAST = ['--device', 'cpu', '--cfg-options', 'model.test_cfg.flip_test=False']


def load_tool(name: str):
    """Import ``tools/<name>.py`` (tools/ is not a package) to call its ``main(argv)``."""
    spec = importlib.util.spec_from_file_location(f'tools_{name}', ROOT / 'tools' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


demo = load_tool('demo')


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    """An untrained SAM-R50 checkpoint with the COCO ``dataset_meta``, as training saves it."""
    from mmengine.runner import save_checkpoint
    from mmpose.apis import init_model
    model = init_model(str(SAM_SAMPLE_CONFIG), None, device='cpu')
    path = tmp_path_factory.mktemp('checkpoint') / 'sam_r50_untrained.pth'
    save_checkpoint({'state_dict': model.state_dict(),
                     'meta': {'dataset_meta': model.dataset_meta}}, str(path))
    return path


def file_boxes(image_id: int, thr: float = 0.3) -> np.ndarray:
    """Person boxes of the bundled detections, read independently of the code under test."""
    boxes = [entry['bbox'] + [entry['score']] for entry in json.loads(DET_FILE.read_text())
             if entry['image_id'] == image_id and entry['score'] >= thr]
    return np.array([[x, y, x + w, y + h, s] for x, y, w, h, s in boxes])


def truncated_copy(source, target):
    data = source.read_bytes()
    target.write_bytes(data[:len(data) // 2])
    return target


def test_bbox_file_people_keypoints_and_pictures(checkpoint, tmp_path, capsys):
    demo.main([str(SAM_SAMPLE_CONFIG), str(checkpoint), '--input', str(IMAGE), '--bbox-file',
               str(DET_FILE), '--bbox-thr', '0.3', '--out-dir', str(tmp_path), *FAST])
    expected = file_boxes(785)
    assert len(expected) == 2  # the sample's two detections of 785 with score >= 0.3

    people = json.loads((tmp_path / '000000000785.json').read_text())
    assert len(people) == len(expected)
    for person, box in zip(people, expected):
        assert person['bbox'] == pytest.approx(box[:4].tolist(), abs=1e-2)
        assert person['bbox_score'] == pytest.approx(box[4], abs=1e-4)
        keypoints = np.array(person['keypoints'])
        assert keypoints.shape == (17, 2) and len(person['keypoint_scores']) == 17
        # Keypoints are in image pixels, inside the box's crop (1.25x padded, widened to 3:4),
        # give or take one heatmap pixel (24x32 in the sample config; MMPose puts a keypoint with
        # no positive heatmap value, common with random weights, at heatmap pixel -1).
        center, size = (box[:2] + box[2:4]) / 2, box[2:4] - box[:2]
        crop = 1.25 * np.maximum(size, size[::-1] * [0.75, 1 / 0.75])
        assert (np.abs(keypoints - center) <= crop / 2 + crop / [24, 32] + 1).all()

    picture = cv2.imread(str(tmp_path / '000000000785.png'))
    original = cv2.imread(str(IMAGE))
    assert picture.shape == original.shape == (425, 640, 3)
    assert (picture != original).any()  # boxes and skeletons were drawn
    assert capsys.readouterr().out.strip().splitlines()[-1] == (
        f'{IMAGE}: 2 people (bbox file) -> {tmp_path / "000000000785.png"}, '
        f'{tmp_path / "000000000785.json"}')


def test_folder_reports_and_skips_a_corrupt_image(checkpoint, tmp_path, capsys):
    folder, out = tmp_path / 'images', tmp_path / 'out'
    folder.mkdir()
    shutil.copy(IMAGE, folder / 'a_good.jpg')
    bad = truncated_copy(SAMPLE_DIR / '000000040083.jpg', folder / 'b_truncated.jpg')
    (folder / 'notes.txt').write_text('not an image, not listed')
    with pytest.raises(SystemExit) as exit_info:
        demo.main([str(SAM_SAMPLE_CONFIG), str(checkpoint), '--input', str(folder), '--out-dir',
                   str(out), *FAST])
    assert str(exit_info.value) == 'error: 1 of 2 images could not be processed: b_truncated.jpg'
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith('error')]
    assert len(err) == 1 and err[0].startswith(f'error: {bad}: corrupt image file (image file '
                                               'is truncated') and err[0].endswith('(skipped)')
    # The good image went through with the whole image as its one box.
    assert sorted(p.name for p in out.iterdir()) == ['a_good.json', 'a_good.png']
    people = json.loads((out / 'a_good.json').read_text())
    assert len(people) == 1 and people[0]['bbox'] == [0, 0, 640, 425]
    assert cv2.imread(str(out / 'a_good.png')).shape == (425, 640, 3)


def test_single_corrupt_image_is_one_error_line(checkpoint, tmp_path):
    bad = truncated_copy(IMAGE, tmp_path / 'broken.jpg')
    with pytest.raises(SystemExit) as exit_info:
        demo.main([str(SAM_SAMPLE_CONFIG), str(checkpoint), '--input', str(bad), '--out-dir',
                   str(tmp_path / 'out'), *FAST])
    message = str(exit_info.value)
    assert message.startswith(f'error: {bad}: corrupt image file (image file is truncated')
    assert '\n' not in message


@pytest.mark.parametrize('content,problem', [
    ('[{"image_id": 785, "bbox": [1, 2', 'malformed bbox file: not JSON (Expecting'),
    ('{"image_id": 785}', 'malformed bbox file: expected a list of {"image_id": int, "bbox": '
     '[x, y, w, h], "score": float} (COCO results), got a JSON dict'),
    ('[{"image_id": 785, "bbox": [1, 2, 3]}]', 'malformed bbox file: entry 0 is not '
     '{"image_id": int, "bbox": [x, y, w, h], "score": float}: {"image_id": 785, "bbox": '
     '[1, 2, 3]}'),
])
def test_malformed_bbox_file_fails_before_the_model(tmp_path, content, problem):
    bbox_file = tmp_path / 'boxes.json'
    bbox_file.write_text(content)
    with pytest.raises(SystemExit) as exit_info:  # no checkpoint needed: it stops before
        demo.main([str(SAM_SAMPLE_CONFIG), 'unused.pth', '--input', str(IMAGE), '--bbox-file',
                   str(bbox_file), *FAST])
    assert str(exit_info.value).startswith(f'error: {bbox_file}: {problem}')


def test_missing_input_and_checkpoint(tmp_path):
    missing = tmp_path / 'missing.jpg'
    with pytest.raises(SystemExit, match='^error: .*: no such file or directory$') as exit_info:
        demo.main([str(SAM_SAMPLE_CONFIG), 'unused.pth', '--input', str(missing)])
    assert str(exit_info.value) == f'error: {missing}: no such file or directory'
    with pytest.raises(SystemExit) as exit_info:
        demo.main([str(SAM_SAMPLE_CONFIG), str(tmp_path / 'no.pth'), '--input', str(IMAGE)])
    assert str(exit_info.value) == f'error: {tmp_path / "no.pth"}: no such file'


def test_cli_prints_one_line_and_exits_1_on_bad_input(tmp_path):
    missing = tmp_path / 'missing.jpg'
    proc = run_python([ROOT / 'tools' / 'demo.py', SAM_SAMPLE_CONFIG, 'unused.pth', '--input',
                       missing], check=False, timeout=300)
    assert proc.returncode == 1
    assert 'Traceback' not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == f'error: {missing}: no such file or directory'


def test_load_image_messages(tmp_path):
    assert load_image(IMAGE).shape == (425, 640, 3)
    text = tmp_path / 'text.jpg'
    text.write_text('hello')
    with pytest.raises(InvalidInputError) as info:
        load_image(text)
    assert str(info.value) == f'{text}: not an image file (unknown format)'
    with pytest.raises(InvalidInputError, match='^.*missing.png: cannot read file'):
        load_image(tmp_path / 'missing.png')


def test_bbox_file_matches_images_by_number_or_ann_file(tmp_path):
    renamed = tmp_path / 'street.jpg'
    shutil.copy(IMAGE, renamed)
    by_number = BBoxFile(DET_FILE)
    np.testing.assert_allclose(select_boxes(by_number.boxes_for(IMAGE), 0.3), file_boxes(785),
                               rtol=1e-5)
    with pytest.raises(InvalidInputError) as info:
        by_number.boxes_for(renamed)
    assert str(info.value) == (
        f'{renamed}: cannot tell its image_id in {DET_FILE}: the file name is not a number (give '
        'the COCO annotation file, --ann-file, to match by file_name)')

    ann_file = tmp_path / 'ann.json'
    ann_file.write_text(json.dumps({'images': [{'id': 785, 'file_name': 'val/street.jpg'}]}))
    by_name = BBoxFile(DET_FILE, ann_file)
    np.testing.assert_allclose(select_boxes(by_name.boxes_for(renamed), 0.3), file_boxes(785),
                               rtol=1e-5)
    with pytest.raises(InvalidInputError, match=f'^{IMAGE}: not among the images of'):
        by_name.boxes_for(IMAGE)
    # An image without detections has no people (it is not an error).
    assert BBoxFile(DET_FILE).boxes_for(tmp_path / '123.jpg').shape == (0, 5)


def test_no_boxes_means_no_people():
    sample = estimate_poses(model=None, image=np.zeros((8, 8, 3), np.uint8),
                            boxes=np.zeros((0, 5), np.float32))
    assert people_to_json(sample) == []


def test_detect_people_keeps_confident_persons_after_nms(monkeypatch):
    """Detector output is filtered by class, score and NMS (a fake detector, no weights)."""
    mmdet_apis = pytest.importorskip('mmdet.apis')
    from mmengine.structures import InstanceData
    pred = InstanceData(
        bboxes=torch.tensor([[0, 0, 10, 20], [1, 0, 11, 20], [50, 50, 60, 70], [0, 0, 9, 9.],
                             [30, 30, 40, 40]]),
        scores=torch.tensor([0.9, 0.8, 0.2, 0.95, 0.6]),
        labels=torch.tensor([0, 0, 0, 2, 0]))
    monkeypatch.setattr(mmdet_apis, 'inference_detector',
                        lambda detector, image: SimpleNamespace(pred_instances=pred))
    boxes = detect_people(None, np.zeros((80, 80, 3), np.uint8), bbox_thr=0.3, nms_thr=0.3)
    # box 1 overlaps box 0 (NMS), box 2 is below the threshold, box 3 is not a person
    np.testing.assert_allclose(boxes, [[0, 0, 10, 20, 0.9], [30, 30, 40, 40, 0.6]], rtol=1e-6)
