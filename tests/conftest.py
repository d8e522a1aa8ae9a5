"""Shared test set-up: the repo root, small helpers, thread limits for 2-core machines, float32 on
every CPU, and the trained sample checkpoints (cached across sessions)."""
import contextlib
import fcntl
import hashlib
import inspect
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
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
# The libraries of tools/ (tools/toolkit), importable as the tools themselves import them.
TOOLS_DIR = ROOT / 'tools'
sys.path.insert(0, str(TOOLS_DIR))

# Two heavy torch processes whose threads outnumber the cores slow each other ~10x: each test
# process and every process a test spawns uses its share of the cores, the cores divided by the
# number of test processes (pytest.ini starts two, pytest-xdist's workers).
WORKERS = int(os.environ.get('PYTEST_XDIST_WORKER_COUNT', '1'))
THREADS = os.environ.get('MMPOSE_SAM_TEST_THREADS') or str(
    max(1, len(os.sched_getaffinity(0)) // WORKERS))
torch.set_num_threads(int(THREADS))

# The same precision on every CPU: mmpose_sam.speed.amp trains in bf16 on CPUs with native bf16
# (AVX-512-BF16/AMX) and in float32 elsewhere, and optimize_for_inference(dtype='auto') picks
# likewise. 'off' makes both float32 everywhere, for this process and (through os.environ) every
# process a test starts; tests about bf16 take the `cpu_amp_mode` fixture, which runs them with
# 'auto' (native bf16 where the CPU has it) and with 'off' (the float32 fallback forced).
CPU_AMP_ENV = 'MMPOSE_SAM_CPU_AMP'
os.environ[CPU_AMP_ENV] = 'off'


def pytest_report_header(config):
    """The free space where the tests write (README "Set-up and the two commands", **Disk**: what
    the suite needs at most)."""
    free = shutil.disk_usage(tempfile.gettempdir()).free / 2**30
    return f'disk: {free:.1f} GiB free in {tempfile.gettempdir()}'


def subprocess_env(**extra):
    """Environment for child processes: repo on PYTHONPATH, fixed thread counts, no GPU, and
    this process's ``MMPOSE_SAM_CPU_AMP`` (``off`` unless a test changed it)."""
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS=THREADS, MKL_NUM_THREADS=THREADS, CUDA_VISIBLE_DEVICES='',
               MMPOSE_SAM_CPU_AMP=os.environ.get(CPU_AMP_ENV, 'off'),
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), str(TOOLS_DIR),
                                                        env.get('PYTHONPATH')])))
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


_RUNS = itertools.count()

# MMEngine's EpochBasedTrainLoop validates after the last epoch whatever val_interval says, and
# the sample configs then save the best checkpoint too (together ~6 s a run on the AVX2 machine);
# a val_begin past the end skips both, for the trainings whose tests look at neither.
NO_VALIDATION = 'train_cfg.val_begin=1000000'


def short_training_cfg(config=SB_SAMPLE_CONFIG, work_dir=None, iters=2, batch_size=4):
    """A sample config for a few training iterations in the test process: iteration-based, no
    validation or testing, no schedulers, no checkpoints, a log line every iteration."""
    from mmengine.config import Config
    cfg = Config.fromfile(str(config))
    cfg.work_dir = str(work_dir)
    # A name of its own: MMEngine names a run after its config and the second it started, and two
    # runners of one name share a MessageHub (the loss history of both).
    cfg.experiment_name = f'short-{next(_RUNS)}'
    cfg.randomness = dict(seed=0)
    cfg.train_dataloader.batch_size = batch_size
    # MMEngine's iteration loop sleeps 2 s each time a DefaultSampler's epoch ends (against a
    # deadlock of restarted loader workers); an InfiniteSampler never ends, as its log advises.
    cfg.train_dataloader.sampler = dict(type='InfiniteSampler', shuffle=True)
    cfg.train_cfg = dict(by_epoch=False, max_iters=iters, val_interval=10**6)
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.test_cfg = cfg.test_dataloader = cfg.test_evaluator = None
    cfg.param_scheduler = None
    cfg.default_hooks.checkpoint = None
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    return cfg


def tool_runner(config, work_dir, checkpoint=None, resume=False, options=()):
    """The runner ``tools/train.py CONFIG --work-dir W [--resume] [--cfg-options ...]`` builds
    (``tools/test.py CONFIG CHECKPOINT ...`` with ``checkpoint``), built in this process: for the
    tests of what a run does or stops with, where a child process adds only its imports (~12 s
    on the AVX2 machine). A :class:`UserError` the run stops with propagates; that the command
    line prints it as one line and exits 1 is checked once per tool (tools/train.py:
    test_divergence_and_preemption.py, tools/test.py: test_untrusted_files.py)."""
    import argparse
    from mmengine.config import Config, DictAction
    from toolkit.runners import build_runner
    cfg = Config.fromfile(str(config))
    if options:  # parsed as MMPose's tools parse --cfg-options
        parser = argparse.ArgumentParser()
        parser.add_argument('--cfg-options', nargs='+', action=DictAction)
        cfg.merge_from_dict(parser.parse_args(['--cfg-options', *options]).cfg_options)
    cfg.work_dir, cfg.launcher = str(work_dir), 'none'
    cfg.experiment_name = f'tool-{next(_RUNS)}'  # see short_training_cfg
    if checkpoint is not None:
        cfg.load_from = str(checkpoint)
    if resume:
        cfg.resume, cfg.load_from = True, None  # MMPose's train.py --resume: the last checkpoint
    return build_runner(cfg)


def runner_log(runner) -> str:
    """What the runner logged so far (its log file in the work dir)."""
    return (Path(runner.log_dir) / f'{runner.timestamp}.log').read_text()


@pytest.fixture(autouse=True)
def _deterministic_seed():
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _default_scope_back_to_mmpose():
    """Each test starts in MMPose's registry scope once any scope was set: MMDetection's
    ``init_detector`` (the demo's detector path) makes ``mmdet`` the process-wide default, and
    a later test in the same process that builds an MMPose module by name then looked it up in
    MMDetection's registry (test_head.py after test_demo.py: ``KeypointMSELoss is not in the
    mmdet::model registry``)."""
    from mmengine.registry import DefaultScope, init_default_scope
    current = DefaultScope.get_current_instance()
    if current is not None and current.scope_name != 'mmpose':
        init_default_scope('mmpose')


@pytest.fixture(scope='module')
def module_mktemp(request, tmp_path_factory):
    """``module_mktemp(name)``: a new folder for a module's shared files (a training's work dir, a
    checkpoint, an export), deleted once the module's tests are done if none of them failed, as
    pytest.ini's ``tmp_path_retention_policy = failed`` deletes a passed test's ``tmp_path``.
    pytest itself keeps ``tmp_path_factory`` folders until the session ends: with Adam's state each
    training checkpoint is ~400 MB, and the suite's added up to 19.5 GB of /tmp, which filled a CI
    machine's disk."""
    failed_before, made = request.session.testsfailed, []

    def mktemp(name: str) -> Path:
        made.append(tmp_path_factory.mktemp(name))
        return made[-1]

    yield mktemp
    if request.session.testsfailed == failed_before:
        for folder in made:
            shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(params=['auto', 'off'])
def cpu_amp_mode(request, monkeypatch):
    """For tests about bf16: runs the test with ``MMPOSE_SAM_CPU_AMP=auto`` (bf16 where this CPU
    computes in it natively, else the float32 fallback) and ``off`` (the fallback forced)."""
    monkeypatch.setenv(CPU_AMP_ENV, request.param)
    return request.param


# Trained sample checkpoints -----------------------------------------------------------------
# Parity checks (ONNX export, optimize_for_inference) compare decoded keypoints, which only mean
# something where the heatmaps have clear peaks: an untrained network's near-flat maps turn a
# 1e-6 difference into a different argmax; accuracy checks (test_trained_accuracy.py, the demo)
# need a model that has learnt the sample. Both sample models are trained by the main job's
# training step for TRAINED_EPOCHS epochs (3-4 minutes each on 2 cores: at 40 epochs the peaks were still too flat for bf16 parity, a
# 3.6 px argmax flip at a keypoint of score 0.24) and cached in CHECKPOINT_CACHE under a hash of
# everything the weights depend on (`checkpoint_key`): a change to any of it trains anew, and a
# checkpoint of other inputs is never used. Old entries are never deleted (another checkout may
# still want them): `rm -r ~/.cache/mmpose-sam/test-checkpoints` is always safe.
TRAINED_EPOCHS = 100
CHECKPOINT_CACHE = Path(os.environ.get('MMPOSE_SAM_TEST_CHECKPOINTS') or
                        Path.home() / '.cache' / 'mmpose-sam' / 'test-checkpoints')
# The mmpose_sam code in the key: what computes the weights (the network, its data preprocessor,
# head and loss; the dataset; the precision; the train loop and hooks) and what writes the
# checkpoint file. Not in it: loading, runners, inference and export, which change neither the
# weights of a normal run nor the file (a change there that does must add its file here).
TRAINING_SOURCES = ('models/', 'speed/', 'reliability/', 'upstream/', 'devices.py')


def train_sample_checkpoint(config: Path, work_dir: Path, epochs: int = TRAINED_EPOCHS) -> Path:
    """README's main job's training (``tools/main_job.py``) of a sample config, shortened to
    ``epochs`` epochs, in this process: seed 0, the schedule cut at ``epochs`` (the sample's
    learning-rate drop at 120 goes), one validation, at the end, so that the checkpoint the main
    job keeps (the best by coco/AP) is the last. That checkpoint: weights, ``dataset_meta`` and
    ``meta``, no optimizer state (the tests load it many times and never resume it; Adam's state
    would triple it to ~400 MB)."""
    from toolkit.runners import build_runner  # a visualizer of its own (see there)
    main_job = load_tool('main_job')
    cfg = main_job.training_config(main_job.parse_args([
        '--config', str(config), '--epochs', str(epochs), '--val-interval', str(epochs),
        '--work-dir', str(work_dir), '--cfg-options',
        'default_hooks.checkpoint.save_optimizer=False',
        'default_hooks.checkpoint.save_param_scheduler=False',
        'default_hooks.logger.interval=10']))
    build_runner(cfg).train()
    return Path(main_job.best_checkpoint(cfg.work_dir))


def checkpoint_inputs(config: Path) -> dict:
    """What a trained sample checkpoint depends on, as ``{name: sha256 or version}``: the config
    as merged with its bases (MMPose's included), the package's TRAINING_SOURCES, the sample data,
    the training recipe above and the main job it runs, the library versions, the device and the precision."""
    import mmcv
    import mmengine
    import mmpose
    import numpy
    from mmengine.config import Config

    from mmpose_sam.speed import amp

    def digest(data: bytes) -> str:
        return hashlib.sha256(data).hexdigest()

    cfg = Config.fromfile(str(config)).to_dict()
    inputs = {'config': digest(json.dumps(cfg, sort_keys=True, default=repr).encode()),
              'recipe': digest(f'{inspect.getsource(train_sample_checkpoint)}'
                               f'{TRAINED_EPOCHS}'.encode())}
    package = ROOT / 'mmpose_sam'
    for path in sorted(package.rglob('*.py')):
        name = path.relative_to(package).as_posix()
        if name.startswith(TRAINING_SOURCES):
            inputs[f'mmpose_sam/{name}'] = digest(path.read_bytes())
    for tool in ('main_job.py', 'toolkit/runners.py'):  # the training loop the recipe runs
        inputs[f'tools/{tool}'] = digest((ROOT / 'tools' / tool).read_bytes())
    for path in sorted(SAMPLE_DIR.glob('*.j*')):  # test_coco.json and the images
        inputs[f'data/{path.name}'] = digest(path.read_bytes())
    inputs.update(python=sys.version.split()[0], torch=torch.__version__, mmpose=mmpose.__version__,
                  mmengine=mmengine.__version__, mmcv=mmcv.__version__, numpy=numpy.__version__,
                  device='cuda' if torch.cuda.is_available() else 'cpu',
                  cpu_bf16=amp.cpu_has_native_bf16())
    return inputs


def checkpoint_key(inputs: dict) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:16]


def cached_sample_checkpoint(name: str, config: Path, cache: Path = CHECKPOINT_CACHE) -> Path:
    """``<cache>/<name>-<key>.pth``, trained first if missing. Training runs in a temporary folder
    inside ``cache`` and the checkpoint is moved into place only once complete (``os.replace``,
    atomic on one file system), so an interrupted session leaves nothing that could be used."""
    inputs = checkpoint_inputs(config)
    target = cache / f'{name}-{checkpoint_key(inputs)}.pth'
    if target.is_file():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    work_dir = Path(tempfile.mkdtemp(prefix=f'.{target.stem}-', dir=cache))
    try:
        checkpoint = train_sample_checkpoint(config, work_dir)
        # What the key was made of, for whoever wonders why a checkpoint was (re)trained.
        note = work_dir / 'inputs.json'
        note.write_text(json.dumps(inputs, indent=1, sort_keys=True))
        os.replace(note, target.with_suffix('.json'))
        os.replace(checkpoint, target)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    return target


def cached_sample_checkpoints(configs: dict, cache: Path = CHECKPOINT_CACHE) -> dict:
    """``{name: (config, cached_sample_checkpoint(name, config))}``. Test processes sharing the
    cache (pytest-xdist's workers) share the work: each trains the first checkpoint no other
    process is training (a lock file per name) and then waits for the ones others train."""
    cache.mkdir(parents=True, exist_ok=True)
    found, others = {}, []
    for name, config in configs.items():
        lock = open(cache / f'.{name}.lock', 'w')
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # another process is training it
            others.append((name, config, lock))
            continue
        with lock:
            found[name] = (config, cached_sample_checkpoint(name, config, cache))
    for name, config, lock in others:
        with lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # until the other process is done with it
            found[name] = (config, cached_sample_checkpoint(name, config, cache))
    return {name: found[name] for name in configs}


SAMPLE_CONFIGS = {'SimpleBaseline': SB_SAMPLE_CONFIG, 'SAM': SAM_SAMPLE_CONFIG}


@contextlib.contextmanager
def _in_repo_root():
    cwd = os.getcwd()
    os.chdir(ROOT)  # the sample configs' data_root is relative to the repo root
    try:
        yield
    finally:
        os.chdir(cwd)


# The files that take the longest (`--durations=0` on the AVX2 machine, 2026-12-07: 1 to 4 min
# each), longest first, so that neither test process goes on alone for minutes at the end: the
# rest follow in alphabetical order and fill the gaps (pytest.ini keeps xdist to this order).
LONGEST_FILES = ('test_divergence_and_preemption.py', 'test_train_loop.py',
                 'test_preemption_ddp.py', 'test_main_job.py', 'test_gpu_check.py',
                 'test_compare.py', 'test_speed_settings.py', 'test_plugin_only_registers.py',
                 'test_analysis.py', 'test_deploy.py', 'test_own_data.py', 'test_bad_data.py',
                 'test_checkpoint.py', 'test_optimize_for_inference.py', 'test_faults.py',
                 'test_gpu_path.py')


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(LONGEST_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest in order


def pytest_collection_finish(session):
    """With two test processes (pytest-xdist) and tests that need the trained checkpoints, worker
    ``gwN`` trains the N-th of them before its first test, both processes at once on their shares
    of the cores. Left to the fixture, the first process to need them trained both, one after the
    other, while the second waited for them (8.5 of a fresh CI run's 26 minutes on the Intel Xeon,
    2026-12-02). A checkpoint another session is training, or one already cached, is left alone;
    a failure is left for the fixture to report in the test that needs it."""
    worker = os.environ.get('PYTEST_XDIST_WORKER', '')
    index = int(worker[2:]) if worker.startswith('gw') else len(SAMPLE_CONFIGS)
    if WORKERS < 2 or index >= len(SAMPLE_CONFIGS) or not any(
            'trained_checkpoints' in getattr(item, 'fixturenames', ()) for item in session.items):
        return
    name = list(SAMPLE_CONFIGS)[index]
    CHECKPOINT_CACHE.mkdir(parents=True, exist_ok=True)
    with open(CHECKPOINT_CACHE / f'.{name}.lock', 'w') as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # another session is training it: the fixture waits for it
            return
        try:
            with _in_repo_root():
                cached_sample_checkpoint(name, SAMPLE_CONFIGS[name])
        except Exception:  # noqa: BLE001 - the fixture trains again and fails in its test
            pass


@pytest.fixture(scope='session')
def trained_checkpoints():
    """``{'SimpleBaseline': (config, checkpoint), 'SAM': (config, checkpoint)}`` of the two
    sample configs, trained on the bundled images (see ``cached_sample_checkpoint``)."""
    with _in_repo_root():
        return cached_sample_checkpoints(SAMPLE_CONFIGS)
