#!/usr/bin/env bash
# Run HERE (a machine with PyPI access), before a call to a lent GPU machine: downloads into
# .whl/ (git-ignored) what that machine's image lacks, for its Python 3.12 on x86-64. Pass
# `carry: [".whl"]` to the device tool and run tools/device/gpu_check.sh there.
#
# The image has torch 2.11, numpy 2.x, opencv-python-headless, scipy, matplotlib, pillow, rich,
# pyyaml, regex, tqdm, cython, onnx and onnxruntime (/work/.library/device/KINDS.md). It lacks the
# OpenMMLab stack; mmcv (no wheel for that torch) and xtcocotools (built against numpy 2 there)
# come as source distributions and gpu_check.sh builds them on the machine's 16 cores.
# `OUT=DIR bash tools/device/gpu_check.sh --rehearse` then checks here that the set is complete
# (one version of each, both source distributions) and rehearses every step of the device run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
PY="${PYTHON:-.venv/bin/python}"
rm -rf .whl && mkdir -p .whl
wheels=(mmengine==0.10.7 mmpose==1.3.2 mmdet==3.3.0 addict yapf platformdirs termcolor
        json_tricks munkres pycocotools terminaltables shapely 'setuptools<82' ninja)
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform any -d .whl "${wheels[@]}"
"$PY" -m pip download -q --no-deps --no-binary=:all: -d .whl mmcv==2.1.0 xtcocotools==1.14.3
ls -1 .whl
du -sh .whl
