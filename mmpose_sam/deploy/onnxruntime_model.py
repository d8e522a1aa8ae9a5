"""An exported pose network in onnxruntime, with numpy and onnxruntime only (no torch, no MMPose),
so that a PyTorch-free runtime can copy it with :mod:`.metadata` (docs/inference.md).
"""
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from mmpose_sam.errors import InvalidInputError
from mmpose_sam.deploy import import_optional
from mmpose_sam.deploy.metadata import parse_metadata


class OnnxPoseModel:
    """An ONNX model written by :func:`~mmpose_sam.deploy.export.export_onnx`, in onnxruntime.

    Args:
        path (str | Path): The ``.onnx`` file.
        providers (Sequence[str], optional): onnxruntime execution providers in order of
            preference. Defaults to CUDA where this onnxruntime has it, then the CPU.
        threads (int, optional): Intra-op threads. Defaults to onnxruntime's.

    ``metadata`` holds the parsed values of :func:`~.metadata.parse_metadata`.

    Raises:
        InvalidInputError: no such file, not an ONNX model, or not one of ours.
        UserError: onnxruntime is not installed.
    """

    def __init__(self,
                 path: Union[str, Path],
                 providers: Optional[Sequence[str]] = None,
                 threads: Optional[int] = None):
        ort = import_optional('onnxruntime', 'the onnxruntime backend')
        self.path = Path(path)
        if not self.path.is_file():
            raise InvalidInputError(self.path, 'no such file')
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        if not providers:
            providers = [provider for provider in ('CUDAExecutionProvider', 'CPUExecutionProvider')
                         if provider in ort.get_available_providers()]
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=list(providers))
        except Exception as error:  # onnxruntime raises its own pybind11 types (InvalidProtobuf...)
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else ''
            raise InvalidInputError(self.path, 'not an ONNX model onnxruntime can load '
                                    f'({type(error).__name__}: {first_line})') from None
        try:
            self.metadata: Dict[str, Any] = parse_metadata(
                self.session.get_modelmeta().custom_metadata_map)
        except ValueError as error:
            raise InvalidInputError(self.path, str(error)) from None
        self.input_name = self.session.get_inputs()[0].name
        self.output_name = self.session.get_outputs()[0].name
        self._mean = np.asarray(self.metadata['mean'], np.float32).reshape(1, 3, 1, 1)
        self._std = np.asarray(self.metadata['std'], np.float32).reshape(1, 3, 1, 1)

    @property
    def input_size(self) -> Tuple[int, int]:
        """``(w, h)`` of the input crops."""
        width, height = self.metadata['input_size']
        return int(width), int(height)

    @property
    def providers(self) -> List[str]:
        """The execution providers the session uses, in order of preference."""
        return self.session.get_providers()

    def preprocess(self, crops: Union[np.ndarray, Sequence[np.ndarray]]) -> np.ndarray:
        """Normalise BGR ``uint8`` crops (``(H, W, 3)`` each, ``H x W`` the input size) as the
        model's data preprocessor does: the ``(N, 3, H, W)`` float32 batch for :meth:`run`."""
        batch = np.stack(list(crops)).astype(np.float32)
        if batch.ndim != 4 or batch.shape[-1] != 3:
            raise ValueError(f'expected (H, W, 3) BGR crops, got a batch of {batch.shape[1:]}')
        if self.metadata['bgr_to_rgb']:
            batch = batch[..., ::-1]
        batch = batch.transpose(0, 3, 1, 2)
        return np.ascontiguousarray((batch - self._mean) / self._std, dtype=np.float32)

    def run(self, inputs: np.ndarray) -> np.ndarray:
        """Heatmaps ``(N, K, h, w)`` float32 of a normalised batch ``(N, 3, H, W)`` (what the
        PyTorch network gets after the data preprocessor); any ``N >= 1``."""
        width, height = self.input_size
        if inputs.ndim != 4 or tuple(inputs.shape[1:]) != (3, height, width):
            raise ValueError(f'{self.path.name} takes (N, 3, {height}, {width}) inputs, '
                             f'got {tuple(inputs.shape)}')
        inputs = np.ascontiguousarray(inputs, dtype=np.float32)
        return self.session.run([self.output_name], {self.input_name: inputs})[0]
