"""Deployment: ONNX export of a top-down heatmap model and an onnxruntime backend.

- :mod:`.export` (``tools/deploy/export_onnx.py``): backbone + head, images in, heatmaps out, a
  dynamic batch axis, and everything a runtime needs in the model's ``metadata_props``
  (:mod:`.metadata`);
- :mod:`.onnxruntime_model`: :class:`~.onnxruntime_model.OnnxPoseModel` runs such a file on a
  float32 NCHW batch with onnxruntime alone (numpy, no torch);
- :mod:`.inferencer` (``tools/demo.py --backend onnxruntime``): MMPose's inferencer with the
  network in onnxruntime: MMPose's transforms, codec and visualizer, no PyTorch model.

onnx and onnxruntime are optional (``pip install -e .[deploy]``): ``import mmpose_sam`` never
imports this package, and this package imports them only when a function needs them, through
:func:`import_optional`, whose error says how to install them.
"""
import importlib
from types import ModuleType

from mmpose_sam.errors import UserError

INSTALL_HINT = 'pip install -e .[deploy]'


def import_optional(module: str, purpose: str) -> ModuleType:
    """``importlib.import_module(module)``, or a one-line :class:`UserError` naming the extra.

    Args:
        module: ``'onnx'`` or ``'onnxruntime'``.
        purpose: what needs it, for the message, e.g. ``'ONNX export'``.
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise UserError(f'{purpose} needs the {module} package, which does not import here '
                        f'({error}): {INSTALL_HINT}') from None
