//! Integration tests against the real model file.
//!
//! **Needs** `SmolLM2-135M-Instruct.Q4_1.gguf` in `$OPENLEDGER_MODEL_DIR` (default
//! `~/.cache/openledger/models`); `scripts/fetch-model.sh` (run by `scripts/setup.sh`)
//! installs it. The tests fail, with that instruction, when it is missing.

use std::{path::PathBuf, sync::OnceLock};

use openledger_tokenizer::Tokenizer;

fn model_path() -> PathBuf {
    let path = openledger_tokenizer::default_model_path();
    assert!(
        path.is_file(),
        "model file {} is missing: run scripts/fetch-model.sh (or scripts/setup.sh) first",
        path.display()
    );
    path
}

fn tok() -> &'static Tokenizer {
    static TOK: OnceLock<Tokenizer> = OnceLock::new();
    TOK.get_or_init(|| Tokenizer::from_gguf(model_path()).expect("tokenizer rebuilds from GGUF"))
}

#[test]
fn vocabulary_and_special_tokens_match_smollm2() {
    let t = tok();
    assert_eq!(t.vocab_size(), 49_152);
    assert_eq!(t.bos_id(), Some(1));
    assert_eq!(t.eos_id(), Some(2));
    // The 17 control tokens come first: <|endoftext|>, <|im_start|>, <|im_end|>, <repo_name>, …
    assert_eq!(t.special_ids(), (0..17).collect::<Vec<u32>>().as_slice());
    assert_eq!(t.id_to_token(1).as_deref(), Some("<|im_start|>"));
    assert_eq!(t.token_to_id("Ġworld"), Some(905));
}

#[test]
fn known_token_ids() {
    let t = tok();
    // Whole words present in the vocabulary: "Hello" (19556) and "Ġworld" (905, the leading
    // space is the byte-level "Ġ").
    assert_eq!(t.encode("Hello world"), vec![19556, 905]);
    // Digits are split one by one (smollm pre-tokenizer): '2' = 34, '0' = 32, '6' = 38; the
    // space before them stays a token of its own ("Ġ" = 216).
    assert_eq!(t.encode("2026"), vec![34, 32, 34, 38]);
    assert_eq!(t.encode(" 2026"), vec![216, 34, 32, 34, 38]);
    // Special tokens written in the text become their single id.
    let chat = t.encode("<|im_start|>user\nHi<|im_end|>");
    assert_eq!(chat.first(), Some(&1));
    assert_eq!(chat.last(), Some(&2));
    assert_eq!(t.encode(""), Vec::<u32>::new());
}

#[test]
fn round_trips() {
    let t = tok();
    for text in [
        "The quick brown fox jumps over the lazy dog.",
        "  leading and trailing spaces, tabs\tand\nnew lines\r\n",
        "Prices: 12,345.67 EUR on 2026-11-24 at 09:30; π ≈ 3.14159",
        "Unicode: café, naïve, Zürich, 東京, Ελληνικά, emoji 🦀🚀, combining é",
        "def f(x):\n    return x ** 2  # square\n",
        "<|im_start|>system\nYou are helpful<|im_end|>\n",
    ] {
        let ids = t.encode(text);
        assert!(ids.iter().all(|&id| (id as usize) < t.vocab_size()));
        assert_eq!(t.decode(&ids), text, "round trip of {text:?} via {ids:?}");
        assert_eq!(t.count(text), ids.len());
    }
}

#[test]
fn tokenizer_is_shareable_across_threads() {
    let t = tok();
    let expected = t.encode("shared between threads 123");
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| assert_eq!(t.encode("shared between threads 123"), expected));
        }
    });
}
