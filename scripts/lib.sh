# Shared settings for the scripts in this folder (sourced, not run).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export OPENLEDGER_HOME="${OPENLEDGER_HOME:-$HOME/.cache/openledger}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$OPENLEDGER_HOME/target}"
export OPENLEDGER_ANVIL="${OPENLEDGER_ANVIL:-$ROOT/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil}"
export OPENLEDGER_MODEL_DIR="${OPENLEDGER_MODEL_DIR:-$OPENLEDGER_HOME/models}"
mkdir -p "$OPENLEDGER_HOME" "$OPENLEDGER_MODEL_DIR"
log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
