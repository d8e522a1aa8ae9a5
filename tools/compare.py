"""SAM against SimpleBaseline under the same recipe, in one command.

    python tools/compare.py [--sam-config C] [--sb-config C] [--sam-checkpoint P]
                            [--sb-checkpoint P] [--epochs N] [--work-dir DIR] [--out PATH]
                            [--device DEVICE] [--seed S]

For each model, one after the other: train it with MMEngine's runner (skipped when its checkpoint
is given), evaluate it with runner.test() (COCO AP / AP .5 / AR), then count its parameters and
GMACs (mmpose_sam.analysis, as tools/model_complexity.py) and time its forward pass per crop at
batch 1 and 8 on the same device in the same process, so the two rows are comparable. Writes a
markdown table with both rows and the SAM/SB ratios to --out and prints it.

Defaults: the two configs for the bundled COCO sample (data/coco_sample), which share everything
but the model. On that sample the AP is a memorisation check, not an accuracy comparison; use the
coco/ configs for that. Training and testing run on the runner's device (a GPU when one is
visible); ``--device cpu`` hides the GPUs so that everything runs on the CPU.
"""
import argparse
import gc
import os
import time
from pathlib import Path
from typing import Dict, Optional

# torch and the OpenMMLab stack are imported inside the functions: `--device cpu` must hide the
# GPUs before anything can initialise CUDA.

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DIR = ROOT / 'configs' / 'body_2d_keypoint' / 'topdown_heatmap' / 'coco_sample'
SAM_CONFIG = SAMPLE_DIR / 'td-hm_sam-res50-seq3x3_1xb16-150e_coco-sample-128x96.py'
SB_CONFIG = SAMPLE_DIR / 'td-hm_simplebaseline-res50_1xb16-150e_coco-sample-128x96.py'
METRICS = ('coco/AP', 'coco/AP .5', 'coco/AR')
BATCH_SIZES = (1, 8)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sam-config', type=Path, default=SAM_CONFIG)
    parser.add_argument('--sb-config', type=Path, default=SB_CONFIG)
    parser.add_argument('--sam-checkpoint', help='evaluate this checkpoint instead of training')
    parser.add_argument('--sb-checkpoint', help='evaluate this checkpoint instead of training')
    parser.add_argument('--epochs', type=int, help='override the number of training epochs')
    parser.add_argument('--work-dir', type=Path, default=Path('work_dirs/compare'))
    parser.add_argument('--out', type=Path, help='markdown table (default: WORK_DIR/comparison.md)')
    parser.add_argument('--device', help='cpu, cuda or cuda:N (default: cuda if available)')
    parser.add_argument('--seed', type=int, default=0, help='same seed for both models')
    parser.add_argument('--latency-warmup', type=int, default=5)
    parser.add_argument('--latency-repeats', type=int, default=20)
    return parser.parse_args(argv)


def recipe(config: Path, work_dir: Path, epochs: Optional[int], seed: int):
    """The config as the runner gets it: own work dir, no launcher, the shared seed and, with
    ``epochs``, a shortened schedule (epoch-based schedulers end there, later milestones go) that
    keeps only the final checkpoint."""
    from mmpose_sam.analysis import load_config
    cfg = load_config(config)
    cfg.work_dir = str(work_dir.resolve())
    cfg.launcher = 'none'
    cfg.randomness = dict(seed=seed)
    if epochs:
        cfg.train_cfg.max_epochs = epochs
        # No validation during the short run: runner.test() evaluates the same final weights
        # right after (MMEngine would otherwise validate at the last epoch whatever the interval).
        cfg.train_cfg.val_begin = epochs + 1
        for scheduler in cfg.param_scheduler:
            if scheduler.get('by_epoch', True):
                scheduler.end = epochs
                if 'milestones' in scheduler:
                    scheduler.milestones = [m for m in scheduler.milestones if m < epochs]
        if cfg.get('default_hooks', {}).get('checkpoint'):
            cfg.default_hooks.checkpoint.interval = epochs  # keep the final weights
    return cfg


def train_and_test(cfg, checkpoint: Optional[str]) -> Dict[str, float]:
    """Train (unless ``checkpoint`` is given, which is then loaded) and test; COCO metrics plus
    ``train_s``, the wall time of runner.train()."""
    from mmpose_sam.runners import build_runner
    if checkpoint:
        cfg.load_from = checkpoint
    runner = build_runner(cfg)
    train_s = None
    if not checkpoint:
        start = time.perf_counter()
        runner.train()
        train_s = time.perf_counter() - start
    metrics = dict(runner.test(), train_s=train_s)
    del runner
    gc.collect()
    return metrics


def profile(cfg, device: str, warmup: int, repeats: int) -> dict:
    """Parameters, GMACs and per-crop latency of the config's model (fresh weights: neither
    depends on them), eager fp32 and through ``optimize_for_inference`` (the device's best
    dtype, channels_last, folded batch norms)."""
    import torch
    from mmpose_sam.analysis import build_model, count_complexity, input_hw, measure_latency
    from mmpose_sam.apis import optimize_for_inference
    hw = input_hw(cfg)
    model = build_model(cfg, device)
    result = dict(complexity=count_complexity(model, hw), input_size=f'{hw[0]}x{hw[1]}')
    for batch in BATCH_SIZES:
        result[f'latency_b{batch}'] = measure_latency(model, hw, batch, warmup, repeats)
    model = optimize_for_inference(model)
    result['optimized_dtype'] = model.inference_dtype
    result['latency_optimized'] = measure_latency(model, hw, max(BATCH_SIZES), warmup, repeats,
                                                  channels_last=True)
    del model
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return result


def _fmt_time(seconds: Optional[float]) -> str:
    return f'{seconds:.1f} s' if seconds is not None else '- (checkpoint)'


def comparison_table(results: Dict[str, dict], device_name: str, recipe_note: str = '') -> str:
    """Markdown table: SB row, SAM row, then SAM/SB ratios (AP/AR as differences)."""
    from mmpose_sam.analysis import format_ratio as _ratio
    header = ['model', 'config', 'input size', 'params', 'GMACs (FlopAnalyzer)',
              'attention elementwise Gops'] + \
             [f'latency b{b} (ms/crop)' for b in BATCH_SIZES] + \
             [f'optimized b{max(BATCH_SIZES)} (ms/crop)'] + list(METRICS) + ['train time']
    lines = ['| ' + ' | '.join(header) + ' |', '|' + ' --- |' * len(header)]
    for name, r in results.items():
        c = r['complexity']
        cells = [name, Path(r['config']).name, r['input_size'], f'{c.params:,}',
                 f'{c.macs / 1e9:.3f}', f'{c.elementwise_ops / 1e9:.4f}']
        cells += [f'{r[f"latency_b{b}"] * 1e3:.2f}' for b in BATCH_SIZES]
        cells.append(f'{r["latency_optimized"] * 1e3:.2f} ({r["optimized_dtype"]})')
        cells += [f'{r["metrics"][m]:.4f}' for m in METRICS]
        cells.append(_fmt_time(r['metrics']['train_s']))
        lines.append('| ' + ' | '.join(cells) + ' |')
    sb, sam = results['SimpleBaseline'], results['SAM']
    cells = ['SAM / SB', '', '', _ratio(sam['complexity'].params, sb['complexity'].params),
             _ratio(sam['complexity'].macs, sb['complexity'].macs), '']
    cells += [_ratio(sam[f'latency_b{b}'], sb[f'latency_b{b}']) for b in BATCH_SIZES]
    cells.append(_ratio(sam['latency_optimized'], sb['latency_optimized']))
    cells += [f'{sam["metrics"][m] - sb["metrics"][m]:+.4f} (diff)' for m in METRICS]
    cells.append(_ratio(sam['metrics']['train_s'], sb['metrics']['train_s']))
    lines.append('| ' + ' | '.join(cells) + ' |')
    lines += ['', f'Latency: median of timed forward passes (tensor mode: backbone + head, no flip '
              f'test or decoding) per crop, eval mode, no_grad, on {device_name}, both models in '
              'the same process; "optimized": mmpose_sam.apis.optimize_for_inference '
              '(channels_last, folded batch norms, bf16 where the device computes in it). AP/AR: runner.test() on the config\'s test set. Last row: '
              'SAM / SimpleBaseline, and SAM - SimpleBaseline for AP/AR. ' + recipe_note]
    return '\n'.join(lines)


def main(argv=None) -> str:
    args = parse_args(argv)
    if args.device == 'cpu':
        # MMEngine's runner trains on the GPU whenever one is visible: hide them before any CUDA
        # call so that training, testing and timing all run on the CPU.
        os.environ['CUDA_VISIBLE_DEVICES'] = ''
    import torch
    from mmpose_sam.analysis import default_device
    device = args.device or default_device()
    if torch.device(device).type == 'cuda' and torch.device(device).index is not None:
        torch.cuda.set_device(torch.device(device))  # the runner uses the current device
    device_name = torch.cuda.get_device_name(device) if device.startswith('cuda') else \
        f'CPU ({torch.get_num_threads()} threads)'
    # Paths on the command line are relative to where it was typed; then the configs' data_root
    # is relative to the repo root, as in MMPose.
    work_dir = args.work_dir.resolve()
    out = (args.out or work_dir / 'comparison.md').resolve()
    configs = {'SimpleBaseline': args.sb_config.resolve(), 'SAM': args.sam_config.resolve()}
    checkpoints = {name: str(Path(ckpt).resolve()) if ckpt and Path(ckpt).exists() else ckpt
                   for name, ckpt in (('SimpleBaseline', args.sb_checkpoint),
                                      ('SAM', args.sam_checkpoint))}  # or a URL
    os.chdir(ROOT)

    results: Dict[str, dict] = {}
    # One after the other, never in parallel, so neither run slows the other down.
    for name, config in configs.items():
        checkpoint = checkpoints[name]
        cfg = recipe(config, work_dir / name.lower(), args.epochs, args.seed)
        print(f'[compare] {name}: {"testing " + checkpoint if checkpoint else "training"} '
              f'{Path(config).name} -> {cfg.work_dir}', flush=True)
        metrics = train_and_test(cfg, checkpoint)
        results[name] = dict(config=str(config), metrics=metrics,
                             epochs=None if checkpoint else cfg.train_cfg.max_epochs,
                             **profile(cfg, device, args.latency_warmup, args.latency_repeats))

    trained = ', '.join(f'{name} {r["epochs"]} epoch(s)' if r['epochs'] else f'{name} from its '
                        'checkpoint' for name, r in results.items())
    table = comparison_table(results, device_name, f'Training: {trained}; seed {args.seed}.')
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table + '\n')
    print('\n' + table, flush=True)
    print(f'[compare] wrote {out}', flush=True)
    return table


if __name__ == '__main__':
    main()
