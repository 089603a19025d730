#!/usr/bin/env bash
# Installs a CUDA 13.4 build toolkit from NVIDIA's PyPI wheels, for building the engine with
# its `cuda` feature on a machine without a system CUDA (a GPU is not needed to build):
#
#   eval "$(scripts/setup-cuda.sh)"
#   cargo build -p openledger-engine --features cuda      # or -p openledger-oracle
#
# Prints the environment on stdout (PATH with nvcc, CUDA_HOME/CUDA_ROOT, CUDA_COMPUTE_CAP,
# LD_LIBRARY_PATH); progress goes to stderr. Safe to re-run (a stamp file marks a complete
# install). About 1.2 GB. CUDA_COMPUTE_CAP is kept if set, else 90 (H100; H200 is 90 too).
#
# Why these versions: the pins of the `cuda-toolkit==13.4.3` metapackage. cudarc 0.19 (via
# candle 0.11) reads the toolkit version from `nvcc --version` and refuses anything newer
# than 13.4. The wheels unpack into one tree, PREFIX/nvidia/cu13, laid out like a CUDA_HOME
# (bin/nvcc, include/, lib/, nvvm/), so nvcc needs no extra flags.
#
# Measured here (2 cores, no GPU): `cargo build -p openledger-engine --features cuda` from a
# cold target directory, 17 min. Linking a binary or test with the feature also needs the
# driver's libcuda.so, which only a GPU machine has.
source "$(dirname "$0")/lib.sh"

DEST="${OPENLEDGER_CUDA_DIR:-$OPENLEDGER_HOME/cuda-13.4}"
PACKAGES=(
  "nvidia-cuda-nvcc==13.4.92"
  "nvidia-cuda-crt==13.4.92"
  "nvidia-nvvm==13.4.92"
  "nvidia-cuda-runtime==13.4.92"
  "nvidia-cuda-nvrtc==13.4.92"
  "nvidia-cuda-cccl==13.3.4.3.1"
  "nvidia-cublas==13.8.0.4"
  "nvidia-curand==10.4.4.72"
)

if [ ! -f "$DEST/.openledger-cuda" ]; then
  log "installing the CUDA 13.4 build toolkit (PyPI wheels) into $DEST"
  rm -rf "$DEST"
  python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
    --root-user-action=ignore --no-deps --target "$DEST" "${PACKAGES[@]}" >&2
  touch "$DEST/.openledger-cuda"
  log "CUDA toolkit ready ($(du -sh "$DEST" | cut -f1))"
else
  log "CUDA toolkit present: $DEST"
fi

ROOT_CUDA="$DEST/nvidia/cu13"
[ -x "$ROOT_CUDA/bin/nvcc" ] || { echo "no nvcc in $ROOT_CUDA/bin" >&2; exit 1; }
printf 'export PATH=%q\n' "$ROOT_CUDA/bin:$PATH"
printf 'export CUDA_HOME=%q\n' "$ROOT_CUDA"
printf 'export CUDA_ROOT=%q\n' "$ROOT_CUDA"
printf 'export CUDA_COMPUTE_CAP=%q\n' "${CUDA_COMPUTE_CAP:-90}"
printf 'export LD_LIBRARY_PATH=%q\n' "$ROOT_CUDA/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
