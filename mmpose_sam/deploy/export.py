"""ONNX export of a top-down heatmap model: the network only (backbone + head), no decoding, with a
dynamic batch axis and :mod:`.metadata`. ``torch.onnx`` directly, since MMDeploy 1.3.1 does not
work with this stack (docs/inference.md); MMDeploy's input name and layout are kept.
"""
import time
from pathlib import Path
from typing import NamedTuple, Union

import numpy as np
import torch
from torch import nn

from mmpose_sam.errors import UserError
from mmpose_sam.deploy import import_optional
from mmpose_sam.deploy.metadata import crop_size, pose_metadata

INPUT_NAME, OUTPUT_NAME = 'input', 'heatmaps'


class HeatmapNetwork(nn.Module):
    """The network of a top-down pose estimator: normalised crops -> heatmaps (its
    ``mode='tensor'`` forward, no flip test, no decoding)."""

    def __init__(self, estimator: nn.Module):
        super().__init__()
        self.estimator = estimator

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.estimator(inputs, None, mode='tensor')


class ExportReport(NamedTuple):
    """What :func:`export_onnx` wrote: the file, its size in bytes, the export time in seconds
    (``torch.onnx.export`` and the metadata) and the heatmap shape of one crop ``(K, h, w)``."""
    path: Path
    size: int
    seconds: float
    heatmap_shape: tuple


def export_onnx(model: nn.Module,
                out_file: Union[str, Path],
                opset: int = 17,
                batch: int = 1,
                checkpoint: str = '') -> ExportReport:
    """Export a top-down heatmap model (from ``mmpose.apis.init_model``) to ONNX.

    Args:
        model: the pose estimator, with ``cfg`` and ``dataset_meta`` (moved to the CPU).
        out_file: the ``.onnx`` file to write (its folder is created).
        opset: ONNX opset.
        batch: batch size of the example input that is traced; the batch axis is dynamic.
        checkpoint: the checkpoint's file name, recorded in the metadata.

    Raises:
        UserError: onnx is not installed, the model's head does not output heatmaps, or its
            config holds a value JSON cannot (the metadata records the config as JSON data).
    """
    onnx = import_optional('onnx', 'ONNX export')
    if batch < 1:
        raise ValueError(f'batch must be >= 1, got {batch}')
    out_file = Path(out_file)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    network = HeatmapNetwork(model.cpu().eval())
    width, height = crop_size(model.cfg)
    example = torch.randn(batch, 3, height, width)
    with torch.no_grad():
        output = network(example)
    if not isinstance(output, torch.Tensor) or output.dim() != 4:
        raise UserError(f'{type(model.head).__name__} does not output heatmaps (N, K, h, w); '
                        'the export handles heatmap heads only')

    start = time.perf_counter()
    try:  # before the file is written
        metadata = pose_metadata(model.cfg, model.dataset_meta, checkpoint)
    except ValueError as error:  # a config value JSON cannot hold (a class, a function)
        raise UserError(f'{getattr(model.cfg, "filename", None) or "the config"}: {error}') \
            from None
    # dynamo=False: the TorchScript exporter, which needs no onnxscript and takes dynamic_axes.
    torch.onnx.export(
        network, (example, ), str(out_file), dynamo=False, opset_version=opset,
        input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
        dynamic_axes={INPUT_NAME: {0: 'batch'}, OUTPUT_NAME: {0: 'batch'}})
    proto = onnx.load(str(out_file))
    del proto.metadata_props[:]
    for key, value in metadata.items():
        proto.metadata_props.add(key=key, value=value)
    proto.doc_string = f'mmpose-sam top-down heatmap network ({checkpoint or "no checkpoint"})'
    onnx.checker.check_model(proto)
    onnx.save(proto, str(out_file))
    seconds = time.perf_counter() - start
    return ExportReport(out_file, out_file.stat().st_size, seconds, tuple(output.shape[1:]))


def onnxruntime_difference(model: nn.Module, onnx_file: Union[str, Path], batch: int = 2) -> float:
    """Largest absolute difference between the PyTorch network's heatmaps and onnxruntime's on a
    random (seeded) batch of ``batch`` crops.

    Raises:
        UserError: onnxruntime is not installed.
    """
    from mmpose_sam.deploy.onnxruntime_model import OnnxPoseModel
    session = OnnxPoseModel(onnx_file, providers=['CPUExecutionProvider'])
    width, height = session.input_size
    inputs = torch.randn(batch, 3, height, width, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = HeatmapNetwork(model.cpu().eval())(inputs).numpy()
    actual = session.run(inputs.numpy())
    return float(np.abs(actual - expected).max())
