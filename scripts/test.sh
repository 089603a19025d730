#!/usr/bin/env bash
# Sets up everything (scripts/setup.sh) and runs every test. Safe to re-run.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
# A clone (CI's are fresh ones) builds the workspace crates once into the shared target
# directory: incremental caches are never reused there, and they had grown it by 23 GB.
export CARGO_INCREMENTAL=0
"$ROOT/scripts/setup.sh"

log "contract artifacts match the Solidity sources"
node contracts/evm/build.mjs --check
log "the ink! contracts build (cargo-contract, PolkaVM) to exactly contracts/ink/out"
"$ROOT/scripts/build-ink.sh" --check

log "lint: rustfmt, clippy and rustdoc with warnings as errors, unused dependencies"
cargo fmt --all --check
cargo fmt --manifest-path contracts/ink/Cargo.toml --all --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet
"$OPENLEDGER_HOME/tools/bin/cargo-machete" --with-metadata

log "PostgreSQL for the indexer's tests (Debian postgresql-15, own port and data directory)"
OPENLEDGER_TEST_POSTGRES="$("$ROOT/scripts/postgres.sh" start)"
export OPENLEDGER_TEST_POSTGRES
trap '"$ROOT/scripts/postgres.sh" stop' EXIT

log "cargo test --workspace"
cargo test --workspace --no-fail-fast

log "tch backend (libtorch 2.13.0 from PyPI; python torch exports the TorchScript fixtures)"
eval "$("$ROOT/scripts/setup-libtorch.sh" --with-python)"   # exports LIBTORCH, LD_LIBRARY_PATH, PYTHONPATH
cargo test -p openledger-engine-tch --features tch --no-fail-fast
# The HTTP contract tests of the server against the libtorch backend (the candle run above
# covers the rest of the server's tests).
cargo test -p openledger-oracle --features tch --test it --no-fail-fast -- tch::
cargo check -p openledger-cli --features tch --quiet   # the binary builds with the tch backend

log "benchmarks compile"
cargo build --workspace --benches --quiet

log "the cuda feature compiles into the openledger binary (CUDA 13.4 nvcc from PyPI; no GPU needed to build)"
(
  eval "$("$ROOT/scripts/setup-cuda.sh")"   # PATH with nvcc, CUDA_HOME, CUDA_COMPUTE_CAP=90
  cargo check -p openledger-cli --features cuda --quiet   # the binary, so the feature is proven to reach it
)
