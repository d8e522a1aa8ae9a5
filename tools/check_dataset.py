"""Check the data sets a config names before a long run: every problem at once, one line each.

    python tools/check_dataset.py CONFIG [--split train|val|test|all] [--workers N] [--strict]
                                         [--cfg-options KEY=VALUE ...]

Reads each split's dataset (wrappers' too) with its paths resolved as MMPose does (relative to the
current directory: run it from where you train) and checks the annotation file, the detection
file and every image the split reads. Prints ``error:``/``warning:`` lines and a summary; exit
status 1 on any error (or warning, with --strict). The checks: docs/data_checks.md.
"""
import argparse
import os
import sys
import time
import warnings
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

# First: importing mmpose_sam registers the plugin and quiets pkg_resources.
from mmpose_sam.errors import install_excepthook  # noqa: I001
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope
from mmpose.datasets.datasets.base import BaseCocoStyleDataset
from mmpose.registry import DATASETS
from mmpose.utils import register_all_modules

# mmpose_sam registers CheckedCocoDataset; install_excepthook (in __main__) prints an uncaught
# UserError (a missing config, a bad option) as one line.
from mmpose_sam.reliability.data import (CheckedCocoDataset, check_coco_annotations,
                                         check_detections, check_image, load_json)
from mmpose_sam.reliability.data.problems import (WARNING, Problem, count_by_kind, plural,
                                                  split_by_severity)
from mmpose_sam.errors import InvalidInputError
from toolkit import analysis, doc_parser

SPLITS = ('train', 'val', 'test')


@dataclass
class DatasetSpec:
    """A COCO-style dataset of the config, its paths resolved as MMPose resolves them."""
    splits: List[str]
    type_name: str
    ann_file: str
    bbox_file: Optional[str]
    img_prefix: str
    test_mode: bool
    data_mode: str
    num_keypoints: int
    keypoint_names: List[str] = field(default_factory=list)

    @property
    def key(self) -> Tuple:
        return self.ann_file, self.bbox_file, self.img_prefix, self.test_mode, self.data_mode


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = doc_parser(__doc__)
    parser.add_argument('config', help='MMPose config file')
    parser.add_argument('--split', choices=(*SPLITS, 'all'), default='all',
                        help='which dataloader\'s dataset to check (default: all)')
    parser.add_argument('--workers', type=int, default=len(os.sched_getaffinity(0)),
                        help='processes that check images (default: the usable CPU cores)')
    parser.add_argument('--strict', action='store_true', help='exit 1 on warnings too')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, e.g. train_dataloader.dataset.data_root=X')
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error('--workers must be at least 1')
    return args


def load_config(path: str, cfg_options: Optional[dict]) -> Config:
    if not os.path.isfile(path):
        raise InvalidInputError(path, 'config file not found')
    cfg = analysis.load_config(path, cfg_options)
    register_all_modules(init_default_scope=False)
    init_default_scope(cfg.get('default_scope', 'mmpose'))
    return cfg


def leaf_datasets(dataset_cfg: dict) -> Iterator[dict]:
    """The datasets inside wrappers (``datasets=[...]`` of ConcatDataset or MMPose's
    CombinedDataset, ``dataset=...`` of RepeatDataset), or ``dataset_cfg`` itself."""
    if 'datasets' in dataset_cfg:
        for child in dataset_cfg['datasets']:
            yield from leaf_datasets(child)
    elif 'dataset' in dataset_cfg:
        yield from leaf_datasets(dataset_cfg['dataset'])
    else:
        yield dataset_cfg


def dataset_specs(cfg: Config, config_path: str,
                  splits: Sequence[str]) -> Tuple[List[DatasetSpec], List[Problem]]:
    """The COCO-style datasets of ``splits``, the same dataset in several splits once; and a
    warning for each dataset this tool cannot check."""
    # CheckedCocoDataset checks, then reads as BaseCocoStyleDataset does.
    coco_layout_readers = (BaseCocoStyleDataset._load_annotations,
                           CheckedCocoDataset._load_annotations)
    specs: Dict[Tuple, DatasetSpec] = {}
    problems: List[Problem] = []
    for split in splits:
        loader = cfg.get(f'{split}_dataloader')
        if not loader or 'dataset' not in loader:
            if len(splits) == 1:
                raise InvalidInputError(config_path, f'no {split}_dataloader.dataset')
            continue
        for dataset_cfg in leaf_datasets(loader['dataset']):
            where = f'{split}_dataloader'
            dataset_type = dataset_cfg.get('type')
            cls = DATASETS.get(dataset_type) if isinstance(dataset_type, str) else dataset_type
            if cls is None:
                raise InvalidInputError(config_path, f'{where}.dataset: no dataset type '
                                        f'{dataset_type!r} is registered (custom_imports?)')
            type_name = getattr(cls, '__name__', str(dataset_type))
            # Checked: the datasets that read MMPose's COCO layout, 'keypoints' of K x 3 values.
            if not (isinstance(cls, type) and issubclass(cls, BaseCocoStyleDataset)
                    and cls.parse_data_info is BaseCocoStyleDataset.parse_data_info
                    and cls._load_annotations in coco_layout_readers):
                problems.append(Problem(
                    config_path, where, 'not checked', f'{type_name} does not read the COCO '
                    'keypoint layout this tool checks: not checked', WARNING))
                continue
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter('ignore')  # MMPose's note on the metainfo file's path
                    dataset = DATASETS.build({**dataset_cfg, 'lazy_init': True, 'pipeline': []})
            except Exception as error:  # e.g. bbox_file outside test mode
                raise InvalidInputError(config_path, f'{where}.dataset: {error}') from error
            metainfo = dataset.metainfo
            names = metainfo.get('keypoint_id2name', {})
            spec = DatasetSpec(
                splits=[], type_name=type_name, ann_file=dataset.ann_file,
                bbox_file=dataset.bbox_file or None, img_prefix=dataset.data_prefix.get('img', ''),
                test_mode=dataset.test_mode, data_mode=dataset.data_mode,
                num_keypoints=metainfo['num_keypoints'],
                keypoint_names=[names.get(k, '') for k in range(metainfo['num_keypoints'])])
            specs.setdefault(spec.key, spec).splits.append(split)  # each dataset once
    return list(specs.values()), problems


class Checker:
    """Runs the checks of every dataset, reading each JSON file once and keeping each problem
    once (the sample config's three splits read one annotation file)."""

    def __init__(self):
        self.problems: Dict[Tuple, Problem] = {}
        self.json: Dict[str, Tuple] = {}
        self.images: Dict[str, Tuple[str, str, Tuple[int, int]]] = {}
        self.annotation_counts: Dict[str, Tuple[int, int]] = {}  # file: (annotations, people)
        self.detection_counts: Dict[str, int] = {}

    def add(self, problems: Sequence[Problem]) -> None:
        for problem in problems:
            self.problems.setdefault((problem.severity, str(problem)), problem)

    def load(self, path: str):
        """The parsed JSON file, ``None`` if it cannot be read (a problem then)."""
        if path not in self.json:
            self.json[path] = load_json(path)
        data, problem = self.json[path]
        if problem:
            self.add([problem])
        return data

    def check_dataset(self, spec: DatasetSpec) -> None:
        """Check the annotation and detection files; queue the images the split reads."""
        data = self.load(spec.ann_file)
        if data is None:
            return
        result = check_coco_annotations(data, spec.ann_file, spec.num_keypoints,
                                        spec.keypoint_names, test_mode=spec.test_mode)
        self.add(result.problems)
        self.annotation_counts[spec.ann_file] = (result.num_annotations, result.num_people)
        image_ids = result.used_image_ids
        if spec.data_mode == 'bottomup':
            image_ids = set(result.images)  # bottom-up reads every image with people, or all
        if spec.bbox_file:
            detections = self.load(spec.bbox_file)
            if detections is None:
                return
            found = check_detections(detections, spec.bbox_file, set(result.images),
                                     spec.ann_file)
            self.add(found.problems)
            self.detection_counts[spec.bbox_file] = found.num_detections
            image_ids = found.used_image_ids
        if '://' in spec.img_prefix:
            self.add([Problem(spec.img_prefix, '', 'not checked', 'images on remote storage: '
                              'not checked (this tool reads local files)', WARNING)])
            return
        for image_id in sorted(image_ids):
            image = result.images[image_id]
            path = os.path.join(spec.img_prefix, image['file_name'])
            self.images.setdefault(path, (path, f'image {image_id}',
                                          (image['width'], image['height'])))

    def check_images(self, workers: int) -> Tuple[float, float]:
        """Check the queued images in ``workers`` processes: the seconds it took, and the mean
        seconds that checking one image took its process."""
        from mmengine.utils import track_parallel_progress, track_progress
        tasks = sorted(self.images.values())
        start = time.perf_counter()
        with open(os.devnull, 'w') as devnull:
            # The bar on a terminal only: in a log it would be one endless line.
            progress = sys.stderr if sys.stderr.isatty() else devnull
            if workers == 1 or len(tasks) < 2:
                found = track_progress(_check_image_task, tasks, file=progress)
            else:
                found = track_parallel_progress(
                    _check_image_task, tasks, nproc=min(workers, len(tasks)),
                    initializer=_init_worker, chunksize=8, file=progress)
        self.add([problem for problem, _ in found if problem])
        per_image = sum(seconds for _, seconds in found) / max(len(found), 1)
        return time.perf_counter() - start, per_image


def _init_worker() -> None:
    import cv2
    cv2.setNumThreads(1)  # one process per core already


def _check_image_task(task: Tuple[str, str, Tuple[int, int]]) -> Tuple[Optional[Problem], float]:
    start = time.perf_counter()
    problem = check_image(*task)
    return problem, time.perf_counter() - start


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    splits = SPLITS if args.split == 'all' else (args.split, )
    specs, problems = dataset_specs(cfg, args.config, splits)
    checker = Checker()
    checker.add(problems)
    for spec in specs:
        mode = 'test mode' if spec.test_mode else 'training'
        detections = f', detections {spec.bbox_file}' if spec.bbox_file else ''
        print(f"{', '.join(spec.splits)}: {spec.type_name} ({mode}): {spec.ann_file}"
              f"{detections}, images in {spec.img_prefix or './'}", flush=True)
        checker.check_dataset(spec)
    seconds, per_image = checker.check_images(args.workers)
    for problem in checker.problems.values():
        print(f'{problem.severity}: {problem}')
    return summarize(checker, args, seconds, per_image)


def summarize(checker: Checker, args: argparse.Namespace, seconds: float,
              per_image: float) -> int:
    """Print the summary; the exit status."""
    errors, warnings_ = split_by_severity(checker.problems.values())
    annotations = sum(count for count, _ in checker.annotation_counts.values())
    people = sum(count for _, count in checker.annotation_counts.values())
    detections = sum(checker.detection_counts.values())
    images = len(checker.images)
    workers = min(args.workers, max(images, 1))
    print(f'checked {plural(annotations, "annotation")} '
          f'({people} {"person" if people == 1 else "people"} MMPose keeps)'
          + (f', {plural(detections, "detection")}' if detections else '')
          + f' and {plural(images, "image")} in {seconds:.1f} s with {plural(workers, "worker")}'
          + (f' ({1e3 * per_image:.1f} ms per image)' if images else ''))
    if any(problem.kind in ('missing file', 'missing image') and not os.path.isabs(problem.file)
           for problem in errors):
        print(f'note: relative paths are read from the current directory, {os.getcwd()}, as '
              'training reads them')
    if not errors and not warnings_:
        print('no problems')
    for found, label in ((errors, 'error'), (warnings_, 'warning')):
        if found:
            print(f'{plural(len(found), label)} ({count_by_kind(found)})')
    if errors or (args.strict and warnings_):
        return 1
    if warnings_:
        print('warnings alone do not fail the check (--strict makes them fail it)')
    return 0


if __name__ == '__main__':
    install_excepthook()  # an uncaught UserError: one line, no traceback
    sys.exit(main())
