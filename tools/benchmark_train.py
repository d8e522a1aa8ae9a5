"""Training throughput of SAM and SimpleBaseline, with and without the speed settings, in one run.

    python tools/benchmark_train.py [--settings mmpose fast] [--iters 100] [--warmup 20]
        [--model-only-iters 50] [--batch-size 64] [--num-workers 8] [--profile] [--sync-check]
        [--sam-config C --sb-config C] [--work-dir outputs/benchmark_train] [--out PATH]

A benchmark, not a test: it reports numbers and asserts nothing about them. For each setting and
each model (SimpleBaseline first), one after the other in this process:

1. **end to end**: MMEngine's runner trains the config's model from scratch, iteration-based, on
   the bundled COCO sample (12 people, drawn with replacement by an InfiniteSampler) through the
   config's own augmenting pipeline. :class:`mmpose_sam.engine.TrainThroughputHook` times the
   iterations after the warm-up, data loading included; the data-time share is MMEngine's
   ``data_time`` (the main process waiting for the next batch) over the iteration time.
2. **model only**: the same model and optimizer wrapper then train ``--model-only-iters`` steps on
   one batch already on the device (data preprocessor, forward, loss, backward, optimizer step).

Settings (README "Training speed"):

- ``mmpose``: MMPose's own runtime as it ships, with MMEngine's bf16 AMP (its ``GradScaler``
  included) and cuDNN autotuning: ``pseudo_collate``, ``PoseDataPreprocessor``, ``acc_pose`` in
  numpy, ``RuntimeInfoHook``, NCHW. This is what the first GPU measurement ran;
- ``fast``: our configs as they are: bf16 AMP without loss scaling, channels_last, stacked
  batches in pinned memory copied asynchronously, ``acc_pose`` on the device, outputs read back
  once per log interval, cuDNN autotuning.

Without a GPU both run in float32 (CPU autocast is bf16-only, and emulated on most CPUs).
Each row also has the runner's start-up, split into building the runner, getting to the first
iteration (weights, data loader workers, first batch) and the first iteration itself (CUDA
kernels loading, cuDNN timing its algorithms), and the peak GPU memory. The JSON beside the
markdown table is rewritten after every measurement, so a run cut short keeps what it measured.

``--profile`` adds a torch.profiler trace of a few model-only steps per row (top ops printed,
Chrome trace written); ``--sync-check`` records every host-device synchronisation during a few
end-to-end iterations on a GPU (``torch.cuda.set_sync_debug_mode``) and lists where each came from.
"""
import argparse
import gc
import json
import os
import platform
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Dict, Optional

import torch
import mmpose_sam  # noqa: F401,I001  (first: registers the plugin, quiets pkg_resources)
from mmengine.hooks import Hook

ROOT = Path(__file__).resolve().parents[1]
COCO_DIR = ROOT / 'configs' / 'body_2d_keypoint' / 'topdown_heatmap' / 'coco'
SB_CONFIG = COCO_DIR / 'td-hm_simplebaseline-res50_8xb64-210e_coco-256x192.py'
SAM_CONFIG = COCO_DIR / 'td-hm_sam-res50-seq3x3_8xb64-210e_coco-256x192.py'
SAMPLE_ROOT = ROOT / 'data' / 'coco_sample'
SETTINGS = ('mmpose', 'fast')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sb-config', type=Path, default=SB_CONFIG)
    parser.add_argument('--sam-config', type=Path, default=SAM_CONFIG)
    parser.add_argument('--settings', nargs='+', choices=SETTINGS, default=list(SETTINGS))
    parser.add_argument('--iters', type=int, default=100, help='timed end-to-end iterations')
    parser.add_argument('--warmup', type=int, default=20, help='untimed iterations first')
    parser.add_argument('--model-only-iters', type=int, default=50,
                        help='timed fixed-batch iterations per row (after 5 untimed)')
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument('--num-workers', type=int, default=8, help='data loader workers')
    parser.add_argument('--profile', action='store_true', help='torch.profiler of model-only steps')
    parser.add_argument('--sync-check', action='store_true',
                        help='list host-device synchronisations (GPU only)')
    parser.add_argument('--work-dir', type=Path, default=Path('outputs/benchmark_train'))
    parser.add_argument('--out', type=Path, help='markdown table (default: WORK_DIR/throughput.md)')
    args = parser.parse_args(argv)
    for name in ('iters', 'warmup', 'model_only_iters', 'batch_size'):
        if getattr(args, name) < 1:
            parser.error(f'--{name.replace("_", "-")} must be at least 1')
    return args


def as_shipped_by_mmpose(cfg) -> None:
    """Undo the speed settings of our configs: MMPose's runtime, with MMEngine's AMP."""
    from mmpose_sam.amp import _MMEngineAmpOptimWrapper
    optimizer = cfg.optim_wrapper.optimizer
    cfg.optim_wrapper = (dict(type=_MMEngineAmpOptimWrapper, dtype='bfloat16', optimizer=optimizer)
                         if torch.cuda.is_available() else
                         dict(type='OptimWrapper', optimizer=optimizer))
    cfg.model.data_preprocessor.type = 'PoseDataPreprocessor'
    cfg.model.data_preprocessor.non_blocking = False
    cfg.model.train_cfg = dict(compute_acc=True)
    cfg.train_dataloader.collate_fn = dict(type='pseudo_collate')
    cfg.train_dataloader.pin_memory = False
    cfg.default_hooks.runtime_info = dict(type='RuntimeInfoHook')
    cfg.custom_hooks = [h for h in cfg.custom_hooks if h['type'] != 'ChannelsLastHook']


def benchmark_config(config: Path, work_dir: Path, args: argparse.Namespace, setting: str):
    """The config's model, optimizer and training pipeline; the bundled sample as data;
    iteration-based, no validation, no checkpoints, no ImageNet download."""
    from mmpose_sam.analysis import load_config
    cfg = load_config(config)
    cfg.work_dir = str(work_dir)
    cfg.launcher = 'none'
    cfg.randomness = dict(seed=0)
    cfg.env_cfg.cudnn_benchmark = True  # in both settings: fixed input size
    cfg.model.backbone.init_cfg = None
    loader = cfg.train_dataloader
    loader.batch_size = args.batch_size
    loader.num_workers = args.num_workers
    loader.persistent_workers = args.num_workers > 0
    if args.num_workers == 0:
        loader.pop('prefetch_factor', None)
    loader.sampler = dict(type='InfiniteSampler', shuffle=True)
    loader.dataset.update(data_root=str(SAMPLE_ROOT), ann_file='test_coco.json',
                          data_prefix=dict(img=''))
    cfg.train_cfg = dict(by_epoch=False, max_iters=args.warmup + args.iters, val_interval=10**9)
    for split in ('val', 'test'):
        cfg[f'{split}_cfg'] = cfg[f'{split}_dataloader'] = cfg[f'{split}_evaluator'] = None
    cfg.param_scheduler = None  # constant learning rate: schedules do not change the cost
    cfg.default_hooks.checkpoint = None
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=50)
    cfg.custom_hooks = [h for h in cfg.get('custom_hooks', []) if h['type'] == 'ChannelsLastHook']
    cfg.visualizer.vis_backends = [dict(type='LocalVisBackend')]
    if setting == 'mmpose':
        as_shipped_by_mmpose(cfg)
    return cfg


class StartupClockHook(Hook):
    """Marks when training reaches its first iteration and when that iteration ends."""

    priority = 'HIGHEST'

    def __init__(self):
        self.first_iter_start = self.first_iter_end = None

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        from mmpose_sam.analysis import synchronized_clock
        if self.first_iter_start is None:
            self.first_iter_start = synchronized_clock()

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        from mmpose_sam.analysis import synchronized_clock
        if self.first_iter_end is None:
            self.first_iter_end = synchronized_clock()


class SyncRecorderHook(Hook):
    """Records CUDA host-device synchronisations (file:line of the Python call that caused each)
    from the start of iteration ``start`` to the start of iteration ``stop``, so that every hook
    and the data loading of those iterations are included."""

    priority = 'HIGHEST'

    def __init__(self, start: int, stop: int):
        self.start, self.stop, self.sites = start, stop, Counter()
        self._catcher = None

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter == self.start and torch.cuda.is_available():
            self._catcher = warnings.catch_warnings(record=True)
            self._records = self._catcher.__enter__()
            warnings.simplefilter('always')
            torch.cuda.set_sync_debug_mode('warn')
        elif runner.iter == self.stop:
            self.after_train(runner)

    def after_train(self, runner):
        if self._catcher is None:
            return
        torch.cuda.set_sync_debug_mode('default')
        self._catcher.__exit__(None, None, None)
        self._catcher = None
        for record in self._records:
            if 'synchroniz' in str(record.message):
                self.sites[f'{record.filename}:{record.lineno}'] += 1

    def per_iteration(self) -> Dict[str, float]:
        span = self.stop - self.start
        return {site: count / span for site, count in self.sites.most_common()}


def fixed_batch_throughput(runner, iters: int, warmup: int,
                           profile_dir: Optional[Path] = None) -> Dict[str, object]:
    """Crops/s of ``runner.model.train_step`` on one batch that already sits on the device."""
    from mmpose_sam.analysis import synchronized_clock
    model = runner.model
    # The next batch of the training loop's own iterator: a fresh iter() over a loader with
    # persistent workers and an InfiniteSampler can end at once.
    batch = model.data_preprocessor.cast_data(next(runner.train_loop.dataloader_iterator))
    batch_size = len(batch['data_samples'])
    for _ in range(warmup):
        model.train_step(batch, runner.optim_wrapper)
    start = synchronized_clock()
    for _ in range(iters):
        log_vars = model.train_step(batch, runner.optim_wrapper)
    seconds = synchronized_clock() - start
    result = dict(crops_per_s=iters * batch_size / seconds, ms_per_iter=seconds / iters * 1e3,
                  loss=float(log_vars['loss'].detach()))
    if profile_dir is not None:
        result['profile_top_ops'] = profile_steps(model, batch, runner.optim_wrapper, profile_dir)
    return result


def profile_steps(model, batch, optim_wrapper, out_dir: Path, steps: int = 5) -> list:
    """Top ops of a few train steps by self device time (CPU time without a GPU); writes a Chrome
    trace to ``out_dir/trace.json``."""
    from torch.profiler import ProfilerActivity, profile
    on_gpu = torch.cuda.is_available()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if on_gpu else [])
    with profile(activities=activities) as prof:
        for _ in range(steps):
            model.train_step(batch, optim_wrapper)
        if on_gpu:
            torch.cuda.synchronize()
    out_dir.mkdir(parents=True, exist_ok=True)
    prof.export_chrome_trace(str(out_dir / 'trace.json'))
    key = 'self_device_time_total' if on_gpu else 'self_cpu_time_total'
    events = sorted(prof.key_averages(), key=lambda e: getattr(e, key), reverse=True)[:15]
    print(prof.key_averages().table(sort_by=key, row_limit=15), flush=True)
    return [dict(op=e.key, calls=e.count, self_ms_per_step=getattr(e, key) / 1e3 / steps)
            for e in events]


def run_row(name: str, config: Path, setting: str, args: argparse.Namespace) -> dict:
    from mmpose_sam.runners import build_runner
    from mmpose_sam.analysis import synchronized_clock
    from mmpose_sam.engine import TrainThroughputHook

    work_dir = (args.work_dir / f'{setting}_{name.lower()}').resolve()
    cfg = benchmark_config(config.resolve(), work_dir, args, setting)
    start = synchronized_clock()
    runner = build_runner(cfg)
    built = synchronized_clock()
    throughput = TrainThroughputHook(warmup_iters=args.warmup)
    clock = StartupClockHook()
    runner.register_hook(throughput)
    runner.register_hook(clock)
    syncs = SyncRecorderHook(args.warmup, args.warmup + min(10, args.iters))
    if args.sync_check:
        runner.register_hook(syncs)
    on_gpu = torch.cuda.is_available()
    if on_gpu:
        torch.cuda.reset_peak_memory_stats()
    train_start = synchronized_clock()
    runner.train()
    timer = runner.message_hub.get_scalar
    measured = slice(args.warmup, None)
    data_time = sum(timer('train/data_time').data[0][measured])
    iter_time = sum(timer('train/time').data[0][measured])
    result = dict(
        model=name, setting=setting, config=str(config),
        device=str(next(runner.model.parameters()).device),
        params=sum(p.numel() for p in runner.model.parameters()),
        end_to_end_crops_per_s=throughput.samples_per_second,
        data_time_share=data_time / iter_time if iter_time else None,
        startup_s=dict(build_runner=built - start,
                       to_first_iter=clock.first_iter_start - train_start,
                       first_iter=clock.first_iter_end - clock.first_iter_start))
    model_only = fixed_batch_throughput(
        runner, args.model_only_iters, 5,
        work_dir / 'profile' if args.profile else None)
    result.update({f'model_only_{key}': value for key, value in model_only.items()})
    result['peak_gpu_memory_gib'] = (torch.cuda.max_memory_allocated() / 2**30
                                     if on_gpu else None)
    if args.sync_check:
        result['syncs_per_iteration'] = syncs.per_iteration() if on_gpu else 'no GPU'
    del runner
    gc.collect()
    if on_gpu:
        torch.cuda.empty_cache()
    return result


def _fmt(value: Optional[float], spec: str) -> str:
    return '-' if value is None else format(value, spec)


def throughput_table(rows: Dict[str, dict], setting: str) -> str:
    from mmpose_sam.analysis import format_ratio
    header = ['model', 'setting', 'end to end (crops/s)', 'data-time share',
              'model only (crops/s)', 'model only (ms/iter)', 'peak GPU memory (GiB)',
              'start-up: runner / to 1st iter / 1st iter (s)']
    lines = ['| ' + ' | '.join(header) + ' |', '|' + ' --- |' * len(header)]
    for r in rows.values():
        s = r['startup_s']
        lines.append('| ' + ' | '.join([
            r['model'], r['setting'], _fmt(r['end_to_end_crops_per_s'], '.1f'),
            _fmt(r['data_time_share'], '.0%'), _fmt(r['model_only_crops_per_s'], '.1f'),
            _fmt(r['model_only_ms_per_iter'], '.1f'), _fmt(r['peak_gpu_memory_gib'], '.2f'),
            f'{s["build_runner"]:.1f} / {s["to_first_iter"]:.1f} / {s["first_iter"]:.1f}'
        ]) + ' |')

    def ratio_row(label, a, b):
        return '| ' + ' | '.join([
            label, '', format_ratio(a['end_to_end_crops_per_s'], b['end_to_end_crops_per_s']),
            '', format_ratio(a['model_only_crops_per_s'], b['model_only_crops_per_s']),
            format_ratio(a['model_only_ms_per_iter'], b['model_only_ms_per_iter']),
            format_ratio(a['peak_gpu_memory_gib'], b['peak_gpu_memory_gib']), '']) + ' |'

    for s in SETTINGS:
        if f'{s}/SAM' in rows and f'{s}/SimpleBaseline' in rows:
            lines.append(ratio_row(f'SAM / SB ({s})', rows[f'{s}/SAM'],
                                   rows[f'{s}/SimpleBaseline']))
    for model in ('SimpleBaseline', 'SAM'):
        if f'fast/{model}' in rows and f'mmpose/{model}' in rows:
            lines.append(ratio_row(f'{model}: fast / mmpose', rows[f'fast/{model}'],
                                   rows[f'mmpose/{model}']))
    return '\n'.join(lines + ['', setting])


def main(argv=None) -> str:
    args = parse_args(argv)
    on_gpu = torch.cuda.is_available()
    device_name = torch.cuda.get_device_name() if on_gpu else \
        f'CPU {platform.processor() or platform.machine()} ({torch.get_num_threads()} threads)'
    args.work_dir = args.work_dir.resolve()
    out = (args.out or args.work_dir / 'throughput.md').resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    os.chdir(ROOT)

    def report(rows):
        return dict(device=device_name, torch=torch.__version__, cpu_count=os.cpu_count(),
                    args={k: str(v) for k, v in vars(args).items()}, rows=rows)

    rows: Dict[str, dict] = {}
    process_start = time.monotonic()
    for setting in args.settings:
        for name, config in (('SimpleBaseline', args.sb_config), ('SAM', args.sam_config)):
            print(f'[benchmark_train] {setting} {name}: {config.name}, {args.warmup}+{args.iters} '
                  f'iterations of batch {args.batch_size}', flush=True)
            row = rows[f'{setting}/{name}'] = run_row(name, config, setting, args)
            out.with_suffix('.json').write_text(json.dumps(report(rows), indent=2) + '\n')
            print(f'[benchmark_train] {setting} {name}: end to end '
                  f'{_fmt(row["end_to_end_crops_per_s"], ".1f")} crops/s, model only '
                  f'{row["model_only_crops_per_s"]:.1f} crops/s '
                  f'({time.monotonic() - process_start:.0f} s so far)', flush=True)

    setting_text = (
        f'Training throughput on {device_name} ({os.cpu_count()} CPU cores), torch '
        f'{torch.__version__}, batch {args.batch_size}, {args.num_workers} data loader workers, '
        'models from scratch, the bundled COCO sample through the configs\' augmenting pipeline. '
        f'End to end: {args.iters} iterations timed after {args.warmup}. Model only: '
        f'{args.model_only_iters} train_step calls on one batch already on the device. Command: '
        f'python tools/benchmark_train.py --settings {" ".join(args.settings)} --iters '
        f'{args.iters} --warmup {args.warmup} --model-only-iters {args.model_only_iters} '
        f'--batch-size {args.batch_size} --num-workers {args.num_workers}')
    table = throughput_table(rows, setting_text)
    out.write_text(table + '\n')
    print('\n' + table, flush=True)
    print(f'[benchmark_train] wrote {out}', flush=True)
    return table


if __name__ == '__main__':
    main()
