#!/usr/bin/env bash
# Sets up everything (scripts/setup.sh) and runs the whole system on embedded defaults:
# a local chain (anvil) with the contract suite deployed. Ctrl-C stops it. Safe to re-run.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
"$ROOT/scripts/setup.sh"
log "building openledger"
cargo build --quiet -p openledger-cli --bin openledger
exec "$CARGO_TARGET_DIR/debug/openledger" devnet "$@"
