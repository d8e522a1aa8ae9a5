#!/usr/bin/env bash
# Run HERE (a machine with PyPI access), before a call to a lent GPU machine: downloads into
# .whl/ (git-ignored) the OpenMMLab stack that machine's image lacks, for its Python 3.12 on
# x86-64; mmcv and xtcocotools as source distributions, which gpu_check.sh builds there. Carry
# `.whl` and run tools/device/gpu_check.sh (`--rehearse` checks the set here first).
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
