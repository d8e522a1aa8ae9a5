"""What an exported model records about itself, in its ONNX ``metadata_props``, and reading it back.

ONNX metadata is string -> string. Every value here is JSON, except ``config`` (MMEngine config
text). A runtime without MMPose needs only the first rows; MMPose's inferencer (``tools/demo.py
--backend onnxruntime``) rebuilds its test pipeline, codec and visualizer from ``config`` and
``dataset_meta``.

=====================  =====================================================================
key                    value
=====================  =====================================================================
``mmpose_sam.format``  ``1``, the version of this layout
``input_size``         ``[w, h]`` of the input crop (MMPose's order), e.g. ``[192, 256]``
``heatmap_size``       ``[w, h]`` of the output heatmaps
``mean``, ``std``      per channel, applied after ``bgr_to_rgb``: ``(x - mean) / std``
``bgr_to_rgb``         whether BGR crops (OpenCV's order) are flipped to RGB before normalising
``keypoint_names``     ``["nose", ...]``, the heatmap channels in order
``skeleton_links``     ``[[i, j], ...]`` keypoint pairs to draw
``codec``              the head's decoder config (MMPose ``KEYPOINT_CODECS``)
``test_cfg``           the model's ``test_cfg`` (``flip_test``, ``shift_heatmap``, ...)
``dataset_meta``       the checkpoint's ``dataset_meta`` (arrays and int-keyed dicts tagged)
``config``             the whole config (``Config.pretty_text``)
``checkpoint``         the checkpoint file's name
``exported_with``      versions of mmpose-sam, mmpose and torch
=====================  =====================================================================
"""
import json
from typing import Any, Dict, Mapping

import numpy as np

FORMAT_KEY = 'mmpose_sam.format'
FORMAT_VERSION = 1
TEXT_KEYS = ('config', 'checkpoint')  # stored as they are, not as JSON


def to_json(value: Any) -> str:
    """JSON that :func:`from_json` turns back into the same value: numpy arrays keep their dtype
    (``{"__ndarray__": [...], "dtype": ...}``) and dicts with int keys (``keypoint_id2name``) their
    keys (``{"__int_keys__": {...}}``); tuples become lists."""

    def encode(item: Any) -> Any:
        if isinstance(item, np.ndarray):
            return {'__ndarray__': item.tolist(), 'dtype': str(item.dtype)}
        if isinstance(item, np.generic):
            return item.item()
        if isinstance(item, Mapping):
            if item and all(isinstance(key, int) for key in item):
                return {'__int_keys__': {str(key): encode(v) for key, v in item.items()}}
            return {str(key): encode(v) for key, v in item.items()}
        if isinstance(item, (list, tuple)):
            return [encode(v) for v in item]
        return item

    return json.dumps(encode(value))


def from_json(text: str) -> Any:
    """The value of :func:`to_json`."""

    def decode(obj: dict) -> Any:
        if '__ndarray__' in obj:
            return np.asarray(obj['__ndarray__'], dtype=obj['dtype'])
        if '__int_keys__' in obj:
            return {int(key): value for key, value in obj['__int_keys__'].items()}
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

    from ..version import __version__
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
    props.update({FORMAT_KEY: str(FORMAT_VERSION), 'config': cfg.pretty_text,
                  'checkpoint': checkpoint})
    return props


def parse_metadata(props: Mapping[str, str]) -> Dict[str, Any]:
    """The values of :func:`pose_metadata` from an ONNX model's metadata.

    Raises:
        ValueError: the metadata is not of this layout (no ``mmpose_sam.format``, or a newer one).
    """
    version = props.get(FORMAT_KEY)
    if version is None:
        raise ValueError('no mmpose-sam metadata (export the model with '
                         'tools/deploy/export_onnx.py)')
    if int(version) > FORMAT_VERSION:
        raise ValueError(f'metadata format {version} is newer than this mmpose-sam reads '
                         f'({FORMAT_VERSION})')
    return {key: value if key in TEXT_KEYS or key == FORMAT_KEY else from_json(value)
            for key, value in props.items()}
