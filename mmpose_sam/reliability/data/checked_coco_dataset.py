"""MMPose's COCO dataset, checked: bad data stops or is skipped with one line that names it."""
import logging
from typing import Any, List, Optional, Tuple

import numpy as np
import torch
from mmengine.dataset import force_full_init
from mmengine.fileio import get_local_path
from mmcv.transforms import LoadImageFromFile
from mmengine.logging import print_log
from mmpose.datasets import CocoDataset
from mmpose.registry import DATASETS

from mmpose_sam.errors import UserError
from mmpose_sam.reliability.data.coco_checks import (check_coco_annotations, check_detections,
                                                     read_json)
from mmpose_sam.reliability.data.image_checks import check_image
from mmpose_sam.reliability.data.problems import Problem, count_by_kind, plural, split_by_severity

# Where the messages send the user for the whole list.
CHECK_TOOL_HINT = 'run tools/check_dataset.py on the config to list them all'
IMAGE_CHECK_HINT = 'run tools/check_dataset.py on the config to list every unreadable image'


class DatasetError(UserError):
    """Bad data in a dataset: one line naming the file, the annotation or image, the problem."""


@DATASETS.register_module()
class CheckedCocoDataset(CocoDataset):
    """MMPose's :class:`~mmpose.datasets.CocoDataset` that checks its data as it goes
    (``type='CheckedCocoDataset'``, the same arguments; README "When things go wrong",
    ``docs/data_checks.md``):

    - at build, the annotation and detection files get the checks of ``tools/check_dataset.py``:
      the first error stops the run in one line, tolerated problems are one summary warning, and
      a run stops when none of a few sampled images can be read (a wrong ``data_root``);
    - in training, a sample whose image cannot be read is skipped with a warning and counted (in
      shared memory, so across DataLoader workers and epochs); past ``max_skipped_ratio`` the run
      stops in one line;
    - in val/test (``test_mode``) an unreadable image stops the run: a metric over a silently
      smaller set would not be comparable.

    Args:
        max_skipped_ratio (float): The largest share of the training samples (one per person,
            top-down) that may be skipped for unreadable images. Defaults to 0.01.
        **kwargs: The arguments of :class:`~mmpose.datasets.CocoDataset`.
    """
    #: How many images, spread evenly over the data set, are decoded when it is built.
    PROBED_IMAGES = 10

    def __init__(self, *args, max_skipped_ratio: float = 0.01, **kwargs):
        if not 0 <= max_skipped_ratio <= 1:
            raise DatasetError(f'CheckedCocoDataset: max_skipped_ratio must be between 0 and 1, '
                               f'got {max_skipped_ratio}')
        self.max_skipped_ratio = max_skipped_ratio
        super().__init__(*args, **kwargs)

    # Build: check the files before MMPose parses them -----------------------------------------
    def _load_annotations(self) -> Tuple[List[dict], List[dict]]:
        self._check_files()
        return super()._load_annotations()

    def _load_detection_results(self) -> List[dict]:
        self._check_files()
        return super()._load_detection_results()

    def _check_files(self) -> None:
        """Raise :class:`DatasetError` on the first error in the annotation or detection file;
        log the tolerated problems as one line."""
        result = check_coco_annotations(self._load_json(self.ann_file), self.ann_file,
                                        self.metainfo['num_keypoints'], self._keypoint_names(),
                                        test_mode=self.test_mode)
        problems = result.problems
        # What the file holds, for a data set that gives no sample (filter_data)
        self._held = (f'{plural(len(result.images), "image")}, '
                      f'{plural(result.num_annotations, "annotation")}, '
                      f'{result.num_labelled} of them a person with a labelled keypoint')
        if self.bbox_file:
            detections = self._load_json(self.bbox_file)
            problems += check_detections(detections, self.bbox_file, set(result.images),
                                         self.ann_file).problems
        errors, warnings = split_by_severity(problems)
        if errors:
            more = f' (and {len(errors) - 1} more: {CHECK_TOOL_HINT})' if len(errors) > 1 else ''
            raise DatasetError(f'{errors[0]}{more}')
        if warnings:
            files = ' and '.join(sorted({problem.file for problem in warnings}))
            print_log(
                f'{files}: {plural(len(warnings), "tolerated problem")} '
                f'({count_by_kind(warnings)}), MMPose drops those people or uses them as they '
                f'are: {CHECK_TOOL_HINT}', logger='current', level=logging.WARNING)

    def filter_data(self) -> List[dict]:
        # MMEngine serialises the samples right after this; with none it fails in numpy
        # (`need at least one array to concatenate`), deep in MMEngine, naming no file.
        data_list = super().filter_data()
        if not data_list:
            raise DatasetError(self._nothing_to_use())
        return data_list

    def _nothing_to_use(self) -> str:
        """One line on why the data set gave no sample: what the files hold, what is needed."""
        if not self.test_mode:
            return (f'{self.ann_file}: nothing to train on: it holds {self._held}; training needs '
                    'people with num_keypoints > 0 that are not iscrowd (MMPose drops the rest)')
        if self.bbox_file:
            thr = (self.filter_cfg or {}).get('bbox_score_thr')
            scoring = '' if thr is None else f' scoring at least bbox_score_thr={thr:g}'
            return (f'{self.bbox_file}: nothing to evaluate: no detection{scoring} in an image '
                    f'of {self.ann_file} ({self._held})')
        return f'{self.ann_file}: nothing to evaluate: it holds {self._held}'

    @staticmethod
    def _load_json(path: str) -> Any:
        with get_local_path(path) as local_path:  # MMPose's way to read any file backend's file
            return read_json(local_path, name=path, error=DatasetError)

    def _keypoint_names(self) -> List[str]:
        names = self.metainfo.get('keypoint_id2name', {})
        return [names.get(k, f'keypoint {k}') for k in range(self.metainfo['num_keypoints'])]

    def full_init(self) -> None:
        if self._fully_initialized:
            return
        super().full_init()
        # One flag per sample in shared memory: the DataLoader workers (forked or spawned) each
        # hold a copy of the dataset, and new workers start every epoch, but they all see and
        # set these same flags, so the count of skipped samples is the run's.
        self._skipped = torch.zeros(len(self), dtype=torch.uint8).share_memory_()
        if self.checks_images:
            self._probe_images()

    @property
    def checks_images(self) -> bool:
        """Whether the images are local files, which the image checks read; with a remote file
        backend (``backend_args`` of the pipeline's ``LoadImage``, a URL as ``data_prefix``) a
        failure to load one is left to MMPose, as in :class:`~mmpose.datasets.CocoDataset`."""
        if '://' in self.data_prefix.get('img', ''):
            return False
        for transform in self.pipeline.transforms:
            if isinstance(transform, LoadImageFromFile):
                backend = transform.backend_args or transform.file_client_args or {}
                if backend.get('backend', 'local') != 'local':
                    return False
        return True

    def _probe_images(self) -> None:
        """Stop when none of a few images spread over the data set can be read."""
        if len(self) == 0:
            return
        indices = np.linspace(0, len(self) - 1, self.PROBED_IMAGES).round().astype(int)
        images = {}
        for idx in np.unique(indices):
            info = self.get_data_info(int(idx))
            images.setdefault(info['img_path'], info['img_id'])
        problems = [check_image(path, f'image {img_id}') for path, img_id in images.items()]
        if all(problems):
            raise DatasetError(
                f'{problems[0]}; none of the {plural(len(problems), "image")} sampled across '
                f'{self.ann_file} can be read: check data_root and data_prefix '
                f"(img={self.data_prefix.get('img')!r})")

    # Loading samples --------------------------------------------------------------------------
    def __getitem__(self, idx: int) -> dict:
        if self.test_mode:
            return super().__getitem__(idx)
        # MMEngine's re-fetch loop, with a one-line error when it runs out of tries.
        for _ in range(self.max_refetch + 1):
            data = self.prepare_data(idx)
            if data is not None:
                return data
            idx = self._rand_another()
        raise DatasetError(
            f'{self.ann_file}: no readable image in {self.max_refetch + 1} tries '
            f'({self._skipped_share()} skipped so far): {IMAGE_CHECK_HINT}')

    @force_full_init
    def prepare_data(self, idx: int) -> Optional[dict]:
        """The sample after the pipeline; ``None`` (training) when its image cannot be read."""
        if not self.test_mode and self._skipped[idx]:
            return None  # its image failed before: no second read, no second warning
        try:
            return super().prepare_data(idx)
        except Exception as error:
            if not self.checks_images:
                raise
            info = self.get_data_info(idx)
            problem = check_image(info['img_path'], f"image {info['img_id']}")
            if problem is None:
                raise  # the image reads fine: a pipeline failure, which keeps its traceback
            if self.test_mode:
                raise DatasetError(f'{problem}: the evaluation needs every image; '
                                   f'{IMAGE_CHECK_HINT}') from error
        self._skip(idx, problem, info)
        return None

    def _skip(self, idx: int, problem: Problem, info: dict) -> None:
        """Count a training sample whose image cannot be read; stop past the allowed share."""
        self._skipped[idx] = 1
        if self.num_skipped > self.max_skipped_ratio * len(self):
            raise DatasetError(
                f'{problem}; {self._skipped_share()} skipped for unreadable images, more than '
                f'max_skipped_ratio={self.max_skipped_ratio:g} allows: {IMAGE_CHECK_HINT}')
        print_log(
            f"Skipped annotation {info['id']}: {problem}; {self._skipped_share()} skipped so far, "
            f'the run stops above {self.max_skipped_ratio:.1%} (max_skipped_ratio)',
            logger='current', level=logging.WARNING)

    @property
    @force_full_init
    def num_skipped(self) -> int:
        """How many training samples were skipped so far, by every process of this run."""
        return int(self._skipped.sum())

    def _skipped_share(self) -> str:
        skipped = self.num_skipped
        return f'{skipped} of {len(self)} training samples ({skipped / len(self):.1%})'
