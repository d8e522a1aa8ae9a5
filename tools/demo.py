"""Top-down pose demo: image file or folder -> person boxes -> keypoints -> pictures and JSON.

    python tools/demo.py CONFIG CHECKPOINT [--input data/coco_sample] [--out-dir outputs/demo]
        [--det-config DET_CONFIG --det-checkpoint DET_CHECKPOINT]   # boxes from an MMDet model
        [--bbox-file DETECTIONS.json [--ann-file COCO_ANNOTATIONS.json]]  # or from a file
        [--bbox-thr 0.3] [--nms-thr 0.3] [--kpt-thr 0.3] [--device cuda:0|cpu]

Person boxes come from the first of: the detector (its person class, ``score >= --bbox-thr``,
then NMS at ``--nms-thr``), the COCO results-format ``--bbox-file`` (``score >= --bbox-thr``; an
image is matched to its ``image_id`` by ``file_name`` in ``--ann-file``, else by its numeric file
name, 000000000785.jpg -> 785), or the whole image as one box.

For each image it writes ``<out-dir>/<stem>.png`` (the image, same size, with MMPose's skeletons and
boxes) and ``<out-dir>/<stem>.json`` (a list of people: ``bbox`` x1,y1,x2,y2, ``bbox_score``,
``keypoints`` [[x, y], ...], ``keypoint_scores``), and prints one line. A bad image in a folder is
reported on one line and skipped; the exit status is then 1.
"""
import argparse
import sys
from pathlib import Path
from typing import List, Optional

from mmengine.config import DictAction

from mmpose_sam.apis import (BBoxFile, InvalidInputError, build_detector, build_pose_visualizer,
                             default_device, draw_poses, estimate_poses, iter_images, list_images,
                             people_to_json, person_boxes, require_files, write_json)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Command-line arguments (``argv`` defaults to ``sys.argv[1:]``)."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='\n'.join(__doc__.splitlines()[1:]))
    parser.add_argument('config', help='pose config file')
    parser.add_argument('checkpoint', help='pose checkpoint file')
    parser.add_argument('--input', default='data/coco_sample', help='image file or folder')
    parser.add_argument('--out-dir', default='outputs/demo', help='where pictures and JSON go')
    parser.add_argument('--device', default=default_device(), help='e.g. cuda:0 or cpu')
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
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override pose config settings, e.g. model.test_cfg.flip_test=False')
    args = parser.parse_args(argv)
    if bool(args.det_config) != bool(args.det_checkpoint):
        parser.error('--det-config and --det-checkpoint go together')
    return args


def main(argv: Optional[List[str]] = None) -> None:
    """Run the demo. Bad input ends it with ``SystemExit('error: <file>: <problem>')``, except a
    bad image in a folder, which is reported and skipped (``SystemExit`` at the end)."""
    args = parse_args(argv)
    try:  # everything that can be checked without a model, before the slow model building
        images = list_images(args.input)
        bbox_file = (BBoxFile(args.bbox_file, args.ann_file)
                     if args.bbox_file and not args.det_config else None)
        require_files(args.config, args.checkpoint)
    except InvalidInputError as error:
        raise SystemExit(f'error: {error}') from None

    from mmpose.apis import init_model
    model = init_model(args.config, args.checkpoint, device=args.device,
                       cfg_options=args.cfg_options)
    detector = (build_detector(args.det_config, args.det_checkpoint, args.device)
                if args.det_config else None)
    visualizer = build_pose_visualizer(model, radius=args.radius, line_width=args.thickness)
    out_dir = Path(args.out_dir)

    failed = []
    for path, image, error in iter_images(images):
        try:
            if error is not None:
                raise error
            boxes, source = person_boxes(image, path, detector, bbox_file, args.bbox_thr,
                                         args.nms_thr, args.det_cat_id)
        except InvalidInputError as problem:
            if len(images) == 1:
                raise SystemExit(f'error: {problem}') from None
            print(f'error: {problem} (skipped)', file=sys.stderr, flush=True)
            failed.append(path.name)
            continue
        sample = estimate_poses(model, image, boxes)
        picture, result = out_dir / f'{path.stem}.png', out_dir / f'{path.stem}.json'
        draw_poses(visualizer, image, sample, picture, args.kpt_thr)
        people = people_to_json(sample)
        write_json(result, people)
        print(f'{path}: {len(people)} people ({source}) -> {picture}, {result}', flush=True)
    if failed:
        raise SystemExit(f'error: {len(failed)} of {len(images)} images could not be processed: '
                         f'{", ".join(failed)}')


if __name__ == '__main__':
    main()
