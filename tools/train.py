"""Train with MMPose's own `tools/train.py` (same arguments), this plugin imported first.

    python tools/train.py CONFIG [MMPose's train.py options]

Equivalent to `mim train mmpose CONFIG` or to
MMPose's `tools/train.py` in an MMPose checkout:
the configs import `mmpose_sam` themselves (`custom_imports`).
"""
import sys

from toolkit.mmpose_tools import run_mmpose_tool

if __name__ == '__main__':
    run_mmpose_tool('train.py', sys.argv[1:])
