"""The main job, shortened: a real train + val loop of SAM-R50 on the bundled images."""
import json
from pathlib import Path

import cv2
import pytest

from conftest import ROOT, load_tool
from helpers_preemption import same_weights


# 8 epochs of one iteration each (12 people, batches of 16), one validation at the end.
MAIN_JOB_ARGS = ['--epochs', '8', '--val-interval', '8', '--cfg-options',
                 'default_hooks.logger.interval=1']


@pytest.fixture(scope='module')
def main_job(module_mktemp):
    work = module_mktemp('main_job')
    result = load_tool('main_job').main(MAIN_JOB_ARGS + ['--work-dir', str(work)])
    return work, result


def test_loss_is_finite_and_falls(main_job):
    work, _ = main_job
    scalars = sorted(work.glob('*/vis_data/scalars.json'))[0].read_text().splitlines()
    losses = [json.loads(line)['loss'] for line in scalars if '"loss"' in line]
    assert len(losses) == 8
    assert all(loss == loss and loss < 1 for loss in losses)  # finite (not NaN), sane scale
    assert sum(losses[-3:]) / 3 < losses[0]  # falling, allowing for one noisy step


def test_metrics_with_gt_and_detected_boxes(main_job):
    work, result = main_job
    for boxes in ('gt_boxes', 'det_boxes'):
        assert {'coco/AP', 'coco/AP .5', 'coco/AR'} <= set(result[boxes])
        assert 0 <= result[boxes]['coco/AP'] <= 1
    assert result['checkpoint'].startswith(str(work)) and 'best_coco_AP_epoch_8' in \
        result['checkpoint']
    summary = (work / 'summary.md').read_text()
    assert '| coco/AP (GT boxes) |' in summary and '| coco/AP (detected boxes) |' in summary
    # The same seeded command trains in bf16 where the CPU has native bf16, else in float32.
    from mmpose_sam.speed.amp import cpu_has_native_bf16
    expected = ('bfloat16 autocast on cpu' if cpu_has_native_bf16() else
                'float32 on cpu (bf16 AMP asked; this CPU has no native bf16)')
    assert result['precision'] == expected and f'| precision | {expected} |' in summary


def test_pictures_of_skeletons_and_attention(main_job):
    work, result = main_job
    pictures = work / 'pictures'
    for stem in ('000000000785', '000000040083', '000000196141', '000000197388'):
        skeleton = cv2.imread(str(pictures / f'{stem}.jpg'))  # named as its image
        original = cv2.imread(str(ROOT / 'data' / 'coco_sample' / f'{stem}.jpg'))
        assert skeleton is not None and skeleton.shape == original.shape
        assert cv2.imread(str(pictures / f'{stem}_attention.png')) is not None


def test_same_seed_gives_the_same_numbers(main_job, tmp_path):
    """Seeded by default (README's numbers are reproducible): the same arguments train the same
    weights, loss for loss, so the evaluations give the same numbers. Only the training and the
    GT-box evaluation run again (the rest of the job reads the checkpoint, with no randomness)."""
    work, first = main_job
    tool = load_tool('main_job')
    cfg = tool.training_config(tool.parse_args(MAIN_JOB_ARGS + ['--work-dir', str(tmp_path)]))
    assert cfg.randomness.seed == 0
    tool.build_runner(cfg).train()

    def losses(directory):
        lines = sorted(directory.glob('*/vis_data/scalars.json'))[0].read_text().splitlines()
        return [json.loads(line)['loss'] for line in lines if '"loss"' in line]

    assert losses(tmp_path) == losses(work)
    checkpoint = tool.best_checkpoint(str(tmp_path))
    assert Path(checkpoint).name == Path(first['checkpoint']).name
    assert same_weights(Path(checkpoint), Path(first['checkpoint']))
    assert tool.evaluate(cfg, checkpoint, 'gt_boxes') == first['gt_boxes']
    assert json.loads((work / 'summary.json').read_text())['seed'] == 0
