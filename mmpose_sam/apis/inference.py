"""Top-down inference on MMPose's inferencer, plus what it does not do for us.

:class:`TopdownInferencer` is MMPose's ``Pose2DInferencer`` (images, folders, videos, webcams;
MMDetection detectors; drawing; JSON predictions; progress bar) with a thin layer on top:

- person boxes from a COCO results-format file (:class:`BBoxFile`); an image without boxes there
  has no people, as in MMPose's datasets (the inferencer would pose the whole image instead, and
  ignores its own ``bboxes`` argument in MMPose 1.3.2);
- a corrupt or truncated image in a folder is reported in one line and skipped (the inferencer
  would decode it to grey rows or stop with a traceback); an unreadable video is an error, not
  zero frames;
- a progress bar that knows the number of images or frames;
- optionally the spatial attention maps of each person (SAMResNet models).

Every problem with an input file is an :class:`~mmpose_sam.errors.InvalidInputError` whose message
is one line, ``<path>: <problem>``, so that a command line can print it instead of a traceback.
Boxes are ``(N, 5)`` float32 arrays ``x1, y1, x2, y2, score`` throughout.
"""
import io
import json
import mimetypes
import re
import sys
from collections import defaultdict
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, NamedTuple, Optional, Sequence, Union

import cv2
import mmcv
import numpy as np
import torch
from mmengine.dataset import pseudo_collate
from mmpose.apis.inferencers import Pose2DInferencer
from PIL import Image, UnidentifiedImageError

from ..errors import InvalidInputError

PathLike = Union[str, Path]

# What a folder is searched for; a file named explicitly is decoded whatever its suffix.
IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')
COCO_PERSON_ID = 1  # category_id of "person" in COCO results files


def default_device() -> str:
    """``'cuda:0'`` when torch sees a GPU, else ``'cpu'``."""
    return 'cuda:0' if torch.cuda.is_available() else 'cpu'


def require_files(*paths: PathLike) -> None:
    """Raise :class:`InvalidInputError` for the first local path that is not a file (URLs pass:
    MMEngine fetches them; a checkpoint's ``partial:`` prefix is not part of its path), so that a
    command line fails before it builds a model."""
    from ..checkpoint import PARTIAL_PREFIX
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
    """Decode an image file to a BGR ``uint8`` array, as MMPose's ``LoadImage`` (OpenCV) does.

    Raises:
        InvalidInputError: the file cannot be read, is not an image, or is corrupt or truncated.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise InvalidInputError(path, f'cannot read file ({error.strerror})') from None
    # OpenCV decodes a truncated JPEG without an error (the missing rows come out grey), so the
    # file is first decoded in full by PIL, which does report truncation, only as a check.
    try:
        with Image.open(io.BytesIO(data)) as pil_image:
            pil_image.load()
    except UnidentifiedImageError:
        raise InvalidInputError(path, 'not an image file (unknown format)') from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise InvalidInputError(path, f'corrupt image file ({error})') from None
    image = mmcv.imfrombytes(data, flag='color')
    if image is None:
        raise InvalidInputError(path, 'corrupt image file (OpenCV cannot decode it)')
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
                item = ImageItem(path, load_image(path), None)
            except InvalidInputError as error:
                item = ImageItem(path, None, error)
            yield item

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


def _read_json(path: PathLike, what: str):
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(path, f'no such {what}')
    try:
        return json.loads(path.read_text(encoding='utf-8'))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidInputError(path, f'malformed {what}: not JSON ({error})') from None


def load_bbox_file(path: PathLike) -> Dict[int, np.ndarray]:
    """Read person detections in COCO results format: a list of ``{"image_id", "bbox": [x, y,
    w, h], "score", "category_id"}``, as MMPose's ``COCO_val2017_detections_AP_H_56_person.json``.

    Returns:
        ``{image_id: (N, 5) boxes x1, y1, x2, y2, score}`` in file order. Entries whose
        ``category_id`` is not person (1) are dropped; a missing ``score`` counts as 1.
    """
    entries = _read_json(path, 'bbox file')
    expected = 'a list of {"image_id": int, "bbox": [x, y, w, h], "score": float} (COCO results)'
    if not isinstance(entries, list):
        raise InvalidInputError(path, f'malformed bbox file: expected {expected}, '
                                f'got a JSON {type(entries).__name__}')
    boxes = defaultdict(list)
    for index, entry in enumerate(entries):
        try:
            image_id = int(entry['image_id'])
            x, y, w, h = (float(v) for v in entry['bbox'])
            score = float(entry.get('score', 1.0))
            category = entry.get('category_id', COCO_PERSON_ID)
        except (TypeError, KeyError, ValueError, AttributeError):
            raise InvalidInputError(path, f'malformed bbox file: entry {index} is not '
                                    f'{{"image_id": int, "bbox": [x, y, w, h], "score": float}}: '
                                    f'{json.dumps(entry)[:80]}') from None
        if category == COCO_PERSON_ID:
            boxes[image_id].append([x, y, x + w, y + h, score])
    return {key: np.asarray(value, dtype=np.float32) for key, value in boxes.items()}


def load_image_ids(ann_file: PathLike) -> Dict[str, int]:
    """``{file name: image id}`` from the ``images`` of a COCO annotation file (base names, so
    that ``file_name`` values with a folder still match)."""
    annotations = _read_json(ann_file, 'annotation file')
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


# The inferencer -------------------------------------------------------------------------------


class _Sized:
    """A generator with a known length, so that the progress bar (rich's ``track``) has a total."""

    def __init__(self, iterable: Iterable, length: int):
        self.iterable, self.length = iterable, length

    def __iter__(self):
        return iter(self.iterable)

    def __len__(self) -> int:
        return self.length


class TopdownInferencer(Pose2DInferencer):
    """MMPose's ``Pose2DInferencer`` for top-down models, with person boxes from a detector, a
    COCO results-format file or the whole image, and one-line errors for bad input.

    Call it as MMPose's inferencer (a generator of results; see ``tools/demo.py``)::

        inferencer = TopdownInferencer(config, checkpoint, bbox_file=BBoxFile('dets.json'))
        for result in inferencer('images/', out_dir='outputs/demo', bbox_thr=0.3):
            ...

    Args:
        model: config file, ``Config``, or anything MMPose's inferencer takes.
        weights: checkpoint file.
        device: e.g. ``'cpu'``, ``'cuda:0'``; default: MMEngine's choice.
        det_model: MMDetection config of a person detector (with ``det_weights``). Without one
            (the default) the whole image is one person, unless ``bbox_file`` gives the boxes;
            MMPose's default detector (a download) is never used. When the detector finds nobody,
            MMPose poses the whole image.
        det_weights: the detector's checkpoint.
        det_cat_ids: the detector's person class(es); 0 for COCO-trained MMDetection models.
        bbox_file: person boxes (``score >= bbox_thr``) by image file; an image without boxes
            in it has no people. Takes precedence over ``det_model``.
        attention_dir: if given, write each person's spatial attention pictures there
            (:func:`~mmpose_sam.apis.save_attention_pictures`; SAMResNet models only, not for
            video or webcam frames).
        show_progress: show MMPose's progress bar (with a total for folders and videos).
    """

    def __init__(self,
                 model,
                 weights: Optional[str] = None,
                 device: Optional[str] = None,
                 det_model: Optional[str] = None,
                 det_weights: Optional[str] = None,
                 det_cat_ids: Union[int, Sequence[int]] = 0,
                 bbox_file: Optional[BBoxFile] = None,
                 attention_dir: Optional[PathLike] = None,
                 show_progress: bool = False) -> None:
        self.bbox_file = bbox_file
        self.attention_dir = Path(attention_dir) if attention_dir else None
        # Every input the preprocessing skipped, as the error that said why (see `preprocess`).
        self.skipped: List[InvalidInputError] = []
        super().__init__(
            model, weights, device, det_model=det_model or 'whole_image', det_weights=det_weights,
            det_cat_ids=det_cat_ids, show_progress=show_progress)

    def _init_collate(self, cfg) -> Callable:
        # MMEngine 0.10.7's inferencer looks `test_dataloader.collate_fn` up by name only, and
        # fails on the dict form that the Runner takes (our configs set stack_collate for
        # training speed). One image's crops at a time need nothing but MMEngine's default.
        return pseudo_collate

    def _inputs_to_list(self, inputs):
        """MMPose's, except that a folder lists its images by suffix (MMPose's MIME-type check
        fails on a file without a suffix), a file that is not a video is always an image, and a
        missing path or unreadable video is an :class:`InvalidInputError`."""
        if not isinstance(inputs, (str, Path)):
            return super()._inputs_to_list(inputs)
        self._video_input = False
        path = Path(inputs)
        if path.is_dir():
            return [str(image) for image in list_images(path)]
        if not path.exists():
            raise InvalidInputError(path, 'no such file or directory')
        if is_video(path):
            check_video(path)
            return super()._inputs_to_list(str(path))  # an mmcv.VideoReader, and video_info
        return [str(path)]

    def preprocess(self, inputs, batch_size: int = 1, bboxes=None, bbox_thr: float = 0.3,
                   nms_thr: float = 0.3, **kwargs):
        """MMPose's preprocessing, one image or frame at a time, that decodes image files itself
        (:func:`load_image`) and skips a bad one: its error is printed as ``error: <path>:
        <problem> (skipped)`` and kept in ``self.skipped``.

        Yields:
            ``(batch, [image])``: the collated crops of the image's people and the BGR image. An
            image without people yields a batch with no ``inputs`` (see :meth:`forward`).
        """

        def generate():
            for index, input in enumerate(inputs):
                try:
                    image = load_image(input) if isinstance(input, str) else input
                    data_infos = self.preprocess_single(
                        image, index, bbox_thr=bbox_thr, nms_thr=nms_thr,
                        bboxes=bboxes[index] if bboxes else None,
                        img_path=input if isinstance(input, str) else None)
                except InvalidInputError as error:
                    print(f'error: {error} (skipped)', file=sys.stderr, flush=True)
                    self.skipped.append(error)
                    continue
                yield self.collate_fn(data_infos), [image]

        return _Sized(generate(), len(inputs)) if hasattr(inputs, '__len__') else generate()

    def preprocess_single(self, input: np.ndarray, index: int, bbox_thr: float = 0.3,
                          nms_thr: float = 0.3, bboxes: Optional[np.ndarray] = None,
                          img_path: Optional[str] = None) -> List[dict]:
        """The test-pipeline outputs of one BGR image's people.

        Args:
            bboxes: ``(N, 4)`` or ``(N, 5)`` boxes of this image, used as given (MMPose 1.3.2
                ignores this argument). Default: the bbox file's boxes with ``score >=
                bbox_thr``, else MMPose's (the detector's, or the whole image).
            img_path: the image's file, which names its outputs (default: MMPose's
                ``<index>.jpg``).
        """
        name = img_path or f'{index}.jpg'.rjust(10, '0')  # MMPose's name for an array
        if bboxes is None and self.bbox_file is not None:
            bboxes = select_boxes(self.bbox_file.boxes_for(name), bbox_thr)
        if bboxes is None:
            data_infos = super().preprocess_single(input, index, bbox_thr, nms_thr)
        else:
            bboxes = np.asarray(bboxes, dtype=np.float32)
            bboxes = bboxes.reshape(-1, bboxes.shape[-1]) if bboxes.size else np.zeros((0, 4))
            scores = bboxes[:, 4] if bboxes.shape[1] > 4 else np.ones(len(bboxes), np.float32)
            data_info = dict(img=input, img_path=name, **self.model.dataset_meta)
            data_infos = [
                self.pipeline(dict(data_info, bbox=box[None, :4], bbox_score=score[None]))
                for box, score in zip(bboxes, scores)
            ]
            if not data_infos:  # no people: the batch carries only the image's metainfo
                return [self._no_people(input, name)]
        for data_info in data_infos:
            data_info['data_samples'].set_metainfo(dict(img_path=name))
        return data_infos

    def _no_people(self, image: np.ndarray, img_path: str) -> dict:
        from mmengine.structures import InstanceData
        from mmpose.structures import PoseDataSample
        num_keypoints = self.model.dataset_meta['num_keypoints']
        sample = PoseDataSample(metainfo=dict(img_path=img_path, ori_shape=image.shape[:2]))
        sample.pred_instances = InstanceData(
            keypoints=np.zeros((0, num_keypoints, 2), np.float32),
            keypoint_scores=np.zeros((0, num_keypoints), np.float32),
            bboxes=np.zeros((0, 4), np.float32), bbox_scores=np.zeros(0, np.float32))
        return dict(inputs=None, data_samples=sample)

    @torch.no_grad()
    def forward(self, inputs: dict, **kwargs):
        """MMPose's forward pass, except for an image without people (nothing to run), then the
        attention pictures if asked for."""
        if inputs['inputs'][0] is None:
            return inputs['data_samples']
        samples = super().forward(inputs, **kwargs)
        if self.attention_dir is not None and not self._video_input:
            self._save_attention(inputs)
        return samples

    def _save_attention(self, batch: dict) -> None:
        """The spatial attention pictures of the batch's people, over their input crops."""
        from .attention import capture_spatial_attention, person_prefixes, save_attention_pictures
        maps = capture_spatial_attention(self.model, self.model.data_preprocessor(batch)['inputs'])
        stem = Path(batch['data_samples'][0].img_path).stem
        prefixes = person_prefixes(self.attention_dir, stem, len(batch['inputs']))
        for index, (crop, prefix) in enumerate(zip(batch['inputs'], prefixes)):
            crop = np.ascontiguousarray(crop.permute(1, 2, 0).cpu().numpy())  # BGR uint8 HWC
            save_attention_pictures(crop, [(stage, m[index]) for stage, m in maps], prefix)
