//! The OpenAI request bodies, their checks, and the response objects.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use openledger_engine::inference::Error as InferenceError;
use openledger_engine::{ChatMessage, FinishReason, Prompt, SamplingParams, Usage};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::error::ApiError;
use crate::AppState;

/// `stop` may be a string or a list of strings.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// Parameters shared by both endpoints. Unknown fields are ignored, as OpenAI clients send
/// many optional ones.
#[derive(Debug, Deserialize)]
pub(crate) struct Common {
    model: String,
    max_tokens: Option<u64>,
    max_completion_tokens: Option<u64>,
    temperature: Option<f32>,
    top_p: Option<f32>,
    stop: Option<OneOrMany>,
    seed: Option<u64>,
    #[serde(default)]
    stream: bool,
    stream_options: Option<StreamOptions>,
    n: Option<u32>,
}

#[derive(Debug, Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

/// The field of `/v1/completions` that `Common` lacks. `prompt` may be a string, a
/// one-element list of strings, or a list of token ids; it is read as JSON and checked by
/// `completion_prompt`, not by an untagged enum (see `parse_body`).
#[derive(Debug, Deserialize)]
pub(crate) struct CompletionFields {
    pub(crate) prompt: Value,
}

/// The field of `/v1/chat/completions` that `Common` lacks.
#[derive(Debug, Deserialize)]
pub(crate) struct ChatFields {
    pub(crate) messages: Vec<ChatMessageIn>,
}

/// A request body: the endpoint's own fields and the shared ones.
pub(crate) struct Body<T> {
    pub(crate) own: T,
    pub(crate) common: Common,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ChatMessageIn {
    role: String,
    content: ContentField,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ContentField {
    Text(String),
    Parts(Vec<ContentPart>),
}

#[derive(Debug, Deserialize)]
struct ContentPart {
    #[serde(rename = "type")]
    kind: String,
    text: Option<String>,
}

/// Parses a JSON request body; a malformed one is a 400 that says what is wrong.
///
/// The endpoint's fields and the shared ones are two plain structs read from the same bytes,
/// not one struct with `#[serde(flatten)]`: serde buffers flattened (and untagged) fields, and a
/// buffered number no longer reads as a number once any crate in the build turns on
/// serde_json's `arbitrary_precision` (FRAME's genesis builder does, in the test build), which
/// refused every request with a `temperature`.
pub(crate) fn parse_body<T: DeserializeOwned>(body: &Bytes) -> Result<Body<T>, ApiError> {
    let malformed =
        |e: serde_json::Error| ApiError::invalid(format!("malformed request body: {e}"), None);
    Ok(Body {
        own: serde_json::from_slice(body).map_err(malformed)?,
        common: serde_json::from_slice(body).map_err(malformed)?,
    })
}

/// Source of response ids and fresh seeds.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A fresh number for a response id.
pub(crate) fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Relaxed)
}

/// Seconds since the Unix epoch (the `created` field).
pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The prompt of a `/v1/completions` request.
pub(crate) fn completion_prompt(p: Value) -> Result<Prompt, ApiError> {
    let invalid = |message: &str| Err(ApiError::invalid(message, Some("prompt")));
    let items = match p {
        Value::String(t) => return Ok(Prompt::Text(t)),
        Value::Array(items) => items,
        _ => {
            return invalid(
                "prompt must be a string, a list of one string, or a list of token ids",
            );
        }
    };
    if items.iter().all(Value::is_string) {
        return match <[Value; 1]>::try_from(items) {
            Ok([Value::String(t)]) => Ok(Prompt::Text(t)),
            _ => invalid("prompt must be one string (batches of prompts are not supported)"),
        };
    }
    let tokens: Option<Vec<u32>> = items
        .iter()
        .map(|t| t.as_u64().and_then(|t| u32::try_from(t).ok()))
        .collect();
    match tokens {
        Some(tokens) => Ok(Prompt::Tokens(tokens)),
        None => invalid("prompt must be a string, a list of one string, or a list of token ids"),
    }
}

/// The conversation of a `/v1/chat/completions` request (`developer` is read as `system`).
pub(crate) fn chat_messages(input: Vec<ChatMessageIn>) -> Result<Vec<ChatMessage>, ApiError> {
    if input.is_empty() {
        return Err(ApiError::invalid(
            "messages must not be empty",
            Some("messages"),
        ));
    }
    let mut messages = Vec::with_capacity(input.len());
    for m in input {
        if !matches!(
            m.role.as_str(),
            "system" | "user" | "assistant" | "developer"
        ) {
            return Err(ApiError::invalid(
                format!("unsupported role {:?}", m.role),
                Some("messages"),
            ));
        }
        let content = match m.content {
            ContentField::Text(t) => t,
            ContentField::Parts(parts) => {
                let mut s = String::new();
                for part in parts {
                    match (part.kind.as_str(), part.text) {
                        ("text", Some(t)) => s.push_str(&t),
                        _ => {
                            return Err(ApiError::invalid(
                                "only text content parts are supported",
                                Some("messages"),
                            ));
                        }
                    }
                }
                s
            }
        };
        let role = if m.role == "developer" {
            "system".to_string()
        } else {
            m.role
        };
        messages.push(ChatMessage { role, content });
    }
    Ok(messages)
}

/// Validated request pieces.
pub(crate) struct Prepared {
    /// The `model` field as asked (echoed in responses).
    pub(crate) model: String,
    /// The adapter part of `model`, if any.
    pub(crate) adapter: Option<String>,
    /// Sampling parameters.
    pub(crate) params: SamplingParams,
    /// `stream: true`.
    pub(crate) stream: bool,
    /// `stream_options.include_usage`.
    pub(crate) include_usage: bool,
}

/// Checks the fields both endpoints share against what is served and the limits.
pub(crate) fn prepare(
    state: &AppState,
    c: Common,
    default_max: usize,
) -> Result<Prepared, ApiError> {
    // In paid mode the model is an on-chain one (`model-<id>`), resolved with the voucher.
    let adapter = if state.payments.is_some() {
        None
    } else {
        let base = state.backend.model_name();
        let (name, adapter) = match c.model.split_once(':') {
            Some((b, a)) => (b, Some(a.to_string())),
            None => (c.model.as_str(), None),
        };
        if name != base || adapter.as_deref() == Some("") {
            return Err(ApiError::model_not_found(&c.model));
        }
        if let Some(a) = &adapter
            && !state.backend.has_adapter(a)
        {
            return Err(InferenceError::UnknownAdapter { adapter: a.clone() }.into());
        }
        adapter
    };
    if c.n.is_some_and(|n| n != 1) {
        return Err(ApiError::invalid("only n = 1 is supported", Some("n")));
    }
    let limit = state.config.max_tokens_limit;
    let max_tokens = match c.max_completion_tokens.or(c.max_tokens) {
        None => default_max.min(limit),
        Some(0) => {
            return Err(ApiError::invalid(
                "max_tokens must be at least 1",
                Some("max_tokens"),
            ));
        }
        Some(m) if m as usize > limit => {
            return Err(ApiError::invalid(
                format!("max_tokens must be at most {limit}"),
                Some("max_tokens"),
            ));
        }
        Some(m) => m as usize,
    };
    let stop = match c.stop {
        None => Vec::new(),
        Some(OneOrMany::One(s)) => vec![s],
        Some(OneOrMany::Many(v)) => v,
    };
    let params = SamplingParams {
        temperature: c.temperature.unwrap_or(1.0),
        top_p: c.top_p.unwrap_or(1.0),
        max_tokens,
        stop,
        // Without a seed, each request gets a fresh one (as OpenAI: not reproducible).
        seed: c.seed.unwrap_or_else(|| {
            let t = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0);
            t ^ NEXT_ID.fetch_add(1, Relaxed).rotate_left(32)
        }),
        ignore_eos: false,
    };
    params
        .validate()
        .map_err(|e| ApiError::from(InferenceError::from(e)))?;
    Ok(Prepared {
        model: c.model,
        adapter,
        params,
        stream: c.stream,
        include_usage: c.stream_options.is_some_and(|o| o.include_usage),
    })
}

/// Which endpoint a request came in on; decides the response shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `/v1/completions`.
    Completion,
    /// `/v1/chat/completions`.
    Chat,
}

impl Kind {
    /// The endpoint path (a metrics label).
    pub(crate) fn endpoint(self) -> &'static str {
        match self {
            Kind::Completion => "/v1/completions",
            Kind::Chat => "/v1/chat/completions",
        }
    }

    /// A new response id (`cmpl-N`, `chatcmpl-N`).
    pub(crate) fn new_id(self) -> String {
        match self {
            Kind::Completion => format!("cmpl-{}", next_id()),
            Kind::Chat => format!("chatcmpl-{}", next_id()),
        }
    }

    /// The `object` of a whole response.
    pub(crate) fn object(self) -> &'static str {
        match self {
            Kind::Completion => "text_completion",
            Kind::Chat => "chat.completion",
        }
    }

    /// The `object` of a streamed chunk.
    pub(crate) fn chunk_object(self) -> &'static str {
        match self {
            Kind::Completion => "text_completion",
            Kind::Chat => "chat.completion.chunk",
        }
    }

    /// The choice of a whole response.
    pub(crate) fn choice(self, text: &str, finish: FinishReason) -> Value {
        match self {
            Kind::Completion => json!({
                "index": 0, "text": text, "logprobs": null, "finish_reason": finish.as_str(),
            }),
            Kind::Chat => json!({
                "index": 0,
                "message": { "role": "assistant", "content": text },
                "logprobs": null,
                "finish_reason": finish.as_str(),
            }),
        }
    }

    /// The choice of a streamed chunk: new text, or the end with its finish reason.
    pub(crate) fn delta(self, text: &str, finish: Option<FinishReason>) -> Value {
        let f = finish.map(FinishReason::as_str);
        match (self, finish) {
            (Kind::Chat, None) => {
                json!({ "index": 0, "delta": { "content": text }, "logprobs": null, "finish_reason": null })
            }
            (Kind::Chat, Some(_)) => {
                json!({ "index": 0, "delta": {}, "logprobs": null, "finish_reason": f })
            }
            (Kind::Completion, _) => {
                json!({ "index": 0, "text": text, "logprobs": null, "finish_reason": f })
            }
        }
    }
}

/// The `usage` object.
pub(crate) fn usage_json(u: &Usage) -> Value {
    json!({ "prompt_tokens": u.prompt_tokens, "completion_tokens": u.completion_tokens, "total_tokens": u.total_tokens })
}
