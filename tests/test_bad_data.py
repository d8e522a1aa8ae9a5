"""Issue #9.2: CheckedCocoDataset during training and testing.

A malformed annotation file stops at dataset build with one line naming file and annotation
(never inside ``default_collate``); a training image that cannot be read is skipped with a warning
and counted, across DataLoader workers and epochs, until more than ``max_skipped_ratio`` of the
samples are skipped; in test mode an unreadable image stops. First on the dataset itself, then
through the runners ``tools/train.py`` and ``tools/test.py`` build, and through real
``tools/train.py`` processes, whose stderr must end in the one line with no traceback.

Every case breaks a copy of the bundled sample (data/coco_sample) in a temporary folder.
"""
import json
import math
import re
import shutil
from pathlib import Path

import pytest
import torch
from mmpose.datasets.transforms import LoadImage

from conftest import ROOT, SAMPLE_DIR, SB_SAMPLE_CONFIG, run_python, runner_log, tool_runner
from mmpose_sam.reliability.data import CheckedCocoDataset, DatasetError
from mmpose_sam.reliability.data import checked_coco_dataset

ANN_FILE = 'test_coco.json'
DET_FILE = 'test_coco_det_AP_H_56.json'
IMAGE_TOOL_HINT = 'run tools/check_dataset.py on the config to list every unreadable image'
# The samples in the dataset's order: annotation 442619 (image 785) first, then 198196 and 230195
# (image 40083); 12 in all.
SAMPLES = 12


@pytest.fixture
def sample(tmp_path) -> Path:
    """A copy of the bundled sample to break."""
    return Path(shutil.copytree(SAMPLE_DIR, tmp_path / 'data'))


@pytest.fixture
def logged(monkeypatch):
    """The dataset's log messages (this process only)."""
    messages = []
    monkeypatch.setattr(checked_coco_dataset, 'print_log',
                        lambda message, logger=None, level=None: messages.append(message))
    return messages


def edit_json(path: Path, edit) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def set_keypoint(index, keypoint, triplet):
    def edit(data):
        data['annotations'][index]['keypoints'][3 * keypoint:3 * keypoint + 3] = triplet
    return edit


def drop_last_keypoint(data):
    del data['annotations'][0]['keypoints'][-3:]


def zero_box_width(data):
    data['annotations'][4]['bbox'][2] = 0


def build(root: Path, **kwargs) -> CheckedCocoDataset:
    kwargs.setdefault('pipeline', [LoadImage()])
    kwargs.setdefault('data_prefix', dict(img=''))
    return CheckedCocoDataset(data_root=f'{root}/', ann_file=ANN_FILE, **kwargs)


# At build -------------------------------------------------------------------------------------
def test_clean_sample_builds_silently(sample, logged):
    dataset = build(sample)
    assert len(dataset) == SAMPLES and dataset.num_skipped == 0
    assert logged == []


def no_labelled_keypoints(data):
    for annotation in data['annotations']:
        annotation.update(num_keypoints=0, keypoints=[0] * 51)


@pytest.mark.parametrize('edit, test_mode, problem', [
    (no_labelled_keypoints, False, 'nothing to train on: it holds 4 images, 14 annotations, 0 '
     'of them a person with a labelled keypoint; training needs people with num_keypoints > 0 '
     'that are not iscrowd (MMPose drops the rest)'),
    (lambda data: data.update(annotations=[]), False, 'nothing to train on: it holds 4 images, '
     '0 annotations, 0 of them a person with a labelled keypoint; training needs people with '
     'num_keypoints > 0 that are not iscrowd (MMPose drops the rest)'),
    (lambda data: data.update(annotations=[]), True,
     'nothing to evaluate: it holds 4 images, 0 annotations, 0 of them a person with a labelled '
     'keypoint'),
])
def test_data_with_nothing_to_use_is_one_line(sample, edit, test_mode, problem):
    """Without this, MMEngine fails in numpy: `need at least one array to concatenate`."""
    edit_json(sample / ANN_FILE, edit)
    with pytest.raises(DatasetError) as error:
        build(sample, test_mode=test_mode)
    assert str(error.value) == f'{sample}/{ANN_FILE}: {problem}'


def test_detections_with_nothing_to_evaluate_is_one_line(sample):
    edit_json(sample / DET_FILE, lambda dets: [d.update(score=0.01) for d in dets])
    with pytest.raises(DatasetError) as error:
        build(sample, test_mode=True, bbox_file=f'{sample}/{DET_FILE}',
              filter_cfg=dict(bbox_score_thr=0.3))
    assert str(error.value) == (
        f'{sample}/{DET_FILE}: nothing to evaluate: no detection scoring at least '
        f'bbox_score_thr=0.3 in an image of {sample}/{ANN_FILE} (4 images, 14 annotations, 12 of '
        'them a person with a labelled keypoint)')


def test_truncated_json_names_file_line_and_column(sample):
    (sample / ANN_FILE).write_bytes((SAMPLE_DIR / ANN_FILE).read_bytes()[:30000])
    with pytest.raises(DatasetError) as error:
        build(sample)
    assert str(error.value) == (f"{sample}/{ANN_FILE}: invalid JSON at line 1193 column 13: "
                                "Expecting ',' delimiter (truncated or hand-edited?)")


@pytest.mark.parametrize('edit, message', [
    (drop_last_keypoint,
     'annotation 442619: 48 keypoint values (16 keypoints), expected 17 x 3 = 51'),
    (set_keypoint(1, 0, [math.nan, 144, 2]),
     'annotation 198196: non-finite coordinates (NaN, infinity or null) at nose (0)'),
    (set_keypoint(2, 0, [343, 164, 3]),
     'annotation 230195: visibility flags outside 0, 1, 2: 3 at nose (0)'),
])
def test_malformed_annotation_stops_at_build(sample, edit, message):
    edit_json(sample / ANN_FILE, edit)
    with pytest.raises(DatasetError) as error:
        build(sample)
    assert str(error.value) == f'{sample}/{ANN_FILE}: {message}'


def test_first_error_and_how_many_more(sample):
    edit_json(sample / ANN_FILE, lambda data: [edit(data) for edit in (
        drop_last_keypoint, set_keypoint(1, 0, [math.nan, 144, 2]),
        set_keypoint(2, 0, [343, 164, 3]))])
    with pytest.raises(DatasetError) as error:
        build(sample, test_mode=True)
    assert str(error.value) == (
        f'{sample}/{ANN_FILE}: annotation 442619: 48 keypoint values (16 keypoints), expected '
        '17 x 3 = 51 (and 2 more: run tools/check_dataset.py on the config to list them all)')


def test_tolerated_problems_are_one_summary_line(sample, logged):
    edit_json(sample / ANN_FILE, zero_box_width)
    dataset = build(sample)
    assert len(dataset) == SAMPLES - 1  # MMPose drops the person, as it always did
    assert logged == [
        f'{sample}/{ANN_FILE}: 1 tolerated problem (zero-area box: 1), MMPose drops those '
        'people or uses them as they are: run tools/check_dataset.py on the config to list them '
        'all']


def test_detection_file_with_unknown_image_stops_at_build(sample):
    edit_json(sample / DET_FILE, lambda detections: detections[3].update(image_id=12345))
    with pytest.raises(DatasetError) as error:
        build(sample, test_mode=True, bbox_file=f'{sample}/{DET_FILE}')
    assert str(error.value) == (f'{sample}/{DET_FILE}: detection 3: image id 12345 is not in '
                                f'{sample}/{ANN_FILE}')


def test_wrong_image_folder_stops_at_build(sample):
    with pytest.raises(DatasetError) as error:
        build(sample, data_prefix=dict(img='images/'))
    assert str(error.value) == (
        f'{sample}/images/000000000785.jpg: image 785: image file not found; none of the 4 '
        f'images sampled across {sample}/{ANN_FILE} can be read: check data_root and data_prefix '
        f"(img='{sample}/images/')")


def test_max_skipped_ratio_is_a_share(sample):
    with pytest.raises(DatasetError, match=r'^CheckedCocoDataset: max_skipped_ratio must be '
                                           r'between 0 and 1, got 5$'):
        build(sample, max_skipped_ratio=5)


def test_remote_images_are_left_to_mmpose(sample):
    dataset = build(sample, data_prefix=dict(img='s3://bucket/coco/'))  # not probed: no error
    assert not dataset.checks_images and len(dataset) == SAMPLES


# Loading samples ------------------------------------------------------------------------------
def test_training_skips_an_unreadable_image_once_and_counts_it(sample, logged):
    (sample / '000000000785.jpg').unlink()
    dataset = build(sample, max_skipped_ratio=0.1)
    first = dataset[0]  # annotation 442619, on image 785: another sample comes instead
    assert first['id'] != 442619 and first['img'] is not None
    dataset[0]
    assert dataset.num_skipped == 1
    assert logged == [
        f'Skipped annotation 442619: {sample}/000000000785.jpg: image 785: image file not found; '
        '1 of 12 training samples (8.3%) skipped so far, the run stops above 10.0% '
        '(max_skipped_ratio)']


def test_training_stops_past_the_allowed_share(sample):
    (sample / '000000040083.jpg').write_bytes(b'')  # samples 1 and 2
    dataset = build(sample, max_skipped_ratio=0.1)  # 1 of 12 allowed
    with pytest.raises(DatasetError) as error:
        dataset[1]  # skipped; its replacement is random, and may be sample 2
        dataset[2]
    assert str(error.value) == (
        f'{sample}/000000040083.jpg: image 40083: empty image file (0 bytes); 2 of 12 training '
        'samples (16.7%) skipped for unreadable images, more than max_skipped_ratio=0.1 allows: '
        f'{IMAGE_TOOL_HINT}')


def test_testing_stops_at_an_unreadable_image(sample):
    (sample / '000000000785.jpg').unlink()
    dataset = build(sample, test_mode=True)
    with pytest.raises(DatasetError) as error:
        dataset[0]
    assert str(error.value) == (
        f'{sample}/000000000785.jpg: image 785: image file not found: the evaluation needs every '
        f'image; {IMAGE_TOOL_HINT}')


def test_a_pipeline_failure_on_a_good_image_keeps_its_own_error(sample):
    def broken_transform(results):
        raise KeyError('bbox_center')

    dataset = build(sample, pipeline=[LoadImage(), broken_transform])
    with pytest.raises(KeyError, match='bbox_center'):
        dataset[0]
    assert dataset.num_skipped == 0


def keep_as_list(batch):
    return batch


def test_dataloader_workers_share_one_count_across_epochs(sample):
    (sample / '000000000785.jpg').unlink()  # 1 sample
    (sample / '000000040083.jpg').write_bytes(bytes(range(256)) * 20)  # 2 samples
    dataset = build(sample, max_skipped_ratio=0.3)
    loader = torch.utils.data.DataLoader(dataset, batch_size=2, num_workers=2,
                                         persistent_workers=False, collate_fn=keep_as_list)
    for _ in range(2):  # new worker processes every epoch
        assert sum(len(batch) for batch in loader) == SAMPLES
    assert dataset.num_skipped == 3  # each worker's skips, seen by the main process

    dataset = build(sample, max_skipped_ratio=0.2)  # 2 of 12 allowed: the third sample stops it
    loader = torch.utils.data.DataLoader(dataset, batch_size=2, num_workers=2,
                                         collate_fn=keep_as_list)
    with pytest.raises(DatasetError) as error:  # re-raised by the DataLoader, same type
        list(loader)
    assert str(error.value).strip().endswith(
        '; 3 of 12 training samples (25.0%) skipped for unreadable images, more than '
        f'max_skipped_ratio=0.2 allows: {IMAGE_TOOL_HINT}')


# Real training and testing processes ---------------------------------------------------------
TRAIN_CONFIG = """\
_base_ = ['{base}']
data_root = '{root}/'
train_cfg = dict(max_epochs={epochs})
train_dataloader = dict(
    batch_size={batch_size}, num_workers={workers}, persistent_workers=False,
    dataset=dict(type='CheckedCocoDataset', data_root=data_root, {dataset_options}))
val_cfg = None  # no validation: only training reads images here
val_dataloader = None
val_evaluator = None
test_dataloader = dict(dataset=dict(type='CheckedCocoDataset', data_root=data_root))
test_evaluator = dict(ann_file=data_root + '{ann_file}')
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval={epochs}, save_best=None))
randomness = dict(seed=0)
"""


def write_config(root: Path, epochs=1, workers=0, batch_size=16, **dataset_options) -> Path:
    config = root / 'config.py'
    options = ', '.join(f'{key}={value!r}' for key, value in dataset_options.items())
    config.write_text(TRAIN_CONFIG.format(
        base=SB_SAMPLE_CONFIG, root=root, epochs=epochs, workers=workers, batch_size=batch_size,
        dataset_options=options, ann_file=ANN_FILE))
    return config


def train(root: Path, check=True, **kwargs):
    """``tools/train.py`` on ``write_config(root, **kwargs)`` in a child process."""
    config = write_config(root, **kwargs)
    proc = run_python([ROOT / 'tools' / 'train.py', config, '--work-dir', root / 'work'],
                      check=check)
    return config, proc


def assert_stops_with(proc, line):
    """Exit status 1, stderr's last line is ``error: <line>``, no traceback anywhere."""
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    if isinstance(line, re.Pattern):
        assert line.fullmatch(last), last
    else:
        assert last == f'error: {line}'
    assert 'Traceback' not in proc.stdout + proc.stderr


def skipped_lines(proc):
    return re.findall(r'WARNING - (Skipped annotation .*)', proc.stdout + proc.stderr)


def test_train_stops_at_build_on_a_wrong_keypoint_count(sample):
    edit_json(sample / ANN_FILE, drop_last_keypoint)
    runner = tool_runner(write_config(sample), sample / 'work')
    with pytest.raises(DatasetError) as error:
        runner.train()
    assert str(error.value) == (f'{sample}/{ANN_FILE}: annotation 442619: 48 keypoint values '
                                '(16 keypoints), expected 17 x 3 = 51')
    assert 'Epoch(train)' not in runner_log(runner)


@pytest.fixture(scope='module')
def skipped_run(module_mktemp):
    """Two epochs, no DataLoader workers, image 785 (one person) missing, 25% allowed."""
    root = Path(shutil.copytree(SAMPLE_DIR, module_mktemp('skip') / 'data'))
    (root / '000000000785.jpg').unlink()
    config = write_config(root, epochs=2, max_skipped_ratio=0.25)
    runner = tool_runner(config, root / 'work')
    runner.train()
    return root, config, runner_log(runner)


def test_train_skips_and_counts_an_unreadable_image(skipped_run):
    root, _, log = skipped_run
    assert re.findall(r'WARNING - (Skipped annotation .*)', log) == [
        f'Skipped annotation 442619: {root}/000000000785.jpg: image 785: image file not found; 1 '
        'of 12 training samples (8.3%) skipped so far, the run stops above 25.0% '
        '(max_skipped_ratio)']  # once: epoch 2 does not try it again
    assert 'Epoch(train) [2][1/1]' in log
    assert (root / 'work' / 'epoch_2.pth').is_file()


def test_test_stops_at_an_unreadable_image(skipped_run):
    root, config, _ = skipped_run
    runner = tool_runner(config, root / 'test', checkpoint=root / 'work' / 'epoch_2.pth')
    with pytest.raises(DatasetError) as error:
        runner.test()
    assert str(error.value) == (f'{root}/000000000785.jpg: image 785: image file not found: the '
                                f'evaluation needs every image; {IMAGE_TOOL_HINT}')


def test_train_stops_past_the_allowed_share(sample):
    (sample / '000000000785.jpg').unlink()
    _, proc = train(sample, check=False)  # the default max_skipped_ratio, 1%: none of 12
    assert_stops_with(proc, f'{sample}/000000000785.jpg: image 785: image file not found; 1 of 12 '
                            'training samples (8.3%) skipped for unreadable images, more than '
                            f'max_skipped_ratio=0.01 allows: {IMAGE_TOOL_HINT}')


def test_train_with_dataloader_workers_counts_across_them(sample):
    (sample / '000000000785.jpg').unlink()  # 1 sample
    (sample / '000000040083.jpg').write_bytes(bytes(range(256)) * 20)  # 2 samples
    # Batches of 2 over 2 worker processes, new ones each epoch: 6 batches an epoch, shared out.
    _, proc = train(sample, epochs=2, workers=2, batch_size=2, max_skipped_ratio=0.3)
    lines = skipped_lines(proc)
    assert sorted(re.match(r'Skipped annotation (\d+):', line)[1] for line in lines) == [
        '198196', '230195', '442619']  # each once over both epochs
    assert sorted(re.search(r'; (\d+) of 12 training samples', line)[1] for line in lines)[-1] \
        == '3'
    assert 'Epoch(train) [2][6/6]' in proc.stdout
    # Past the share with workers, the worker's DatasetError reaches the main process as the same
    # type (test_dataloader_workers_share_one_count_across_epochs), which tools/train.py ends in
    # one line (test_train_stops_past_the_allowed_share): not trained again here.
