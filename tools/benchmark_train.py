"""Training throughput of SAM and SimpleBaseline, with and without the speed settings, in one run.

    python tools/benchmark_train.py [--settings mmpose fast] [--iters 100] [--warmup 20] [--dry-run]

A benchmark, not a test: for each setting (``mmpose``: MMPose's runtime as it ships; ``fast``: our
configs) and model it trains on the bundled COCO sample end to end (data loading included), then
``--model-only-iters`` steps on one batch on the device, and writes a markdown table and JSON
(rewritten after every row). What each setting and option means: README "Training speed".
"""
import argparse
import gc
import json
import os
import platform
import shlex
import sys
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Dict, Optional

import torch
# First: importing mmpose_sam registers the plugin and quiets pkg_resources.
from mmpose_sam.errors import install_excepthook  # noqa: I001
from mmengine.hooks import Hook
from mmpose_sam.reliability.checkpoint import AtomicLocalBackend
from toolkit.analysis import (format_ratio, load_config, synchronized_clock, table_head,
                              table_row)
from toolkit.runners import build_runner
from toolkit.throughput_hook import TrainThroughputHook

ROOT = Path(__file__).resolve().parents[1]
COCO_DIR = ROOT / 'configs' / 'body_2d_keypoint' / 'topdown_heatmap' / 'coco'
SB_CONFIG = COCO_DIR / 'td-hm_simplebaseline-res50_8xb64-210e_coco-256x192.py'
SAM_CONFIG = COCO_DIR / 'td-hm_sam-res50-seq3x3_8xb64-210e_coco-256x192.py'
SAMPLE_ROOT = ROOT / 'data' / 'coco_sample'
SETTINGS = ('mmpose', 'fast')
# MMPose 1.3.2's configs/_base_/default_runtime.py (tests/test_benchmark_train.py compares).
MMPOSE_CUSTOM_HOOKS = [dict(type='SyncBuffersHook')]
# MMEngine's own AMP wrapper, by its registry name (ours is registered as BF16AmpOptimWrapper).
MMENGINE_AMP = 'AmpOptimWrapper'
# A whole file or nothing: a run killed mid-write keeps the previous version.
put_text = AtomicLocalBackend().put_text


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sb-config', type=Path, default=SB_CONFIG)
    parser.add_argument('--sam-config', type=Path, default=SAM_CONFIG)
    parser.add_argument('--settings', nargs='+', choices=SETTINGS, default=list(SETTINGS))
    parser.add_argument('--iters', type=int, default=100, help='timed end-to-end iterations')
    parser.add_argument('--warmup', type=int, default=20, help='untimed iterations first')
    parser.add_argument('--model-only-iters', type=int, default=50,
                        help='timed fixed-batch iterations per row')
    parser.add_argument('--model-only-warmup', type=int, default=5,
                        help='untimed fixed-batch iterations before them')
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument('--num-workers', type=int, default=8, help='data loader workers')
    parser.add_argument('--profile', action='store_true', help='torch.profiler of model-only steps')
    parser.add_argument('--profile-steps', type=int, default=5, help='steps --profile records')
    parser.add_argument('--sync-check', action='store_true',
                        help='list host-device synchronisations (GPU only)')
    parser.add_argument('--work-dir', type=Path, default=Path('outputs/benchmark_train'))
    parser.add_argument('--out', type=Path, help='markdown table (default: WORK_DIR/throughput.md)')
    parser.add_argument('--time-limit', type=float, metavar='S',
                        help='start no row that would end more than S s after the run started')
    parser.add_argument('--dry-run', action='store_true',
                        help='print and build each config and its runner, train nothing')
    parser.add_argument('--as-if-gpu', action='store_true',
                        help='with --dry-run: build the configs as on a GPU (CUDA branch)')
    args = parser.parse_args(argv)
    for name in ('iters', 'warmup', 'model_only_iters', 'model_only_warmup', 'batch_size',
                 'profile_steps'):
        if getattr(args, name) < 1:
            parser.error(f'--{name.replace("_", "-")} must be at least 1')
    if args.as_if_gpu and not args.dry_run:
        parser.error('--as-if-gpu needs --dry-run (a GPU config cannot train without a GPU)')
    if args.time_limit is not None and args.time_limit <= 0:
        parser.error('--time-limit must be positive')
    return args


def as_shipped_by_mmpose(cfg, cuda: bool) -> None:
    """Undo the speed and safety settings of our configs: MMPose's runtime, with MMEngine's own
    bf16 AMP (GradScaler included) when ``cuda``, float32 otherwise."""
    optimizer = cfg.optim_wrapper.optimizer
    cfg.optim_wrapper = (dict(type=MMENGINE_AMP, dtype='bfloat16', optimizer=optimizer)
                         if cuda else dict(type='OptimWrapper', optimizer=optimizer))
    cfg.model.data_preprocessor.type = 'PoseDataPreprocessor'
    cfg.model.data_preprocessor.non_blocking = False
    cfg.model.train_cfg = dict(compute_acc=True)
    cfg.train_dataloader.collate_fn = dict(type='pseudo_collate')
    cfg.train_dataloader.pin_memory = False
    cfg.default_hooks.runtime_info = dict(type='RuntimeInfoHook')
    cfg.train_dataloader.dataset.type = 'CocoDataset'
    cfg.custom_hooks = [dict(h) for h in MMPOSE_CUSTOM_HOOKS]


def benchmark_config(name: str, config: Path, args: argparse.Namespace, setting: str,
                     cuda: Optional[bool] = None):
    """The config's model, optimizer, training pipeline and hooks; the bundled sample as data;
    iteration-based, no validation, no checkpoints, no ImageNet download; the work dir of the row
    of model ``name``. ``cuda``: build it as for a GPU run (default: whether this machine has
    one)."""
    if cuda is None:
        cuda = torch.cuda.is_available()
    cfg = load_config(config.resolve())
    cfg.work_dir = str((args.work_dir / f'{setting}_{name.lower()}').resolve())
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
    cfg.visualizer.vis_backends = [dict(type='LocalVisBackend')]
    if setting == 'mmpose':
        as_shipped_by_mmpose(cfg, cuda)
    return cfg


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


def stop_loader_workers(runner) -> None:
    """Shut the training loader's persistent workers down now. Left to the garbage collector
    (the runner is in reference cycles), the same shutdown took 5.8 s instead of 0.07 s per row
    (measured on the CPU, 1 worker): seconds of a device check's budget, every row."""
    iterator = getattr(getattr(runner.train_loop, 'dataloader_iterator', None), '_iterator', None)
    shutdown = getattr(iterator, '_shutdown_workers', None)  # torch's multi-process iterator
    if shutdown is not None:
        shutdown()


def fixed_batch_throughput(runner, iters: int, warmup: int, profile_dir: Optional[Path] = None,
                           profile_steps_count: int = 5) -> Dict[str, object]:
    """Crops/s of ``runner.model.train_step`` on one batch that already sits on the device."""
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
        result['profile_top_ops'] = profile_steps(model, batch, runner.optim_wrapper, profile_dir,
                                                  profile_steps_count)
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
    averages = prof.key_averages()  # once: 4.5 s for 5 steps of SimpleBaseline on the CPU
    events = sorted(averages, key=lambda e: getattr(e, key), reverse=True)[:15]
    print(averages.table(sort_by=key, row_limit=15), flush=True)
    return [dict(op=e.key, calls=e.count, self_ms_per_step=getattr(e, key) / 1e3 / steps)
            for e in events]


def run_row(name: str, config: Path, setting: str, args: argparse.Namespace) -> dict:
    cfg = benchmark_config(name, config, args, setting)
    start = synchronized_clock()
    runner = build_runner(cfg)
    built = synchronized_clock()
    throughput = TrainThroughputHook(warmup_iters=args.warmup)
    runner.register_hook(throughput)
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
        optim_wrapper=f'{type(runner.optim_wrapper).__module__}.'
                      f'{type(runner.optim_wrapper).__name__}',
        custom_hooks=[h['type'] for h in cfg.custom_hooks],
        params=sum(p.numel() for p in runner.model.parameters()),
        end_to_end_crops_per_s=throughput.samples_per_second,
        data_time_share=data_time / iter_time if iter_time else None,
        startup_s=dict(build_runner=built - start,
                       to_first_iter=throughput.first_iter_start - train_start,
                       first_iter=throughput.first_iter_end - throughput.first_iter_start))
    model_only = fixed_batch_throughput(
        runner, args.model_only_iters, args.model_only_warmup,
        Path(cfg.work_dir, 'profile') if args.profile else None, args.profile_steps)
    result.update({f'model_only_{key}': value for key, value in model_only.items()})
    result['peak_gpu_memory_gib'] = (torch.cuda.max_memory_allocated() / 2**30
                                     if on_gpu else None)
    if args.sync_check:
        result['syncs_per_iteration'] = syncs.per_iteration() if on_gpu else 'no GPU'
    stop_loader_workers(runner)
    del runner
    gc.collect()
    if on_gpu:
        torch.cuda.empty_cache()
    return result


def dry_run_row(name: str, config: Path, setting: str, args: argparse.Namespace) -> None:
    """Build one row's config as the run would (as on a GPU with ``--as-if-gpu``), print it,
    build its runner, optimizer wrapper and training data loader; train nothing."""
    cuda = args.as_if_gpu or torch.cuda.is_available()
    key = f'{setting}/{name}'
    cfg = benchmark_config(name, config, args, setting, cuda=cuda)
    where = 'as on a GPU' if cuda else 'as on this CPU'
    print(f'----- config {key} ({where}) -----\n{cfg.pretty_text}\n----- end of config {key} -----',
          flush=True)
    runner = build_runner(cfg)  # MMEngine logs cfg.pretty_text and dumps the config here too
    try:
        wrapper = runner.build_optim_wrapper(cfg.optim_wrapper)
        built = f'built: {type(wrapper).__module__}.{type(wrapper).__name__}'
    except AssertionError as error:  # MMEngine's AmpOptimWrapper without an accelerator
        if torch.cuda.is_available() or cfg.optim_wrapper.type != MMENGINE_AMP:
            raise
        plain = runner.build_optim_wrapper(dict(type='OptimWrapper',
                                                optimizer=cfg.optim_wrapper.optimizer))
        built = (
            f'{MMENGINE_AMP} NOT built on this CPU (MMEngine\'s AmpOptimWrapper asserts a GPU: '
            f'{str(error).strip()!r}); its optimizer built in a plain OptimWrapper instead: '
            f'{type(plain.optimizer).__name__}')
    # The loader object only: its workers start with the first batch, which is never asked for.
    loader = runner.build_dataloader(cfg.train_dataloader, seed=runner.seed)
    collate = getattr(loader.collate_fn, 'func', loader.collate_fn)  # through functools.partial
    print(f'[benchmark_train] dry run {key} ({where}): '
          f'optim_wrapper.type={cfg.optim_wrapper.type}; '
          f'custom_hooks={",".join(h["type"] for h in cfg.custom_hooks)}; '
          f'runner built (hooks: {",".join(type(h).__name__ for h in runner.hooks)}); '
          f'optim wrapper {built}; train data loader built: {type(loader.dataset).__name__} of '
          f'{len(loader.dataset)} samples, batch {loader.batch_size}, collate '
          f'{getattr(collate, "__name__", type(collate).__name__)}; nothing trained', flush=True)
    del runner, loader
    gc.collect()


def row_estimate(rows: Dict[str, dict], setting: str) -> float:
    """Seconds the next row of ``setting`` may take: its setting's longest row so far plus a
    quarter, else twice the longest row (MMPose's runtime feeds the GPU slower than ours), else
    0 (the first row always runs)."""
    same = [r['row_s'] for r in rows.values() if r['setting'] == setting]
    if same:
        return 1.25 * max(same)
    return 2 * max((r['row_s'] for r in rows.values()), default=0.)


def _fmt(value: Optional[float], spec: str) -> str:
    return '-' if value is None else format(value, spec)


def throughput_table(rows: Dict[str, dict], setting: str) -> str:
    lines = table_head(['model', 'setting', 'end to end (crops/s)', 'data-time share',
                        'model only (crops/s)', 'model only (ms/iter)', 'peak GPU memory (GiB)',
                        'start-up: runner / to 1st iter / 1st iter (s)'])
    for r in rows.values():
        s = r['startup_s']
        lines.append(table_row([
            r['model'], r['setting'], _fmt(r['end_to_end_crops_per_s'], '.1f'),
            _fmt(r['data_time_share'], '.0%'), _fmt(r['model_only_crops_per_s'], '.1f'),
            _fmt(r['model_only_ms_per_iter'], '.1f'), _fmt(r['peak_gpu_memory_gib'], '.2f'),
            f'{s["build_runner"]:.1f} / {s["to_first_iter"]:.1f} / {s["first_iter"]:.1f}']))

    def ratio_row(label, a, b):
        return table_row([label, ''] + [
            format_ratio(a[key], b[key]) if key else '' for key in (
                'end_to_end_crops_per_s', None, 'model_only_crops_per_s', 'model_only_ms_per_iter',
                'peak_gpu_memory_gib', None)])

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
    run_start = time.monotonic()
    argv = sys.argv[1:] if argv is None else list(map(str, argv))
    args = parse_args(argv)
    args.work_dir = args.work_dir.resolve()
    out = (args.out or args.work_dir / 'throughput.md').resolve()
    os.chdir(ROOT)
    planned = [(setting, name, config) for setting in args.settings
               for name, config in (('SimpleBaseline', args.sb_config), ('SAM', args.sam_config))]
    if args.dry_run:
        for setting, name, config in planned:
            dry_run_row(name, config, setting, args)
        print('[benchmark_train] dry run: every config printed and built; nothing measured',
              flush=True)
        return ''
    device_name = torch.cuda.get_device_name() if torch.cuda.is_available() else \
        f'CPU {platform.processor() or platform.machine()} ({torch.get_num_threads()} threads)'
    out.parent.mkdir(parents=True, exist_ok=True)

    def write_report(skipped):
        report = dict(device=device_name, torch=torch.__version__, cpu_count=os.cpu_count(),
                      args={k: str(v) for k, v in vars(args).items()}, rows=rows, skipped=skipped)
        put_text(json.dumps(report, indent=2) + '\n', out.with_suffix('.json'))

    rows: Dict[str, dict] = {}
    skipped = []
    for index, (setting, name, config) in enumerate(planned):
        elapsed = time.monotonic() - run_start
        estimate = row_estimate(rows, setting)
        if args.time_limit is not None and elapsed + estimate > args.time_limit:
            skipped = [f'{s}/{n}' for s, n, _ in planned[index:]]
            print(f'[benchmark_train] time limit: {elapsed:.0f} s of {args.time_limit:.0f} s used '
                  f'and the next row would take about {estimate:.0f} s: skipped '
                  f'{", ".join(skipped)}', flush=True)
            break
        print(f'[benchmark_train] {setting} {name}: {config.name}, {args.warmup}+{args.iters} '
              f'iterations of batch {args.batch_size}', flush=True)
        row_start = time.monotonic()
        row = rows[f'{setting}/{name}'] = run_row(name, config, setting, args)
        row['row_s'] = time.monotonic() - row_start
        # Both files after every row, each written whole: a run cut short keeps what it measured.
        write_report([])
        put_text(throughput_table(rows, 'Partial: the run is still going.') + '\n', out)
        print(f'[benchmark_train] {setting} {name}: end to end '
              f'{_fmt(row["end_to_end_crops_per_s"], ".1f")} crops/s, model only '
              f'{row["model_only_crops_per_s"]:.1f} crops/s '
              f'({time.monotonic() - run_start:.0f} s so far)', flush=True)
    if skipped:
        write_report(skipped)

    setting_text = (
        f'Training throughput on {device_name} ({os.cpu_count()} CPU cores), torch '
        f'{torch.__version__}, batch {args.batch_size}, {args.num_workers} data loader workers, '
        'models from scratch, the bundled COCO sample through the configs\' augmenting pipeline. '
        f'End to end: {args.iters} iterations timed after {args.warmup}. Model only: '
        f'{args.model_only_iters} train_step calls after {args.model_only_warmup} on one batch '
        f'already on the device. Configs: {args.sb_config.name}, {args.sam_config.name}. Command: '
        + shlex.join(['python', 'tools/benchmark_train.py', *argv])
        + (f'. Skipped for the time limit ({args.time_limit:.0f} s): {", ".join(skipped)}'
           if skipped else ''))
    table = throughput_table(rows, setting_text)
    put_text(table + '\n', out)
    print('\n' + table, flush=True)
    print(f'[benchmark_train] wrote {out}', flush=True)
    return table


if __name__ == '__main__':
    install_excepthook()  # an uncaught UserError: one line, no traceback
    main()
