"""Reusable steps of top-down inference on image files: images -> person boxes -> poses -> files.

``tools/demo.py`` is a thin command line over these; the main job and
``tools/visualize_attention.py`` reuse the image and box loading. The model side is MMPose's own
API (``init_model``, ``inference_topdown``, ``merge_data_samples``, the ``VISUALIZERS``
registry), the detector side MMDetection's (``init_detector``, ``inference_detector``).

Boxes are ``(N, 5)`` float32 arrays ``x1, y1, x2, y2, score`` throughout.

Every problem with an input file is an :class:`InvalidInputError` whose message is one line,
``<path>: <problem>``, so that a command line can print it instead of a traceback.
"""
import io
import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple, Union

import mmcv
import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

PathLike = Union[str, Path]

# What a folder is searched for; a file named explicitly is decoded whatever its suffix.
IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')
COCO_PERSON_ID = 1  # category_id of "person" in COCO results files


class InvalidInputError(ValueError):
    """A bad input file. ``str(error)`` is one line: ``<path>: <problem>``."""

    def __init__(self, path: PathLike, problem: str):
        super().__init__(f'{path}: {problem}')
        self.path, self.problem = str(path), problem


def default_device() -> str:
    """``'cuda:0'`` when torch sees a GPU, else ``'cpu'``."""
    return 'cuda:0' if torch.cuda.is_available() else 'cpu'


def require_files(*paths: PathLike) -> None:
    """Raise :class:`InvalidInputError` for the first local path that is not a file (URLs pass:
    MMEngine fetches them), so that a command line fails before it builds a model."""
    for path in paths:
        if '://' not in str(path) and not Path(path).is_file():
            raise InvalidInputError(path, 'no such file')


# Images ---------------------------------------------------------------------------------------


def list_images(path: PathLike) -> List[Path]:
    """The image files to process: ``path`` itself if it is a file, else the images in the folder
    ``path`` (by suffix, sorted by name, not recursive)."""
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


def whole_image_box(image: np.ndarray) -> np.ndarray:
    """The whole image as one box with score 1 (top-down without a detector)."""
    height, width = image.shape[:2]
    return np.array([[0, 0, width, height, 1]], dtype=np.float32)


def build_detector(config: PathLike, checkpoint: PathLike, device: str) -> torch.nn.Module:
    """An MMDetection detector whose test pipeline runs inside MMPose's default scope."""
    try:
        from mmdet.apis import init_detector
    except ImportError as error:
        raise ImportError(f'--det-config needs MMDetection (pip install mmdet): {error}') from None
    from mmpose.utils import adapt_mmdet_pipeline
    detector = init_detector(str(config), str(checkpoint), device=device)
    detector.cfg = adapt_mmdet_pipeline(detector.cfg)
    return detector


def detect_people(detector: torch.nn.Module,
                  image: np.ndarray,
                  bbox_thr: float = 0.3,
                  nms_thr: float = 0.3,
                  det_cat_id: int = 0) -> np.ndarray:
    """Person boxes of one BGR image: the detector's class ``det_cat_id`` (0 is person for
    COCO-trained MMDetection models), ``score >= bbox_thr``, then NMS at IoU ``nms_thr``."""
    from mmdet.apis import inference_detector
    pred = inference_detector(detector, image).pred_instances.cpu().numpy()
    boxes = np.concatenate([pred.bboxes, pred.scores[:, None]], axis=1).astype(np.float32)
    return select_boxes(boxes[pred.labels == det_cat_id], bbox_thr, nms_thr)


def person_boxes(image: np.ndarray,
                 image_path: PathLike,
                 detector: Optional[torch.nn.Module] = None,
                 bbox_file: Optional[BBoxFile] = None,
                 bbox_thr: float = 0.3,
                 nms_thr: float = 0.3,
                 det_cat_id: int = 0) -> Tuple[np.ndarray, str]:
    """The people of one image, from the first source given: the detector (score threshold and
    NMS), else the bbox file (score threshold only, as MMPose's datasets do with ``bbox_file``),
    else the whole image.

    Returns:
        ``(N, 5)`` boxes and the source's name (``'detector'``, ``'bbox file'`` or
        ``'whole image'``), for messages.

    Raises:
        InvalidInputError: the image cannot be matched to an ``image_id`` of the bbox file.
    """
    if detector is not None:
        return detect_people(detector, image, bbox_thr, nms_thr, det_cat_id), 'detector'
    if bbox_file is not None:
        return select_boxes(bbox_file.boxes_for(image_path), bbox_thr), 'bbox file'
    return whole_image_box(image), 'whole image'


# Poses ----------------------------------------------------------------------------------------


def estimate_poses(model: torch.nn.Module, image: np.ndarray, boxes: np.ndarray):
    """Top-down poses of the people in ``boxes`` (``(N, 5)``, ``N`` may be 0) of a BGR image.

    Returns:
        PoseDataSample: all people merged (``merge_data_samples``); ``pred_instances`` holds
        ``keypoints (N, K, 2)``, ``keypoint_scores (N, K)``, ``bboxes (N, 4)`` and the given
        ``bbox_scores``. Without boxes it has no ``pred_instances`` at all.
    """
    from mmpose.apis import inference_topdown
    from mmpose.structures import PoseDataSample, merge_data_samples
    if len(boxes) == 0:
        # inference_topdown would fall back to the whole image: no boxes means no people here.
        return PoseDataSample()
    sample = merge_data_samples(inference_topdown(model, image, boxes[:, :4], bbox_format='xyxy'))
    # inference_topdown gives every box a score of 1; keep the detector's.
    sample.pred_instances.bbox_scores = boxes[:, 4].copy()
    return sample


def people_to_json(sample) -> List[dict]:
    """One dict per person of a merged ``PoseDataSample``: ``bbox`` (x1, y1, x2, y2),
    ``bbox_score``, ``keypoints`` (``[[x, y], ...]``, image pixels) and ``keypoint_scores``."""
    if 'pred_instances' not in sample:
        return []
    instances = sample.pred_instances

    def rounded(values) -> list:
        return np.round(np.asarray(values, dtype=np.float64), 3).tolist()

    return [
        dict(bbox=rounded(bbox), bbox_score=round(float(score), 4),
             keypoints=rounded(keypoints), keypoint_scores=rounded(scores))
        for bbox, score, keypoints, scores in zip(instances.bboxes, instances.bbox_scores,
                                                  instances.keypoints, instances.keypoint_scores)
    ]


def write_json(path: PathLike, people: List[dict]) -> None:
    """Write :func:`people_to_json` output (creating the folder)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(people, indent=1) + '\n', encoding='utf-8')


# Pictures -------------------------------------------------------------------------------------

VISUALIZER_NAME = 'mmpose_sam_demo'


def build_pose_visualizer(model: torch.nn.Module,
                          radius: float = 3,
                          line_width: float = 1,
                          alpha: float = 0.8,
                          skeleton_style: str = 'mmpose'):
    """The model config's ``PoseLocalVisualizer`` (built from the ``VISUALIZERS`` registry),
    with the model's skeleton and colours (``dataset_meta``) and no storage backends."""
    from mmpose.registry import VISUALIZERS
    from mmpose.visualization import PoseLocalVisualizer
    # Visualizers are named singletons: a second build of the same name returns the first one
    # (with a warning if given arguments), so reuse it and set the drawing options explicitly.
    if PoseLocalVisualizer.check_instance_created(VISUALIZER_NAME):
        visualizer = PoseLocalVisualizer.get_instance(VISUALIZER_NAME)
    else:
        cfg = dict(model.cfg.get('visualizer', dict(type='PoseLocalVisualizer')))
        visualizer = VISUALIZERS.build(dict(cfg, name=VISUALIZER_NAME, vis_backends=None))
    visualizer.radius, visualizer.line_width, visualizer.alpha = radius, line_width, alpha
    visualizer.set_dataset_meta(model.dataset_meta, skeleton_style=skeleton_style)
    return visualizer


def draw_poses(visualizer, image: np.ndarray, sample, out_file: PathLike,
               kpt_thr: float = 0.3) -> None:
    """Draw the predicted skeletons and boxes of ``sample`` on a BGR image and save it to
    ``out_file`` (same size as the image; the format follows the suffix)."""
    Path(out_file).parent.mkdir(parents=True, exist_ok=True)
    visualizer.add_datasample(
        Path(out_file).stem, mmcv.bgr2rgb(image), data_sample=sample, draw_gt=False,
        draw_bbox=True, kpt_thr=kpt_thr, out_file=str(out_file))
