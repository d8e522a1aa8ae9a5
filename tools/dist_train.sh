#!/usr/bin/env bash
# Multi-GPU (or multi-process CPU) training on one or more nodes with torchrun, the MMPose way:
#   bash tools/dist_train.sh CONFIG GPUS [train.py options]
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR (and PORT) on every node. tools/dist_test.sh
# runs tools/test.py through this script (DIST_TOOL=test.py).
set -euo pipefail
CONFIG=$1
GPUS=$2
shift 2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# A GPU that torch cannot use (an old driver for this torch build) stops here in one line, before
# torchrun starts N processes that would run gloo DDP on the CPU. CUDA_VISIBLE_DEVICES= (empty)
# runs on the CPU on purpose.
python "$ROOT/tools/check_env.py" --gpu --quiet || exit 1

PYTHONPATH="$ROOT:${PYTHONPATH:-}" python -m torch.distributed.run \
    --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" --master_port="$PORT" \
    "$ROOT/tools/${DIST_TOOL:-train.py}" "$CONFIG" --launcher pytorch "$@"
