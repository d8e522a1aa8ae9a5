"""ONNX export of a top-down heatmap model: the network only (backbone + head), no decoding.

Why ``torch.onnx`` and not MMDeploy, the ecosystem's tool (tried with MMDeploy 1.3.1, its last
release, on torch 2.14; docs/inference.md has the details): its ``torch2onnx`` calls
``torch.onnx.export`` without ``dynamo=False``, and torch >= 2.9 then takes the dynamo exporter,
which needs ``onnxscript`` and bypasses MMDeploy's TorchScript rewriters; and its wheel requires
``protobuf<=3.20.2``, which no onnx that reads our models' opsets accepts (onnx 1.23 needs
protobuf>=6.31). For a heatmap model MMDeploy exports what this module does: the network, images
in, heatmaps out, decoding left to the runtime.

The file follows MMDeploy's conventions where they exist (input ``input``, NCHW float32 after the
data preprocessor; opset 17 rather than 11 for torch 2.14's exporter) and has a dynamic batch
axis; :mod:`.metadata` lists what it records about itself.
"""
import time
from pathlib import Path
from typing import NamedTuple, Optional, Union

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
    # First: a config the metadata cannot hold fails before the file is written.
    try:
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


def onnxruntime_difference(model: nn.Module,
                           onnx_file: Union[str, Path],
                           inputs: Optional[torch.Tensor] = None,
                           batch: int = 2,
                           seed: int = 0) -> float:
    """Largest absolute difference between the PyTorch network's heatmaps and onnxruntime's, on
    ``inputs`` (normalised crops) or on a random batch of ``batch`` crops.

    Raises:
        UserError: onnxruntime is not installed.
    """
    from mmpose_sam.deploy.onnxruntime_model import OnnxPoseModel
    session = OnnxPoseModel(onnx_file, providers=['CPUExecutionProvider'])
    if inputs is None:
        width, height = session.input_size
        generator = torch.Generator().manual_seed(seed)
        inputs = torch.randn(batch, 3, height, width, generator=generator)
    network = HeatmapNetwork(model.cpu().eval())
    with torch.no_grad():
        expected = network(inputs.float()).numpy()
    actual = session.run(inputs.float().numpy())
    return float(np.abs(actual - expected).max())
