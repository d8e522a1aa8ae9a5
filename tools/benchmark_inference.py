"""Inference latency of SAM and SimpleBaseline in every mode, all measured in one run.

    python tools/benchmark_inference.py [--batch-sizes 1 8] [--modes fp32 channels-last ...]
        [--device cpu|cuda] [--sam-checkpoint P --sb-checkpoint P] [--out PATH]

A benchmark, not a test: median ms per crop of the network's forward pass (backbone + head, random
crops, CUDA synchronised) for each model, mode (eager fp32 / channels-last, optimize_for_inference
fp32 / bf16 / compiled, onnxruntime on the CPU) and batch size, with the speed-up over fp32 and
SAM / SB; with checkpoints also each mode's keypoint deviation from fp32 on the bundled images.
Writes a markdown table and JSON beside it. README "Fast inference".
"""
import argparse
import copy
import json
import platform
import shlex
import sys
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch
from toolkit.analysis import (format_ratio, input_hw, load_config, measure_latency,
                              median_latency, sample_people, table_head, table_row)
from mmpose.apis import inference_topdown, init_model
from mmpose_sam.apis import optimize_for_inference
from mmpose_sam.errors import UserError
from mmpose_sam.speed.amp import bf16_is_native

ROOT = Path(__file__).resolve().parents[1]
COCO_DIR = ROOT / 'configs' / 'body_2d_keypoint' / 'topdown_heatmap' / 'coco'
SB_CONFIG = COCO_DIR / 'td-hm_simplebaseline-res50_8xb64-210e_coco-256x192.py'
SAM_CONFIG = COCO_DIR / 'td-hm_sam-res50-seq3x3_8xb64-210e_coco-256x192.py'
MODES = ('fp32', 'channels-last', 'optimized-fp32', 'optimized-bf16', 'compiled', 'onnxruntime')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sb-config', type=Path, default=SB_CONFIG)
    parser.add_argument('--sam-config', type=Path, default=SAM_CONFIG)
    parser.add_argument('--sb-checkpoint', help='trained SimpleBaseline: keypoint deviations too')
    parser.add_argument('--sam-checkpoint', help='trained SAM: keypoint deviations too')
    parser.add_argument('--batch-sizes', type=int, nargs='+', default=[1, 8])
    parser.add_argument('--modes', nargs='+', choices=MODES,
                        default=[m for m in MODES if m != 'compiled'])
    parser.add_argument('--compile', action='store_true', help='add the compiled mode')
    parser.add_argument('--force-bf16', action='store_true',
                        help='run bf16 even where the device would emulate it')
    parser.add_argument('--device', help='cpu or cuda (default: cuda if available)')
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--repeats', type=int, default=10)
    parser.add_argument('--work-dir', type=Path, default=Path('outputs/benchmark_inference'))
    parser.add_argument('--out', type=Path, help='markdown table (default: WORK_DIR/latency.md)')
    args = parser.parse_args(argv)
    if args.compile and 'compiled' not in args.modes:
        args.modes.append('compiled')
    if min(args.batch_sizes) < 1 or args.repeats < 1 or args.warmup < 0:
        parser.error('--batch-sizes and --repeats must be at least 1, --warmup at least 0')
    return args


def prepare(mode: str, base, device: str, force_bf16: bool):
    """``(model, channels_last)`` for a PyTorch mode, or ``(None, reason)`` when skipped."""
    if mode == 'optimized-bf16' and not (force_bf16 or bf16_is_native(device)):
        return None, 'skipped: bf16 is emulated on this device (--force-bf16 runs it)'
    model = copy.deepcopy(base)
    if mode == 'fp32':
        return model, False
    if mode == 'channels-last':
        return model.to(memory_format=torch.channels_last), True
    options = {'optimized-fp32': dict(dtype='fp32'), 'optimized-bf16': dict(dtype='bf16'),
               'compiled': dict(compile=True)}
    return optimize_for_inference(model, **options[mode]), True


def onnxruntime_latency(base, hw, batch_sizes: List[int], args, name: str) -> Dict:
    """``{batch: seconds per crop}`` of the exported network in onnxruntime, or a skip reason."""
    try:
        from mmpose_sam.deploy.export import export_onnx
        from mmpose_sam.deploy.onnxruntime_model import OnnxPoseModel
    except ImportError as error:
        return {'skipped': f'skipped: {error}'}
    try:
        path = args.work_dir / f'{name}.onnx'
        export_onnx(copy.deepcopy(base), path)
        session = OnnxPoseModel(path)
    except UserError as error:  # e.g. onnx/onnxruntime not installed: how to install
        return {'skipped': f'skipped: {error}'}
    results = {}
    for batch in batch_sizes:
        inputs = np.random.rand(batch, 3, *hw).astype(np.float32)
        results[batch] = median_latency(lambda: session.run(inputs), batch, args.warmup,
                                        args.repeats)
    return results


def predicted_keypoints(model, people):
    """``(P, K, 2)`` keypoints in image pixels from MMPose's ``inference_topdown``."""
    return np.concatenate([
        np.concatenate([s.pred_instances.keypoints for s in inference_topdown(model, path, boxes)])
        for path, boxes in people
    ])


def keypoint_deviation(reference, candidate) -> Dict[str, float]:
    """Mean and max distance in pixels between two ``(P, K, 2)`` keypoint arrays."""
    distance = np.linalg.norm(candidate - reference, axis=-1)
    return dict(mean_px=float(distance.mean()), max_px=float(distance.max()))


def benchmark_model(name: str, config: Path, checkpoint: Optional[str], args,
                    device: str) -> dict:
    cfg = load_config(config)
    # Without a checkpoint the weights are PyTorch's default init (init_model runs no init_cfg,
    # so nothing is downloaded): enough to time the network.
    base = init_model(cfg, checkpoint, device=device).eval()
    hw = input_hw(cfg)
    people = sample_people() if checkpoint else None
    reference = predicted_keypoints(copy.deepcopy(base), people) if people else None
    rows = {}
    for mode in args.modes:
        if mode == 'onnxruntime':
            if device != 'cpu':
                rows[mode] = {'skipped': 'skipped: onnxruntime is timed on the CPU runs only'}
            else:
                rows[mode] = onnxruntime_latency(base, hw, args.batch_sizes, args, name)
            continue
        model, channels_last = prepare(mode, base, device, args.force_bf16)
        if model is None:
            rows[mode] = {'skipped': channels_last}
            continue
        row = {batch: measure_latency(model, hw, batch, args.warmup, args.repeats, channels_last)
               for batch in args.batch_sizes}
        if people:
            row['keypoints'] = keypoint_deviation(reference, predicted_keypoints(model, people))
        rows[mode] = row
        print(f'[benchmark_inference] {name} {mode}: ' + ', '.join(
            f'b{b} {row[b] * 1e3:.1f} ms/crop' for b in args.batch_sizes), flush=True)
        del model
    return dict(config=str(config), input_hw=list(hw), modes=rows)


def latency_table(results: Dict[str, dict], batch_sizes: List[int], setting: str) -> str:
    largest = max(batch_sizes)
    header = ['model', 'mode'] + [f'b{b} ms/crop' for b in batch_sizes] + [
        f'speed-up vs fp32 (b{largest})', 'keypoints vs fp32 (mean / max px)']
    lines = table_head(header)
    for name, result in results.items():
        baseline = result['modes'].get('fp32', {}).get(largest)
        for mode, row in result['modes'].items():
            if 'skipped' in row:
                lines.append(table_row([name, mode, row['skipped']] + ['-'] * (len(header) - 3)))
                continue
            kpt = row.get('keypoints')
            lines.append(table_row(
                [name, mode] + [f'{row[b] * 1e3:.2f}' if b in row else '-' for b in batch_sizes] +
                [format_ratio(baseline, row.get(largest)),
                 f'{kpt["mean_px"]:.3f} / {kpt["max_px"]:.3f}' if kpt else '-']))
    sb, sam = results.get('SimpleBaseline'), results.get('SAM')
    if sb and sam:
        for mode, row in sam['modes'].items():
            sb_row = sb['modes'].get(mode, {})
            if 'skipped' not in row and 'skipped' not in sb_row:
                lines.append(table_row(['SAM / SB', mode] + [
                    format_ratio(row.get(b), sb_row.get(b)) for b in batch_sizes] + ['', '']))
    return '\n'.join(lines + ['', setting])


def main(argv=None) -> str:
    argv = sys.argv[1:] if argv is None else list(map(str, argv))
    args = parse_args(argv)
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    device_name = torch.cuda.get_device_name() if device.startswith('cuda') else \
        f'CPU {platform.processor() or platform.machine()} ({torch.get_num_threads()} threads)'
    args.work_dir.mkdir(parents=True, exist_ok=True)
    out = args.out or args.work_dir / 'latency.md'
    results = {}
    for name, config, checkpoint in (('SimpleBaseline', args.sb_config, args.sb_checkpoint),
                                     ('SAM', args.sam_config, args.sam_checkpoint)):
        results[name] = benchmark_model(name, config, checkpoint, args, device)
        out.parent.mkdir(parents=True, exist_ok=True)  # each model as soon as it is measured
        out.with_suffix('.json').write_text(json.dumps(dict(
            device=device_name, torch=torch.__version__, results=results), indent=2) + '\n')
    setting = (f'Forward pass (backbone + head) on {device_name}, torch {torch.__version__}, '
               f'median of {args.repeats} after {args.warmup} warm-up, ms per crop. Command: '
               + shlex.join(['python', 'tools/benchmark_inference.py', *argv]))
    table = latency_table(results, args.batch_sizes, setting)
    out.write_text(table + '\n')
    print('\n' + table, flush=True)
    print(f'[benchmark_inference] wrote {out}', flush=True)
    return table


if __name__ == '__main__':
    main()
