"""Whether an image file can be read the way training reads it (MMPose's ``LoadImage``: OpenCV,
colour), and what is wrong if not. Pillow's decode (at 1/8 scale, still every byte) also catches
a truncated file, which OpenCV before 4.11 decodes with the rest filled in grey, without an error.
"""
import io
import warnings
from typing import Optional, Tuple

import cv2
import numpy as np
from PIL import Image

from mmpose_sam.reliability.data.problems import Problem

# What a file checked out without Git LFS holds instead of the image.
_GIT_LFS_POINTER = b'version https://git-lfs.github.com/spec/'


def check_image(path: str, where: str = '',
                size: Optional[Tuple[int, int]] = None) -> Optional[Problem]:
    """The problem with an image file, or ``None`` if training can read it.

    Args:
        path (str): The image file (local).
        where (str): How problems name it besides its path, e.g. ``'image 785'``.
        size (tuple[int, int], optional): ``(width, height)`` the annotation file gives: a
            decoded image of another size is a problem (its keypoints would not line up).
    """
    image, problem = read_image(path, where)
    if problem is None and size is not None and (image.shape[1], image.shape[0]) != tuple(size):
        return Problem(
            path, where, 'image size mismatch', f'decoded size {image.shape[1]}x{image.shape[0]} '
            f'is not the {size[0]}x{size[1]} that the annotation file gives: the keypoints would '
            'not line up')
    return problem


def read_image(path: str, where: str = '') -> Tuple[Optional[np.ndarray], Optional[Problem]]:
    """``(BGR image, None)`` decoded as training decodes it, or ``(None, the problem)``."""
    try:
        with open(path, 'rb') as file:
            content = file.read()
    except FileNotFoundError:
        return None, Problem(path, where, 'missing image', 'image file not found')
    except IsADirectoryError:
        return None, Problem(path, where, 'unreadable image', 'a directory, not an image file')
    except OSError as error:
        return None, Problem(path, where, 'unreadable image', f'cannot read it: {error.strerror}')
    if not content:
        return None, Problem(path, where, 'empty image', 'empty image file (0 bytes)')
    image = cv2.imdecode(np.frombuffer(content, np.uint8), cv2.IMREAD_COLOR)
    pillow_error = _pillow_decode_error(content)
    if pillow_error and 'truncated' in pillow_error:
        return None, Problem(path, where, 'truncated image',
                             'truncated image file (the data ends before the image does)')
    if image is None and content.startswith(_GIT_LFS_POINTER):
        return None, Problem(path, where, 'corrupt image',
                             'a Git LFS pointer, not the image itself (run git lfs pull)')
    if image is None:
        detail = f' (Pillow: {pillow_error})' if pillow_error else ''
        return None, Problem(path, where, 'corrupt image', f'not a decodable image{detail}')
    return image, None


def _pillow_decode_error(content: bytes) -> Optional[str]:
    """Why Pillow fails to decode the whole image, ``None`` if it succeeds or does not know the
    format (then OpenCV alone judges)."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # DecompressionBombWarning, EXIF warnings
        try:
            image = Image.open(io.BytesIO(content))
        except Exception:  # not a format Pillow knows; OpenCV may still decode it
            return None
        try:
            image.draft('RGB', (max(1, image.width // 8), max(1, image.height // 8)))
            image.load()
        except Exception as error:  # OSError('image file is truncated ...'), SyntaxError, ...
            return str(error) or type(error).__name__
    return None
