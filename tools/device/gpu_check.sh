#!/usr/bin/env bash
# The GPU check, in one call to a lent GPU machine (no network there). Prepare here with
# `bash tools/device/fetch_wheels.sh`, then call the device tool with
#     command: bash tools/device/gpu_check.sh      carry: [".whl"]      timeout_s: 450
# Steps, each timed and logged to $OUT/gpu_check.log: 1. install the carried wheels into /tmp/site
# (the image's torch, numpy and OpenCV stay); 2. build xtcocotools; 3. build mmcv's CPU ops (with
# the GPU hidden: mmcv's setup.py builds its CUDA files whenever torch sees one); 4. check_env.py;
# 5. benchmark_train.py (--sync-check --profile, --time-limit from the budget); 6.
# benchmark_inference.py. Each step's timeout is what BUDGET_S leaves once the later steps' minimum
# is kept; a step that no longer fits is skipped with a log line. $OUT gets gpu_check.log,
# benchmark_train.log, throughput.md/.json, benchmark_inference.log, latency.md/.json; work dirs
# stay in $WORK. Budget and expected times: README "Training speed".
#
# `OUT=DIR bash tools/device/gpu_check.sh --rehearse` runs every step here with this checkout's
# .venv and tiny sizes (steps 1-3 replaced by cheap checks of the carried files).
# Knobs: BUDGET_S (420), ITERS (100), WARMUP (20), WORKERS (14), WORK. Exit status: 0 when every
# step ran and passed, 1 when one failed or timed out, 2 when there is nothing to run with (no
# .whl/, no .venv), 3 when steps were skipped for the budget and none failed.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

REHEARSE=0
case "${1:-}" in
  '') ;;
  --rehearse) REHEARSE=1 ;;
  *) echo "usage: [OUT=DIR] [BUDGET_S=S] bash tools/device/gpu_check.sh [--rehearse]" >&2; exit 2 ;;
esac
BUDGET_S="${BUDGET_S:-420}"
START=$(date +%s)
DEADLINE=$(( START + BUDGET_S ))
OUT="${OUT:-/tmp/gpu_check_out}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
LOG="$OUT/gpu_check.log"
: >"$LOG"
WORK="${WORK:-$(mktemp -d /tmp/gpu_check_work.XXXXXX)}"
mkdir -p "$WORK"
export PYTHONUNBUFFERED=1

log() { echo "[gpu_check] +$(( $(date +%s) - START ))s $*" | tee -a "$LOG"; }
SUMMARY=()
FAILED=0
SKIPPED=0
STACK_OK=1  # steps 1-3 installed what steps 4-6 import

# fit NAME NEED CAP RESERVE: sets T, the step's timeout: at most CAP, and what is left of the
# budget once RESERVE seconds are kept for the steps after it. A step that would get less than
# NEED seconds is skipped (logged, returns 1). NEED is the least a step is worth starting with;
# RESERVE, the NEEDs of the steps after it (inference's 40 s counted as 60, so that training
# rarely squeezes it) plus 5 s for the end. NEED / RESERVE in seconds: wheels 10 / 210,
# xtcocotools 15 / 195, mmcv 60 / 135, check_env 10 / 125, training 60 / 65, inference 40 / 5.
fit() {
  local name=$1 need=$2 cap=$3 reserve=$4 left
  left=$(( DEADLINE - $(date +%s) ))
  T=$(( left - reserve < cap ? left - reserve : cap ))
  if (( T < need )); then
    log "$name: skipped: ${left} s of the ${BUDGET_S} s budget left; it needs ${need} s and" \
        "${reserve} s stay for the steps after it"
    SUMMARY+=("$name: skipped for the budget")
    SKIPPED=1
    return 1
  fi
  log "$name: up to ${T} s"
}

# done_step NAME RC STARTED: logs and records how a step ended.
done_step() {
  local name=$1 rc=$2 took=$(( $(date +%s) - $3 )) result
  case "$rc" in
    0) result="ok in ${took} s" ;;
    124|137) result="timed out after ${took} s (what it wrote so far stays in $OUT)"; FAILED=1 ;;
    *) result="failed (exit $rc) after ${took} s"; FAILED=1 ;;
  esac
  log "$name: $result"
  SUMMARY+=("$name: $result")
}

rehearsal_skip() {
  log "$1: skipped in rehearsal ($2)"
  SUMMARY+=("$1: skipped in rehearsal")
}

# Bounded run of one command: SIGTERM at T-5 s, SIGKILL 5 s later.
bounded() { timeout -k 5 "$(( T > 10 ? T - 5 : 5 ))" "$@"; }

if (( REHEARSE )); then
  PY="$PWD/.venv/bin/python"
  [ -x "$PY" ] || { log "rehearsal needs this checkout's .venv (bash tools/setup_env.sh)"; exit 2; }
  ITERS=2 WARMUP=1 MODEL_ONLY=2 MODEL_ONLY_WARMUP=1 PROFILE_STEPS=1 BATCH=2 WORKERS=1
  INF_BATCHES=(1) INF_WARMUP=1 INF_REPEATS=1 INF_DEVICE=cpu
  # The sample configs: the shipped COCO configs' settings and hooks (they inherit them) at
  # 128x96, 3-4 times cheaper a step on a CPU than 256x192.
  CONFIGS="configs/body_2d_keypoint/topdown_heatmap/coco_sample"
  SB_CONFIG="$CONFIGS/td-hm_simplebaseline-res50_1xb16-150e_coco-sample-128x96.py"
  SAM_CONFIG="$CONFIGS/td-hm_sam-res50-seq3x3_1xb16-150e_coco-sample-128x96.py"
  log "rehearsal on $(nproc) cores with $PY ($("$PY" -c 'import sys; print(sys.version.split()[0])'));" \
      "budget ${BUDGET_S} s; OUT=$OUT; WORK=$WORK"
else
  PY=python3
  ITERS="${ITERS:-100}" WARMUP="${WARMUP:-20}" MODEL_ONLY=50 MODEL_ONLY_WARMUP=5 PROFILE_STEPS=5
  BATCH=64 WORKERS="${WORKERS:-14}"
  INF_BATCHES=(1 8 64) INF_WARMUP=5 INF_REPEATS=20 INF_DEVICE=cuda
  CONFIGS="configs/body_2d_keypoint/topdown_heatmap/coco"  # the paper's, as shipped
  SB_CONFIG="$CONFIGS/td-hm_simplebaseline-res50_8xb64-210e_coco-256x192.py"
  SAM_CONFIG="$CONFIGS/td-hm_sam-res50-seq3x3_8xb64-210e_coco-256x192.py"
  log "start on $(nproc) cores; $(nvidia-smi --query-gpu=name,memory.total,driver_version \
      --format=csv,noheader 2>&1); budget ${BUDGET_S} s; OUT=$OUT; WORK=$WORK"
  [ -d .whl ] || { log "no .whl/: run tools/device/fetch_wheels.sh here and carry .whl"; exit 2; }
fi

# --- 1. wheels -------------------------------------------------------------------------------
NAME="1. wheels"
# What fetch_wheels.sh puts there: the two source distributions, and one version of each wheel
# (two versions of one package stop the whole install).
check_carried() {
  [ -f .whl/mmcv-2.1.0.tar.gz ] && ls .whl/xtcocotools-*.tar.gz >/dev/null 2>&1 || return 1
  local dupes
  dupes=$(ls .whl | sed -n 's/^\([A-Za-z0-9_.]*\)-[0-9].*/\1/p' | tr 'A-Z-' 'a-z_' | sort | uniq -d)
  [ -z "$dupes" ] || { log "$NAME: more than one version of: $dupes"; return 1; }
}
if (( REHEARSE )); then
  if [ -d .whl ]; then
    check_carried && what="the carried .whl/ is complete, $(ls .whl | wc -l) files" ||
      what="the carried .whl/ is INCOMPLETE: run tools/device/fetch_wheels.sh"
  else
    what="no .whl/ here to check"
  fi
  rehearsal_skip "$NAME" "$what; they are for the device's Python 3.12, this venv has the stack"
elif fit "$NAME" 10 90 210; then
  t0=$(date +%s)
  check_carried || log "$NAME: .whl/ looks incomplete (see above); trying anyway"
  bounded python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl >>"$LOG" 2>&1
  rc=$?; done_step "$NAME" $rc "$t0"; (( rc == 0 )) || STACK_OK=0
else
  STACK_OK=0
fi
if (( ! REHEARSE )); then
  export PYTHONPATH="/tmp/site:$PWD"
  export PATH="$PATH:/tmp/site/bin"  # ninja and friends, where the image lacks them
fi

# --- 2. xtcocotools --------------------------------------------------------------------------
NAME="2. xtcocotools build"
if (( REHEARSE )); then
  venv=$("$PY" -c 'import importlib.metadata as m, xtcocotools._mask
print("xtcocotools", m.version("xtcocotools"), "imports")' 2>&1 | tail -1)
  rehearsal_skip "$NAME" "the venv's: $venv"
elif (( ! STACK_OK )); then
  log "$NAME: skipped: the wheels are not installed"; SUMMARY+=("$NAME: skipped (no wheels)")
elif fit "$NAME" 15 120 195; then
  t0=$(date +%s)
  bounded python3 -m pip install -q --no-index --no-deps --no-build-isolation --target /tmp/site \
    .whl/xtcocotools-*.tar.gz >>"$LOG" 2>&1
  rc=$?; done_step "$NAME" $rc "$t0"; (( rc == 0 )) || STACK_OK=0
else
  STACK_OK=0
fi

# --- 3. mmcv ---------------------------------------------------------------------------------
NAME="3. mmcv build (CPU ops)"
# mmcv 2.1.0's setup.py: `elif is_rocm_pytorch or torch.cuda.is_available() or
# os.getenv('FORCE_CUDA', '0') == '1':` builds the CUDA ops. CUDA_VISIBLE_DEVICES= (empty) for
# the build command alone makes torch.cuda.is_available() False there.
if (( REHEARSE )); then
  cond="no mmcv sdist here to read"
  if [ -f .whl/mmcv-2.1.0.tar.gz ]; then
    cond="its setup.py tests torch.cuda.is_available() $(tar -xzOf .whl/mmcv-2.1.0.tar.gz \
      mmcv-2.1.0/setup.py | grep -c 'torch.cuda.is_available()') times"
  fi
  # One interpreter for both facts (torch's import is most of the time).
  venv=$(CUDA_VISIBLE_DEVICES= "$PY" -c 'import torch, mmcv, mmcv._ext
print(f"mmcv {mmcv.__version__} with compiled ops; the build would see a GPU:",
      torch.cuda.is_available())' 2>&1 | tail -1)
  rehearsal_skip "$NAME" "the venv's: $venv; $cond"
elif (( ! STACK_OK )); then
  log "$NAME: skipped: the wheels are not installed"; SUMMARY+=("$NAME: skipped (no wheels)")
elif fit "$NAME" 60 240 135; then
  t0=$(date +%s)
  BUILD=/tmp/build && rm -rf "$BUILD" && mkdir -p "$BUILD"
  tar -xzf .whl/mmcv-2.1.0.tar.gz -C "$BUILD"
  SRC="$BUILD/mmcv-2.1.0"
  # torch >= 2.14's headers need C++20; mmcv 2.1.0 hard-codes -std=c++17 (torch 2.11: fine).
  if python3 -c 'import sys, torch
sys.exit(tuple(int(x) for x in torch.__version__.split("+")[0].split(".")[:2]) < (2, 14))'; then
    sed -i 's/-std=c++17/-std=c++20/g' "$SRC/setup.py"
    log "$NAME: torch >= 2.14: mmcv patched to C++20"
  fi
  sees=$(CUDA_VISIBLE_DEVICES= "$PY" -c 'import torch; print(torch.cuda.is_available())' 2>&1 |
    tail -1)
  log "$NAME: the build sees a GPU: $sees (must be False: CPU ops only)"
  (cd "$SRC" && CUDA_VISIBLE_DEVICES= MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS="$(nproc)" \
    CFLAGS="-g0" bounded python3 -m pip install -q --no-index --no-deps --no-build-isolation \
    --target /tmp/site . >>"$LOG" 2>&1)
  rc=$?; done_step "$NAME" $rc "$t0"
  if (( rc == 0 )); then
    so=$(ls /tmp/site/mmcv/_ext*.so 2>/dev/null | head -1)
    if [ -n "$so" ] && ldd "$so" 2>/dev/null | grep -qE 'c10_cuda|torch_cuda|cudart'; then
      log "$NAME: WARNING: $so links CUDA libraries (CUDA ops were built)"
    else
      log "$NAME: ${so:-mmcv/_ext*.so (not found)}: CPU ops only"
    fi
  else
    tail -20 "$LOG"; STACK_OK=0
  fi
else
  STACK_OK=0
fi

# --- 4. environment --------------------------------------------------------------------------
NAME="4. environment (tools/check_env.py)"
if (( ! STACK_OK )); then
  log "$NAME: skipped: the stack is not installed (see above)"; SUMMARY+=("$NAME: skipped")
elif fit "$NAME" 10 60 125; then
  t0=$(date +%s)
  bounded "$PY" tools/check_env.py 2>&1 | tee -a "$LOG"
  done_step "$NAME" "${PIPESTATUS[0]}" "$t0"
fi

# --- 5. training throughput ------------------------------------------------------------------
NAME="5. training throughput (tools/benchmark_train.py)"
if (( ! STACK_OK )); then
  log "$NAME: skipped: the stack is not installed"; SUMMARY+=("$NAME: skipped")
elif fit "$NAME" 60 100000 65; then
  t0=$(date +%s)
  # --time-limit (counted from after its imports, ~10 s): no row starts that would end within
  # ~10 s of the SIGTERM; the JSON and table in $OUT are rewritten after every row.
  bounded "$PY" tools/benchmark_train.py --sb-config "$SB_CONFIG" --sam-config "$SAM_CONFIG" \
    --settings fast mmpose --iters "$ITERS" \
    --warmup "$WARMUP" --model-only-iters "$MODEL_ONLY" --model-only-warmup "$MODEL_ONLY_WARMUP" \
    --batch-size "$BATCH" --num-workers "$WORKERS" --sync-check --profile \
    --profile-steps "$PROFILE_STEPS" --time-limit "$(( T - 25 ))" \
    --work-dir "$WORK/train" --out "$OUT/throughput.md" >"$OUT/benchmark_train.log" 2>&1
  rc=$?
  grep -E '^\[benchmark_train\]' "$OUT/benchmark_train.log" | tee -a "$LOG"
  done_step "$NAME" $rc "$t0"
fi

# --- 6. inference latency --------------------------------------------------------------------
NAME="6. inference latency (tools/benchmark_inference.py)"
if (( ! STACK_OK )); then
  log "$NAME: skipped: the stack is not installed"; SUMMARY+=("$NAME: skipped")
elif fit "$NAME" 40 150 5; then
  t0=$(date +%s)
  bounded "$PY" tools/benchmark_inference.py --sb-config "$SB_CONFIG" --sam-config "$SAM_CONFIG" \
    --batch-sizes "${INF_BATCHES[@]}" \
    --device "$INF_DEVICE" --modes fp32 channels-last optimized-fp32 optimized-bf16 \
    --warmup "$INF_WARMUP" --repeats "$INF_REPEATS" --work-dir "$WORK/inference" \
    --out "$OUT/latency.md" >"$OUT/benchmark_inference.log" 2>&1
  rc=$?
  grep -E '^\[benchmark_inference\]' "$OUT/benchmark_inference.log" | tee -a "$LOG"
  done_step "$NAME" $rc "$t0"
fi

# --- results ---------------------------------------------------------------------------------
log "done: $(( $(date +%s) - START )) s of the ${BUDGET_S} s budget"
for line in "${SUMMARY[@]}"; do log "  $line"; done
for f in "$OUT/throughput.md" "$OUT/latency.md"; do
  [ -f "$f" ] && { echo; cat "$f"; }
done
[ -f "$OUT/throughput.json" ] && "$PY" - "$OUT/throughput.json" <<'EOF'
import json, sys
try:
    report = json.load(open(sys.argv[1]))
except (OSError, ValueError):
    sys.exit(0)
for key, row in report.get('rows', {}).items():
    print(key, 'syncs per iteration:', row.get('syncs_per_iteration'))
if report.get('skipped'):
    print('rows skipped for the time limit:', ', '.join(report['skipped']))
EOF
log "files in $OUT: $(ls "$OUT" | tr '\n' ' ')"
(( REHEARSE )) && [[ "$WORK" == /tmp/gpu_check_work.* ]] && rm -rf "$WORK"
(( FAILED )) && exit 1
(( SKIPPED )) && exit 3
exit 0
