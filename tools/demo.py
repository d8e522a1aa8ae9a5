"""Top-down pose demo on MMPose's inferencer: images, a folder, a video or a webcam in.

    python tools/demo.py CONFIG CHECKPOINT [--input data/coco_sample] [--out-dir outputs/demo]
    python tools/demo.py --backend onnxruntime MODEL.onnx [--input ...]   # no PyTorch model
        [--det-config DET_CONFIG --det-checkpoint DET_CHECKPOINT]   # boxes from an MMDet model
        [--bbox-file DETECTIONS.json [--ann-file COCO_ANNOTATIONS.json]]  # or from a file
        [--bbox-thr 0.3] [--nms-thr 0.3] [--kpt-thr 0.3] [--device cuda:0|cpu] [--show]
        [--attention] [--dtype auto|fp32|bf16 [--no-channels-last] [--compile]]

--input: an image, a folder, a video file or webcam:N. Without a detector or --bbox-file each
image is one box. Writes <out-dir>/visualizations/ (pictures or an annotated video),
<out-dir>/predictions/ (MMPose's JSON) and, with --attention, <out-dir>/attention/. A bad image
in a folder is skipped (exit status 1). Box matching and output layout: docs/inference.md.
"""
import argparse
from pathlib import Path
from typing import List, Optional

import cv2
# First: importing mmpose_sam registers the plugin and quiets pkg_resources.
from mmpose_sam.errors import install_excepthook  # noqa: I001
from mmengine.config import DictAction
from mmengine.device import get_device

from mmpose_sam.apis import (BBoxFile, InvalidInputError, TopdownInferencer, check_video, is_video,
                             list_images, load_image, optimize_for_inference, require_files,
                             spatial_attention_gates)
from mmpose_sam.errors import UserError
from toolkit import doc_parser


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Command-line arguments (``argv`` defaults to ``sys.argv[1:]``)."""
    parser = doc_parser(__doc__)
    parser.add_argument('model', help='pose config file, or the .onnx file with --backend '
                        'onnxruntime (tools/deploy/export_onnx.py)')
    parser.add_argument('checkpoint', nargs='?', help='pose checkpoint file (PyTorch backend)')
    parser.add_argument('--backend', choices=('pytorch', 'onnxruntime'), default='pytorch',
                        help='run the network in PyTorch (default) or in onnxruntime')
    parser.add_argument('--input', default='data/coco_sample',
                        help='image file, folder, video file or webcam:N')
    parser.add_argument('--out-dir', default='outputs/demo', help='where pictures and JSON go')
    parser.add_argument('--device', default=get_device(), help='e.g. cuda:0 or cpu')
    parser.add_argument('--det-config', help='MMDetection config (with --det-checkpoint)')
    parser.add_argument('--det-checkpoint', help='MMDetection checkpoint')
    parser.add_argument('--det-cat-id', type=int, default=0,
                        help='person class index of the detector (0 for COCO models)')
    parser.add_argument('--bbox-file', help='person detections, COCO results format')
    parser.add_argument('--ann-file', help='COCO annotations whose images map file_name -> id')
    parser.add_argument('--bbox-thr', type=float, default=0.3, help='minimum box score')
    parser.add_argument('--nms-thr', type=float, default=0.3, help='IoU threshold of the NMS')
    parser.add_argument('--kpt-thr', type=float, default=0.3, help='minimum score to draw')
    parser.add_argument('--radius', type=int, default=3, help='keypoint radius in pixels')
    parser.add_argument('--thickness', type=int, default=1, help='limb line width in pixels')
    parser.add_argument('--show', action='store_true', help='also show the pictures in a window')
    parser.add_argument('--attention', action='store_true',
                        help='also write each person\'s spatial attention pictures (SAM models, '
                        'images only)')
    parser.add_argument('--dtype', choices=('auto', 'fp32', 'bf16'),
                        help='run the model through optimize_for_inference with this dtype (auto: '
                        'bf16 where the device computes in it natively; default: the model as '
                        'built, fp32 eager)')
    parser.add_argument('--no-channels-last', action='store_true',
                        help='with --dtype: keep the NCHW memory layout')
    parser.add_argument('--compile', action='store_true', help='with --dtype: torch.compile')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override pose config settings, e.g. model.test_cfg.flip_test=False')
    args = parser.parse_args(argv)
    if bool(args.det_config) != bool(args.det_checkpoint):
        parser.error('--det-config and --det-checkpoint go together')
    if args.bbox_file and args.det_config:
        parser.error('give --bbox-file or --det-config, not both')
    if args.backend == 'pytorch' and not args.checkpoint:
        parser.error('the PyTorch backend needs CONFIG and CHECKPOINT')
    if args.backend == 'onnxruntime':
        if args.checkpoint:
            parser.error('--backend onnxruntime takes the .onnx file only (no checkpoint)')
        if args.dtype or args.attention:
            parser.error('--dtype and --attention need the PyTorch backend')
    if (args.no_channels_last or args.compile) and not args.dtype:
        parser.error('--no-channels-last and --compile go with --dtype')
    return args


def check_input(source: str) -> str:
    """What ``--input`` is (``'webcam'``, ``'folder'``, ``'video'`` or ``'image'``), checked
    before any model is built: a missing path, a folder without images, an unreadable video or
    camera, or a bad single image raises :class:`InvalidInputError`."""
    if source.lower().startswith('webcam'):
        camera = source.partition(':')[2] or '0'
        capture = cv2.VideoCapture(int(camera)) if camera.isdigit() else None
        opened = capture is not None and capture.isOpened()
        if capture is not None:
            capture.release()
        if not opened:
            raise InvalidInputError(source, 'cannot open this camera (expected webcam:N)')
        return 'webcam'
    path = Path(source)
    if not path.exists():
        raise InvalidInputError(path, 'no such file or directory')
    if path.is_dir():
        list_images(path)
        return 'folder'
    if is_video(path):
        check_video(path)
        return 'video'
    load_image(path)
    return 'image'


def build_inferencer(args: argparse.Namespace, bbox_file: Optional[BBoxFile]):
    """The PyTorch or onnxruntime inferencer of the arguments."""
    common = dict(det_model=args.det_config, det_weights=args.det_checkpoint,
                  det_cat_ids=args.det_cat_id, bbox_file=bbox_file, show_progress=True)
    if args.backend == 'onnxruntime':
        from mmpose_sam.deploy.inferencer import OnnxTopdownInferencer
        return OnnxTopdownInferencer(args.model, device=args.device, cfg_options=args.cfg_options,
                                     **common)
    from toolkit.analysis import load_config
    cfg = load_config(args.model, args.cfg_options)
    attention_dir = Path(args.out_dir, 'attention') if args.attention else None
    inferencer = TopdownInferencer(cfg, args.checkpoint, args.device, attention_dir=attention_dir,
                                   **common)
    if attention_dir is not None:
        try:
            spatial_attention_gates(inferencer.model)
        except ValueError as error:
            raise UserError(f'{args.model}: {error}') from None
    if args.dtype:
        inferencer.model = optimize_for_inference(
            inferencer.model, dtype=args.dtype, channels_last=not args.no_channels_last,
            compile=args.compile)
    return inferencer


def main(argv: Optional[List[str]] = None) -> None:
    """Run the demo. Bad input ends it with ``SystemExit('error: <file>: <problem>')``, except a
    bad image in a folder, which is reported and skipped (``SystemExit`` at the end)."""
    args = parse_args(argv)
    try:  # everything that can be checked without a model, before the slow model building
        if args.backend == 'onnxruntime':
            from mmpose_sam.deploy import import_optional
            import_optional('onnxruntime', 'the onnxruntime backend')
        kind = check_input(args.input)
        bbox_file = BBoxFile(args.bbox_file, args.ann_file) if args.bbox_file else None
        require_files(*filter(None, (args.model, args.checkpoint, args.det_config)))
    except UserError as error:
        raise SystemExit(f'error: {error}') from None

    out_dir = Path(args.out_dir)
    vis_dir, pred_dir = out_dir / 'visualizations', out_dir / 'predictions'
    try:
        inferencer = build_inferencer(args, bbox_file)
        results = inferencer(
            args.input, vis_out_dir=str(vis_dir), pred_out_dir=str(pred_dir),
            bbox_thr=args.bbox_thr, nms_thr=args.nms_thr, kpt_thr=args.kpt_thr,
            radius=args.radius, thickness=args.thickness, draw_bbox=True, show=args.show)
        frames = people = 0
        for result in results:
            frames += 1
            people += sum(len(instances) for instances in result['predictions'])
    except UserError as error:
        raise SystemExit(f'error: {error}') from None

    source = 'bbox file' if bbox_file else 'detector' if args.det_config else 'whole image'
    if kind in ('video', 'webcam'):
        name = inferencer.video_info['name']
        print(f'{args.input}: {frames} frames, {people} people ({source}) -> {vis_dir / name}, '
              f'{pred_dir / (Path(name).stem + ".json")}', flush=True)
    else:
        print(f'{args.input}: {frames} images, {people} people ({source}) -> {vis_dir}, '
              f'{pred_dir}', flush=True)
    if inferencer.skipped:
        names = ', '.join(Path(error.path).name for error in inferencer.skipped)
        raise SystemExit(f'error: {len(inferencer.skipped)} of {frames + len(inferencer.skipped)} '
                         f'images could not be processed: {names}')


if __name__ == '__main__':
    install_excepthook()  # an uncaught UserError: one line, no traceback
    main()
