"""Test with MMPose's own `tools/test.py` (same arguments), this plugin imported first.

    python tools/test.py CONFIG CHECKPOINT [MMPose's test.py options]

Equivalent to `mim test mmpose CONFIG -C CHECKPOINT` or to
MMPose's `tools/test.py` in an MMPose checkout:
the configs import `mmpose_sam` themselves (`custom_imports`).
"""
import sys

from toolkit.mmpose_tools import run_mmpose_tool

if __name__ == '__main__':
    run_mmpose_tool('test.py', sys.argv[1:])
