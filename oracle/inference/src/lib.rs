//! The inference interface of the OpenLedger oracle: what every backend implements and what
//! the HTTP server serves through.
//!
//! **What it is for:** the one definition of a generation request ([`GenerateRequest`],
//! [`Prompt`]), its streamed events ([`Event`], [`Generation`]), token counts for billing
//! ([`Usage`]), the typed errors that say whether the client or the node is at fault
//! ([`Error`], [`Error::is_client_error`]), the [`Backend`] trait, and the rules every backend
//! applies the same way: the chat template ([`render_chatml`]), which tokens end a generation
//! ([`stop_ids`]), prompt checks ([`check_prompt`]), and turning sampled tokens into text with
//! stop sequences ([`Decoder`], an incremental detokenizer: each token costs a decode of a few
//! tokens, never of the whole output).
//!
//! **What it is not for:** running a model (`openledger-engine` on candle,
//! `openledger-engine-tch` on libtorch), sampling (`openledger-sampling`, re-exported here),
//! HTTP or billing (`openledger-oracle`, `openledger-billing`).

mod backend;
mod chat;
mod decode;
mod error;
mod generation;
mod request;

pub use backend::{AdapterInfo, Backend, Load};
pub use chat::{ChatMessage, render_chatml};
pub use decode::{Decoder, stop_ids};
pub use error::{Error, Result};
pub use generation::{Collected, Completion, Event, FinishReason, Generation, Usage};
pub use openledger_sampling::{self as sampling, Sampler, SamplingParams};
pub use openledger_tokenizer::Tokenizer;
pub use request::{GenerateRequest, Prompt, check_prompt};
