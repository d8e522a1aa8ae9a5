"""The demo's inferencer with the network in onnxruntime: no PyTorch model is built.

The ONNX file's config is data (:mod:`.metadata`), and building the pipeline, codec and
visualizer from it must not run code either, which MMEngine's registries would: a ``type`` no
registry holds is imported by its dotted name, a ``_scope_`` imports ``<scope>.registry``. So
:func:`exported_config` refuses dotted types, foreign scopes and ``custom_imports``, and the
inferencer builds with that import fallback off (:func:`registered_types_only`).
"""
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, List, Optional, Sequence, Union

import torch
from mmengine.config import Config
from mmengine.registry import registry as mmengine_registry
from mmpose.models.heads import HeatmapHead
from mmpose.models.pose_estimators import TopdownPoseEstimator
from mmpose.models.utils.tta import flip_heatmaps
from mmpose.registry import KEYPOINT_CODECS, MODELS
from mmpose.structures import PoseDataSample
from mmengine.structures import PixelData
from torch import nn

from mmpose_sam.apis.inference import TopdownInferencer
from mmpose_sam.errors import InvalidInputError
from mmpose_sam.deploy.metadata import RE_EXPORT
from mmpose_sam.deploy.onnxruntime_model import OnnxPoseModel

# Registry scopes a config in an ONNX file may name (``default_scope``, ``_scope_``, ``type``
# prefixes): anything else would make MMEngine import ``<scope>.registry``.
SCOPES = ('mmpose', 'mmengine')
_TYPE = re.compile(r'(?:(?:%s)\.)?[A-Za-z_][A-Za-z0-9_]*' % '|'.join(SCOPES))
# MMEngine's Config refuses these top-level keys (RESERVED_KEYS).
_RESERVED = ('filename', 'text', 'pretty_text', 'env_variables')


def _refuse(path: Union[str, Path], problem: str) -> InvalidInputError:
    return InvalidInputError(path, f"metadata 'config': {problem}; an exported model's config may "
                             f'only name types registered in MMPose ({RE_EXPORT})')


def _check_config_data(value: Any, path: Union[str, Path], where: str = '') -> None:
    """Refuse what would make MMEngine import a module: a ``type`` that is not a registered name
    (dotted, or not a string), a ``_scope_`` other than :data:`SCOPES`."""
    if isinstance(value, dict):
        for key, item in value.items():
            at = f'{where}.{key}' if where else str(key)
            if key == 'type' and not (isinstance(item, str) and _TYPE.fullmatch(item)):
                raise _refuse(path, f'{at} is {item!r:.80}, not the name of a registered type')
            if key in ('_scope_', 'default_scope') and item is not None and item not in SCOPES:
                raise _refuse(path, f'{at} is {item!r:.80}, not one of {", ".join(SCOPES)}')
            _check_config_data(item, path, at)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_config_data(item, path, f'{where}[{index}]')


def exported_config(network: OnnxPoseModel) -> Config:
    """The config of an exported model, from its metadata (a dict, already JSON-parsed), checked
    for anything that would import or run code when the inferencer builds from it.

    ``custom_imports`` is dropped (mmpose-sam is imported already; nothing else may be), and so
    is the visualizer's ``save_dir`` (the demo writes where ``--out-dir`` says).

    Raises:
        InvalidInputError: one line naming the file and the key.
    """
    data = dict(network.metadata['config'])
    data.pop('custom_imports', None)
    if isinstance(data.get('visualizer'), dict):
        data['visualizer'] = {k: v for k, v in data['visualizer'].items() if k != 'save_dir'}
    for key in _RESERVED:
        if key in data:
            raise InvalidInputError(network.path, f"metadata 'config' has the key {key!r}, "
                                    'which MMEngine reserves (not a config of ours)')
    _check_config_data(data, network.path)
    return Config(data)


@contextmanager
def registered_types_only(path: Union[str, Path]) -> Iterator[None]:
    """In this block MMEngine's registries build registered types only: their fallback that
    imports a ``type`` by its dotted name (``get_object_from_string``) finds nothing, and a name
    it was asked for ends the block with an :class:`InvalidInputError` naming it."""
    asked: List[str] = []

    def nothing(name: str) -> None:
        asked.append(name)
        return None

    original = mmengine_registry.get_object_from_string
    mmengine_registry.get_object_from_string = nothing
    try:
        yield
    except Exception:
        if asked:
            raise _refuse(path, f'type {asked[0]!r:.80} is not registered') from None
        raise
    finally:
        mmengine_registry.get_object_from_string = original
    if asked:
        raise _refuse(path, f'type {asked[0]!r:.80} is not registered')


class OnnxTopdownEstimator(nn.Module):
    """Stands in for MMPose's ``TopdownPoseEstimator`` in an inferencer: the same ``test_step``,
    ``cfg``, ``dataset_meta`` and ``test_cfg``, with the network in onnxruntime.

    Args:
        network: the exported network.
        cfg: the model's config (from the ONNX metadata, possibly with overrides).
    """

    def __init__(self, network: OnnxPoseModel, cfg: Config):
        super().__init__()
        self.network = network
        self.cfg = cfg
        self.test_cfg = dict(cfg.model.get('test_cfg') or {})
        self.dataset_meta = network.metadata['dataset_meta']
        self.data_preprocessor = MODELS.build(cfg.model.data_preprocessor)
        self.decoder = KEYPOINT_CODECS.build(cfg.model.head.decoder)

    def _heatmaps(self, inputs: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.network.run(inputs.float().cpu().numpy()))

    @torch.no_grad()
    def test_step(self, data: dict) -> List[PoseDataSample]:
        """Predictions of a batch from the test pipeline, as ``TopdownPoseEstimator.test_step``
        (``HeatmapHead.predict``: flip test, decoding, heatmaps if ``output_heatmaps``)."""
        data = self.data_preprocessor(data, False)
        inputs, samples = data['inputs'], data['data_samples']
        heatmaps = self._heatmaps(inputs)
        if self.test_cfg.get('flip_test', False):
            flipped = flip_heatmaps(
                self._heatmaps(inputs.flip(-1)),
                flip_mode=self.test_cfg.get('flip_mode', 'heatmap'),
                flip_indices=samples[0].metainfo['flip_indices'],
                shift_heatmap=self.test_cfg.get('shift_heatmap', False))
            heatmaps = (heatmaps + flipped) * 0.5
        # MMPose's own steps, borrowed: BaseHead.decode reads only `self.decoder`, and
        # add_pred_to_datasample only `self.test_cfg` (input crop -> image pixels, boxes).
        preds = HeatmapHead.decode(self, heatmaps)
        fields = ([PixelData(heatmaps=hm) for hm in heatmaps]
                  if self.test_cfg.get('output_heatmaps', False) else None)
        return TopdownPoseEstimator.add_pred_to_datasample(self, preds, fields, samples)


class OnnxTopdownInferencer(TopdownInferencer):
    """:class:`~mmpose_sam.apis.TopdownInferencer` on an exported ``.onnx`` file.

    Args:
        onnx_file: written by ``tools/deploy/export_onnx.py`` (metadata format 2: its config is
            data; :func:`exported_config`).
        device: where MMPose's data preprocessor and decoding run (default ``'cpu'``); the
            network runs on ``providers``.
        providers: onnxruntime execution providers (default: CUDA if available, then CPU).
        cfg_options: overrides of the exported config, e.g. ``{'model.test_cfg.flip_test':
            False}``.
        **kwargs: :class:`~mmpose_sam.apis.TopdownInferencer`'s (detector, bbox file,
            ``show_progress``), except ``attention_dir``: an ONNX file has no attention hooks.
    """

    def __init__(self,
                 onnx_file: Union[str, Path],
                 device: Optional[str] = 'cpu',
                 providers: Optional[Sequence[str]] = None,
                 cfg_options: Optional[dict] = None,
                 **kwargs):
        self.network = OnnxPoseModel(onnx_file, providers)
        cfg = exported_config(self.network)
        if cfg_options:
            cfg.merge_from_dict(cfg_options)
        super().__init__(cfg, None, device or 'cpu', **kwargs)

    # Everything built from the file's config is built with registered types only; the detector
    # (the user's own --det-config) is not.
    def _init_model(self, cfg: Config, weights: Optional[str], device: str) -> nn.Module:
        with registered_types_only(self.network.path):
            return OnnxTopdownEstimator(self.network, cfg).to(device).eval()

    def _init_pipeline(self, cfg: Config):
        with registered_types_only(self.network.path):
            return super()._init_pipeline(cfg)

    def _init_visualizer(self, cfg: Config):
        with registered_types_only(self.network.path):
            return super()._init_visualizer(cfg)

    def _init_detector(self, *args, **kwargs):
        from mmpose.registry import DATASETS
        name = self.cfg.get('dataset_type')
        with registered_types_only(self.network.path):  # MMPose looks the dataset type up
            if not isinstance(name, str) or DATASETS.get(name) is None:
                raise _refuse(self.network.path, f'dataset_type {name!r:.80} is not a registered '
                              'dataset')
        return super()._init_detector(*args, **kwargs)
