//! A running generation's events and its finished result.

use tokio::sync::mpsc;

use crate::{Error, Result};

/// Why a generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// End-of-sequence token or a stop sequence.
    Stop,
    /// `max_tokens` or the context window reached.
    Length,
}

impl FinishReason {
    /// The OpenAI name (`stop`, `length`).
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
        }
    }
}

/// Token counts for billing, from the model's own tokenizer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Usage {
    /// Tokens in the prompt (after the chat template).
    pub prompt_tokens: usize,
    /// Tokens sampled, including a final end-of-sequence token (it was computed).
    pub completion_tokens: usize,
    /// Sum of both.
    pub total_tokens: usize,
}

impl Usage {
    /// Counts for `prompt` prompt tokens and `completion` sampled ones.
    pub fn new(prompt: usize, completion: usize) -> Self {
        Self {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: prompt + completion,
        }
    }
}

/// A streamed event of one generation: one [`Event::Token`] per sampled token, then exactly
/// one [`Event::Done`] or [`Event::Error`].
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A sampled token and the text it released (empty while a multi-byte character or a
    /// possible stop sequence is held back).
    Token {
        /// The sampled token id.
        id: u32,
        /// Text released by this token.
        text: String,
    },
    /// The generation ended.
    Done {
        /// Why.
        finish_reason: FinishReason,
        /// Token counts.
        usage: Usage,
    },
    /// The generation failed in the backend; no more events follow. The tokens streamed
    /// before it were computed.
    Error(Error),
}

/// A running generation: its prompt size and its event stream. Dropping it cancels.
#[derive(Debug)]
pub struct Generation {
    /// Prompt tokens (after the chat template).
    pub prompt_tokens: usize,
    /// Events, ending with [`Event::Done`] or [`Event::Error`].
    pub events: mpsc::Receiver<Event>,
}

/// A finished generation.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// Generated text (without an end-of-sequence token's text or a matched stop sequence).
    pub text: String,
    /// Sampled token ids (an end-of-sequence token included).
    pub tokens: Vec<u32>,
    /// Why it ended.
    pub finish_reason: FinishReason,
    /// Token counts.
    pub usage: Usage,
}

impl Generation {
    /// Waits for the whole generation.
    pub async fn collect(mut self) -> Result<Completion> {
        let mut acc = Collected::default();
        while let Some(ev) = self.events.recv().await {
            if let Some(done) = acc.push(ev) {
                return done;
            }
        }
        Err(Error::Stopped)
    }

    /// Waits for the whole generation, blocking the thread (for tools and tests; not from
    /// inside an async runtime).
    pub fn collect_blocking(mut self) -> Result<Completion> {
        let mut acc = Collected::default();
        while let Some(ev) = self.events.blocking_recv() {
            if let Some(done) = acc.push(ev) {
                return done;
            }
        }
        Err(Error::Stopped)
    }
}

/// Text and tokens gathered from a generation's events until it ends.
#[derive(Debug, Default)]
pub struct Collected {
    text: String,
    tokens: Vec<u32>,
}

impl Collected {
    /// Takes one event; returns the outcome once the generation has ended.
    pub fn push(&mut self, ev: Event) -> Option<Result<Completion>> {
        match ev {
            Event::Token { id, text } => {
                self.tokens.push(id);
                self.text.push_str(&text);
                None
            }
            Event::Done {
                finish_reason,
                usage,
            } => Some(Ok(Completion {
                text: std::mem::take(&mut self.text),
                tokens: std::mem::take(&mut self.tokens),
                finish_reason,
                usage,
            })),
            Event::Error(e) => Some(Err(e)),
        }
    }

    /// Tokens seen so far (what a cancelled or failed generation computed).
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }
}
