#!/usr/bin/env bash
# Training on a slurm cluster, the MMPose way:
#   GPUS=16 bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [train.py options]
set -euo pipefail
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
WORK_DIR=$4
shift 4
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
# A task (one GPU) runs the main process, its pin-memory thread and our configs' 8 busy loader
# workers: 10 CPUs give each its own core (MMPose's 5 would leave the GPU waiting for data).
CPUS_PER_TASK=${CPUS_PER_TASK:-10}
SRUN_ARGS=${SRUN_ARGS:-}
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# One task per GPU. On SIGTERM (preemption, scancel, time limit) every task exits 143 only after
# rank 0 has saved (PreemptionHook), so --kill-on-bad-exit=1 cannot cut the save short; it still
# ends a step whose rank crashed. Save earlier than 30 s before a --time limit's SIGKILL with
# SRUN_ARGS='--signal=TERM@300' (README "When things go wrong").
PYTHONPATH="$ROOT:${PYTHONPATH:-}" srun -p "$PARTITION" --job-name="$JOB_NAME" \
    --gres=gpu:"$GPUS_PER_NODE" --ntasks="$GPUS" --ntasks-per-node="$GPUS_PER_NODE" \
    --cpus-per-task="$CPUS_PER_TASK" --kill-on-bad-exit=1 $SRUN_ARGS \
    python -u "$ROOT/tools/train.py" "$CONFIG" --work-dir="$WORK_DIR" --launcher slurm "$@"
