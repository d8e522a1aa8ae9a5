"""The demo's inferencer with the network in onnxruntime: no PyTorch model is built.

:class:`OnnxTopdownInferencer` is :class:`~mmpose_sam.apis.TopdownInferencer` (MMPose's
``Pose2DInferencer``: inputs, detector or bbox file, test pipeline, visualizer, JSON) whose
``model`` is an :class:`OnnxTopdownEstimator`: the config and ``dataset_meta`` come from the ONNX
file's metadata, MMPose's data preprocessor normalises the crops, onnxruntime computes the
heatmaps, and MMPose's codec decodes them, with the flip test if the config asks for it, exactly
as ``TopdownPoseEstimator`` with a ``HeatmapHead`` does.
"""
from pathlib import Path
from typing import List, Optional, Sequence, Union

import torch
from mmengine.config import Config
from mmpose.models.heads import HeatmapHead
from mmpose.models.pose_estimators import TopdownPoseEstimator
from mmpose.models.utils.tta import flip_heatmaps
from mmpose.registry import KEYPOINT_CODECS, MODELS
from mmpose.structures import PoseDataSample
from mmengine.structures import PixelData
from torch import nn

from ..apis.inference import TopdownInferencer
from .onnxruntime_model import OnnxPoseModel


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
        onnx_file: written by ``tools/deploy/export_onnx.py``.
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
        cfg = Config.fromstring(self.network.metadata['config'], file_format='.py')
        if cfg_options:
            cfg.merge_from_dict(cfg_options)
        super().__init__(cfg, None, device or 'cpu', **kwargs)

    def _init_model(self, cfg: Config, weights: Optional[str], device: str) -> nn.Module:
        return OnnxTopdownEstimator(self.network, cfg).to(device).eval()
