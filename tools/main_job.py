"""The main job: train SAM-R50 on the bundled COCO sample, evaluate it, draw what it sees.

    python tools/main_job.py [--epochs N] [--work-dir outputs/main_job] [--config CONFIG]
                             [--seed 0 | --no-seed]

Trains from scratch (keeping the best checkpoint by coco/AP), evaluates that checkpoint with
ground-truth boxes and with the bundled detections, draws skeletons and attention maps, and writes
a summary table to <work-dir>/summary.md. A check that the loop works (4 images memorised), not of
accuracy on COCO. README "The main job".
"""
import argparse
import copy
import json
import os
import time
from pathlib import Path

# First: importing mmpose_sam registers the plugin and quiets pkg_resources.
from mmpose_sam.errors import install_excepthook  # noqa: I001
from mmengine.config import Config, DictAction
from toolkit.analysis import load_config, table_head, table_row
from toolkit.runners import build_runner, run_config

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = (ROOT / 'configs' / 'body_2d_keypoint' / 'topdown_heatmap' / 'coco_sample' /
                  'td-hm_sam-res50-seq3x3_1xb16-150e_coco-sample-128x96.py')
METRICS = ('coco/AP', 'coco/AP .5', 'coco/AP .75', 'coco/AR')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--config', default=str(DEFAULT_CONFIG), help='training config')
    parser.add_argument('--work-dir', default='outputs/main_job', help='where everything goes')
    parser.add_argument('--epochs', type=int, help='override the number of epochs')
    parser.add_argument('--val-interval', type=int, help='override the validation interval')
    parser.add_argument(
        '--det-bbox-file', default=str(ROOT / 'data' / 'coco_sample' /
                                       'test_coco_det_AP_H_56.json'),
        help='COCO-format person detections for the second evaluation')
    parser.add_argument('--seed', type=int, default=0,
                        help='random seed (initial weights, data order); default 0, so that two '
                        'runs on the same machine give the same numbers')
    parser.add_argument('--no-seed', action='store_true', help='a fresh random seed instead')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, as in MMPose tools/train.py')
    return parser.parse_args(argv)


def training_config(args) -> Config:
    cfg = run_config(load_config(args.config, args.cfg_options), args.work_dir,
                     None if args.no_seed else args.seed, args.epochs)
    if args.val_interval or args.epochs:
        cfg.train_cfg.val_interval = args.val_interval or max(1, args.epochs // 3)
    cfg.default_hooks.checkpoint.interval = cfg.train_cfg.val_interval
    return cfg


def evaluate(cfg: Config, checkpoint: str, name: str, bbox_file=None) -> dict:
    """COCO metrics of ``checkpoint`` on the test set, with GT boxes or ``bbox_file``."""
    cfg = copy.deepcopy(cfg)
    cfg.load_from = checkpoint
    cfg.work_dir = os.path.join(cfg.work_dir, f'test_{name}')
    cfg.test_dataloader.dataset.bbox_file = bbox_file
    return build_runner(cfg).test()


def best_checkpoint(work_dir: str) -> str:
    best = sorted(Path(work_dir).glob('best_coco_AP_epoch_*.pth'), key=os.path.getmtime)
    if not best:
        raise FileNotFoundError(f'no best_coco_AP_epoch_*.pth in {work_dir}: did validation run?')
    return str(best[-1])


def draw_pictures(cfg: Config, checkpoint: str, out_dir: Path, bbox_file: str) -> str:
    """Skeletons of the detected people and the spatial attention of the most confident one, for
    every image of the test set's folder: ``<image name>`` and ``<stem>.json`` (MMPose's
    inferencer), ``<stem>_attention.png`` and ``<stem>_stage{1..4}.png`` in ``out_dir``."""
    from mmpose_sam.apis import (BBoxFile, TopdownInferencer, capture_spatial_attention,
                                 iter_images, save_attention_pictures, select_boxes, topdown_inputs)
    from mmengine.device import get_device
    test_cfg = copy.deepcopy(cfg)
    test_cfg.model.test_cfg.flip_test = False  # the pictures show the network's own output
    boxes_of = BBoxFile(bbox_file)
    inferencer = TopdownInferencer(test_cfg, checkpoint, get_device(), bbox_file=boxes_of)
    model = inferencer.model
    dataset = cfg.test_dataloader.dataset
    image_dir = Path(dataset.data_root) / dataset.data_prefix.get('img', '')
    # A corrupt image is reported (one line) and skipped by the inferencer.
    for _ in inferencer(str(image_dir), vis_out_dir=str(out_dir), pred_out_dir=str(out_dir),
                        bbox_thr=0.3, draw_bbox=True):
        pass
    for item in iter_images(image_dir):
        if item.error is not None:
            continue
        boxes = select_boxes(boxes_of.boxes_for(item.path), bbox_thr=0.3)
        if len(boxes):
            best = boxes[boxes[:, 4].argmax()][None]
            inputs, crops = topdown_inputs(model, item.image, best)
            maps = capture_spatial_attention(model, inputs)
            save_attention_pictures(crops[0], [(m.stage, m.map[0]) for m in maps],
                                    out_dir / item.path.stem)
        print(f'[main_job] {item.path.name}: {len(boxes)} people drawn', flush=True)
    return str(out_dir)


def training_precision(runner) -> str:
    """What the run computed in: bf16 AMP where the device has native bf16, else float32.

    The same seeded command gives other numbers in bf16 than in float32 (README
    "The main job"), so the summary says which one ran."""
    device = next(runner.model.parameters()).device
    wrapper = runner.optim_wrapper
    dtype = getattr(wrapper, 'cast_dtype', None)
    if dtype is None or not getattr(wrapper, 'autocast_enabled', True):
        asked = ' (bf16 AMP asked; this CPU has no native bf16)' if dtype is not None else ''
        return f'float32 on {device.type}{asked}'
    return f'{str(dtype).split(".")[-1]} autocast on {device.type}'


def main(argv=None) -> dict:
    args = parse_args(argv)
    os.chdir(ROOT)  # the configs' data_root is relative to the repo root, as in MMPose
    cfg = training_config(args)
    print(f'[main_job] training {Path(args.config).name} for {cfg.train_cfg.max_epochs} epochs '
          f'-> {cfg.work_dir}', flush=True)
    start = time.monotonic()
    runner = build_runner(cfg)
    runner.train()
    train_time = time.monotonic() - start
    precision = training_precision(runner)
    checkpoint = best_checkpoint(cfg.work_dir)

    gt = evaluate(cfg, checkpoint, 'gt_boxes')
    det = evaluate(cfg, checkpoint, 'det_boxes', bbox_file=args.det_bbox_file)

    pictures = draw_pictures(cfg, checkpoint, Path(cfg.work_dir) / 'pictures', args.det_bbox_file)
    total_time = time.monotonic() - start

    rows = [('config', Path(args.config).name), ('epochs', cfg.train_cfg.max_epochs),
            ('seed', runner.seed), ('precision', precision),
            ('best checkpoint', checkpoint)]
    rows += [(f'{m} (GT boxes)', f'{gt[m]:.3f}') for m in METRICS]
    rows += [(f'{m} (detected boxes)', f'{det[m]:.3f}') for m in METRICS]
    rows += [('pictures', pictures), ('training time', f'{train_time / 60:.1f} min'),
             ('total time', f'{total_time / 60:.1f} min')]
    table = '\n'.join(table_head(['what', 'value']) + [table_row(row) for row in rows])
    Path(cfg.work_dir, 'summary.md').write_text(table + '\n')
    Path(cfg.work_dir, 'summary.json').write_text(json.dumps(
        {'gt_boxes': gt, 'det_boxes': det, 'checkpoint': checkpoint, 'seed': runner.seed,
         'precision': precision, 'train_s': train_time, 'total_s': total_time}, indent=2))
    print('\n' + table, flush=True)
    return {'gt_boxes': gt, 'det_boxes': det, 'checkpoint': checkpoint, 'pictures': pictures,
            'precision': precision}


if __name__ == '__main__':
    install_excepthook()  # an uncaught UserError: one line, no traceback
    main()
