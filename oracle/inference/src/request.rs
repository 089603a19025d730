//! What a generation is asked to do.

use openledger_tokenizer::Tokenizer;

use crate::chat::{ChatMessage, render_chatml};
use crate::{Error, Result, SamplingParams};

/// What to generate from.
#[derive(Debug, Clone, PartialEq)]
pub enum Prompt {
    /// Raw text, tokenized as is (no template).
    Text(String),
    /// A conversation, rendered with the model's chat template ([`render_chatml`]).
    Chat(Vec<ChatMessage>),
    /// Token ids, fed as is.
    Tokens(Vec<u32>),
}

impl Prompt {
    /// The token ids the model is fed (the chat template applied for [`Prompt::Chat`]); these
    /// are the prompt tokens a request is billed for.
    pub fn tokens(&self, tokenizer: &Tokenizer) -> Vec<u32> {
        match self {
            Prompt::Text(t) => tokenizer.encode(t),
            Prompt::Chat(m) => tokenizer.encode(&render_chatml(m)),
            Prompt::Tokens(t) => t.clone(),
        }
    }
}

/// A generation request.
#[derive(Debug, Clone)]
pub struct GenerateRequest {
    /// The prompt.
    pub prompt: Prompt,
    /// Adapter name or content id; `None` for the base model.
    pub adapter: Option<String>,
    /// Sampling parameters.
    pub params: SamplingParams,
}

/// Checks prompt tokens against the model: not empty, every id in the vocabulary, and room for
/// at least one generated token in the context window.
pub fn check_prompt(tokens: &[u32], vocab: usize, context_len: usize) -> Result<()> {
    if tokens.is_empty() {
        return Err(Error::InvalidParam {
            param: "prompt",
            reason: "the prompt is empty".into(),
        });
    }
    if let Some(bad) = tokens.iter().find(|&&t| t as usize >= vocab) {
        return Err(Error::InvalidParam {
            param: "prompt",
            reason: format!("token id {bad} is outside the vocabulary"),
        });
    }
    if tokens.len() >= context_len {
        return Err(Error::ContextOverflow {
            tokens: tokens.len(),
            limit: context_len,
        });
    }
    Ok(())
}
