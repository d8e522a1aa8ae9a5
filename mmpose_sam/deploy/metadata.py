"""What an exported model records about itself, in its ONNX ``metadata_props``, and reading it back.

Every value is JSON (``checkpoint`` is text), and reading only parses it: nothing in an ONNX file
is executed, not even ``config``, which is the config's data, not MMEngine's Python text.

=====================  =====================================================================
key                    value
=====================  =====================================================================
``mmpose_sam.format``  ``2``, the version of this layout (files of format 1 held the config
                       as Python code, which reading would run: they are refused)
``input_size``         ``[w, h]`` of the input crop (MMPose's order), e.g. ``[192, 256]``
``heatmap_size``       ``[w, h]`` of the output heatmaps
``mean``, ``std``      per channel, applied after ``bgr_to_rgb``: ``(x - mean) / std``
``bgr_to_rgb``         whether BGR crops (OpenCV's order) are flipped to RGB before normalising
``keypoint_names``     ``["nose", ...]``, the heatmap channels in order
``skeleton_links``     ``[[i, j], ...]`` keypoint pairs to draw
``codec``              the head's decoder config (MMPose ``KEYPOINT_CODECS``)
``test_cfg``           the model's ``test_cfg`` (``flip_test``, ``shift_heatmap``, ...)
``dataset_meta``       the checkpoint's ``dataset_meta`` (arrays and int-keyed dicts tagged)
``config``             the whole config as data: ``Config.to_dict()`` (``--cfg-options``
                       applied), a JSON object
``checkpoint``         the checkpoint file's name (text)
``exported_with``      versions of mmpose-sam, mmpose and torch
=====================  =====================================================================
"""
import json
import numbers
from typing import Any, Callable, Dict, Mapping

import numpy as np

FORMAT_KEY = 'mmpose_sam.format'
# 2: ``config`` is JSON data. 1 held MMEngine's Python config text, which reading would execute.
FORMAT_VERSION = 2
TEXT_KEYS = ('checkpoint', )  # stored as they are, not as JSON
# What tools/deploy/export_onnx.py writes; a file without one of them is not ours (or damaged).
JSON_KEYS = ('input_size', 'heatmap_size', 'mean', 'std', 'bgr_to_rgb', 'keypoint_names',
             'skeleton_links', 'codec', 'test_cfg', 'dataset_meta', 'config', 'exported_with')
RE_EXPORT = 're-export it with tools/deploy/export_onnx.py CONFIG CHECKPOINT --out FILE'
# numpy kinds an array in the metadata may have: bool, int, uint, float, complex, bytes, str (no
# object arrays, as in checkpoints: mmpose_sam/reliability/checkpoint/allow_list.py)
_ARRAY_KINDS = 'biufcSU'


class MetadataError(ValueError):
    """A metadata value that is not of this layout; ``str()`` names the key."""


def to_json(value: Any) -> str:
    """JSON that :func:`from_json` turns back into the same value: numpy arrays keep their dtype
    (``{"__ndarray__": [...], "dtype": ...}``) and dicts with int keys (``keypoint_id2name``) their
    keys (``{"__int_keys__": {...}}``); tuples become lists.

    Raises:
        TypeError: ``value`` holds something JSON cannot (a class, a function, ...); the message
            says where, e.g. ``model.head.loss.type: a type (torch.nn.MSELoss)``.
    """

    def encode(item: Any, where: str) -> Any:
        if isinstance(item, np.ndarray):
            return {'__ndarray__': item.tolist(), 'dtype': str(item.dtype)}
        if isinstance(item, np.generic):
            return item.item()
        if isinstance(item, Mapping):
            if item and all(isinstance(key, int) for key in item):
                return {'__int_keys__': {str(key): encode(v, f'{where}.{key}')
                                         for key, v in item.items()}}
            return {str(key): encode(v, f'{where}.{key}' if where else str(key))
                    for key, v in item.items()}
        if isinstance(item, (list, tuple)):
            return [encode(v, f'{where}[{index}]') for index, v in enumerate(item)]
        if item is None or isinstance(item, (str, bool, int, float)):
            return item
        kind = type(item).__name__
        raise TypeError(f'{where or "the value"}: a {kind} ({item!r:.60}), which JSON cannot hold')

    return json.dumps(encode(value, ''))


def from_json(text: str) -> Any:
    """The value of :func:`to_json`, parsed (``json.loads``), never evaluated.

    Raises:
        ValueError: not JSON, or a tagged array of an object dtype or with a bad layout.
    """

    def decode(obj: dict) -> Any:
        if '__ndarray__' in obj:
            try:
                dtype = np.dtype(obj['dtype'])
                if dtype.kind not in _ARRAY_KINDS:
                    raise ValueError(f'arrays of dtype {dtype} are not allowed')
                return np.asarray(obj['__ndarray__'], dtype=dtype)
            except (KeyError, TypeError, ValueError) as error:
                raise ValueError(f'a bad array ({type(error).__name__}: {error})') from None
        if '__int_keys__' in obj:
            try:
                return {int(key): value for key, value in obj['__int_keys__'].items()}
            except (AttributeError, TypeError, ValueError) as error:
                raise ValueError(f'a bad int-keyed dict ({error})') from None
        return obj

    return json.loads(text, object_hook=decode)


def crop_size(cfg) -> tuple:
    """``(w, h)`` of a model's input crops: its test pipeline's ``TopdownAffine`` (else the
    decoder's ``input_size``)."""
    affine = [t for t in cfg.test_dataloader.dataset.pipeline if t['type'] == 'TopdownAffine']
    width, height = affine[0]['input_size'] if affine else cfg.model.head.decoder['input_size']
    return int(width), int(height)


def pose_metadata(cfg, dataset_meta: dict, checkpoint: str = '') -> Dict[str, str]:
    """The metadata of a top-down heatmap model, as ONNX ``metadata_props`` strings.

    Args:
        cfg: the model's MMEngine config (as built, ``--cfg-options`` applied).
        dataset_meta: the model's ``dataset_meta`` (from the checkpoint).
        checkpoint: the checkpoint's file name, for the record.
    """
    import mmpose
    import torch

    from mmpose_sam.version import __version__
    preprocessor = cfg.model.data_preprocessor
    decoder = cfg.model.head.decoder
    names = dataset_meta['keypoint_id2name']
    values = dict(
        input_size=list(crop_size(cfg)),
        heatmap_size=list(decoder['heatmap_size']),
        mean=list(preprocessor.get('mean') or [0.0, 0.0, 0.0]),
        std=list(preprocessor.get('std') or [1.0, 1.0, 1.0]),
        bgr_to_rgb=bool(preprocessor.get('bgr_to_rgb', False)),
        keypoint_names=[names[index] for index in range(dataset_meta['num_keypoints'])],
        skeleton_links=dataset_meta.get('skeleton_links', []),
        codec=decoder.to_dict() if hasattr(decoder, 'to_dict') else dict(decoder),
        test_cfg=dict(cfg.model.get('test_cfg') or {}),
        dataset_meta=dataset_meta,
        exported_with={'mmpose_sam': __version__, 'mmpose': mmpose.__version__,
                       'torch': torch.__version__})
    props = {key: to_json(value) for key, value in values.items()}
    try:
        props['config'] = to_json(cfg.to_dict())
    except TypeError as error:
        raise ValueError(f'config value {error}; the ONNX metadata holds the config as JSON '
                         'data') from None
    props.update({FORMAT_KEY: str(FORMAT_VERSION), 'checkpoint': checkpoint})
    return props


def _pair(value: Any) -> bool:
    return (isinstance(value, list) and len(value) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value))


def _numbers(count: int) -> Callable[[Any], bool]:
    return lambda value: (isinstance(value, list) and len(value) == count and all(
        isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value))


def _links(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(link, list) and len(link) == 2
        and all(isinstance(i, int) and not isinstance(i, bool) for i in link) for link in value)


# key -> (check of the parsed value, what it must be)
_CHECKS: Dict[str, tuple] = {
    'input_size': (_pair, 'a [w, h] pair of positive integers'),
    'heatmap_size': (_pair, 'a [w, h] pair of positive integers'),
    'mean': (_numbers(3), 'a list of 3 numbers'),
    'std': (lambda v: _numbers(3)(v) and all(x != 0 for x in v), 'a list of 3 non-zero numbers'),
    'bgr_to_rgb': (lambda v: isinstance(v, bool), 'true or false'),
    'keypoint_names': (lambda v: isinstance(v, list) and all(isinstance(n, str) for n in v),
                       'a list of names'),
    'skeleton_links': (_links, 'a list of [i, j] keypoint pairs'),
    'codec': (lambda v: isinstance(v, dict) and isinstance(v.get('type'), str),
              'a codec config (an object with a "type")'),
    'test_cfg': (lambda v: isinstance(v, dict), 'an object'),
    'dataset_meta': (lambda v: isinstance(v, dict), 'an object'),
    'config': (lambda v: isinstance(v, dict) and isinstance(v.get('model'), dict),
               'a config (an object with a "model")'),
    'exported_with': (lambda v: isinstance(v, dict), 'an object'),
}


def parse_metadata(props: Mapping[str, str]) -> Dict[str, Any]:
    """The values of :func:`pose_metadata` from an ONNX model's metadata: JSON parsed
    (``json.loads``), checked for what each key must be; nothing is evaluated. Keys of other
    tools are kept as their text.

    Raises:
        MetadataError: (a ``ValueError``) the metadata is not of this layout: no
            ``mmpose_sam.format``, a newer or an older format (1: the config as Python code), a
            missing key, a value that is not JSON or not what its key holds; the message names
            the key.
    """
    version = props.get(FORMAT_KEY)
    if version is None:
        raise MetadataError('no mmpose-sam metadata (export the model with '
                            'tools/deploy/export_onnx.py)')
    if not (version.isascii() and version.strip().isdigit()):
        raise MetadataError(f'metadata {FORMAT_KEY!r} is {version[:40]!r}, not a format number')
    if int(version) > FORMAT_VERSION:
        raise MetadataError(f'metadata format {int(version)} is newer than this mmpose-sam reads '
                            f'({FORMAT_VERSION})')
    if int(version) < FORMAT_VERSION:
        raise MetadataError(
            f'exported by an older mmpose-sam (metadata format {int(version)}, which predates '
            f'the safe format {FORMAT_VERSION}: its config is Python code, which is never run); '
            f'{RE_EXPORT}')
    values: Dict[str, Any] = dict(props)
    for key in (*JSON_KEYS, *TEXT_KEYS):
        if key not in props:
            raise MetadataError(f'metadata has no {key!r} (not written by '
                                f'tools/deploy/export_onnx.py, or damaged: {RE_EXPORT})')
    for key in JSON_KEYS:
        try:
            values[key] = from_json(props[key])
        except (ValueError, RecursionError) as error:  # json.JSONDecodeError is a ValueError
            detail = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise MetadataError(f'metadata {key!r} is not valid JSON of this layout '
                                f'({detail[:200]})') from None
        check, expected = _CHECKS[key]
        if not check(values[key]):
            raise MetadataError(f'metadata {key!r} is not {expected}: '
                                f'{props[key][:60]!r}{"..." if len(props[key]) > 60 else ""}')
    return values
