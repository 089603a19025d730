#!/usr/bin/env bash
# Sets up everything (scripts/setup.sh) and runs the whole system on embedded defaults:
# a local chain (anvil) with the contract suite deployed and the oracle serving the real model.
# Ctrl-C stops it. Safe to re-run. Arguments go to `openledger devnet` (see its --help); settings
# also come from ./openledger.toml ([devnet], [deploy], [oracle]) and OPENLEDGER_DEVNET_*,
# OPENLEDGER_DEPLOY_* and OPENLEDGER_ORACLE_* env.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
"$ROOT/scripts/setup.sh"
# The release profile: the debug build serves the same request about 3x slower (its sampling,
# tokenizer and server crates are unoptimized).
log "building openledger (release)"
cargo build --release --quiet -p openledger-cli --bin openledger
exec "$CARGO_TARGET_DIR/release/openledger" devnet "$@"
