"""Checks of COCO-format keypoint annotation files and person detection files: pure functions over
the parsed JSON (no torch, no MMPose) that report every problem at once, for
``tools/check_dataset.py`` and :class:`~mmpose_sam.reliability.data.CheckedCocoDataset`. Errors
are what MMPose would crash on far from the cause or silently use wrongly; warnings, people
MMPose itself drops or trains on as they are (``docs/data_checks.md``).
"""
import json
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple

from mmpose_sam.errors import InvalidInputError
from mmpose_sam.reliability.data.problems import ERROR, WARNING, Problem

#: The values of the visibility flag in COCO: not labelled, labelled but hidden, labelled and seen.
VISIBILITY_FLAGS = (0, 1, 2)
#: The category that MMPose takes from a detection file (``category_id == 1``: person).
PERSON_CATEGORY_ID = 1
_NUMBER_TYPES = (int, float)
_FLAG_SET = frozenset(VISIBILITY_FLAGS)
_JSON_TYPES = {dict: 'object', list: 'list', str: 'string', type(None): 'null', int: 'number',
               float: 'number'}
# At most this many keypoints are named in one message; the rest are counted.
_MAX_LISTED = 4


@dataclass
class AnnotationCheck:
    """What :func:`check_coco_annotations` found.

    Args:
        problems (list[Problem]): Every problem, in file order.
        images (dict): The well-formed ``images`` entries by image id.
        used_image_ids (set): Images with at least one person that MMPose keeps (top-down): the
            images that training or testing on ground-truth boxes reads.
        num_annotations (int): Entries in ``annotations``.
        num_labelled (int): Annotations of a person with ``num_keypoints > 0`` that is not
            ``iscrowd``: what training needs.
        num_people (int): Annotations that MMPose keeps (top-down): the training samples.
    """
    problems: List[Problem] = field(default_factory=list)
    images: Dict[int, dict] = field(default_factory=dict)
    used_image_ids: Set[int] = field(default_factory=set)
    num_annotations: int = 0
    num_labelled: int = 0
    num_people: int = 0


@dataclass
class DetectionCheck:
    """What :func:`check_detections` found.

    Args:
        problems (list[Problem]): Every problem, in file order.
        used_image_ids (set): Images with at least one person detection: those testing reads.
        num_detections (int): Entries in the file.
    """
    problems: List[Problem] = field(default_factory=list)
    used_image_ids: Set[int] = field(default_factory=set)
    num_detections: int = 0


def load_json(path: str, name: Optional[str] = None) -> Tuple[Any, Optional[Problem]]:
    """Parse a JSON file: ``(data, None)``, or ``(None, problem)`` naming line and column.

    Args:
        path (str): The file to read.
        name (str, optional): How to name the file in a problem (the path the config gives, where
            ``path`` is a local copy of it). Defaults to ``path``.
    """
    name = name or str(path)
    try:
        with open(path, 'rb') as file:
            content = file.read()
    except FileNotFoundError:
        return None, Problem(name, '', 'missing file', 'file not found')
    except OSError as error:
        return None, Problem(name, '', 'unreadable file', f'cannot read it: {error.strerror}')
    if not content.strip():
        return None, Problem(name, '', 'invalid JSON', 'empty file, expected JSON')
    try:
        return json.loads(content), None
    except json.JSONDecodeError as error:
        return None, Problem(
            name, '', 'invalid JSON', f'invalid JSON at line {error.lineno} column {error.colno}: '
            f'{error.msg} (truncated or hand-edited?)')
    except UnicodeDecodeError:
        return None, Problem(name, '', 'invalid JSON', 'not UTF-8 text, expected JSON')


def read_json(path: str, name: Optional[str] = None,
              error: Callable[[str], Exception] = InvalidInputError) -> Any:
    """The parsed JSON file (:func:`load_json`); its one-line problem raised as ``error``."""
    data, problem = load_json(path, name)
    if problem:
        raise error(str(problem))
    return data


def check_coco_annotations(data: Any,
                           file: str,
                           num_keypoints: int,
                           keypoint_names: Sequence[str] = (),
                           test_mode: bool = False) -> AnnotationCheck:
    """Check a parsed COCO keypoint annotation file against the data set it is read for.

    Args:
        data: The parsed JSON.
        file (str): The file's name in problems.
        num_keypoints (int): Keypoints per person in the data set's metainfo (17 for COCO).
        keypoint_names (Sequence[str]): Their names, to name keypoints in problems.
        test_mode (bool): Whether the file is evaluated (val/test): COCO evaluation also needs
            ``categories``.
    """
    result = AnnotationCheck()
    problems = result.problems
    if not isinstance(data, dict):
        problems.append(Problem(
            file, '', 'not a COCO file', f'top level is a JSON {_json_type(data)}, expected an '
            "object with 'images' and 'annotations' (is it a detection file?)"))
        return result
    images, annotations = data.get('images'), data.get('annotations')
    for key, value in (('images', images), ('annotations', annotations)):
        if not isinstance(value, list):
            problems.append(Problem(file, '', 'missing section', f"no '{key}' list"))
    if test_mode and not isinstance(data.get('categories'), list):
        problems.append(Problem(file, '', 'missing section',
                                "no 'categories' list: COCO evaluation needs it"))
    _check_categories(data.get('categories'), file, num_keypoints, problems)
    if not isinstance(images, list):
        return result
    result.images, listed_ids = _check_images(images, file, problems)
    if not isinstance(annotations, list):
        return result
    result.num_annotations = len(annotations)
    checker = _AnnotationChecker(file, num_keypoints, keypoint_names, result.images, listed_ids,
                                 problems)
    for index, annotation in enumerate(annotations):
        if isinstance(annotation, dict) and not annotation.get('iscrowd') and \
                _is_number(annotation.get('num_keypoints')) and annotation['num_keypoints'] > 0:
            result.num_labelled += 1
        image_id = checker.check(index, annotation)
        if image_id is not None:  # a person MMPose keeps
            result.num_people += 1
            result.used_image_ids.add(image_id)
    return result


def check_detections(data: Any, file: str, image_ids: Optional[Set[int]] = None,
                     ann_file: Optional[str] = None) -> DetectionCheck:
    """Check a parsed person detection file (COCO results format), against its annotation file
    if there is one. The one set of rules for detection files: the data sets' and the demo's.

    Args:
        data: The parsed JSON: a list of ``{'image_id', 'category_id', 'bbox', 'score'}``.
        file (str): The detection file's name in problems.
        image_ids (set, optional): The image ids of the annotation file; None: any integer id.
        ann_file (str, optional): The annotation file's name, for problems.
    """
    result = DetectionCheck()
    if not isinstance(data, list):
        result.problems.append(Problem(
            file, '', 'not a detection file', f'top level is a JSON {_json_type(data)}, expected '
            'a list of detections (COCO results format)'))
        return result
    result.num_detections = len(data)

    def problem(where: str, kind: str, message: str, severity: str = ERROR) -> None:
        result.problems.append(Problem(file, where, kind, message, severity))

    for index, detection in enumerate(data):
        where, found = f'detection {index}', len(result.problems)
        if not isinstance(detection, dict):
            problem(where, 'malformed detection',
                    f'a JSON {_json_type(detection)}, expected an object')
            continue
        missing = [key for key in ('image_id', 'category_id', 'bbox', 'score')
                   if key not in detection]
        if missing:
            problem(where, 'malformed detection', f'no {_quoted(missing)}')
            continue
        image_id, box, score = detection['image_id'], detection['bbox'], detection['score']
        if not _is_number(score) or not math.isfinite(score):
            problem(where, 'malformed detection',
                    f'score {_short(score)} is not a finite number')
        # MMPose reads the first four values of the box (a fifth, the score, is allowed).
        if not (isinstance(box, list) and len(box) >= 4 and all(map(_is_finite, box[:4]))):
            problem(where, 'malformed box',
                    f'bbox {_short(box)}, expected [x, y, width, height]')
        elif box[2] <= 0 or box[3] <= 0:
            problem(where, 'zero-area box', f'box {_box(box)} has no area: its crop is empty and '
                    'its predicted keypoints meaningless', WARNING)
        if not _is_integer(image_id):
            problem(where, 'malformed detection',
                    f'image id {_short(image_id)} is not an integer')
        elif image_ids is not None and image_id not in image_ids:
            problem(where, 'unknown image id',
                    f'image id {_short(image_id)} is not in {ann_file}')
        elif len(result.problems) == found and detection['category_id'] == PERSON_CATEGORY_ID:
            result.used_image_ids.add(image_id)
    return result


def mmpose_keeps(annotation: dict, image: dict) -> bool:
    """Whether MMPose's top-down COCO datasets keep this person (1.x ``parse_data_info`` and
    ``_is_valid_instance``): it has keypoints and a box, is not a crowd, has labelled keypoints
    and a box with some area inside the image. Only for a well-formed annotation."""
    if 'bbox' not in annotation or 'keypoints' not in annotation or annotation.get('iscrowd'):
        return False
    values = annotation['keypoints']
    xs, ys = values[0::3], values[1::3]
    if 'num_keypoints' in annotation:
        labelled = annotation['num_keypoints']
    else:  # MMPose counts the keypoints with a nonzero coordinate
        labelled = sum(1 for x, y in zip(xs, ys) if max(x, y) != 0)
    if labelled == 0 or max(xs + ys, default=0) <= 0:
        return False
    width, height = image['width'], image['height']
    x, y, w, h = annotation['bbox'][:4]
    clipped_w = _clip(x + w, 0, width - 1) - _clip(x, 0, width - 1)
    clipped_h = _clip(y + h, 0, height - 1) - _clip(y, 0, height - 1)
    return clipped_w > 0 and clipped_h > 0


class _AnnotationChecker:
    """Checks the entries of ``annotations`` one by one, remembering the ids seen."""

    def __init__(self, file: str, num_keypoints: int, keypoint_names: Sequence[str],
                 images: Dict[int, dict], listed_ids: Set[Any], problems: List[Problem]):
        self.file, self.num_keypoints, self.images = file, num_keypoints, images
        self.listed_ids = listed_ids  # also those of malformed entries, which have their error
        self.keypoint_names, self.problems = list(keypoint_names), problems
        self.first_index: Dict[Any, int] = {}

    def error(self, where: str, kind: str, message: str) -> None:
        self.problems.append(Problem(self.file, where, kind, message, ERROR))

    def warning(self, where: str, kind: str, message: str) -> None:
        self.problems.append(Problem(self.file, where, kind, message, WARNING))

    def check(self, index: int, annotation: Any) -> Optional[int]:
        """Check one annotation; its image id when MMPose keeps the person, else ``None``."""
        if not isinstance(annotation, dict):
            self.error(f'annotation at index {index}', 'malformed annotation',
                       f'a JSON {_json_type(annotation)}, expected an object')
            return None
        ann_id = annotation.get('id')
        valid_id = isinstance(ann_id, (int, str)) and not isinstance(ann_id, bool)
        where = f'annotation {ann_id}' if valid_id else f'annotation at index {index}'
        problem_count = len(self.problems)
        missing = [key for key in ('id', 'image_id', 'category_id') if key not in annotation]
        if missing:
            self.error(where, 'malformed annotation', f'no {_quoted(missing)}')
        elif not valid_id:
            self.error(where, 'malformed annotation', f'id {_short(ann_id)} is not an integer')
        elif ann_id in self.first_index:
            self.error(where, 'duplicate id', f'id also used by the annotation at index '
                       f'{self.first_index[ann_id]}: one of the two is lost')
        else:
            self.first_index[ann_id] = index
        image_id = annotation.get('image_id')
        image = self.images.get(image_id) if _is_integer(image_id) else None
        if 'image_id' in annotation and image is None and not self._listed(image_id):
            self.error(where, 'unknown image id',
                       f"image id {_short(annotation['image_id'])} is not in 'images'")
        if 'area' in annotation and not _is_finite(annotation['area']):
            self.error(where, 'malformed annotation',
                       f"area {_short(annotation['area'])} is not a finite number")
        if 'keypoints' not in annotation or 'bbox' not in annotation:
            absent = _quoted([key for key in ('keypoints', 'bbox') if key not in annotation])
            self.warning(where, 'no keypoints or box', f'no {absent}: MMPose ignores it')
            return None
        labelled = self.check_keypoints(where, annotation['keypoints'], image)
        self.check_box(where, annotation['bbox'])
        if labelled is not None and 'num_keypoints' in annotation:
            self.check_num_keypoints(where, annotation['num_keypoints'], labelled)
        if image is None or any(problem.is_error for problem in self.problems[problem_count:]):
            return None
        if mmpose_keeps(annotation, image):
            return annotation['image_id']
        if labelled and not annotation.get('iscrowd'):
            self.warn_dropped(where, annotation, image)
        # else a crowd or a person with no labelled keypoint: MMPose drops those, as intended
        return None

    def _listed(self, image_id: Any) -> bool:
        try:
            return image_id in self.listed_ids
        except TypeError:  # unhashable
            return False

    def check_keypoints(self, where: str, values: Any, image: Optional[dict]) -> Optional[int]:
        """Check ``keypoints``; the number of labelled keypoints, ``None`` if malformed."""
        expected = 3 * self.num_keypoints
        if not isinstance(values, list):
            self.error(where, 'malformed keypoints', f"keypoints is a JSON {_json_type(values)}, "
                       f'expected a list of {self.num_keypoints} x 3 numbers')
            return None
        if len(values) != expected:
            found = f' ({len(values) // 3} keypoints)' if len(values) % 3 == 0 else ''
            self.error(where, 'keypoint count', f'{len(values)} keypoint values{found}, expected '
                       f'{self.num_keypoints} x 3 = {expected}')
            return None
        # Typed JSON numbers only (``type`` rules out booleans), finite (a sum of finite numbers
        # is finite, one NaN or infinity makes it not), flags 0, 1, 2: the common case takes
        # a few microseconds, which matters for COCO train's 262k annotations.
        if not all(type(value) in _NUMBER_TYPES for value in values):
            for position, value in enumerate(values):
                if value is not None and not _is_number(value):
                    self.error(where, 'malformed keypoints', f'keypoint value {_short(value)} at '
                               f'index {position} is not a number')
                    return None
        xs, ys, flags = values[0::3], values[1::3], values[2::3]
        not_finite, bad_flags, outside = [], [], []
        if None in values or not math.isfinite(sum(values)):
            not_finite = [self.keypoint_name(k) for k, triplet in enumerate(zip(xs, ys, flags))
                          if not all(map(_is_finite, triplet))]
        if not _FLAG_SET.issuperset(flags):
            bad_flags = [f'{flag:g} at {self.keypoint_name(k)}'
                         for k, flag in enumerate(flags)
                         if _is_finite(flag) and flag not in VISIBILITY_FLAGS]
        if image is not None and not not_finite:
            width, height = image['width'], image['height']
            outside = [f'{self.keypoint_name(k)} at ({x:g}, {y:g})'
                       for k, (x, y, flag) in enumerate(zip(xs, ys, flags))
                       if flag in (1, 2) and not (0 <= x <= width and 0 <= y <= height)]
        if not_finite:
            self.error(where, 'non-finite keypoint', 'non-finite coordinates (NaN, infinity or '
                       f'null) at {_listing(not_finite)}')
        if bad_flags:
            self.error(where, 'visibility flag',
                       f'visibility flags outside 0, 1, 2: {_listing(bad_flags)}')
        if not_finite or bad_flags:
            return None
        if outside:
            self.warning(where, 'keypoint outside image',
                         f"labelled keypoints outside the {image['width']}x{image['height']} "
                         f'image: {_listing(outside)}')
        return len(flags) - flags.count(0)

    def check_box(self, where: str, box: Any) -> None:
        """Check ``bbox`` is four finite numbers (whether it has an area is MMPose's call)."""
        if not (isinstance(box, list) and len(box) == 4 and all(map(_is_number, box))):
            self.error(where, 'malformed box', f'bbox {_short(box)}, expected [x, y, width, '
                       'height]')
        elif not all(map(math.isfinite, box)):
            self.error(where, 'malformed box', f'bbox {_box(box)} is not finite')

    def check_num_keypoints(self, where: str, stated: Any, labelled: int) -> None:
        if not _is_number(stated):
            self.error(where, 'malformed annotation',
                       f'num_keypoints {_short(stated)} is not a number')
        elif stated != labelled:
            consequence = ': MMPose drops this person' if stated == 0 else ''
            self.warning(where, 'num_keypoints mismatch', f'num_keypoints is {stated:g} '
                         f'but {labelled} keypoints are labelled{consequence}')

    def warn_dropped(self, where: str, annotation: dict, image: dict) -> None:
        """Say why MMPose drops a person with labelled keypoints (a ``num_keypoints`` of 0 has
        had its warning)."""
        box = annotation['bbox']
        if annotation.get('num_keypoints') == 0:
            return
        if box[2] <= 0 or box[3] <= 0:
            self.warning(where, 'zero-area box',
                         f'box {_box(box)} has no area: MMPose drops this person')
        else:
            self.warning(where, 'box outside image', f'box {_box(box)} lies outside the '
                         f"{image['width']}x{image['height']} image: MMPose drops this person")

    def keypoint_name(self, k: int) -> str:
        name = self.keypoint_names[k] if k < len(self.keypoint_names) else ''
        return f'{name} ({k})' if name else f'keypoint {k}'


def _check_categories(categories: Any, file: str, num_keypoints: int,
                      problems: List[Problem]) -> None:
    """A category whose keypoint names do not match the data set: the wrong dataset type."""
    if not isinstance(categories, list):
        return
    for category in categories:
        names = category.get('keypoints') if isinstance(category, dict) else None
        if isinstance(names, list) and len(names) != num_keypoints:
            problems.append(Problem(
                file, f"category {_short(category.get('id'))}", 'keypoint count',
                f'{len(names)} keypoint names, the dataset type expects {num_keypoints} '
                '(wrong dataset type or metainfo?)'))


def _check_images(images: list, file: str,
                  problems: List[Problem]) -> Tuple[Dict[int, dict], Set[Any]]:
    """Check the ``images`` entries: the well-formed ones by id, and every id listed."""
    by_id: Dict[int, dict] = {}
    first_index: Dict[int, int] = {}
    for index, image in enumerate(images):
        valid_id = isinstance(image, dict) and _is_integer(image.get('id'))
        if valid_id:
            first_index.setdefault(image['id'], index)
        problem = _image_problem(image, index, first_index)
        if problem:
            where = f"image {image['id']}" if valid_id else f'image at index {index}'
            problems.append(Problem(file, where, *problem))
        else:
            by_id[image['id']] = image
    return by_id, set(first_index)


def _image_problem(image: Any, index: int,
                   first_index: Dict[int, int]) -> Optional[Tuple[str, str]]:
    """``(kind, message)`` of what is wrong with the ``images`` entry at ``index``, or ``None``."""
    if not isinstance(image, dict):
        return 'malformed image entry', f'a JSON {_json_type(image)}, expected an object'
    missing = [key for key in ('id', 'file_name', 'width', 'height') if key not in image]
    if missing:
        return 'malformed image entry', f'no {_quoted(missing)}'
    if not _is_integer(image['id']):
        return 'malformed image entry', f"id {_short(image['id'])} is not an integer"
    if first_index[image['id']] != index:
        return 'duplicate id', (f"id also used by the image at index {first_index[image['id']]}: "
                                'their annotations get mixed up')
    bad = [f'{key} {_short(image[key])}' for key in ('width', 'height')
           if not (_is_finite(image[key]) and image[key] > 0)]
    if not isinstance(image['file_name'], str) or not image['file_name']:
        bad.append(f"file_name {_short(image['file_name'])}")
    if bad:
        return 'malformed image entry', f"{' and '.join(bad)}: expected a positive size and a name"
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_finite(value: Any) -> bool:
    return _is_number(value) and math.isfinite(value)


def _clip(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


def _box(box: Sequence[float]) -> str:
    return '[' + ', '.join(f'{value:g}' for value in box[:4]) + ']'


def _short(value: Any, limit: int = 40) -> str:
    """``repr``-like JSON of ``value``, cut to ``limit`` characters."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + '...'


def _quoted(keys: Sequence[str]) -> str:
    return ', '.join(f"'{key}'" for key in keys)


def _listing(items: Sequence[str]) -> str:
    """The first few items, then how many more."""
    shown = ', '.join(items[:_MAX_LISTED])
    rest = len(items) - _MAX_LISTED
    return f'{shown} and {rest} more' if rest > 0 else shown


def _json_type(value: Any) -> str:
    """The JSON name of a parsed value's type (``json`` gives exactly these Python types)."""
    return _JSON_TYPES.get(type(value), type(value).__name__)
