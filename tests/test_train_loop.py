"""Real train / resume / test loops on the bundled COCO sample, through mim, MMPose's own tools,
this repo's tools and a 2-process DDP launch. Each run is one or two epochs of one iteration:
they check the loop, not the accuracy (tools/main_job.py is the long run)."""
import json
import re
import shutil

import pytest
import torch

from conftest import NO_VALIDATION, ROOT, SAM_SAMPLE_CONFIG, SB_SAMPLE_CONFIG, run_python
from toolkit.mmpose_tools import mmpose_tool_path

SHORT = ['train_cfg.val_interval=1', 'default_hooks.checkpoint.interval=1',
         'default_hooks.logger.interval=1']


def metrics_from_log(text: str) -> dict:
    """The last ``coco/...`` metrics line MMEngine logged."""
    lines = [line for line in text.splitlines() if 'coco/AP:' in line]
    assert lines, text[-3000:]
    return {k: float(v) for k, v in re.findall(r'(coco/A[PR][^:]*): (-?[\d.]+)', lines[-1])}


def test_repo_tools_train_and_test_sam_with_detected_boxes(tmp_path):
    work = tmp_path / 'sam'
    proc = run_python([ROOT / 'tools' / 'train.py', SAM_SAMPLE_CONFIG, '--work-dir', work,
                       '--cfg-options', 'train_cfg.max_epochs=1', *SHORT, NO_VALIDATION])
    # No `--amp` (it selects MMEngine's own fp16 AmpOptimWrapper): MMPose's train.py builds the
    # config's BF16AmpOptimWrapper, which trains on a CPU too; the suite runs every child with
    # MMPOSE_SAM_CPU_AMP=off (conftest): float32, and it says so.
    assert ('BF16AmpOptimWrapper: MMPOSE_SAM_CPU_AMP=off: for AMP this CPU has no native '
            'bfloat16, so training runs in float32') in proc.stdout + proc.stderr
    proc = run_python([
        ROOT / 'tools' / 'test.py', SAM_SAMPLE_CONFIG, work / 'epoch_1.pth', '--work-dir',
        work / 'test', '--cfg-options',
        'test_dataloader.dataset.bbox_file=data/coco_sample/test_coco_det_AP_H_56.json'])
    assert 'coco/AP' in metrics_from_log(proc.stdout + proc.stderr)


@pytest.mark.skipif(shutil.which('mim') is None and not (ROOT / '.venv/bin/mim').exists(),
                    reason='openmim not installed')
def test_mim_train_mmposes_train_resume_and_mim_test(tmp_path):
    """Issue 2: `mim train mmpose` for one epoch, MMPose's own tools/train.py --resume for a
    second, `mim test mmpose` (MMPose's tools/test.py) on MMEngine's checkpoints."""
    import subprocess
    import sys
    from conftest import subprocess_env
    mim = str(ROOT / '.venv' / 'bin' / 'mim') if (ROOT / '.venv/bin/mim').exists() else 'mim'
    work = tmp_path / 'sb'
    env = subprocess_env()
    env['PATH'] = f'{sys.executable.rsplit("/", 1)[0]}:{env["PATH"]}'

    def run_mim(*args):
        proc = subprocess.run([mim, *map(str, args)], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=900)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        return proc

    run_mim('train', 'mmpose', SB_SAMPLE_CONFIG, '--gpus', '0', '--work-dir', work,
            '--cfg-options', 'train_cfg.max_epochs=1', *SHORT)
    first = torch.load(work / 'epoch_1.pth', weights_only=False)
    assert first['meta']['epoch'] == 1

    proc = run_python([mmpose_tool_path('train.py'), SB_SAMPLE_CONFIG, '--work-dir', work,
                       '--resume', '--cfg-options', 'train_cfg.max_epochs=2', *SHORT,
                       NO_VALIDATION])
    assert re.search(r'resumed epoch: 1, iter: 1', proc.stdout + proc.stderr)
    second = torch.load(work / 'epoch_2.pth', weights_only=False)
    assert second['meta']['epoch'] == 2 and second['meta']['iter'] == 2
    # the resumed run continued from epoch 1's weights instead of starting over
    assert not torch.equal(first['state_dict']['head.final_layer.weight'],
                           second['state_dict']['head.final_layer.weight'])

    proc = run_mim('test', 'mmpose', SB_SAMPLE_CONFIG, '-C', work / 'epoch_2.pth', '--gpus', '0',
                   '--work-dir', work / 'test')
    metrics = metrics_from_log(proc.stdout + proc.stderr)
    assert {'coco/AP', 'coco/AR'} <= set(metrics)
    assert 0.0 <= metrics['coco/AP'] <= 1.0


def test_ddp_two_cpu_processes_gloo(tmp_path):
    """`--launcher pytorch` with 2 processes: the multi-GPU / multi-node code path, on CPU.
    ``--standalone``: torchrun picks a free port itself, so parallel runs never collide."""
    work = tmp_path / 'ddp'
    proc = run_python(
        ['-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2',
         ROOT / 'tools' / 'train.py', SB_SAMPLE_CONFIG, '--launcher', 'pytorch', '--work-dir',
         work, '--cfg-options', 'train_cfg.max_epochs=1', *SHORT],
        OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
    log = proc.stdout + proc.stderr
    # MMEngine logs the world size as "GPU number", whatever the device.
    assert 'Distributed launcher: pytorch' in log and 'GPU number: 2' in log, log[-3000:]
    assert (work / 'epoch_1.pth').is_file()
    assert 'coco/AP' in metrics_from_log(log)
    scalars = sorted(work.glob('*/vis_data/scalars.json'))
    assert scalars, 'no scalars.json written'
    losses = [json.loads(line)['loss'] for line in scalars[-1].read_text().splitlines()
              if '"loss"' in line]
    assert losses and all(torch.isfinite(torch.tensor(losses)))


def test_cpu_process_group_fix_applies_once_and_up_to_the_checked_mmengine(monkeypatch):
    import mmengine
    from mmengine.dist import utils as dist_utils
    from mmpose_sam.upstream import distributed

    def mmengines(backend, init_backend='torch', **kwargs):  # stands in for MMEngine's function
        pass

    monkeypatch.setattr(dist_utils, '_init_dist_pytorch', mmengines)
    monkeypatch.setattr(mmengine, '__version__', '0.10.8')
    distributed.apply()
    assert dist_utils._init_dist_pytorch is mmengines  # a newer MMEngine: left alone
    monkeypatch.setattr(mmengine, '__version__', distributed.LAST_CHECKED)
    distributed.apply()
    applied = dist_utils._init_dist_pytorch
    distributed.apply()
    assert applied is not mmengines and dist_utils._init_dist_pytorch is applied
