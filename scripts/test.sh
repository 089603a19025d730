#!/usr/bin/env bash
# Sets up everything (scripts/setup.sh) and runs every test. Safe to re-run.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
"$ROOT/scripts/setup.sh"

log "contract artifacts match the Solidity sources"
node contracts/evm/build.mjs --check

log "cargo test --workspace"
cargo test --workspace --no-fail-fast

log "benchmarks compile"
cargo build --workspace --benches --quiet
