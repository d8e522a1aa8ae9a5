"""Issue 4.3: any COCO-format keypoint data set is a matter of data_root / ann_file / data_prefix
(and optionally bbox_file), done the two ways README.md "Your own data" shows: a short config that
inherits a sample config, and --cfg-options on the command line.

The data is the bundled sample re-laid out in a temporary folder, with one image left out and
nested image paths, so that reading the bundled copy by mistake changes what is predicted.
"""
import json
import pickle
import shutil

import pytest

from conftest import NO_VALIDATION, ROOT, SAM_SAMPLE_CONFIG, SAMPLE_DIR, run_python

DROPPED_IMAGE_ID = 785  # left out of the re-laid-out copy

OWN_CONFIG = """\
_base_ = ['{base}']

data_root = '{root}/'
train_dataloader = dict(dataset=dict(
    data_root=data_root, ann_file='labels/keypoints.json', data_prefix=dict(img='media/')))
val_dataloader = dict(dataset=dict(
    data_root=data_root, ann_file='labels/keypoints.json', data_prefix=dict(img='media/')))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'labels/keypoints.json')
test_evaluator = val_evaluator
"""


@pytest.fixture(scope='module')
def own_data(module_mktemp):
    """The sample as media/frames/cam0/*.jpg, labels/keypoints.json, detections/people.json."""
    root = module_mktemp('own_data')
    coco = json.loads((SAMPLE_DIR / 'test_coco.json').read_text())
    coco['images'] = [img for img in coco['images'] if img['id'] != DROPPED_IMAGE_ID]
    coco['annotations'] = [a for a in coco['annotations'] if a['image_id'] != DROPPED_IMAGE_ID]
    (root / 'media' / 'frames' / 'cam0').mkdir(parents=True)
    for img in coco['images']:
        shutil.copy(SAMPLE_DIR / img['file_name'], root / 'media' / 'frames' / 'cam0')
        img['file_name'] = 'frames/cam0/' + img['file_name']
    (root / 'labels').mkdir()
    (root / 'labels' / 'keypoints.json').write_text(json.dumps(coco))
    boxes = [box for box in json.loads((SAMPLE_DIR / 'test_coco_det_AP_H_56.json').read_text())
             if box['image_id'] != DROPPED_IMAGE_ID]
    (root / 'detections').mkdir()
    (root / 'detections' / 'people.json').write_text(json.dumps(boxes))
    people = sum(1 for a in coco['annotations'] if a['num_keypoints'] > 0)
    return root, people, len(boxes)


def dumped_predictions(path):
    with open(path, 'rb') as f:
        return pickle.load(f)


def assert_predicted_from(predictions, root, count):
    assert len(predictions) == count
    assert all(p['img_path'].startswith(f'{root}/media/frames/cam0/') for p in predictions)
    assert not any(p['img_id'] == DROPPED_IMAGE_ID for p in predictions)


@pytest.fixture(scope='module')
def trained(own_data, module_mktemp):
    """One epoch through the inherited config, run from another directory (nothing may depend on
    the repo being the working directory)."""
    root = own_data[0]
    tmp = module_mktemp('own_config')
    config = tmp / 'my_config.py'
    config.write_text(OWN_CONFIG.format(base=SAM_SAMPLE_CONFIG, root=root))
    work = tmp / 'work'
    run_python([ROOT / 'tools' / 'train.py', config, '--work-dir', work, '--cfg-options',
                'train_cfg.max_epochs=1', NO_VALIDATION], cwd=tmp)
    return config, work / 'epoch_1.pth'


def test_inherited_config_trains_and_tests_with_gt_and_detected_boxes(own_data, trained, tmp_path):
    root, people, boxes = own_data
    config, checkpoint = trained
    assert checkpoint.is_file()
    run_python([ROOT / 'tools' / 'test.py', config, checkpoint, '--work-dir', tmp_path / 'gt',
                '--dump', tmp_path / 'gt.pkl'], cwd=tmp_path)
    assert_predicted_from(dumped_predictions(tmp_path / 'gt.pkl'), root, people)

    run_python([ROOT / 'tools' / 'test.py', config, checkpoint, '--work-dir', tmp_path / 'det',
                '--dump', tmp_path / 'det.pkl', '--cfg-options',
                f'test_dataloader.dataset.bbox_file={root}/detections/people.json'], cwd=tmp_path)
    assert_predicted_from(dumped_predictions(tmp_path / 'det.pkl'), root, boxes)


def test_cfg_options_point_a_sample_config_elsewhere(own_data, trained, tmp_path):
    root, people, _ = own_data
    # CocoMetric's own result file instead of --dump: MMPose's test.py turns test_evaluator into a
    # list for --dump before it applies --cfg-options, so `test_evaluator.ann_file` would fail.
    options = [f'test_dataloader.dataset.data_root={root}/',
               'test_dataloader.dataset.ann_file=labels/keypoints.json',
               'test_dataloader.dataset.data_prefix.img=media/',
               f'test_evaluator.ann_file={root}/labels/keypoints.json',
               f'test_evaluator.outfile_prefix={tmp_path}/results']
    proc = run_python([ROOT / 'tools' / 'test.py', SAM_SAMPLE_CONFIG, trained[1], '--work-dir',
                       tmp_path / 'work', '--cfg-options', *options])
    assert 'coco/AP:' in proc.stdout + proc.stderr
    results = json.loads((tmp_path / 'results.keypoints.json').read_text())
    assert len(results) == people  # 11 from the re-laid-out annotations, not the bundled 12
    assert DROPPED_IMAGE_ID not in {r['image_id'] for r in results}
