//! The shared generation rules on the real SmolLM2 tokenizer (read from the GGUF model in
//! `$OPENLEDGER_MODEL_DIR`, default `~/.cache/openledger/models`; `scripts/fetch-model.sh`
//! puts it there and the tests fail when it is missing).

mod decode;

use std::sync::OnceLock;

use openledger_inference::Tokenizer;

/// The real model's tokenizer, loaded once.
pub fn tokenizer() -> &'static Tokenizer {
    static T: OnceLock<Tokenizer> = OnceLock::new();
    T.get_or_init(|| {
        let dir = std::env::var_os("OPENLEDGER_MODEL_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                std::path::PathBuf::from(std::env::var_os("HOME").expect("HOME is set"))
                    .join(".cache/openledger/models")
            });
        let path = dir.join(openledger_tokenizer::DEFAULT_MODEL_FILE);
        Tokenizer::from_gguf(&path)
            .unwrap_or_else(|e| panic!("{}: {e}; run scripts/fetch-model.sh", path.display()))
    })
}

/// The seed of the randomized tests: `OPENLEDGER_TEST_SEED` or a fixed default, printed.
pub fn seed() -> u64 {
    let seed = std::env::var("OPENLEDGER_TEST_SEED")
        .ok()
        .map(|s| s.parse().expect("OPENLEDGER_TEST_SEED is a u64"))
        .unwrap_or(0x5eed_0f0a_11ce);
    eprintln!("seed {seed} (set OPENLEDGER_TEST_SEED to change it)");
    seed
}
