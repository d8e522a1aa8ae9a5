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


def load_tool(name: str):
    """``tools/<name>.py`` as a module (tools/ is not a package), e.g. ``load_tool('demo')`` or
    ``load_tool('deploy/export_onnx')``, to call its ``main(argv)`` in the test process."""
    import importlib.util
    path = ROOT / 'tools' / f'{name}.py'
    spec = importlib.util.spec_from_file_location(f'tools_{path.stem}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _deterministic_seed():
    torch.manual_seed(0)


# Trained sample checkpoints -----------------------------------------------------------------
# Parity checks (ONNX export, optimize_for_inference) compare decoded keypoints, which only mean
# something where the heatmaps have clear peaks: an untrained network's near-flat maps turn a
# 1e-6 difference into a different argmax. Both sample models are trained once per test session
# (TRAINED_EPOCHS epochs each, 3-4 minutes each on 2 cores: at 40 epochs the peaks were still
# too flat for bf16 parity, a 3.6 px argmax flip at a keypoint of score 0.24); MMPOSE_SAM_TEST_CHECKPOINTS=DIR
# keeps and reuses them across sessions while developing.
TRAINED_EPOCHS = 100


def train_sample_checkpoint(config: Path, work_dir: Path, epochs: int = TRAINED_EPOCHS) -> Path:
    """Train a sample config from scratch for ``epochs`` epochs in this process; the last
    checkpoint (model, optimizer, ``dataset_meta``, as MMEngine saves it)."""
    from mmengine.config import Config
    from mmengine.runner import Runner
    checkpoint = work_dir / f'epoch_{epochs}.pth'
    if checkpoint.is_file():
        return checkpoint
    cfg = Config.fromfile(str(config))
    cfg.work_dir = str(work_dir)
    cfg.train_cfg.max_epochs = epochs
    cfg.train_cfg.val_interval = 10**6  # no validation: only the weights are wanted
    cfg.param_scheduler = [s for s in cfg.param_scheduler if not s.get('by_epoch', True)]
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=epochs, save_best=None,
                                        max_keep_ckpts=1)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=10)
    cfg.randomness = dict(seed=0)
    Runner.from_cfg(cfg).train()
    return checkpoint


@pytest.fixture(scope='session')
def trained_checkpoints(tmp_path_factory):
    """``{'SimpleBaseline': (config, checkpoint), 'SAM': (config, checkpoint)}`` of the two
    sample configs, trained on the bundled images (see ``train_sample_checkpoint``)."""
    keep = os.environ.get('MMPOSE_SAM_TEST_CHECKPOINTS')
    root = Path(keep) if keep else tmp_path_factory.mktemp('trained')
    cwd = os.getcwd()
    os.chdir(ROOT)  # the sample configs' data_root is relative to the repo root
    try:
        return {name: (config, train_sample_checkpoint(config, root / name))
                for name, config in (('SimpleBaseline', SB_SAMPLE_CONFIG),
                                     ('SAM', SAM_SAMPLE_CONFIG))}
    finally:
        os.chdir(cwd)
