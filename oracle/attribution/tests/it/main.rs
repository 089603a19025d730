//! Integration tests of `openledger-attribution`.
//!
//! - `hand`: small corpora whose expected attribution is worked out by hand.
//! - `props`: property tests (random corpora, brute-force reference, incremental = rebuild);
//!   they print their seed, set `OPENLEDGER_TEST_SEED` to reproduce a run.
//! - `persistence`: saving, memory-mapped loading, corrupt and truncated files.
//! - `text`: the text layer with the real SmolLM2 tokenizer. **Needs the real model file**
//!   (`$OPENLEDGER_MODEL_DIR/SmolLM2-135M-Instruct.Q4_1.gguf`, default
//!   `~/.cache/openledger/models`, installed by `scripts/fetch-model.sh`); fails if missing.

mod common;
mod hand;
mod persistence;
mod props;
mod text;
