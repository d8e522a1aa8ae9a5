"""N models under the same recipe and seed, in one command: a table and a picture.

    python tools/compare.py [--configs C [C ...]] [--checkpoints P|- ...] [--recipe CONFIG|own]
                            [--epochs N] [--no-train] [--work-dir DIR] [--out PATH] [--picture PATH]
                            [--device DEVICE] [--seed S]

For each config, one after the other: train (unless given a checkpoint, or --no-train) and test it
with MMEngine's runner, count its parameters and GMACs and time its forward pass (eager and
optimize_for_inference, batch 1 and 8); then a markdown table (ratios to the first model), the
reference AP of each (MMPose's zoo or the paper) and a PNG. By default every model gets the sample
SimpleBaseline config's data and schedule (``--recipe own``: each its own).
README "Comparing models".
"""
import argparse
import copy
import gc
import os
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from toolkit import doc_parser

# torch and the OpenMMLab stack are imported inside the functions: `--device cpu` must hide the
# GPUs before anything can initialise CUDA.

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DIR = ROOT / 'configs' / 'body_2d_keypoint' / 'topdown_heatmap' / 'coco_sample'
SB_CONFIG = SAMPLE_DIR / 'td-hm_simplebaseline-res50_1xb16-150e_coco-sample-128x96.py'
DEFAULT_CONFIGS = [
    SB_CONFIG,
    SAMPLE_DIR / 'td-hm_seresnet50_1xb16-150e_coco-sample-128x96.py',
    SAMPLE_DIR / 'td-hm_sam-res50-seq3x3_1xb16-150e_coco-sample-128x96.py',
    SAMPLE_DIR / 'td-hm_cbam-res50_1xb16-150e_coco-sample-128x96.py',
]
METRICS = ('coco/AP', 'coco/AP .5', 'coco/AR')
BATCH_SIZES = (1, 8)
OWN = 'own'


def parse_args(argv=None) -> argparse.Namespace:
    parser = doc_parser(__doc__)
    parser.add_argument('--configs', nargs='+', default=[str(c) for c in DEFAULT_CONFIGS],
                        help='configs to compare, the first is the reference of the ratios '
                             '(mmpose::PATH for MMPose\'s; default: SB-R50, SEResNet-50, SAM-R50, '
                             'CBAM-R50 on the bundled sample)')
    parser.add_argument('--checkpoints', nargs='+',
                        help='one per config: evaluate this checkpoint instead of training, or '
                             '"-" to train that one')
    parser.add_argument('--recipe', default=str(SB_CONFIG),
                        help='config whose data, schedule and runtime every model gets '
                             '(default: the sample\'s SimpleBaseline config), or '
                             f'"{OWN}": each config\'s own')
    parser.add_argument('--epochs', type=int, help='override the number of training epochs')
    parser.add_argument('--no-train', action='store_true',
                        help='neither train nor test: params, GMACs, latency and reference AP only')
    parser.add_argument('--work-dir', type=Path, default=Path('work_dirs/compare'))
    parser.add_argument('--out', type=Path, help='markdown table (default: WORK_DIR/comparison.md)')
    parser.add_argument('--picture', type=Path, help='PNG (default: the table\'s path, .png)')
    parser.add_argument('--device', help='cpu, cuda or cuda:N (default: cuda if available)')
    parser.add_argument('--seed', type=int, default=0, help='same seed for every model')
    parser.add_argument('--latency-warmup', type=int, default=5)
    parser.add_argument('--latency-repeats', type=int, default=20)
    args = parser.parse_args(argv)
    if args.checkpoints is not None and len(args.checkpoints) != len(args.configs):
        parser.error(f'--checkpoints takes one entry per config ({len(args.configs)}), got '
                     f'{len(args.checkpoints)}')
    if args.epochs is not None and args.epochs < 1:
        parser.error('--epochs must be >= 1')
    return args


def model_name(config: str) -> str:
    """The model part of a config's name: ``td-hm_sam-res50-seq3x3_...`` -> ``sam-res50-seq3x3``,
    ``rtmpose-m_8xb256-...`` -> ``rtmpose-m``."""
    parts = Path(config).stem.split('_')
    return parts[1] if parts[0].startswith('td-') and len(parts) > 1 else parts[0]


def unique_names(configs: Sequence[str]) -> List[str]:
    names, seen = [], {}
    for config in configs:
        name = model_name(config)
        seen[name] = seen.get(name, 0) + 1
        names.append(name if seen[name] == 1 else f'{name}#{seen[name]}')
    return names


def with_recipe(cfg, recipe, config: str):
    """``recipe`` with the model of ``cfg``: its backbone, neck and head (and estimator type),
    the head decoding with the recipe's codec; the recipe's data preprocessor, train_cfg and
    test_cfg; from scratch if the recipe trains from scratch."""
    from mmpose_sam.errors import UserError
    decoder = cfg.model.get('head', {}).get('decoder')
    codec = recipe.get('codec')
    if not decoder or not codec or decoder.get('type') != codec.get('type'):
        raise UserError(
            f'{config}: its head decodes with {(decoder or {}).get("type")}, the recipe\'s codec '
            f'is {(codec or {}).get("type")}: compare it under its own recipe (--recipe {OWN}), '
            'or for params, GMACs and latency only (--recipe own --no-train)')
    merged = copy.deepcopy(recipe)
    model = copy.deepcopy(cfg.model)
    model.head.decoder = copy.deepcopy(codec)
    for key in ('data_preprocessor', 'train_cfg', 'test_cfg'):
        if key in recipe.model:
            model[key] = copy.deepcopy(recipe.model[key])
    if recipe.model.get('backbone', {}).get('init_cfg', 'default') is None:
        model.backbone.init_cfg = None  # the recipe trains from scratch: so does every model
    merged.model = model
    return merged


def run_cfg(cfg, work_dir: Path, epochs: Optional[int], seed: int):
    """The config as the runner gets it (:func:`toolkit.runners.run_config`); with ``epochs``,
    only the final checkpoint is kept."""
    from toolkit.runners import run_config
    cfg = run_config(cfg, work_dir, seed, epochs)
    # MMEngine names the run after the config file, which is the recipe's for every model.
    cfg.experiment_name = f'{work_dir.name}_{time.strftime("%Y%m%d_%H%M%S")}'
    if epochs:
        # No validation during the short run: runner.test() evaluates the same final weights
        # right after (MMEngine would otherwise validate at the last epoch whatever the interval).
        cfg.train_cfg.val_begin = epochs + 1
        if cfg.get('default_hooks', {}).get('checkpoint'):
            cfg.default_hooks.checkpoint.interval = epochs  # keep the final weights
    return cfg


def train_and_test(cfg, checkpoint: Optional[str]) -> dict:
    """Train (unless ``checkpoint`` is given, which is then loaded) and test; COCO metrics plus
    ``train_s``, the wall time of runner.train(), and ``losses``, the loss of every iteration."""
    from toolkit.runners import build_runner
    if checkpoint:
        cfg.load_from = checkpoint
    runner = build_runner(cfg)
    train_s, losses = None, []
    if not checkpoint:
        start = time.perf_counter()
        runner.train()
        train_s = time.perf_counter() - start
        losses = runner.message_hub.get_scalar('train/loss').data[0].tolist()
    metrics = dict(runner.test(), train_s=train_s, losses=losses)
    del runner
    gc.collect()
    return metrics


def profile(cfg, device: str, warmup: int, repeats: int) -> dict:
    """Parameters, GMACs, attention and per-crop latency of the config's model (fresh weights:
    none of it depends on them), eager fp32 and through ``optimize_for_inference`` (the device's
    best dtype, channels_last, folded batch norms)."""
    import torch
    from toolkit.analysis import (attention_label, build_model, count_complexity, input_hw,
                                  measure_latency)
    from mmpose_sam.apis import optimize_for_inference
    hw = input_hw(cfg)
    model = build_model(cfg, device)
    result = dict(complexity=count_complexity(model, hw), input_size=f'{hw[0]}x{hw[1]}',
                  attention=attention_label(model), depth=getattr(model.backbone, 'depth', None))
    for batch in BATCH_SIZES:
        result[f'latency_b{batch}'] = measure_latency(model, hw, batch, warmup, repeats)
    model = optimize_for_inference(model)
    result['optimized_dtype'] = model.inference_dtype
    for batch in BATCH_SIZES:
        result[f'fast_b{batch}'] = measure_latency(model, hw, batch, warmup, repeats,
                                                   channels_last=True)
    del model
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return result


def _metric(r: dict, metric: str) -> Optional[float]:
    return (r.get('metrics') or {}).get(metric)


def comparison_table(results: Dict[str, dict], device_name: str, recipe_note: str = '') -> str:
    """Markdown table: one row per model, then ``<model> / <first>`` rows: ratios, and
    differences for AP/AR (measured and reference)."""
    from toolkit.analysis import format_ratio as _ratio, table_head, table_row
    header = ['model', 'config', 'input size', 'attention', 'params', 'GMACs (FlopAnalyzer)',
              'attention elementwise Gops'] + \
             [f'latency b{b} (ms/crop)' for b in BATCH_SIZES] + \
             [f'fast b{b} (ms/crop)' for b in BATCH_SIZES] + list(METRICS) + \
             ['train time', 'reference AP']
    lines = table_head(header)
    for name, r in results.items():
        c = r['complexity']
        cells = [name, Path(r['config']).name, r['input_size'], r['attention'], f'{c.params:,}',
                 f'{c.macs / 1e9:.3f}', f'{c.elementwise_ops / 1e9:.4f}']
        cells += [f'{r[f"latency_b{b}"] * 1e3:.2f}' for b in BATCH_SIZES]
        cells += [f'{r[f"fast_b{b}"] * 1e3:.2f} ({r["optimized_dtype"]})' for b in BATCH_SIZES]
        cells += [f'{_metric(r, m):.4f}' if _metric(r, m) is not None else '-' for m in METRICS]
        train_s = _metric(r, 'train_s')
        cells.append(f'{train_s:.1f} s' if train_s is not None else
                     '- (checkpoint)' if r['metrics'] is not None else '-')
        cells.append(str(r['reference']) if r['reference'] else '-')
        lines.append(table_row(cells))
    first_name, first = next(iter(results.items()))

    def diff(a: Optional[float], b: Optional[float]) -> str:
        return f'{a - b:+.4f} (diff)' if a is not None and b is not None else '-'

    for name, r in list(results.items())[1:]:
        cells = [f'{name} / {first_name}', '', '', '',
                 _ratio(r['complexity'].params, first['complexity'].params),
                 _ratio(r['complexity'].macs, first['complexity'].macs), '']
        cells += [_ratio(r[f'latency_b{b}'], first[f'latency_b{b}']) for b in BATCH_SIZES]
        cells += [_ratio(r[f'fast_b{b}'], first[f'fast_b{b}']) for b in BATCH_SIZES]
        cells += [diff(_metric(r, m), _metric(first, m)) for m in METRICS]
        cells.append(_ratio(_metric(r, 'train_s'), _metric(first, 'train_s')))
        cells.append(diff(r['reference'] and r['reference'].ap,
                          first['reference'] and first['reference'].ap))
        lines.append(table_row(cells))
    lines += ['', f'Latency: median of timed forward passes (tensor mode: backbone + head, no flip '
              f'test or decoding) per crop, eval mode, no_grad, on {device_name}, every model in '
              'the same process; "fast": mmpose_sam.apis.optimize_for_inference (channels_last, '
              'folded batch norms, bf16 where the device computes in it). AP/AR: runner.test() '
              'on the recipe\'s test set (on the bundled sample: memorisation, not accuracy). '
              'Reference AP: never measured here; MMPose zoo = MMPose\'s model zoo, COCO '
              'val2017, detected boxes (the installed metafiles); paper = Table 2, COCO test-dev. '
              f'Last rows: each model / {first_name}, and differences for AP/AR. ' + recipe_note]
    return '\n'.join(lines)


def draw_comparison(results: Dict[str, dict], path: Path, device_name: str) -> Path:
    """The PNG: reference AP against GMACs and against fast-path latency, measured AP against
    latency, one point per model, and the training-loss curves side by side."""
    # The Figure API (no pyplot) draws with Agg: no display, no global figure state.
    from matplotlib.figure import Figure
    figure = Figure(figsize=(12, 8.5))
    axes = figure.subplots(2, 2).ravel()
    colours = {name: f'C{index}' for index, name in enumerate(results)}
    batch = max(BATCH_SIZES)
    size = next(iter(results.values()))['input_size']

    def scatter(axis, x_of, y_of, xlabel, ylabel, title, empty):
        points = [(name, x_of(r), y_of(r)) for name, r in results.items()]
        points = [p for p in points if p[1] is not None and p[2] is not None]
        for name, x, y in points:
            axis.scatter([x], [y], s=60, color=colours[name], zorder=3)
            axis.annotate(name, (x, y), textcoords='offset points', xytext=(6, 4), fontsize=8)
        if not points:
            axis.text(0.5, 0.5, empty, ha='center', va='center', transform=axis.transAxes)
        axis.set(xlabel=xlabel, ylabel=ylabel)
        axis.set_title(title, fontsize=10)
        axis.grid(alpha=0.3)

    def reference(r):
        return r['reference'].ap if r['reference'] else None

    scatter(axes[0], lambda r: r['complexity'].macs / 1e9, reference, f'GMACs per crop ({size})',
            'reference AP', 'reference AP (MMPose zoo / paper, see the table) vs compute',
            'no model has a reference AP')
    scatter(axes[1], lambda r: r[f'fast_b{batch}'] * 1e3, reference,
            f'ms per crop, fast path, batch {batch}, {size}', 'reference AP',
            f'reference AP vs latency on {device_name}', 'no model has a reference AP')
    scatter(axes[2], lambda r: r[f'fast_b{batch}'] * 1e3, lambda r: _metric(r, 'coco/AP'),
            f'ms per crop, fast path, batch {batch}, {size}', 'AP measured here',
            'AP measured in this run (the recipe\'s test set) vs latency', 'nothing was tested')
    curves = axes[3]
    for name, r in results.items():
        losses = _metric(r, 'losses') or []
        if losses:  # markers too: a short run has a few points only
            curves.plot(range(1, len(losses) + 1), losses, label=name, color=colours[name],
                        marker='o' if len(losses) <= 30 else None, markersize=3)
    if curves.lines:
        curves.set_yscale('log')
        curves.legend(fontsize=8)
    else:
        curves.text(0.5, 0.5, 'nothing was trained', ha='center', va='center',
                    transform=curves.transAxes)
    curves.set(xlabel='iteration', ylabel='training loss')
    curves.set_title('training loss, same recipe and seed', fontsize=10)
    curves.grid(alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(str(path), dpi=100)
    return path


def main(argv=None) -> str:
    args = parse_args(argv)
    if args.device == 'cpu':
        # MMEngine's runner trains on the GPU whenever one is visible: hide them before any CUDA
        # call so that training, testing and timing all run on the CPU.
        os.environ['CUDA_VISIBLE_DEVICES'] = ''
    import torch
    from mmengine.device import get_device
    from toolkit.analysis import load_config
    from mmpose_sam.errors import UserError
    from toolkit.zoo import reference_ap, resolve_config
    device = args.device or get_device()
    if torch.device(device).type == 'cuda' and torch.device(device).index is not None:
        torch.cuda.set_device(torch.device(device))  # the runner uses the current device
    device_name = torch.cuda.get_device_name(device) if device.startswith('cuda') else \
        f'CPU ({torch.get_num_threads()} threads)'
    # Paths on the command line are relative to where it was typed; then the configs' data_root
    # is relative to the repo root, as in MMPose.
    try:
        paths = [resolve_config(config).resolve() for config in args.configs]
        recipe_cfg = None if args.recipe == OWN else load_config(resolve_config(args.recipe))
    except FileNotFoundError as error:
        raise SystemExit(f'error: {error}') from None
    work_dir = args.work_dir.resolve()
    out = (args.out or work_dir / 'comparison.md').resolve()
    picture = (args.picture or out.with_suffix('.png')).resolve()
    checkpoints = [None if ckpt in (None, '-') else
                   str(Path(ckpt).resolve()) if Path(ckpt).exists() else ckpt  # or a URL
                   for ckpt in (args.checkpoints or [None] * len(paths))]
    names = unique_names(args.configs)
    os.chdir(ROOT)

    # Every config is read and fitted to the recipe first, so that a bad one fails at once.
    cfgs = []
    for name, config, path in zip(names, args.configs, paths):
        try:
            cfg = load_config(path)
            if recipe_cfg is not None:
                cfg = with_recipe(cfg, recipe_cfg, config)
        except UserError as error:
            raise SystemExit(f'error: {error}') from None
        cfgs.append(run_cfg(cfg, work_dir / name, args.epochs, args.seed))

    results: Dict[str, dict] = {}
    # One after the other, never in parallel, so that no run slows another down.
    for name, path, cfg, checkpoint in zip(names, paths, cfgs, checkpoints):
        metrics = None
        if not args.no_train:
            print(f'[compare] {name}: {"testing " + checkpoint if checkpoint else "training"} '
                  f'{path.name} -> {cfg.work_dir}', flush=True)
            metrics = train_and_test(cfg, checkpoint)
        result = dict(config=str(path), metrics=metrics,
                      epochs=None if checkpoint or args.no_train else cfg.train_cfg.max_epochs,
                      **profile(cfg, device, args.latency_warmup, args.latency_repeats))
        result['reference'] = reference_ap(path, result['attention'], result['depth'])
        results[name] = result
        print(f'[compare] {name}: {result["complexity"].params:,} params, '
              f'{result["complexity"].macs / 1e9:.3f} GMACs', flush=True)

    if args.no_train:
        trained = 'nothing trained or tested (--no-train)'
    else:
        trained = ', '.join(f'{name} {r["epochs"]} epoch(s)' if r['epochs'] else
                            f'{name} from its checkpoint' for name, r in results.items())
    recipe_note = ('Recipe: each config\'s own.' if recipe_cfg is None else
                   f'Recipe: {Path(args.recipe).name} (data, schedule, runtime) for every model.')
    table = comparison_table(results, device_name,
                             f'{recipe_note} Training: {trained}; seed {args.seed}.')
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table + '\n')
    draw_comparison(results, picture, device_name)
    print('\n' + table, flush=True)
    print(f'[compare] wrote {out} and {picture}', flush=True)
    return table


if __name__ == '__main__':
    main()
