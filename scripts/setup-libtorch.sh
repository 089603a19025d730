#!/usr/bin/env bash
# Installs libtorch for the `tch` backend (oracle/engine-tch) from PyPI, CPU-lite.
#
#   eval "$(scripts/setup-libtorch.sh)"                # libtorch for building/running Rust
#   eval "$(scripts/setup-libtorch.sh --with-python)"  # + `import torch` for exporting models
#
# Both forms print the environment to use (LIBTORCH, LD_LIBRARY_PATH, PYTHONPATH) on stdout;
# progress goes to stderr. Safe to re-run: each layer is installed once (a stamp file marks it
# complete, so an interrupted install is redone).
#
# Layer 1, libtorch (about 1.2 GB): the `torch==2.13.0` wheel (tch 0.26 accepts exactly this
# version) with --no-deps, plus the only two CUDA libraries that libtorch_cpu.so links
# (CUDA runtime and CUPTI, versions pinned by torch 2.13.0's `cuda-toolkit==13.0.3`
# requirement). That is all a Rust binary using tch on CPU loads.
#
# Layer 2, --with-python (about 2.4 GB more): Python's `torch._C` links libtorch_cuda.so
# directly, which needs cuDNN, cuBLAS, cuFFT, cuSPARSE(Lt), cuRAND, cuFile, NCCL, NVRTC,
# nvJitLink and NVSHMEM just to be loaded, even on a machine without a GPU; plus the
# pure-Python packages that `import torch`, `torch.jit.script` and `torch.jit.trace` import
# (measured with `python3 -S`: typing-extensions, and sympy + mpmath for trace's check;
# numpy is optional and left out). triton and cuda-bindings (GPU-only) are left out too.
# The test fixtures of oracle/engine-tch need this layer.
#
# A GPU build of a binary needs layer 2 as well (the same CUDA set) and the `cuda` feature of
# openledger-engine-tch: see that crate's docs for the CUDA link trap.
source "$(dirname "$0")/lib.sh"

WITH_PYTHON=0
for arg in "$@"; do
  case "$arg" in
    --with-python) WITH_PYTHON=1 ;;
    *) echo "usage: $0 [--with-python]" >&2; exit 2 ;;
  esac
done

TORCH_VERSION="2.13.0"
DEST="${OPENLEDGER_LIBTORCH_DIR:-$OPENLEDGER_HOME/libtorch-$TORCH_VERSION}"

# Versions from torch 2.13.0's METADATA (cuda-toolkit[...]==13.0.3 and the nvidia-* pins).
LIBTORCH_PACKAGES=(
  "torch==$TORCH_VERSION"
  "nvidia-cuda-runtime==13.0.96.*"
  "nvidia-cuda-cupti==13.0.85.*"
)
PYTHON_PACKAGES=(
  "nvidia-cudnn-cu13==9.20.0.48"
  "nvidia-cublas==13.1.1.3.*"
  "nvidia-cufft==12.0.0.61.*"
  "nvidia-cufile==1.15.1.6.*"
  "nvidia-curand==10.4.0.35.*"
  "nvidia-cusparse==12.6.3.3.*"
  "nvidia-cusparselt-cu13==0.8.1"
  "nvidia-cuda-nvrtc==13.0.88.*"
  "nvidia-nvjitlink==13.0.88.*"
  "nvidia-nccl-cu13==2.29.7"
  "nvidia-nvshmem-cu13==3.4.5"
  "typing-extensions>=4.10.0"
  "sympy>=1.13.3"
  "mpmath>=1.1.0,<1.4"
)

pip_target() {
  # --no-deps: exactly the listed packages, never torch's full 4.7 GB dependency set.
  python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
    --root-user-action=ignore --no-deps --target "$@"
}

if [ ! -f "$DEST/.openledger-libtorch" ]; then
  log "installing libtorch $TORCH_VERSION (CPU-lite, from PyPI) into $DEST"
  rm -rf "$DEST"
  pip_target "$DEST" "${LIBTORCH_PACKAGES[@]}"
  touch "$DEST/.openledger-libtorch"
  log "libtorch ready ($(du -sh "$DEST" | cut -f1))"
else
  log "libtorch present: $DEST"
fi

if [ "$WITH_PYTHON" = 1 ]; then
  if [ ! -f "$DEST/.openledger-python" ]; then
    log "installing the libraries that Python's \`import torch\` needs into $DEST"
    # pip --target skips (or, with --upgrade, replaces) top-level folders that already exist,
    # such as nvidia/: install into a staging folder and merge it in.
    STAGE="$DEST.python-stage"
    rm -rf "$STAGE"
    pip_target "$STAGE" "${PYTHON_PACKAGES[@]}"
    cp -a "$STAGE/." "$DEST/"
    rm -rf "$STAGE"
    touch "$DEST/.openledger-python"
    log "python layer ready ($(du -sh "$DEST" | cut -f1) in all)"
  else
    log "python layer present"
  fi
fi

LIBTORCH="$DEST/torch"
# The CUDA libraries are found through libtorch's own rpath ($ORIGIN/../../nvidia/...), so
# only torch/lib goes on the loader path.
printf 'export LIBTORCH=%q\n' "$LIBTORCH"
printf 'export LD_LIBRARY_PATH=%q\n' "$LIBTORCH/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
printf 'export PYTHONPATH=%q\n' "$DEST${PYTHONPATH:+:$PYTHONPATH}"
