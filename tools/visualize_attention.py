"""Pictures of a model's spatial attention maps on the top-down crops of an image.

    python tools/visualize_attention.py CONFIG CHECKPOINT [--input IMAGE_OR_FOLDER]
        [--bbox X1 Y1 X2 Y2 | --bbox-file DETECTIONS.json [--ann-file ANN.json] [--bbox-thr 0.3]]
        [--out-dir outputs/attention] [--normalize] [--device cuda:0|cpu]

Each person (``--bbox``, else the ``--bbox-file`` boxes matched as in tools/demo.py, else the
whole image) is cropped by the test pipeline; each attention stage's sigmoid gate is captured and
written, jet-coloured over the crop, as ``<stem>[_person{k}]_stage{1..4}.png``, with all stages
side by side in ``<stem>_attention.png``. README "The model".
"""
import argparse
import sys
from pathlib import Path
from typing import List, Optional

import numpy as np
# First: importing mmpose_sam registers the plugin and quiets pkg_resources.
from mmpose_sam.errors import install_excepthook  # noqa: I001
from mmengine.config import DictAction
from mmengine.device import get_device

from mmpose_sam.apis import (BBoxFile, InvalidInputError, StageMap, capture_spatial_attention,
                             iter_images, list_images, person_prefixes, require_files,
                             save_attention_pictures, select_boxes, spatial_attention_gates,
                             topdown_inputs)
from toolkit import doc_parser


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Command-line arguments (``argv`` defaults to ``sys.argv[1:]``)."""
    parser = doc_parser(__doc__)
    parser.add_argument('config',
                        help='config of a model with spatial attention (StageAttention, CBAM)')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--input', default='data/coco_sample/000000000785.jpg',
                        help='image file or folder')
    parser.add_argument('--out-dir', default='outputs/attention', help='where the pictures go')
    parser.add_argument('--device', default=get_device(), help='e.g. cuda:0 or cpu')
    parser.add_argument('--bbox', type=float, nargs=4, metavar=('X1', 'Y1', 'X2', 'Y2'),
                        help='one person box in image pixels (default: the whole image)')
    parser.add_argument('--bbox-file', help='person detections, COCO results format')
    parser.add_argument('--ann-file', help='COCO annotations whose images map file_name -> id')
    parser.add_argument('--bbox-thr', type=float, default=0.3, help='minimum box score')
    parser.add_argument('--max-people', type=int,
                        help='keep only the N highest-scoring boxes of an image (1: one set of '
                        'pictures named <stem>_*.png per image)')
    parser.add_argument('--normalize', action='store_true',
                        help='colour each map from its own min to max instead of 0..1')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, e.g. model.backbone.attention_stages=[1]')
    args = parser.parse_args(argv)
    if args.bbox and args.bbox_file:
        parser.error('give --bbox or --bbox-file, not both')
    return args


def main(argv: Optional[List[str]] = None) -> None:
    """Run the tool. Bad input, or a model without attention, ends it with one
    ``SystemExit('error: ...')`` line; a bad image in a folder is reported and skipped."""
    args = parse_args(argv)
    try:  # cheap checks first, so that bad input fails before the model is built
        images = list_images(args.input)
        bbox_file = BBoxFile(args.bbox_file, args.ann_file) if args.bbox_file else None
        require_files(args.config, args.checkpoint)
    except InvalidInputError as error:
        raise SystemExit(f'error: {error}') from None

    from mmpose.apis import init_model
    model = init_model(args.config, args.checkpoint, device=args.device,
                       cfg_options=args.cfg_options)
    try:
        spatial_attention_gates(model)
    except ValueError as error:
        raise SystemExit(f'error: {args.config}: {error}') from None

    failed = []
    for path, image, error in iter_images(images):
        try:
            if error is not None:
                raise error
            if args.bbox:
                boxes = np.array([[*args.bbox, 1]], dtype=np.float32)
            elif bbox_file is not None:
                boxes = select_boxes(bbox_file.boxes_for(path), args.bbox_thr)
            else:  # the whole image
                boxes = np.array([[0, 0, image.shape[1], image.shape[0], 1]], dtype=np.float32)
        except InvalidInputError as problem:
            if len(images) == 1:
                raise SystemExit(f'error: {problem}') from None
            print(f'error: {problem} (skipped)', file=sys.stderr, flush=True)
            failed.append(path.name)
            continue
        if args.max_people:
            boxes = boxes[np.argsort(-boxes[:, 4], kind='stable')[:args.max_people]]
        if len(boxes) == 0:
            print(f'{path}: no person box with score >= {args.bbox_thr}', flush=True)
            continue
        inputs, crops = topdown_inputs(model, image, boxes)
        maps = capture_spatial_attention(model, inputs)
        grids = []
        for index, prefix in enumerate(person_prefixes(args.out_dir, path.stem, len(crops))):
            person_maps = [StageMap(stage, batch_map[index]) for stage, batch_map in maps]
            grids.append(save_attention_pictures(crops[index], person_maps, prefix,
                                                 normalize=args.normalize)[-1])
        sizes = ', '.join(f'stage {stage} {m.shape[-2]}x{m.shape[-1]}' for stage, m in maps)
        written = grids[0] if len(grids) == 1 else Path(
            args.out_dir, f'{path.stem}_person{{0..{len(grids) - 1}}}_attention.png')
        print(f'{path}: {len(crops)} crop(s) of {inputs.shape[-2]}x{inputs.shape[-1]}, '
              f'{sizes} -> {written}', flush=True)
    if failed:
        raise SystemExit(f'error: {len(failed)} of {len(images)} images could not be processed: '
                         f'{", ".join(failed)}')


if __name__ == '__main__':
    install_excepthook()  # an uncaught UserError: one line, no traceback
    main()
