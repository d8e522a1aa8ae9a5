"""Export a top-down heatmap model to ONNX, then check it in onnxruntime against PyTorch.

    python tools/deploy/export_onnx.py CONFIG CHECKPOINT --out MODEL.onnx [--opset 17] [--batch 1]

Writes the network (normalised crops in, heatmaps out, dynamic batch axis; no decoding) with its
metadata as JSON data, runs 2 random crops through onnxruntime and exits 1 if the heatmaps differ
from PyTorch's by more than --tolerance. Needs pip install -e .[deploy]. docs/inference.md.
"""
import argparse
import sys
from pathlib import Path
from typing import List, Optional

# First: importing mmpose_sam registers the plugin and quiets pkg_resources.
from mmpose_sam.errors import install_excepthook  # noqa: I001
from mmengine.config import DictAction

from mmpose.apis import init_model
from mmpose_sam.apis import InvalidInputError, require_files
from mmpose_sam.deploy import import_optional
from mmpose_sam.deploy.export import export_onnx, onnxruntime_difference
from mmpose_sam.deploy.metadata import crop_size
from mmpose_sam.errors import UserError

CHECK_BATCH = 2  # random crops of the onnxruntime check


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Command-line arguments (``argv`` defaults to ``sys.argv[1:]``)."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='\n'.join(__doc__.splitlines()[1:]))
    parser.add_argument('config', help='pose config file')
    parser.add_argument('checkpoint', help='pose checkpoint file')
    parser.add_argument('--out', required=True, help='the .onnx file to write')
    parser.add_argument('--opset', type=int, default=17, help='ONNX opset version')
    parser.add_argument('--batch', type=int, default=1,
                        help='batch size of the traced example (the batch axis is dynamic)')
    parser.add_argument('--tolerance', type=float, default=1e-4,
                        help='largest heatmap difference to onnxruntime that passes')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings before the model is built')
    args = parser.parse_args(argv)
    if args.batch < 1:
        parser.error('--batch must be >= 1')
    return args


def main(argv: Optional[List[str]] = None) -> None:
    """Export and check; a bad input or a missing package ends in one ``error: ...`` line."""
    args = parse_args(argv)
    try:
        require_files(args.config, args.checkpoint)
        # Both packages first: a missing one is named before minutes of work.
        import_optional('onnx', 'ONNX export')
        import_optional('onnxruntime', 'the onnxruntime check of the export')
    except (InvalidInputError, UserError) as error:
        raise SystemExit(f'error: {error}') from None

    model = init_model(args.config, args.checkpoint, device='cpu', cfg_options=args.cfg_options)
    try:
        report = export_onnx(model, args.out, opset=args.opset, batch=args.batch,
                             checkpoint=Path(args.checkpoint).name)
        difference = onnxruntime_difference(model, report.path, batch=CHECK_BATCH)
    except UserError as error:
        raise SystemExit(f'error: {error}') from None
    keypoints, heatmap_h, heatmap_w = report.heatmap_shape
    width, height = crop_size(model.cfg)
    verdict = 'ok' if difference <= args.tolerance else f'FAIL (> {args.tolerance:g})'
    print(f'{report.path}: {report.size / 2**20:.1f} MiB, opset {args.opset}, input (batch, 3, '
          f'{height}, {width}) -> heatmaps (batch, {keypoints}, {heatmap_h}, {heatmap_w}), '
          f'exported in {report.seconds:.1f} s; onnxruntime vs PyTorch max |diff| '
          f'{difference:.1e} on {CHECK_BATCH} random crops: {verdict}', flush=True)
    if difference > args.tolerance:
        sys.exit(1)


if __name__ == '__main__':
    install_excepthook()  # an uncaught UserError: one line, no traceback
    main()
