"""ONNX export of a top-down heatmap model (:mod:`.export`, :mod:`.metadata`) and its onnxruntime
backend (:mod:`.onnxruntime_model`, :mod:`.inferencer`); docs/inference.md. onnx and onnxruntime
are optional: ``import mmpose_sam`` never imports this package, which imports them through
:func:`import_optional` only when needed.
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
