#!/usr/bin/env bash
# Builds the ink! implementation (contracts/ink) for PolkaVM with cargo-contract and writes
# contracts/ink/out/<contract>.polkavm and <contract>.abi. With --check, fails unless the
# committed artifacts are exactly what the sources build to. Installs what it needs (Debian's
# rustc-web toolchain with its std sources and lld for the PolkaVM target; cargo-contract from
# crates.io, cached under $OPENLEDGER_HOME/tools). Safe to re-run.
#
# The sources are built from a copy at one fixed path ($OPENLEDGER_HOME/ink-src), so file
# paths that end up in the code are the same in every checkout and the output is reproducible.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

CARGO_CONTRACT_VERSION=6.0.0-beta.2
CONTRACTS=(open_token datanet_registry model_registry operator_registry settlement test/test_wallet test/reentrant_token)
CHECK=0
[ "${1:-}" = "--check" ] && CHECK=1

# --- toolchain ---
if ! dpkg -s rustc-web cargo-web rust-web-src lld-22 >/dev/null 2>&1; then
  log "apt: rustc-web, rust-web-src and lld-22 (the PolkaVM target's compiler, std sources and linker)"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq rustc-web cargo-web rust-web-src rust-web-llvm lld-22 >/dev/null
fi
if ! "$OPENLEDGER_HOME/tools/bin/cargo-contract" --version 2>/dev/null | grep -q "$CARGO_CONTRACT_VERSION"; then
  log "cargo install cargo-contract $CARGO_CONTRACT_VERSION (about 12 minutes, once)"
  cargo install cargo-contract --version "=$CARGO_CONTRACT_VERSION" --locked --quiet --root "$OPENLEDGER_HOME/tools"
fi

# --- build from the fixed path, once per contract and inputs ---
# A contract's build is keyed by its inputs (its crate, the support crate, the workspace's
# manifest and lockfile, the toolchain) and kept under $OPENLEDGER_HOME/ink-builds: the same
# inputs build the same bytes, so a contract built before is checked against that build
# instead of being built again. Test contracts are built without metadata (no ABI file).
TOOLCHAIN="$(/usr/bin/rustc --version; "$OPENLEDGER_HOME/tools/bin/cargo-contract" --version)"
hash_inputs() {
  (cd contracts/ink && find Cargo.toml Cargo.lock support "$1" -type f -print0 | sort -z | xargs -0 sha256sum
   echo "$TOOLCHAIN") | sha256sum | cut -c1-16
}
SRC="$OPENLEDGER_HOME/ink-src"
OUT="$OPENLEDGER_HOME/ink-builds/current"
rm -rf "$OUT" && mkdir -p "$OUT"
copied=0
for contract in "${CONTRACTS[@]}"; do
  name="$(basename "$contract")"
  build="$OPENLEDGER_HOME/ink-builds/$name-$(hash_inputs "$contract")"
  if [ ! -d "$build" ]; then
    if [ "$copied" = 0 ]; then
      rm -rf "$SRC" && mkdir -p "$SRC"
      tar -C contracts/ink --exclude=./out -cf - . | tar -C "$SRC" -xf -
      copied=1
    fi
    generate=all
    case "$contract" in test/*) generate=code-only ;; esac
    log "cargo contract build --release --generate $generate: $contract"
    # Debian's cargo and rustc (1.96, with std sources) first; cargo-contract builds core and
    # alloc for riscv64emac-unknown-none-polkavm itself.
    PATH="/usr/bin:$OPENLEDGER_HOME/tools/bin:$PATH" \
      CARGO_TARGET_DIR="$OPENLEDGER_HOME/ink-polkavm-target" \
      CARGO_UNSTABLE_JSON_TARGET_SPEC=true \
      cargo contract build --release --quiet --generate "$generate" --manifest-path "$SRC/$contract/Cargo.toml"
    rm -rf "$build.partial" && mkdir -p "$build.partial"
    cp "$OPENLEDGER_HOME/ink-polkavm-target/ink/$name/$name.polkavm" "$build.partial/"
    if [ "$generate" = all ]; then
      cp "$OPENLEDGER_HOME/ink-polkavm-target/ink/$name/$name.abi" "$build.partial/"
    fi
    mv "$build.partial" "$build"
  fi
  cp "$build"/* "$OUT/"
done

if [ "$CHECK" = 1 ]; then
  if ! diff -r "$OUT" contracts/ink/out >/dev/null; then
    diff -r "$OUT" contracts/ink/out | head -20 >&2 || true
    log "contracts/ink/out is stale: run scripts/build-ink.sh and commit the result"
    exit 1
  fi
  log "contracts/ink/out is current (${#CONTRACTS[@]} contracts, cargo-contract $CARGO_CONTRACT_VERSION)"
else
  rm -rf contracts/ink/out && mkdir -p contracts/ink/out
  cp "$OUT"/* contracts/ink/out/
  log "wrote contracts/ink/out ($(ls contracts/ink/out | wc -l) files)"
fi
