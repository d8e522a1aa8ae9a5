#!/usr/bin/env bash
# Set up (or check) the project's environment in .venv/ at the repo root:
#   bash tools/setup_env.sh          # idempotent: a second run only re-checks (a few seconds)
# Steps (each skipped when done): venv, torch, the pinned stack (requirements/), mmcv 2.1.0 built
# from its sdist and cached as a wheel under $MMPOSE_SAM_CACHE, this package (editable), then
# tools/check_env.py. Environment: PYTHON, MMPOSE_SAM_CACHE (default ~/.cache/mmpose-sam),
# FORCE_CUDA, MAX_JOBS, and TORCH_INDEX_URL (a PyTorch wheel index, e.g. .../whl/cu126 for an
# older driver) or TORCH_WHEELS (a folder of torch wheels). README "Set-up and the two commands".
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
CACHE="${MMPOSE_SAM_CACHE:-$HOME/.cache/mmpose-sam}"
REQ="$ROOT/requirements"
STAMP="$VENV/.mmpose-sam-setup"

log() { printf '[setup_env] %s\n' "$*" >&2; }
die() { printf '[setup_env] ERROR: %s\n' "$*" >&2; exit 1; }

# The stamp records what the last successful run installed; when nothing it depends on changed and
# the stack still imports, there is nothing to do.
fingerprint() {
  { cat "$REQ"/*.txt "$ROOT/setup.py" "$ROOT/tools/setup_env.sh"
    echo "torch variant: ${TORCH_INDEX_URL:-} ${TORCH_WHEELS:-}"; } | sha256sum | cut -d' ' -f1
}

if [[ -x "$VENV/bin/python" && -f "$STAMP" && "$(cat "$STAMP")" == "$(fingerprint)" ]] &&
   "$VENV/bin/python" "$ROOT/tools/check_env.py" --quiet; then
  log "environment in $VENV is up to date"
  exit 0
fi

# 1. venv --------------------------------------------------------------------------------------
if [[ ! -x "$VENV/bin/python" ]]; then
  PY="${PYTHON:-$(command -v python3.11 || command -v python3)}"
  "$PY" -c 'import sys; assert sys.version_info[:2] >= (3, 8)' || die "$PY is too old; set PYTHON"
  log "creating $VENV with $PY"
  "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
VPY="$VENV/bin/python"
"${PIP[@]}" install -q -r "$REQ/build.txt"

# 2. torch -------------------------------------------------------------------------------------
# numpy/opencv pins (stack.txt) apply from the start, so mmcv is built against the final numpy.
if [[ -n "${TORCH_INDEX_URL:-}" && -n "${TORCH_WHEELS:-}" ]]; then
  die "set TORCH_INDEX_URL or TORCH_WHEELS, not both"
fi
TORCH_FROM=()
if [[ -n "${TORCH_INDEX_URL:-}" ]]; then
  # PyTorch's indexes mirror torch's own dependencies (nvidia-*, sympy, ...); PyPI has the rest.
  TORCH_FROM=(--index-url "$TORCH_INDEX_URL" --extra-index-url https://pypi.org/simple)
  WANT_LOCAL="${TORCH_INDEX_URL%/}"; WANT_LOCAL="${WANT_LOCAL##*/}"  # .../whl/cu126 -> cu126
elif [[ -n "${TORCH_WHEELS:-}" ]]; then
  ls "$TORCH_WHEELS"/torch-*.whl >/dev/null 2>&1 || die "TORCH_WHEELS=$TORCH_WHEELS has no torch-*.whl"
  TORCH_FROM=(--find-links "$TORCH_WHEELS")
  WANT_LOCAL="$(basename "$(ls "$TORCH_WHEELS"/torch-*.whl | head -1)" | sed -n 's/^torch-[^+-]*+\([^-]*\)-.*/\1/p')"
fi
log "installing torch (requirements/torch.txt${TORCH_FROM:+ from ${TORCH_INDEX_URL:-$TORCH_WHEELS}})"
if [[ ${#TORCH_FROM[@]} -gt 0 ]]; then
  # `torch==2.14.1` is satisfied by any local build of 2.14.1 (+cu126, +cu130, ...), so pip would
  # keep the one installed; replace torch and torchvision when theirs is not the wanted build.
  HAVE="$("$VPY" -c 'import torch; print(torch.__version__)' 2>/dev/null || true)"
  if [[ -z "$HAVE" || "$HAVE" != *"+${WANT_LOCAL:-none}" ]]; then
    "${PIP[@]}" install -q --force-reinstall --no-deps "${TORCH_FROM[@]}" -r "$REQ/torch.txt"
  fi
fi
"${PIP[@]}" install -q ${TORCH_FROM[@]+"${TORCH_FROM[@]}"} -r "$REQ/torch.txt" -c "$REQ/stack.txt"
# torch pulls in the newest setuptools; put the pin back (torch itself needs >=77.0.3 only).
"${PIP[@]}" install -q -r "$REQ/build.txt"

# 3. the rest of the stack ---------------------------------------------------------------------
log "installing the pinned OpenMMLab stack (requirements/stack.txt, mmpose.txt, deploy.txt)"
# openmim and mmpose go in without their declared dependencies (see the comments in those files);
# everything they really import is in stack.txt. deploy.txt (onnx, onnxruntime: the `deploy`
# extra) is resolved together with the stack, so that it cannot pull in numpy 2.
grep -v '^openmim' "$REQ/stack.txt" > "$VENV/.stack-no-openmim.txt"
"${PIP[@]}" install -q -r "$VENV/.stack-no-openmim.txt" -r "$REQ/build.txt" -r "$REQ/tests.txt" \
  -r "$REQ/deploy.txt" -c "$REQ/torch.txt" -c "$REQ/mmcv.txt"
"${PIP[@]}" install -q --no-deps "$(grep '^openmim' "$REQ/stack.txt")" -r "$REQ/mmpose.txt"

# 4. mmcv with compiled ops (after the stack: `import mmcv` needs mmengine and opencv) ------
MMCV_VERSION="$(sed -n 's/^mmcv==\([0-9.]*\).*/\1/p' "$REQ/mmcv.txt")"
[[ -n "$MMCV_VERSION" ]] || die "requirements/mmcv.txt has no 'mmcv==X.Y.Z' line"
mmcv_ok() {
  "$VPY" - "$MMCV_VERSION" <<'EOF' 2>/dev/null
import sys
import mmcv, mmcv._ext  # noqa: F401  (_ext exists only in a full build with ops)
sys.exit(mmcv.__version__ != sys.argv[1])
EOF
}
if mmcv_ok; then
  log "mmcv $MMCV_VERSION with compiled ops already installed"
else
  read -r TORCH_VERSION TORCH_CUDA GPU < <("$VPY" -c \
    'import torch; print(torch.__version__.split("+")[0], torch.version.cuda or "none", int(torch.cuda.is_available()))')
  FLAVOUR=cpu
  if [[ "${FORCE_CUDA:-0}" == 1 ]] || { command -v nvcc >/dev/null && [[ "$GPU" == 1 ]]; }; then
    FLAVOUR="cu${TORCH_CUDA}"
  fi
  PYTAG="$("$VPY" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')"
  WHEEL_DIR="$CACHE/wheels/mmcv-$MMCV_VERSION-torch$TORCH_VERSION-$FLAVOUR-$PYTAG"
  if ! ls "$WHEEL_DIR"/mmcv-*.whl >/dev/null 2>&1; then
    log "building mmcv $MMCV_VERSION ($FLAVOUR ops, torch $TORCH_VERSION); about 4 min on 2 cores (AMD EPYC AVX2, 2026-12-07), once"
    BUILD="$(mktemp -d)"
    trap 'rm -rf "$BUILD"' EXIT
    "${PIP[@]}" download -q --no-deps --no-build-isolation --no-binary mmcv \
      "mmcv==$MMCV_VERSION" -d "$BUILD"
    tar -xzf "$BUILD/mmcv-$MMCV_VERSION.tar.gz" -C "$BUILD"
    SRC="$BUILD/mmcv-$MMCV_VERSION"
    # torch>=2.14 headers need C++20; mmcv 2.1.0 hard-codes -std=c++17.
    if "$VPY" -c 'import sys, torch; v = tuple(int(x) for x in torch.__version__.split("+")[0].split(".")[:2]); sys.exit(v < (2, 14))'; then
      sed -i 's/-std=c++17/-std=c++20/g' "$SRC/setup.py"
      grep -q -- '-std=c++20' "$SRC/setup.py" || die "could not patch mmcv's setup.py for C++20"
    fi
    FORCE_CUDA_FLAG=0; [[ "$FLAVOUR" != cpu ]] && FORCE_CUDA_FLAG=1
    # -g0: no debug info, which more than halves the compile time of these header-heavy files.
    BUILD_CFLAGS="${CFLAGS:-} -g0"
    # Every one of mmcv's 77 C++ files includes pytorch_cpp_helper.hpp (torch/types.h), and
    # parsing it is most of each file's compile: 20 s per file, 4.5 s with a precompiled header
    # (GCC, AMD EPYC AVX2, 2026-12-07). Built once with the flags torch's build gives the ops (CPU
    # flavour; a CUDA build defines more macros), in a folder of its own put first on the include
    # path, so that nothing of it lands in the wheel. GCC takes a precompiled header only as a
    # file's first include: `-include` makes it that in the 14 files that start with another
    # (<torch/extension.h>, <ATen/ATen.h>, <queue>, ...; 15 s -> 4.5 s for cpu/roi_align.cpp), and
    # their own #include of it is then a no-op (its include guard). GCC uses the header only
    # where it matches the file's flags and otherwise parses it as before (-Winvalid-pch says
    # so): it can change the build's time, never what is built.
    # The compiler torch's build runs: $CXX, else c++.
    if [[ "$FLAVOUR" == cpu ]] && "${CXX:-c++}" -v 2>&1 | grep -q '^gcc version'; then
      PCH="$BUILD/pch"; mkdir -p "$PCH"
      cp "$SRC/mmcv/ops/csrc/common/pytorch_cpp_helper.hpp" "$PCH/"
      STD="$(grep -o -- '-std=c++[0-9]*' "$SRC/setup.py" | tail -1 || true)"
      read -r -a TORCH_INCLUDES < <("$VPY" -c 'import sysconfig, torch.utils.cpp_extension as c
print(" ".join("-I" + p for p in c.include_paths() + [sysconfig.get_paths()["include"]]))' 2>/dev/null)
      # shellcheck disable=SC2086  # BUILD_CFLAGS is a list of flags
      if "${CXX:-c++}" $BUILD_CFLAGS -fPIC -I"$SRC/mmcv/ops/csrc/common" "${TORCH_INCLUDES[@]}" ${STD:+"$STD"} \
           -DTORCH_API_INCLUDE_EXTENSION_H -DTORCH_EXTENSION_NAME=_ext -x c++-header \
           "$PCH/pytorch_cpp_helper.hpp" -o "$PCH/pytorch_cpp_helper.hpp.gch"; then
        BUILD_CFLAGS="-I$PCH -Winvalid-pch -include pytorch_cpp_helper.hpp $BUILD_CFLAGS"
      else
        log "no precompiled header for mmcv's ops (see above): each file parses torch's headers"
      fi
    fi
    (cd "$SRC" && MMCV_WITH_OPS=1 FORCE_CUDA=$FORCE_CUDA_FLAG MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
      CFLAGS="$BUILD_CFLAGS" \
      "${PIP[@]}" wheel -q --no-deps --no-build-isolation . -w "$BUILD/wheel")
    mkdir -p "$WHEEL_DIR"
    # Move into place only once complete, so an interrupted build never leaves a broken cache.
    cp "$BUILD"/wheel/mmcv-*.whl "$WHEEL_DIR/.partial.whl"
    mv "$WHEEL_DIR/.partial.whl" "$WHEEL_DIR/$(basename "$BUILD"/wheel/mmcv-*.whl)"
  fi
  log "installing mmcv from $WHEEL_DIR"
  "${PIP[@]}" uninstall -q -y mmcv-lite >/dev/null 2>&1 || true
  "${PIP[@]}" install -q --no-deps --force-reinstall "$WHEEL_DIR"/mmcv-*.whl
  # mmcv's own light dependencies (addict, yapf, ...), without letting pip touch mmcv itself.
  "${PIP[@]}" install -q addict packaging pyyaml yapf regex
  mmcv_ok || die "mmcv $MMCV_VERSION installed but mmcv._ext does not import"
fi

# 5. this package --------------------------------------------------------------------------------
"${PIP[@]}" install -q --no-deps --no-build-isolation -e "$ROOT"
"$VPY" "$ROOT/tools/check_env.py"
fingerprint > "$STAMP"
log "done: activate with 'source .venv/bin/activate'"
