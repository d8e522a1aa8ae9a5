"""Training throughput of SAM against SimpleBaseline (crops/s), both measured in the same run.

    python tools/benchmark_train.py [--iters 300] [--warmup 50] [--model-only-iters 100]
                                    [--batch-size 64] [--amp auto|bf16|fp16|none]
                                    [--num-workers 8] [--sam-config C] [--sb-config C] [--out PATH]

A benchmark, not a test: it reports numbers and asserts nothing about them. For each model, one
after the other in this process (SimpleBaseline first):

1. **end to end**: MMEngine's runner trains the config's model from scratch, iteration-based, on
   the bundled COCO sample (data/coco_sample: 12 people, drawn with replacement by an
   InfiniteSampler) through the config's own training pipeline, augmentation included, with
   AmpOptimWrapper. :class:`mmpose_sam.engine.TrainThroughputHook` times the iterations after the
   warm-up, data loading included. On 12 people this measures the loop, not accuracy.
2. **model only**: the same model and optimizer wrapper then train ``--model-only-iters`` steps on one
   fixed batch already on the device (forward, loss, backward, optimizer step), which leaves the
   data loader out: the number to compare the two networks by.

Defaults are the paper's setting on one GPU: the 256x192 configs, batch 64 (the configs' per-GPU
batch), bf16 autocast on a GPU (``--amp auto``), cuDNN autotuning on. On a CPU ``auto`` means no
AMP (MMEngine's AmpOptimWrapper needs an accelerator); tests run it there with tiny settings
only to check that it works. The device is the runner's: a GPU when one is visible.
Writes a markdown table (and the same as JSON beside it) with the SAM/SB ratios.
"""
import argparse
import gc
import json
import os
import platform
from pathlib import Path
from typing import Dict, Optional

ROOT = Path(__file__).resolve().parents[1]
COCO_DIR = ROOT / 'configs' / 'body_2d_keypoint' / 'topdown_heatmap' / 'coco'
SB_CONFIG = COCO_DIR / 'td-hm_simplebaseline-res50_8xb64-210e_coco-256x192.py'
SAM_CONFIG = COCO_DIR / 'td-hm_sam-res50-seq3x3_8xb64-210e_coco-256x192.py'
SAMPLE_ROOT = ROOT / 'data' / 'coco_sample'
AMP_DTYPES = {'bf16': 'bfloat16', 'fp16': 'float16'}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sb-config', type=Path, default=SB_CONFIG)
    parser.add_argument('--sam-config', type=Path, default=SAM_CONFIG)
    parser.add_argument('--iters', type=int, default=300, help='timed iterations per phase')
    parser.add_argument('--warmup', type=int, default=50, help='untimed iterations first')
    parser.add_argument('--model-only-iters', type=int, default=100,
                        help='timed fixed-batch iterations per model (after 10 untimed)')
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument('--num-workers', type=int, default=8, help='data loader workers')
    parser.add_argument('--amp', choices=['auto', 'bf16', 'fp16', 'none'], default='auto')
    parser.add_argument('--work-dir', type=Path, default=Path('work_dirs/benchmark_train'))
    parser.add_argument('--out', type=Path, help='markdown table (default: WORK_DIR/throughput.md)')
    args = parser.parse_args(argv)
    for name in ('iters', 'warmup', 'model_only_iters', 'batch_size'):
        if getattr(args, name) < 1:
            parser.error(f'--{name.replace("_", "-")} must be at least 1')
    return args


def benchmark_config(config: Path, work_dir: Path, args: argparse.Namespace, amp: Optional[str]):
    """The config's model, optimizer and training pipeline; the bundled sample as data;
    iteration-based, no validation, no checkpoints, no ImageNet download."""
    from mmpose_sam.analysis import load_config
    cfg = load_config(config)
    cfg.work_dir = str(work_dir)
    cfg.launcher = 'none'
    cfg.randomness = dict(seed=0)
    cfg.env_cfg.cudnn_benchmark = True  # fixed input size: let cuDNN pick its fastest kernels
    cfg.model.backbone.init_cfg = None
    loader = cfg.train_dataloader
    loader.batch_size = args.batch_size
    loader.num_workers = args.num_workers
    loader.persistent_workers = args.num_workers > 0
    loader.sampler = dict(type='InfiniteSampler', shuffle=True)
    loader.dataset.update(data_root=str(SAMPLE_ROOT), ann_file='test_coco.json',
                          data_prefix=dict(img=''))
    cfg.train_cfg = dict(by_epoch=False, max_iters=args.warmup + args.iters, val_interval=10**9)
    for split in ('val', 'test'):
        cfg[f'{split}_cfg'] = cfg[f'{split}_dataloader'] = cfg[f'{split}_evaluator'] = None
    cfg.param_scheduler = None  # constant learning rate: schedules do not change the cost
    optimizer = cfg.optim_wrapper.optimizer
    cfg.optim_wrapper = (dict(type='AmpOptimWrapper', dtype=AMP_DTYPES[amp], optimizer=optimizer)
                         if amp else dict(type='OptimWrapper', optimizer=optimizer))
    cfg.default_hooks.checkpoint = None
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=50)
    cfg.custom_hooks = []
    cfg.visualizer.vis_backends = [dict(type='LocalVisBackend')]
    return cfg


def fixed_batch_throughput(runner, iters: int, warmup: int) -> Dict[str, float]:
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
    return dict(crops_per_s=iters * batch_size / seconds, ms_per_iter=seconds / iters * 1e3,
                loss=float(log_vars['loss'].detach()))


def run_model(config: Path, work_dir: Path, args: argparse.Namespace,
              amp: Optional[str]) -> dict:
    import torch
    from mmengine.runner import Runner
    from mmpose_sam.engine import TrainThroughputHook

    cfg = benchmark_config(config, work_dir, args, amp)
    runner = Runner.from_cfg(cfg)
    hook = TrainThroughputHook(warmup_iters=args.warmup)
    runner.register_hook(hook)
    on_gpu = next(runner.model.parameters()).is_cuda
    if on_gpu:
        torch.cuda.reset_peak_memory_stats()
    runner.train()
    result = dict(config=str(config), device=str(next(runner.model.parameters()).device),
                  params=sum(p.numel() for p in runner.model.parameters()),
                  end_to_end_crops_per_s=hook.samples_per_second)
    model_only = fixed_batch_throughput(runner, args.model_only_iters, min(args.warmup, 10))
    result.update({f'model_only_{key}': value for key, value in model_only.items()})
    result['peak_gpu_memory_gib'] = (torch.cuda.max_memory_allocated() / 2**30
                                     if on_gpu else None)
    del runner
    gc.collect()
    if on_gpu:
        torch.cuda.empty_cache()
    return result


def _fmt(value: Optional[float], spec: str) -> str:
    return '-' if value is None else format(value, spec)


def throughput_table(results: Dict[str, dict], setting: str) -> str:
    from mmpose_sam.analysis import format_ratio as _ratio
    header = ['model', 'config', 'params', 'end to end (crops/s)', 'model only (crops/s)',
              'model only (ms/iter)', 'peak GPU memory (GiB)']
    lines = ['| ' + ' | '.join(header) + ' |', '|' + ' --- |' * len(header)]
    for name, r in results.items():
        lines.append('| ' + ' | '.join([
            name, Path(r['config']).name, f'{r["params"]:,}', _fmt(r['end_to_end_crops_per_s'],
                                                                   '.1f'),
            _fmt(r['model_only_crops_per_s'], '.1f'), _fmt(r['model_only_ms_per_iter'], '.1f'),
            _fmt(r['peak_gpu_memory_gib'], '.2f')]) + ' |')
    sb, sam = results['SimpleBaseline'], results['SAM']
    lines.append('| ' + ' | '.join([
        'SAM / SB', '', _ratio(sam['params'], sb['params']),
        _ratio(sam['end_to_end_crops_per_s'], sb['end_to_end_crops_per_s']),
        _ratio(sam['model_only_crops_per_s'], sb['model_only_crops_per_s']),
        _ratio(sam['model_only_ms_per_iter'], sb['model_only_ms_per_iter']),
        _ratio(sam['peak_gpu_memory_gib'], sb['peak_gpu_memory_gib'])]) + ' |')
    lines += ['', setting]
    return '\n'.join(lines)


def main(argv=None) -> str:
    args = parse_args(argv)
    import torch
    import mmpose_sam  # noqa: F401  (registers the models and the hook)
    on_gpu = torch.cuda.is_available()
    amp = None if args.amp == 'none' or (args.amp == 'auto' and not on_gpu) else \
        ('bf16' if args.amp == 'auto' else args.amp)
    device_name = torch.cuda.get_device_name() if on_gpu else \
        f'CPU {platform.processor() or platform.machine()} ({torch.get_num_threads()} threads)'
    work_dir = args.work_dir.resolve()
    out = (args.out or work_dir / 'throughput.md').resolve()
    os.chdir(ROOT)

    def report(results):
        return dict(device=device_name, torch=torch.__version__, amp=amp,
                    args={k: str(v) for k, v in vars(args).items()}, results=results)

    results: Dict[str, dict] = {}
    for name, config in (('SimpleBaseline', args.sb_config), ('SAM', args.sam_config)):
        print(f'[benchmark_train] {name}: {config.name}, {args.warmup}+{args.iters} iterations '
              f'of batch {args.batch_size}, AMP {amp or "off"}', flush=True)
        results[name] = run_model(config.resolve(), work_dir / name.lower(), args, amp)
        # each model's numbers as soon as they exist, in case a time limit stops the next one
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix('.json').write_text(json.dumps(report(results), indent=2) + '\n')
        print(f'[benchmark_train] {name}: end to end '
              f'{_fmt(results[name]["end_to_end_crops_per_s"], ".1f")} crops/s, model only '
              f'{results[name]["model_only_crops_per_s"]:.1f} crops/s', flush=True)

    setting = (f'Training throughput on {device_name}, torch {torch.__version__}, batch '
               f'{args.batch_size}, AMP {amp or "off"}, cuDNN benchmark on, models from scratch. '
               f'End to end: MMEngine runner on the bundled COCO sample with the config\'s '
               f'augmenting pipeline and {args.num_workers} data loader workers, '
               f'{args.iters} iterations timed after {args.warmup} warm-up. Model only: '
               f'{args.model_only_iters} train_step calls on one batch already on the device. '
               'Both models '
               'in one process, one after the other. Command: python tools/benchmark_train.py '
               f'--iters {args.iters} --warmup {args.warmup} --model-only-iters '
               f'{args.model_only_iters} --batch-size {args.batch_size} '
               f'--num-workers {args.num_workers} --amp {args.amp}')
    table = throughput_table(results, setting)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table + '\n')
    out.with_suffix('.json').write_text(json.dumps(report(results), indent=2) + '\n')
    print('\n' + table, flush=True)
    print(f'[benchmark_train] wrote {out}', flush=True)
    return table


if __name__ == '__main__':
    main()
