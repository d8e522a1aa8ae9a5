"""Issue #9.1: the data checks (mmpose_sam/reliability/data) and the pre-flight tool tools/check_dataset.py.

Every case breaks a copy of the bundled sample (data/coco_sample) in a temporary folder; the
messages are asserted word for word.
"""
import json
import math
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import ROOT, SAM_SAMPLE_CONFIG, SAMPLE_DIR, load_tool, run_python
from mmpose_sam.reliability.data import (ERROR, WARNING, check_coco_annotations, check_detections,
                                         check_image, load_json)

COCO_NAMES = ['nose', 'left_eye', 'right_eye', 'left_ear', 'right_ear', 'left_shoulder',
              'right_shoulder', 'left_elbow', 'right_elbow', 'left_wrist', 'right_wrist',
              'left_hip', 'right_hip', 'left_knee', 'right_knee', 'left_ankle', 'right_ankle']
ANN_FILE = 'test_coco.json'
DET_FILE = 'test_coco_det_AP_H_56.json'
# The sample's annotations, by index: 442619 on image 785 (640x425), 198196 and 230195 on image
# 40083, 460541 and 488308 on image 196141 (640x429). 14 annotations, 12 people with keypoints.
SAMPLE_PEOPLE = 12

# A config for a copy of the sample: the sample config with its data root moved, the checked
# dataset for training and validation, MMPose's CocoDataset for testing.
MOVED_SAMPLE_CONFIG = """\
_base_ = ['{base}']
data_root = '{root}/'
moved = dict(type='CheckedCocoDataset', data_root=data_root)
train_dataloader = dict(dataset=moved)
val_dataloader = dict(dataset=moved)
test_dataloader = dict(dataset=dict(data_root=data_root, bbox_file=data_root + '{det_file}'))
val_evaluator = dict(ann_file=data_root + '{ann_file}')
test_evaluator = val_evaluator
"""


def sample_annotations() -> dict:
    return json.loads((SAMPLE_DIR / ANN_FILE).read_text())


def sample_detections() -> list:
    return json.loads((SAMPLE_DIR / DET_FILE).read_text())


def check(data: dict, test_mode: bool = False):
    return check_coco_annotations(data, ANN_FILE, 17, COCO_NAMES, test_mode=test_mode)


def found(problems):
    """``(severity, kind, line)`` of each problem, for exact comparison."""
    return [(problem.severity, problem.kind, str(problem)) for problem in problems]


def copy_sample(root: Path) -> Path:
    shutil.copytree(SAMPLE_DIR, root)
    return root


def edit_json(path: Path, edit) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def write_config(root: Path) -> Path:
    config = root / 'config.py'
    config.write_text(MOVED_SAMPLE_CONFIG.format(base=SAM_SAMPLE_CONFIG, root=root,
                                                 ann_file=ANN_FILE, det_file=DET_FILE))
    return config


def run_check_tool(*args, check=False):
    """The command line, in a child process: exit status, stdout and stderr."""
    return run_python([ROOT / 'tools' / 'check_dataset.py', *args], check=check, timeout=300)


def check_tool(capsys, *args) -> SimpleNamespace:
    """The tool's ``main()`` in this process, with one worker (its pool cannot pickle a tool
    loaded from a file): the same exit status and output as ``run_check_tool``, without a
    child's imports."""
    capsys.readouterr()
    returncode = load_tool('check_dataset').main([str(arg) for arg in (*args, '--workers', 1)])
    out = capsys.readouterr()
    return SimpleNamespace(returncode=returncode, stdout=out.out, stderr=out.err)


def truncate(path: Path, size: int) -> None:
    path.write_bytes(path.read_bytes()[:size])


# Annotation files ----------------------------------------------------------------------------
def test_the_bundled_sample_is_clean():
    result = check(sample_annotations(), test_mode=True)
    assert result.problems == []
    assert (result.num_annotations, result.num_people) == (14, SAMPLE_PEOPLE)
    assert result.used_image_ids == {785, 40083, 196141, 197388}
    detections = check_detections(sample_detections(), DET_FILE, set(result.images), ANN_FILE)
    assert detections.problems == []
    assert detections.num_detections == 118
    assert detections.used_image_ids == {785, 40083, 196141, 197388}


def test_truncated_json_names_line_and_column(tmp_path):
    path = tmp_path / ANN_FILE
    path.write_bytes((SAMPLE_DIR / ANN_FILE).read_bytes()[:30000])
    data, problem = load_json(str(path), name='annotations/train.json')
    assert data is None
    assert str(problem) == ("annotations/train.json: invalid JSON at line 1193 column 13: "
                            "Expecting ',' delimiter (truncated or hand-edited?)")


@pytest.mark.parametrize('content, message', [
    (None, 'file not found'),
    (b'', 'empty file, expected JSON'),
    (b'\xff\xfe\xfa', 'not UTF-8 text, expected JSON'),
])
def test_unreadable_json(tmp_path, content, message):
    path = tmp_path / 'file.json'
    if content is not None:
        path.write_bytes(content)
    assert str(load_json(str(path))[1]) == f'{path}: {message}'


def _set_keypoint(index, keypoint, triplet):
    def edit(data):
        data['annotations'][index]['keypoints'][3 * keypoint:3 * keypoint + 3] = triplet
    return edit


def _set(index, key, value):
    def edit(data):
        data['annotations'][index][key] = value
    return edit


def _set_box_value(index, position, value):
    def edit(data):
        data['annotations'][index]['bbox'][position] = value
    return edit


def _drop_last_keypoint(data):
    del data['annotations'][0]['keypoints'][-3:]


def _add_image_like_the_first(data):
    data['images'].append(dict(data['images'][0], file_name='another.jpg'))


def _drop_image_width(data):
    del data['images'][0]['width']


@pytest.mark.parametrize('edit, expected', [
    (_drop_last_keypoint, (ERROR, 'keypoint count', 'test_coco.json: annotation 442619: 48 '
                           'keypoint values (16 keypoints), expected 17 x 3 = 51')),
    (_set_keypoint(1, 0, [math.nan, 144, 2]), (
        ERROR, 'non-finite keypoint', 'test_coco.json: annotation 198196: non-finite coordinates '
        '(NaN, infinity or null) at nose (0)')),
    (_set_keypoint(1, 1, [None, 141, 2]), (
        ERROR, 'non-finite keypoint', 'test_coco.json: annotation 198196: non-finite coordinates '
        '(NaN, infinity or null) at left_eye (1)')),
    (_set_keypoint(2, 0, [343, 164, 3]), (
        ERROR, 'visibility flag', 'test_coco.json: annotation 230195: visibility flags outside '
        '0, 1, 2: 3 at nose (0)')),
    (_set_keypoint(0, 2, [360, 75, 'x']), (
        ERROR, 'malformed keypoints', 'test_coco.json: annotation 442619: keypoint value "x" at '
        'index 8 is not a number')),
    (_set(5, 'image_id', 999), (
        ERROR, 'unknown image id', "test_coco.json: annotation 488308: image id 999 is not in "
        "'images'")),
    (_set(1, 'id', 442619), (
        ERROR, 'duplicate id', 'test_coco.json: annotation 442619: id also used by the annotation '
        'at index 0: one of the two is lost')),
    (_set(0, 'bbox', [1, 2, 3]), (
        ERROR, 'malformed box', 'test_coco.json: annotation 442619: bbox [1, 2, 3], expected '
        '[x, y, width, height]')),
    (_set_box_value(0, 3, math.inf), (
        ERROR, 'malformed box', 'test_coco.json: annotation 442619: bbox [280.79, 44.73, 218.7, '
        'inf] is not finite')),
    (_drop_image_width, (ERROR, 'malformed image entry', "test_coco.json: image 785: no 'width'")),
    (_add_image_like_the_first, (
        ERROR, 'duplicate id', 'test_coco.json: image 785: id also used by the image at index 0: '
        'their annotations get mixed up')),
    (_set_box_value(4, 2, 0), (
        WARNING, 'zero-area box', 'test_coco.json: annotation 460541: box [247.76, 74.23, 0, '
        '300.78] has no area: MMPose drops this person')),
    (_set(4, 'bbox', [700, 10, 50, 50]), (
        WARNING, 'box outside image', 'test_coco.json: annotation 460541: box [700, 10, 50, 50] '
        'lies outside the 640x429 image: MMPose drops this person')),
    (_set_keypoint(0, 0, [-5, 81, 2]), (
        WARNING, 'keypoint outside image', 'test_coco.json: annotation 442619: labelled keypoints '
        'outside the 640x425 image: nose (0) at (-5, 81)')),
    (_set(0, 'num_keypoints', 0), (
        WARNING, 'num_keypoints mismatch', 'test_coco.json: annotation 442619: num_keypoints is 0 '
        'but 17 keypoints are labelled: MMPose drops this person')),
])
def test_each_annotation_problem_in_one_line(edit, expected):
    data = sample_annotations()
    edit(data)
    assert found(check(data).problems) == [expected]


def test_every_problem_is_reported_at_once_and_bad_people_are_not_counted():
    data = sample_annotations()
    for edit in (_drop_last_keypoint, _set_keypoint(1, 0, [math.nan, 144, 2]),
                 _set_keypoint(2, 0, [343, 164, 3]), _set_box_value(4, 2, 0)):
        edit(data)
    result = check(data)
    assert [problem.where for problem in result.problems] == [
        'annotation 442619', 'annotation 198196', 'annotation 230195', 'annotation 460541']
    assert result.num_people == SAMPLE_PEOPLE - 4
    assert 785 not in result.used_image_ids  # its only person is malformed: training never reads it


def test_file_level_problems():
    assert found(check([]).problems) == [(
        ERROR, 'not a COCO file', "test_coco.json: top level is a JSON list, expected an object "
        "with 'images' and 'annotations' (is it a detection file?)")]
    data = sample_annotations()
    del data['annotations'], data['categories']
    assert found(check(data, test_mode=True).problems) == [
        (ERROR, 'missing section', "test_coco.json: no 'annotations' list"),
        (ERROR, 'missing section',
         "test_coco.json: no 'categories' list: COCO evaluation needs it")]
    data = sample_annotations()
    data['categories'][0]['keypoints'] = data['categories'][0]['keypoints'][:14]
    assert found(check(data).problems) == [(
        ERROR, 'keypoint count', 'test_coco.json: category 1: 14 keypoint names, the dataset type '
        'expects 17 (wrong dataset type or metainfo?)')]


# Detection files -----------------------------------------------------------------------------
def _detections_with(index, **changes):
    detections = sample_detections()
    detections[index].update(changes)
    return detections


@pytest.mark.parametrize('detections, expected', [
    (_detections_with(3, image_id=12345), (
        ERROR, 'unknown image id',
        f'{DET_FILE}: detection 3: image id 12345 is not in {ANN_FILE}')),
    (_detections_with(0, bbox=[1, 2]), (
        ERROR, 'malformed box', f'{DET_FILE}: detection 0: bbox [1, 2], expected [x, y, width, '
        'height]')),
    (_detections_with(0, score=None), (
        ERROR, 'malformed detection', f'{DET_FILE}: detection 0: score null is not a finite '
        'number')),
    (_detections_with(1, bbox=[10, 10, 0, 5]), (
        WARNING, 'zero-area box', f'{DET_FILE}: detection 1: box [10, 10, 0, 5] has no area: its '
        'crop is empty and its predicted keypoints meaningless')),
    ({'images': []}, (
        ERROR, 'not a detection file', f'{DET_FILE}: top level is a JSON object, expected a list '
        'of detections (COCO results format)')),
])
def test_detection_file_problems(detections, expected):
    image_ids = {785, 40083, 196141, 197388}
    assert found(check_detections(detections, DET_FILE, image_ids, ANN_FILE).problems) == [expected]


# Images --------------------------------------------------------------------------------------
@pytest.mark.parametrize('breakage, kind, message', [
    ('missing', 'missing image', 'image file not found'),
    ('empty', 'empty image', 'empty image file (0 bytes)'),
    ('corrupt', 'corrupt image', 'not a decodable image'),
    ('truncated', 'truncated image', 'truncated image file (the data ends before the image does)'),
    ('git-lfs', 'corrupt image', 'a Git LFS pointer, not the image itself (run git lfs pull)'),
    ('other size', 'image size mismatch', 'decoded size 640x425 is not the 500x333 that the '
     'annotation file gives: the keypoints would not line up'),
])
def test_image_problems(tmp_path, breakage, kind, message):
    path = tmp_path / 'image.jpg'
    size = (640, 425)
    if breakage != 'missing':
        shutil.copy(SAMPLE_DIR / '000000000785.jpg', path)
    if breakage == 'empty':
        path.write_bytes(b'')
    elif breakage == 'corrupt':
        path.write_bytes(bytes(range(256)) * 20)
    elif breakage == 'truncated':
        truncate(path, path.stat().st_size // 2)
    elif breakage == 'git-lfs':
        path.write_text('version https://git-lfs.github.com/spec/v1\noid sha256:0\nsize 133674\n')
    elif breakage == 'other size':
        size = (500, 333)
    problem = check_image(str(path), 'image 785', size)
    assert (problem.kind, str(problem)) == (kind, f'{path}: image 785: {message}')


def test_the_bundled_images_are_readable():
    for image in sample_annotations()['images']:
        size = (image['width'], image['height'])
        assert check_image(str(SAMPLE_DIR / image['file_name']), size=size) is None


# tools/check_dataset.py ----------------------------------------------------------------------
def test_tool_passes_the_bundled_sample():
    proc = run_check_tool(SAM_SAMPLE_CONFIG, '--workers', '2', check=True)
    lines = proc.stdout.splitlines()
    dataset = '(CheckedCocoDataset|CocoDataset)'  # whichever the sample config uses
    assert re.fullmatch(rf'train: {dataset} \(training\): data/coco_sample/test_coco.json, '
                        r'images in data/coco_sample/', lines[0]), lines[0]
    assert re.fullmatch(rf'val, test: {dataset} \(test mode\): data/coco_sample/test_coco.json, '
                        r'images in data/coco_sample/', lines[1]), lines[1]
    assert lines[2].startswith('checked 14 annotations (12 people MMPose keeps) and 4 images in ')
    assert lines[3:] == ['no problems']


def test_tool_lists_every_problem_at_once(tmp_path, capsys):
    root = copy_sample(tmp_path / 'data')
    edit_json(root / ANN_FILE, lambda data: [edit(data) for edit in (
        _drop_last_keypoint, _set_keypoint(1, 0, [math.nan, 144, 2]),
        _set_keypoint(2, 0, [343, 164, 3]), _set_box_value(4, 2, 0))])
    edit_json(root / DET_FILE, lambda detections: detections[3].update(image_id=12345))
    (root / '000000040083.jpg').write_bytes(b'')
    (root / '000000196141.jpg').write_bytes(bytes(range(256)) * 20)
    truncate(root / '000000197388.jpg', 50000)
    proc = check_tool(capsys, write_config(root))
    assert proc.returncode == 1, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[:3] == [
        f'train: CheckedCocoDataset (training): {root}/{ANN_FILE}, images in {root}/',
        f'val: CheckedCocoDataset (test mode): {root}/{ANN_FILE}, images in {root}/',
        f'test: CheckedCocoDataset (test mode): {root}/{ANN_FILE}, detections {root}/{DET_FILE}, '
        f'images in {root}/']
    assert lines[3:11] == [
        f'error: {root}/{ANN_FILE}: annotation 442619: 48 keypoint values (16 keypoints), '
        'expected 17 x 3 = 51',
        f'error: {root}/{ANN_FILE}: annotation 198196: non-finite coordinates (NaN, infinity or '
        'null) at nose (0)',
        f'error: {root}/{ANN_FILE}: annotation 230195: visibility flags outside 0, 1, 2: 3 at '
        'nose (0)',
        f'warning: {root}/{ANN_FILE}: annotation 460541: box [247.76, 74.23, 0, 300.78] has no '
        'area: MMPose drops this person',
        f'error: {root}/{DET_FILE}: detection 3: image id 12345 is not in {root}/{ANN_FILE}',
        f'error: {root}/000000040083.jpg: image 40083: empty image file (0 bytes)',
        f'error: {root}/000000196141.jpg: image 196141: not a decodable image',
        f'error: {root}/000000197388.jpg: image 197388: truncated image file (the data ends '
        'before the image does)']
    # Image 785's one person is malformed, but the test split reads it for its detections.
    assert lines[11].startswith('checked 14 annotations (8 people MMPose keeps), 118 detections '
                                'and 4 images in ')
    assert lines[12:] == [
        '7 errors (keypoint count: 1, non-finite keypoint: 1, visibility flag: 1, unknown image '
        'id: 1, empty image: 1, corrupt image: 1, truncated image: 1)',
        '1 warning (zero-area box: 1)']


def test_tool_warnings_alone_pass_unless_strict(tmp_path, capsys):
    root = copy_sample(tmp_path / 'data')
    edit_json(root / ANN_FILE, _set_box_value(4, 2, 0))
    proc = check_tool(capsys, write_config(root), '--split', 'train')
    assert proc.returncode == 0
    assert proc.stdout.splitlines()[-2:] == [
        '1 warning (zero-area box: 1)',
        'warnings alone do not fail the check (--strict makes them fail it)']
    proc = check_tool(capsys, write_config(root), '--split', 'train', '--strict')
    assert proc.returncode == 1
    assert proc.stdout.splitlines()[-1] == '1 warning (zero-area box: 1)'


def test_tool_checks_the_split_asked_for(tmp_path, capsys):
    root = copy_sample(tmp_path / 'data')
    (root / '000000000785.jpg').unlink()
    edit_json(root / DET_FILE, lambda detections: detections[3].update(image_id=12345))
    proc = check_tool(capsys, write_config(root), '--split', 'test')
    assert proc.returncode == 1
    errors = [line for line in proc.stdout.splitlines() if line.startswith('error: ')]
    assert errors == [
        f'error: {root}/{DET_FILE}: detection 3: image id 12345 is not in {root}/{ANN_FILE}',
        f'error: {root}/000000000785.jpg: image 785: image file not found']
    proc = check_tool(capsys, write_config(root), '--split', 'train')
    assert [line for line in proc.stdout.splitlines() if line.startswith('error: ')] == [
        f'error: {root}/000000000785.jpg: image 785: image file not found']


def test_tool_bad_config_is_one_line(tmp_path):
    proc = run_check_tool(tmp_path / 'nope.py')
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last == f'error: {tmp_path}/nope.py: config file not found'
    assert 'Traceback' not in proc.stderr
