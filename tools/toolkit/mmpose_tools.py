"""Locate and run MMPose's own command-line tools (``tools/train.py``, ``tools/test.py``, ...).

MMPose ships its ``tools/`` inside the package as ``mmpose/.mim/tools`` (that is what
``mim train mmpose`` runs); a source checkout installed with ``pip install -e`` links it there too.
This project's ``tools/train.py`` and ``tools/test.py`` run those very scripts, so every MMPose
option works unchanged.
"""
import importlib
import runpy
import sys
from pathlib import Path
from typing import Sequence


def mmpose_tool_path(name: str) -> Path:
    """Path of MMPose's ``tools/<name>``; a clear error if this MMPose install has no tools."""
    import mmpose
    path = Path(mmpose.__file__).parent / '.mim' / 'tools' / name
    if not path.is_file():
        raise FileNotFoundError(
            f'{path} not found: this MMPose install has no tools/ (install the mmpose wheel, or '
            'run tools/ from an MMPose source checkout)')
    return path


def run_mmpose_tool(name: str, argv: Sequence[str]) -> None:
    """Run MMPose's ``tools/<name>`` as ``__main__`` with ``argv``, after importing this plugin."""
    importlib.import_module('mmpose_sam')  # registers our models, hooks and wrappers first
    path = mmpose_tool_path(name)
    sys.argv = [str(path), *argv]
    runpy.run_path(str(path), run_name='__main__')
