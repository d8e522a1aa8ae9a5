#!/usr/bin/env bash
# The GPU check, in one call to a lent GPU machine (no network there; ~15 minutes of device time
# per session in all). Prepare here first: `bash tools/device/fetch_wheels.sh`, then call the
# device tool with
#     command: bash tools/device/gpu_check.sh      carry: [".whl"]      timeout_s: 570
# What it does, each step timed and logged to $OUT/gpu_check.log:
#   1. installs the carried wheels into /tmp/site (the image's torch, numpy 2 and OpenCV stay);
#   2. builds xtcocotools against the image's numpy and mmcv 2.1.0 with its CPU ops only
#      (`import mmpose.models` needs mmcv._ext to exist; these models use no mmcv op): ~80 s;
#   3. tools/check_env.py;
#   4. tools/benchmark_train.py: SimpleBaseline and SAM, MMPose's runtime vs ours (bf16,
#      256x192, batch 64, 14 loader workers), with --sync-check and --profile: ~3-4 min;
#   5. tools/benchmark_inference.py on the GPU: every PyTorch mode at batch 1, 8 and 64: ~1 min.
# Results land in $OUT (JSON and markdown), printed last.
# Budget knobs: ITERS (100), WARMUP (20), WORKERS (14).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
OUT="${OUT:-/tmp/gpu_check_out}"
mkdir -p "$OUT"
LOG="$OUT/gpu_check.log"
# Only 8 files under $OUT come back: work dirs (logs, configs, traces) stay in $WORK, and $OUT
# gets the 7 that matter (this log, the two tools' logs, their tables and JSON).
WORK=/tmp/gpu_check_work
START=$(date +%s)
step() { echo "[gpu_check] +$(( $(date +%s) - START ))s $*" | tee -a "$LOG"; }
export PYTHONUNBUFFERED=1

step "start on $(nproc) cores; $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1)"
[ -d .whl ] || { step "no .whl/: run tools/device/fetch_wheels.sh here and carry .whl"; exit 2; }

step "1. wheels -> /tmp/site"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .whl/*.whl >>"$LOG" 2>&1 || { step "wheel install failed"; exit 1; }
export PYTHONPATH="/tmp/site:$PWD"

step "2. build xtcocotools and mmcv 2.1.0 (CPU ops)"
BUILD=/tmp/build && rm -rf "$BUILD" && mkdir -p "$BUILD"
python3 -m pip install -q --no-index --no-deps --no-build-isolation --target /tmp/site \
  .whl/xtcocotools-*.tar.gz >>"$LOG" 2>&1 || { step "xtcocotools build failed"; exit 1; }
tar -xzf .whl/mmcv-2.1.0.tar.gz -C "$BUILD"
(cd "$BUILD/mmcv-2.1.0" && MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS="$(nproc)" CFLAGS="-g0" \
  python3 -m pip install -q --no-index --no-deps --no-build-isolation --target /tmp/site . \
  >>"$LOG" 2>&1) || { step "mmcv build failed (see $LOG)"; tail -20 "$LOG"; exit 1; }

step "3. environment"
python3 tools/check_env.py 2>&1 | tee -a "$LOG"

step "4. training throughput"
timeout 330 python3 tools/benchmark_train.py --settings mmpose fast \
  --iters "${ITERS:-100}" --warmup "${WARMUP:-20}" --model-only-iters 50 --batch-size 64 \
  --num-workers "${WORKERS:-14}" --sync-check --profile --work-dir "$WORK/train" \
  --out "$OUT/throughput.md" >"$OUT/benchmark_train.log" 2>&1
step "   exit $? (a cut-short run keeps its rows in $OUT/throughput.json)"

step "5. inference latency"
timeout 150 python3 tools/benchmark_inference.py --batch-sizes 1 8 64 --device cuda \
  --modes fp32 channels-last optimized-fp32 optimized-bf16 --warmup 5 --repeats 20 \
  --work-dir "$WORK/inference" --out "$OUT/latency.md" >"$OUT/benchmark_inference.log" 2>&1
step "   exit $?"

step "done"
for f in "$OUT/throughput.md" "$OUT/latency.md"; do
  [ -f "$f" ] && cat "$f"
done
python3 - "$OUT/throughput.json" <<'EOF'
import json, sys
try:
    rows = json.load(open(sys.argv[1]))['rows']
except (OSError, KeyError, ValueError):
    sys.exit(0)
for key, row in rows.items():
    print(key, 'syncs per iteration:', row.get('syncs_per_iteration'))
EOF
