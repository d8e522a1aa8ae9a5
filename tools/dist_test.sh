#!/usr/bin/env bash
# Multi-GPU (or multi-process CPU) testing on one or more nodes with torchrun, the MMPose way:
#   bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py options]
# Multi-node and the GPU check: as tools/dist_train.sh, which this runs with tools/test.py.
set -euo pipefail
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
shift 3
DIST_TOOL=test.py exec bash "$(dirname "${BASH_SOURCE[0]}")/dist_train.sh" "$CONFIG" "$GPUS" \
    "$CHECKPOINT" "$@"
