"""What a top-down demo reads besides the model: images, videos and person boxes from a file,
checked first so that a bad file ends in one line (:class:`~mmpose_sam.errors.InvalidInputError`,
``<path>: <problem>``) before any model is built. Boxes are ``(N, 5)`` float32 ``x1, y1, x2,
y2, score``.
"""
import mimetypes
import re
from collections import defaultdict
from pathlib import Path
from typing import Dict, Iterator, List, NamedTuple, Optional, Sequence, Union

import cv2
import numpy as np

from mmpose_sam.reliability.checkpoint import PARTIAL_PREFIX
from mmpose_sam.reliability.data.coco_checks import (PERSON_CATEGORY_ID, check_detections,
                                                     read_json)
from mmpose_sam.reliability.data.image_checks import read_image
from mmpose_sam.errors import InvalidInputError

PathLike = Union[str, Path]

# What a folder is searched for; a file named explicitly is decoded whatever its suffix.
IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')


def require_files(*paths: PathLike) -> None:
    """Raise :class:`InvalidInputError` for the first local path that is not a file (URLs pass:
    MMEngine fetches them; a checkpoint's ``partial:`` prefix is not part of its path), so that a
    command line fails before it builds a model."""
    for path in paths:
        path = str(path).removeprefix(PARTIAL_PREFIX)
        if '://' not in path and not Path(path).is_file():
            raise InvalidInputError(path, 'no such file')


# Images and videos ----------------------------------------------------------------------------


def list_images(path: PathLike) -> List[Path]:
    """The image files to process: ``path`` itself if it is a file, else the images in the folder
    ``path`` (by suffix, sorted by name, not recursive; other files are left alone)."""
    path = Path(path)
    if not path.exists():
        raise InvalidInputError(path, 'no such file or directory')
    if path.is_file():
        return [path]
    images = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise InvalidInputError(path, f'no images ({", ".join(IMAGE_SUFFIXES)}) in this folder')
    return images


def load_image(path: PathLike) -> np.ndarray:
    """Decode an image file to a BGR ``uint8`` array, as MMPose's ``LoadImage`` (OpenCV) does,
    with the checks of ``tools/check_dataset.py`` (a truncated file is caught even where OpenCV
    would fill it in grey).

    Raises:
        InvalidInputError: the file is missing, empty, unreadable, corrupt or truncated.
    """
    image, problem = read_image(str(path))
    if problem is not None:
        raise InvalidInputError(path, problem.message)
    return image


class ImageItem(NamedTuple):
    """One entry of :func:`iter_images`: the decoded image, or the error that replaced it."""
    path: Path
    image: Optional[np.ndarray]
    error: Optional[InvalidInputError]


def iter_images(path_or_paths: Union[PathLike, Sequence[Path]]) -> Iterator[ImageItem]:
    """Decode images one at a time, so that a corrupt file is reported and the rest go on.

    Args:
        path_or_paths: a file or folder (listed now, by :func:`list_images`, so a missing path
            raises here, before any work) or the list it returned.
    """
    paths = (list(path_or_paths) if isinstance(path_or_paths, (list, tuple))
             else list_images(path_or_paths))

    def generate():
        for path in paths:
            try:
                yield ImageItem(path, load_image(path), None)
            except InvalidInputError as error:
                yield ImageItem(path, None, error)

    return generate()


def is_video(path: PathLike) -> bool:
    """Whether MMPose's inferencer takes ``path`` for a video: its MIME type, from the suffix."""
    return (mimetypes.guess_type(str(path))[0] or '').startswith('video/')


def check_video(path: PathLike) -> None:
    """Raise :class:`InvalidInputError` unless OpenCV opens the video and decodes a first frame
    (``mmcv.VideoReader`` would quietly give zero frames)."""
    capture = cv2.VideoCapture(str(path))
    try:
        readable = capture.isOpened() and capture.read()[0]
    finally:
        capture.release()
    if not readable:
        raise InvalidInputError(path, 'unreadable video (OpenCV cannot open or decode it)')


# Boxes ----------------------------------------------------------------------------------------


def load_bbox_file(path: PathLike) -> Dict[int, np.ndarray]:
    """Read person detections in COCO results format: a list of ``{"image_id", "bbox": [x, y,
    w, h], "score", "category_id"}``, as MMPose's ``COCO_val2017_detections_AP_H_56_person.json``,
    checked by the rules a data set's ``bbox_file`` is checked by (the first error, one line).

    Returns:
        ``{image_id: (N, 5) boxes x1, y1, x2, y2, score}`` in file order. Entries whose
        ``category_id`` is not person (1) are dropped.
    """
    entries = read_json(str(path))
    errors = [problem for problem in check_detections(entries, str(path)).problems
              if problem.is_error]
    if errors:
        raise InvalidInputError(str(errors[0]))
    boxes = defaultdict(list)
    for entry in entries:
        if entry['category_id'] == PERSON_CATEGORY_ID:
            x, y, w, h = (float(value) for value in entry['bbox'][:4])
            boxes[int(entry['image_id'])].append([x, y, x + w, y + h, float(entry['score'])])
    return {key: np.asarray(value, dtype=np.float32) for key, value in boxes.items()}


def load_image_ids(ann_file: PathLike) -> Dict[str, int]:
    """``{file name: image id}`` from the ``images`` of a COCO annotation file (base names, so
    that ``file_name`` values with a folder still match)."""
    annotations = read_json(str(ann_file))
    try:
        return {Path(image['file_name']).name: int(image['id']) for image in annotations['images']}
    except (TypeError, KeyError, ValueError):
        raise InvalidInputError(ann_file, 'malformed annotation file: expected COCO format, '
                                '{"images": [{"id": int, "file_name": str}, ...]}') from None


class BBoxFile:
    """Person boxes of a COCO results file, looked up by image file.

    An image is matched to its ``image_id`` by its ``file_name`` in ``ann_file`` when one is
    given, else by its file name read as a number (COCO's ``000000000785.jpg`` -> 785).
    An image with no entry in the file has no people.
    """

    def __init__(self, bbox_file: PathLike, ann_file: Optional[PathLike] = None):
        self.path = Path(bbox_file)
        self.boxes = load_bbox_file(bbox_file)
        self.ann_file = ann_file
        self.image_ids = load_image_ids(ann_file) if ann_file else None

    def image_id(self, image_path: PathLike) -> int:
        """The COCO ``image_id`` of an image file (see the class docstring)."""
        name = Path(image_path).name
        if self.image_ids is not None:
            if name not in self.image_ids:
                raise InvalidInputError(image_path, f'not among the images of {self.ann_file}')
            return self.image_ids[name]
        if not re.fullmatch(r'\d+', Path(image_path).stem):
            raise InvalidInputError(
                image_path, f'cannot tell its image_id in {self.path}: the file name is not a '
                'number (give the COCO annotation file, --ann-file, to match by file_name)')
        return int(Path(image_path).stem)

    def boxes_for(self, image_path: PathLike) -> np.ndarray:
        """``(N, 5)`` boxes of an image, possibly ``N = 0``."""
        return self.boxes.get(self.image_id(image_path), np.zeros((0, 5), np.float32))


def select_boxes(boxes: np.ndarray, bbox_thr: float, nms_thr: Optional[float] = None) -> np.ndarray:
    """Boxes with ``score >= bbox_thr``, then (if ``nms_thr`` is given) MMPose's greedy NMS."""
    from mmpose.evaluation.functional import nms
    boxes = boxes[boxes[:, 4] >= bbox_thr]
    if nms_thr is not None and len(boxes):
        boxes = boxes[nms(boxes, nms_thr)]
    return boxes
