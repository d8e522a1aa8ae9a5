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
# A task (one GPU) runs the main process, its pin-memory thread and our configs' 8 training loader
# workers; the 8 persistent validation workers sleep while training runs (and the training ones
# during validation), so 10 CPUs keep every busy process on a core of its own. MMPose's 5 would
# leave the 8 workers sharing 3 cores and the GPU waiting for data. 8 GPUs a node: 80 cores.
CPUS_PER_TASK=${CPUS_PER_TASK:-10}
SRUN_ARGS=${SRUN_ARGS:-}
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# One task per GPU; MMEngine's slurm launcher reads the SLURM_* variables of each task.
# Preemption, scancel and time limits send SIGTERM to every process of the step, then SIGKILL
# KillWait (or GraceTime) seconds later: PreemptionHook saves iter_N.pth at the end of the
# iteration and every task exits 143 only after rank 0 has written it, so --kill-on-bad-exit=1
# (which kills the other tasks as soon as one fails) cannot cut the save short; it still ends a
# step whose rank crashed instead of leaving the others hanging in a collective. To save before
# a --time limit instead of 30 s before its SIGKILL, send SIGTERM earlier:
# SRUN_ARGS='--signal=TERM@300' (5 min before the limit), or `#SBATCH --signal=TERM@300`.
PYTHONPATH="$ROOT:${PYTHONPATH:-}" srun -p "$PARTITION" --job-name="$JOB_NAME" \
    --gres=gpu:"$GPUS_PER_NODE" --ntasks="$GPUS" --ntasks-per-node="$GPUS_PER_NODE" \
    --cpus-per-task="$CPUS_PER_TASK" --kill-on-bad-exit=1 $SRUN_ARGS \
    python -u "$ROOT/tools/train.py" "$CONFIG" --work-dir="$WORK_DIR" --launcher slurm "$@"
