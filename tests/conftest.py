"""Shared test set-up: the repo root, small helpers, and thread limits for 2-core machines."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = ROOT / 'configs' / 'body_2d_keypoint' / 'topdown_heatmap'
SAMPLE_DIR = ROOT / 'data' / 'coco_sample'
SB_SAMPLE_CONFIG = CONFIG_DIR / 'coco_sample' / \
    'td-hm_simplebaseline-res50_1xb16-150e_coco-sample-128x96.py'
SAM_SAMPLE_CONFIG = CONFIG_DIR / 'coco_sample' / \
    'td-hm_sam-res50-seq3x3_1xb16-150e_coco-sample-128x96.py'

# Two heavy torch processes on 2 cores slow each other ~10x: each test process and every process
# a test spawns uses the same small, fixed number of threads.
THREADS = os.environ.get('MMPOSE_SAM_TEST_THREADS', '2')
torch.set_num_threads(int(THREADS))


def subprocess_env(**extra):
    """Environment for child processes: repo on PYTHONPATH, fixed thread counts, no GPU."""
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS=THREADS, MKL_NUM_THREADS=THREADS, CUDA_VISIBLE_DEVICES='',
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get('PYTHONPATH')])))
    env.update(extra)
    return env


def run_python(args, cwd=ROOT, timeout=900, check=True, **env):
    """Run ``python *args`` in a child process; on failure show its output in the assertion."""
    proc = subprocess.run([sys.executable, *map(str, args)], cwd=cwd, env=subprocess_env(**env),
                          capture_output=True, text=True, timeout=timeout)
    if check:
        assert proc.returncode == 0, f'{args} exited {proc.returncode}\n{proc.stdout[-4000:]}' \
                                     f'\n{proc.stderr[-6000:]}'
    return proc


@pytest.fixture(autouse=True)
def _deterministic_seed():
    torch.manual_seed(0)
