"""The trained sample checkpoints put the keypoints where they belong, and the main job's AP is
what README says.

Every other test bounds the metrics (``0 <= AP <= 1``), which decoding that swaps or scrambles the
keypoints passes with AP 0.000. Here each checkpoint of conftest's ``trained_checkpoints`` (the
main job's training of the sample config, shortened to TRAINED_EPOCHS epochs) is evaluated by the
main job's own ``evaluate`` (MMEngine's ``Runner.test()`` exactly as the sample config says: its
COCO evaluator, its codec, no flip test), with ground-truth boxes and with the bundled
detections. The sample is memorised (README, "The main job": GT AP 1.000), so the GT-box AP must
be close to 1.
"""
from pathlib import Path

import pytest

from conftest import ROOT, SAMPLE_DIR, TRAINED_EPOCHS, load_tool

# Measured (float32, seed 0, TRAINED_EPOCHS = 100): GT-box AP 1.000 for SimpleBaseline and 0.979
# for SAM on this project's AVX2 machine (2026-12-01, conftest's recipe before it became the main
# job's training step), 1.000 and 0.990 on an AVX-512 one (2026-12-02, the main job's step; SAM's
# AP .5 1.000, AR 0.992). SAM's 100 epochs fall just short of the 150 of README's main job, which
# reaches 1.000. The margin: one person dropping below one more of COCO's ten OKS thresholds costs
# about 1/12 * 1/10 = 0.008 of the AP; 0.95 leaves SAM room for four or five of those (float
# rounding on another CPU, a retrained model), while a decoding bug lands far below it (keypoint
# order reversed: AP 0.000, the test below).
MIN_AP = 0.95
# With the bundled detections (118 boxes, most of them not one of the 12 labelled people, so a
# memorised model still scores far below 1): README's main job gives 0.376 (150 epochs, float32,
# AVX2); the 100-epoch SAM checkpoint 0.283 (AVX-512, 2026-12-02). Unseeded runs of the main job
# varied by 0.03 (README), so 0.2 leaves room for that twice over; reversed keypoints give 0.000.
MIN_DET_AP = 0.2
DET_FILE = SAMPLE_DIR / 'test_coco_det_AP_H_56.json'


def evaluate(config, checkpoint, work_dir, monkeypatch, bbox_file=None) -> dict:
    """The main job's ``evaluate`` of ``checkpoint``: COCO metrics on the config's test set, with
    ground-truth boxes or ``bbox_file``."""
    monkeypatch.chdir(ROOT)  # the sample configs' data_root is relative to the repo root
    main_job = load_tool('main_job')
    cfg = main_job.training_config(main_job.parse_args(
        ['--config', str(config), '--epochs', str(TRAINED_EPOCHS), '--work-dir', str(work_dir),
         '--cfg-options', 'default_hooks.logger.interval=50']))
    assert cfg.test_dataloader.dataset.get('bbox_file') is None  # ground-truth boxes by default
    return main_job.evaluate(cfg, str(checkpoint), 'det' if bbox_file else 'gt',
                             bbox_file=bbox_file and str(bbox_file))


@pytest.mark.parametrize('name', ['SimpleBaseline', 'SAM'])
def test_trained_checkpoint_reaches_the_memorised_ap(trained_checkpoints, name, tmp_path,
                                                     monkeypatch):
    config, checkpoint = trained_checkpoints[name]
    metrics = evaluate(config, checkpoint, tmp_path, monkeypatch)
    print(name, 'GT boxes', metrics)
    assert metrics['coco/AP'] >= MIN_AP, (name, TRAINED_EPOCHS, metrics)
    assert metrics['coco/AP .5'] >= MIN_AP and metrics['coco/AR'] >= MIN_AP, (name, metrics)


def test_main_job_detected_box_ap(trained_checkpoints, tmp_path, monkeypatch):
    config, checkpoint = trained_checkpoints['SAM']
    metrics = evaluate(config, checkpoint, tmp_path, monkeypatch, bbox_file=DET_FILE)
    print('SAM detected boxes', metrics)
    assert metrics['coco/AP'] >= MIN_DET_AP, (TRAINED_EPOCHS, metrics)


def test_the_evaluation_sees_which_keypoint_is_which(trained_checkpoints, tmp_path,
                                                     monkeypatch):
    """The same evaluation with the decoded keypoint order reversed (nose <-> right ankle, ...):
    if this scored well, the tests above could not catch a decoding bug."""
    from mmpose.codecs import MSRAHeatmap
    decode = MSRAHeatmap.decode

    def reversed_decode(self, encoded):
        keypoints, scores = decode(self, encoded)
        return keypoints[:, ::-1].copy(), scores[:, ::-1].copy()

    monkeypatch.setattr(MSRAHeatmap, 'decode', reversed_decode)
    config, checkpoint = trained_checkpoints['SAM']
    metrics = evaluate(config, checkpoint, tmp_path, monkeypatch)
    assert metrics['coco/AP'] < 0.5, metrics


def test_checkpoint_cache_is_keyed_by_its_inputs_and_written_atomically(tmp_path, monkeypatch):
    """conftest's cache: reused while nothing it depends on changed, retrained when something
    did, and nothing left behind by a training that failed."""
    import conftest
    trained = []

    def fake_training(config, work_dir, epochs=TRAINED_EPOCHS):
        trained.append(config)
        if 'fail' in str(config):
            raise RuntimeError('interrupted')
        (work_dir / f'epoch_{epochs}.pth').write_bytes(b'weights')
        return work_dir / f'epoch_{epochs}.pth'

    inputs = {'model': 'v1'}
    monkeypatch.setattr(conftest, 'train_sample_checkpoint', fake_training)
    monkeypatch.setattr(conftest, 'checkpoint_inputs', lambda config: dict(inputs))
    first = conftest.cached_sample_checkpoint('SAM', Path('sam.py'), tmp_path)
    assert first.read_bytes() == b'weights' and len(trained) == 1
    assert conftest.cached_sample_checkpoint('SAM', Path('sam.py'), tmp_path) == first
    assert len(trained) == 1  # reused
    inputs['model'] = 'v2'  # e.g. a model file changed
    second = conftest.cached_sample_checkpoint('SAM', Path('sam.py'), tmp_path)
    assert second != first and len(trained) == 2
    inputs['model'] = 'v3'
    with pytest.raises(RuntimeError, match='interrupted'):
        conftest.cached_sample_checkpoint('SAM', Path('fail.py'), tmp_path)
    assert len(trained) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [first.name, first.with_suffix('.json').name, second.name,
         second.with_suffix('.json').name])  # no partial file, no leftover work dir


def test_checkpoint_key_covers_the_model_code_config_and_versions():
    import conftest
    inputs = conftest.checkpoint_inputs(conftest.SAM_SAMPLE_CONFIG)
    models = {f'mmpose_sam/{p.relative_to(ROOT / "mmpose_sam").as_posix()}'
              for p in (ROOT / 'mmpose_sam' / 'models').rglob('*.py')}
    assert models <= set(inputs)
    assert {'mmpose_sam/speed/amp.py', 'mmpose_sam/speed/device_accuracy.py',
            'mmpose_sam/reliability/checkpoint/atomic_save.py',
            'mmpose_sam/reliability/hooks/checkpoint_hook.py', 'mmpose_sam/upstream/__init__.py',
            'tools/main_job.py', 'tools/toolkit/runners.py'} <= set(inputs)
    assert not any(name.startswith('mmpose_sam/deploy/') for name in inputs)
    assert {'config', 'recipe', 'torch', 'mmpose', 'cpu_bf16', 'data/test_coco.json'} <= \
        set(inputs)
    assert inputs['config'] != conftest.checkpoint_inputs(conftest.SB_SAMPLE_CONFIG)['config']
    assert inputs == conftest.checkpoint_inputs(conftest.SAM_SAMPLE_CONFIG)  # stable
