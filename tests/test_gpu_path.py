"""The GPU path on a CPU machine: a GPU torch cannot use is named, never trained around; the
deterministic mode works on CUDA's terms. A stand-in ``nvidia-smi`` plays the cluster node."""
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch

from conftest import ROOT, SB_SAMPLE_CONFIG, subprocess_env
from toolkit import env

# What `nvidia-smi --query-gpu=name,driver_version --format=csv,noheader` prints on a node with
# an A100 and a driver too old for a CUDA 13 build of torch (common on clusters).
A100_DRIVER_550 = 'NVIDIA A100-SXM4-80GB, 550.54.15'
OLD_DRIVER_LINE = (
    'nvidia-smi lists 1 GPU(s) (NVIDIA A100-SXM4-80GB, driver 550.54.15) but torch {torch} '
    '(CUDA 13.0) cannot use them: CUDA 13 builds need driver >= 580.65.06. Fix: '
    'TORCH_INDEX_URL=https://download.pytorch.org/whl/cu126 bash tools/setup_env.sh (a CUDA 12.6 '
    'build, driver >= 525), or upgrade the driver to >= 580.65.06; CUDA_VISIBLE_DEVICES= runs on '
    'the CPU on purpose')


@pytest.fixture
def old_driver_node(tmp_path):
    """Environment of a child process on a node whose nvidia-smi lists an A100, driver 550."""
    if torch.cuda.is_available() or torch.version.cuda is None or \
            not torch.version.cuda.startswith('13'):
        pytest.skip('needs the CPU machine with the pinned CUDA 13 build of torch')
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    smi = bin_dir / 'nvidia-smi'
    smi.write_text(f'#!/bin/sh\necho "{A100_DRIVER_550}"\n')
    smi.chmod(0o755)
    # The venv's python first, as after `source .venv/bin/activate` (dist_train.sh runs `python`).
    environ = subprocess_env(PATH=os.pathsep.join(
        [str(bin_dir), os.path.dirname(sys.executable), os.environ['PATH']]))
    del environ['CUDA_VISIBLE_DEVICES']  # not a deliberate CPU run
    return environ


def _run(args, environ, cwd=ROOT):
    return subprocess.run([*map(str, args)], cwd=cwd, env=environ, capture_output=True,
                          text=True, timeout=600)


def test_check_env_names_the_old_driver_and_the_fix(old_driver_node):
    proc = _run([sys.executable, ROOT / 'tools' / 'check_env.py'], old_driver_node)
    assert proc.returncode == 1
    fails = [line for line in proc.stdout.splitlines() if 'FAIL' in line]
    assert fails == ['  FAIL  GPU                    ' +
                     OLD_DRIVER_LINE.format(torch=torch.__version__)], proc.stdout


@pytest.mark.parametrize('tool', ['train', 'test'])
def test_training_and_testing_stop_in_one_line(old_driver_node, tool, tmp_path):
    args = [sys.executable, ROOT / 'tools' / f'{tool}.py', SB_SAMPLE_CONFIG]
    if tool == 'test':
        args.append(tmp_path / 'never_read.pth')  # the check comes before the checkpoint
    proc = _run([*args, '--work-dir', tmp_path / 'work'], old_driver_node)
    assert proc.returncode == 1
    assert 'Traceback' not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == 'error: ' + OLD_DRIVER_LINE.format(
        torch=torch.__version__)
    assert not list((tmp_path / 'work').rglob('*.pth'))


def test_dist_train_stops_before_starting_processes(old_driver_node, tmp_path):
    proc = _run(['bash', ROOT / 'tools' / 'dist_train.sh', SB_SAMPLE_CONFIG, '2', '--work-dir',
                 tmp_path / 'work'], old_driver_node)
    assert proc.returncode == 1
    assert proc.stderr.strip() == 'error: ' + OLD_DRIVER_LINE.format(torch=torch.__version__)
    assert proc.stdout == '' and not (tmp_path / 'work').exists()  # torchrun never started


def test_an_empty_cuda_visible_devices_is_the_cpu_on_purpose(old_driver_node):
    proc = _run([sys.executable, ROOT / 'tools' / 'check_env.py', '--gpu'],
                dict(old_driver_node, CUDA_VISIBLE_DEVICES=''))
    assert proc.returncode == 0, proc.stdout
    assert 'ok    GPU                    CUDA_VISIBLE_DEVICES is empty: the CPU, on purpose' in \
        proc.stdout


def _torch(cuda='13.0', available=False, arch=(), capability=(8, 0)):
    """What gpu_problem reads of torch, for the cases no CPU machine can show."""
    return SimpleNamespace(
        __version__=f'2.14.1+cu{cuda.replace(".", "")}' if cuda else '2.14.1+cpu',
        version=SimpleNamespace(cuda=cuda),
        cuda=SimpleNamespace(
            is_available=lambda: available, get_arch_list=lambda: list(arch),
            device_count=lambda: 1, get_device_capability=lambda index: capability,
            get_device_name=lambda index: 'Tesla V100-SXM2-32GB',
            init=lambda: None))


@pytest.mark.parametrize('torch_build,gpus,expected', [
    (_torch(), [('NVIDIA A100', '470.82.01')],
     'CUDA 13 builds need driver >= 580.65.06.|upgrade the NVIDIA driver to >= 580.65.06 (or >= '
     '525 with a CUDA 12 build)'),
    (_torch(cuda='12.6'), [('NVIDIA A100', '470.82.01')],
     'CUDA 12 builds need driver >= 525.60.13.|upgrade the NVIDIA driver to >= 525.60.13'),
    (_torch(cuda=None), [('NVIDIA H100', '580.82.07')],
     'torch 2.14.1+cpu (CUDA none: a CPU build) cannot use them.|TORCH_INDEX_URL='),
    # A Volta GPU seen by a CUDA 13 build, which has no kernels for it any more.
    (_torch(available=True, arch=('sm_75', 'sm_80', 'sm_90'), capability=(7, 0)), [],
     'Tesla V100-SXM2-32GB (compute capability 7.0) is not among the architectures|'
     'install a torch build for it'),
    (_torch(cuda='13.0'), [('NVIDIA H200', '580.95.05')],
     'cannot use them: torch.cuda.is_available() is False.|check the driver installation'),
])
def test_each_unusable_gpu_is_described(monkeypatch, torch_build, gpus, expected):
    monkeypatch.delenv('CUDA_VISIBLE_DEVICES', raising=False)
    problem, fix = env.gpu_problem(torch_build, gpus)
    want_problem, want_fix = expected.split('|')
    assert want_problem in problem and want_fix in fix


@pytest.mark.parametrize('torch_build,gpus', [
    (_torch(), []),  # no GPU at all
    (_torch(available=True, arch=('sm_80', 'sm_90')), []),  # an A100 with kernels for it
    (_torch(available=True, arch=('sm_80', 'compute_80'), capability=(9, 0)), []),  # PTX JIT
    (_torch(available=True, arch=('sm_80', ), capability=(8, 6)), []),  # same major: runs
])
def test_usable_setups_are_no_problem(monkeypatch, torch_build, gpus):
    monkeypatch.delenv('CUDA_VISIBLE_DEVICES', raising=False)
    assert env.gpu_problem(torch_build, gpus) is None


def test_deterministic_mode_warns_instead_of_raising(monkeypatch):
    """MMEngine's `deterministic=True` raises on CUDA in SAM's backward (no deterministic
    kernel for bilinear upsampling); the hook keeps every other op deterministic."""
    from mmengine.logging import MMLogger
    from mmpose_sam.reliability.hooks import DeviceSetupHook
    monkeypatch.delenv('CUBLAS_WORKSPACE_CONFIG', raising=False)
    runner = SimpleNamespace(logger=MMLogger.get_instance('device-setup-test'))
    torch.use_deterministic_algorithms(True)  # what MMEngine's set_random_seed does
    try:
        DeviceSetupHook().before_run(runner)
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.is_deterministic_algorithms_warn_only_enabled()
        assert os.environ['CUBLAS_WORKSPACE_CONFIG'] == ':4096:8'
    finally:
        torch.use_deterministic_algorithms(False)


def test_deterministic_sample_training_runs(tmp_path, monkeypatch):
    """`randomness.deterministic=True` with our config (2 epochs), in this process (the setting
    is process-wide: put back afterwards)."""
    from conftest import NO_VALIDATION, runner_log, tool_runner
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv('CUBLAS_WORKSPACE_CONFIG', raising=False)
    try:
        runner = tool_runner(SB_SAMPLE_CONFIG, tmp_path, options=[
            'randomness.deterministic=True', 'randomness.seed=0', 'train_cfg.max_epochs=2',
            NO_VALIDATION])
        runner.train()
    finally:
        torch.use_deterministic_algorithms(False)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = False, False
    assert 'DeviceSetupHook: deterministic algorithms on' in runner_log(runner)
    assert (tmp_path / 'epoch_2.pth').is_file()
