//! OpenAI-compatible handlers.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::Stream;
use openledger_engine::{
    ChatMessage, Error as EngineError, Event, FinishReason, GenerateRequest, Generation, Prompt,
    SamplingParams, Usage,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;

/// The router with every endpoint.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/completions", post(completions))
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/models", get(models))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .with_state(state)
}

/// An OpenAI-shaped error response.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    kind: &'static str,
    code: Option<&'static str>,
    param: Option<&'static str>,
    message: String,
}

impl ApiError {
    fn invalid(message: impl Into<String>, param: Option<&'static str>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            kind: "invalid_request_error",
            code: None,
            param,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": {
            "message": self.message, "type": self.kind, "param": self.param, "code": self.code,
        }});
        (self.status, Json(body)).into_response()
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        let message = e.to_string();
        let (status, kind, code, param) = match &e {
            EngineError::InvalidRequest { .. } => {
                (StatusCode::BAD_REQUEST, "invalid_request_error", None, None)
            }
            EngineError::ContextOverflow { .. } => (
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                Some("context_length_exceeded"),
                Some("messages"),
            ),
            EngineError::UnknownAdapter { .. } => (
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                Some("model_not_found"),
                Some("model"),
            ),
            EngineError::AdapterFormat { .. }
            | EngineError::AdapterChanged { .. }
            | EngineError::AdapterFile { .. } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request_error",
                Some("adapter_unusable"),
                Some("model"),
            ),
            EngineError::Overloaded { .. } => (
                StatusCode::SERVICE_UNAVAILABLE,
                "server_error",
                Some("overloaded"),
                None,
            ),
            _ => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                None,
                None,
            ),
        };
        if status.is_server_error() {
            tracing::warn!(target: "oracle::api", error = %message, "request failed");
        }
        Self {
            status,
            kind,
            code,
            param,
            message,
        }
    }
}

async fn not_found() -> ApiError {
    ApiError {
        status: StatusCode::NOT_FOUND,
        kind: "invalid_request_error",
        code: Some("unknown_url"),
        param: None,
        message: "unknown endpoint; see /v1/models, /v1/completions, /v1/chat/completions".into(),
    }
}

/// `stop` may be a string or a list of strings.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// `prompt` may be a string, a one-element list of strings, or a list of token ids.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum PromptField {
    Text(String),
    Texts(Vec<String>),
    Tokens(Vec<u32>),
}

/// Parameters shared by both endpoints. Unknown fields are ignored, as OpenAI clients send
/// many optional ones.
#[derive(Debug, Deserialize)]
struct Common {
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

#[derive(Debug, Deserialize)]
struct CompletionBody {
    prompt: PromptField,
    #[serde(flatten)]
    common: Common,
}

#[derive(Debug, Deserialize)]
struct ChatBody {
    messages: Vec<ChatMessageIn>,
    #[serde(flatten)]
    common: Common,
}

#[derive(Debug, Deserialize)]
struct ChatMessageIn {
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

fn parse_json<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid(format!("malformed request body: {e}"), None))
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Validated request pieces.
struct Prepared {
    model: String,
    adapter: Option<String>,
    params: SamplingParams,
    stream: bool,
    include_usage: bool,
}

fn prepare(state: &AppState, c: Common, default_max: usize) -> Result<Prepared, ApiError> {
    let base = state.engine.model_name();
    let (name, adapter) = match c.model.split_once(':') {
        Some((b, a)) => (b, Some(a.to_string())),
        None => (c.model.as_str(), None),
    };
    if name != base || adapter.as_deref() == Some("") {
        return Err(ApiError {
            status: StatusCode::NOT_FOUND,
            kind: "invalid_request_error",
            code: Some("model_not_found"),
            param: Some("model"),
            message: format!(
                "the model {:?} does not exist; GET /v1/models lists the served models",
                c.model
            ),
        });
    }
    if let Some(a) = &adapter
        && state.engine.adapters().resolve(a).is_none()
    {
        return Err(EngineError::UnknownAdapter { adapter: a.clone() }.into());
    }
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
    params.validate().map_err(|e| {
        let param = ["temperature", "top_p", "max_tokens", "stop"]
            .into_iter()
            .find(|p| e.to_string().contains(p));
        let mut err = ApiError::from(EngineError::from(e));
        err.param = param;
        err
    })?;
    Ok(Prepared {
        model: c.model,
        adapter,
        params,
        stream: c.stream,
        include_usage: c.stream_options.is_some_and(|o| o.include_usage),
    })
}

async fn start(state: &AppState, prompt: Prompt, p: &Prepared) -> Result<Generation, ApiError> {
    let engine = state.engine.clone();
    let req = GenerateRequest {
        prompt,
        adapter: p.adapter.clone(),
        params: p.params.clone(),
    };
    tokio::task::spawn_blocking(move || engine.generate(req))
        .await
        .map_err(|e| {
            ApiError::from(EngineError::InvalidRequest {
                reason: format!("internal: {e}"),
            })
        })?
        .map_err(ApiError::from)
}

fn finish_str(f: FinishReason) -> &'static str {
    match f {
        FinishReason::Stop => "stop",
        FinishReason::Length => "length",
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Completion,
    Chat,
}

impl Kind {
    fn endpoint(self) -> &'static str {
        match self {
            Kind::Completion => "/v1/completions",
            Kind::Chat => "/v1/chat/completions",
        }
    }
}

async fn completions(State(state): State<AppState>, body: Bytes) -> Response {
    let r = async {
        let b: CompletionBody = parse_json(&body)?;
        let prompt = match b.prompt {
            PromptField::Text(t) => Prompt::Text(t),
            PromptField::Tokens(t) => Prompt::Tokens(t),
            PromptField::Texts(mut v) if v.len() == 1 => Prompt::Text(v.remove(0)),
            PromptField::Texts(_) => {
                return Err(ApiError::invalid(
                    "prompt must be one string (batches of prompts are not supported)",
                    Some("prompt"),
                ));
            }
        };
        let p = prepare(&state, b.common, 16)?;
        run(&state, Kind::Completion, prompt, p).await
    };
    respond(&state, Kind::Completion, r.await)
}

async fn chat_completions(State(state): State<AppState>, body: Bytes) -> Response {
    let r = async {
        let b: ChatBody = parse_json(&body)?;
        if b.messages.is_empty() {
            return Err(ApiError::invalid(
                "messages must not be empty",
                Some("messages"),
            ));
        }
        let mut messages = Vec::with_capacity(b.messages.len());
        for m in b.messages {
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
        let p = prepare(&state, b.common, state.config.default_max_tokens)?;
        run(&state, Kind::Chat, Prompt::Chat(messages), p).await
    };
    respond(&state, Kind::Chat, r.await)
}

fn respond(state: &AppState, kind: Kind, r: Result<Response, ApiError>) -> Response {
    let resp = r.unwrap_or_else(IntoResponse::into_response);
    state
        .metrics
        .request(kind.endpoint(), resp.status().as_u16());
    resp
}

fn usage_json(u: &Usage) -> Value {
    json!({ "prompt_tokens": u.prompt_tokens, "completion_tokens": u.completion_tokens, "total_tokens": u.total_tokens })
}

async fn run(
    state: &AppState,
    kind: Kind,
    prompt: Prompt,
    p: Prepared,
) -> Result<Response, ApiError> {
    let t0 = Instant::now();
    let generation = start(state, prompt, &p).await?;
    let n = NEXT_ID.fetch_add(1, Relaxed);
    let id = match kind {
        Kind::Completion => format!("cmpl-{n}"),
        Kind::Chat => format!("chatcmpl-{n}"),
    };
    let created = now_secs();
    if p.stream {
        return Ok(
            stream_response(state.clone(), kind, generation, id, created, p, t0).into_response(),
        );
    }
    let done = generation.collect().await.map_err(ApiError::from)?;
    state.metrics.generation(
        done.usage.prompt_tokens,
        done.usage.completion_tokens,
        t0.elapsed().as_secs_f64(),
    );
    let choice = match kind {
        Kind::Completion => json!({
            "index": 0, "text": done.text, "logprobs": null, "finish_reason": finish_str(done.finish_reason),
        }),
        Kind::Chat => json!({
            "index": 0,
            "message": { "role": "assistant", "content": done.text },
            "logprobs": null,
            "finish_reason": finish_str(done.finish_reason),
        }),
    };
    let object = if kind == Kind::Chat {
        "chat.completion"
    } else {
        "text_completion"
    };
    Ok(Json(json!({
        "id": id, "object": object, "created": created, "model": p.model,
        "choices": [choice], "usage": usage_json(&done.usage),
    }))
    .into_response())
}

fn stream_response(
    state: AppState,
    kind: Kind,
    mut generation: Generation,
    id: String,
    created: u64,
    p: Prepared,
    t0: Instant,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let object = if kind == Kind::Chat {
        "chat.completion.chunk"
    } else {
        "text_completion"
    };
    let chunk = move |choice: Value| json!({ "id": id, "object": object, "created": created, "model": p.model, "choices": [choice] });
    let stream = async_stream(move |tx| async move {
        let send = |v: Value| tx.send(Ok(SseEvent::default().data(v.to_string())));
        if kind == Kind::Chat {
            let first = chunk(
                json!({ "index": 0, "delta": { "role": "assistant", "content": "" }, "logprobs": null, "finish_reason": null }),
            );
            if send(first).await.is_err() {
                return;
            }
        }
        let mut first_token = true;
        while let Some(ev) = generation.events.recv().await {
            match ev {
                Event::Token { text, .. } => {
                    if first_token {
                        state.metrics.first_token(t0.elapsed().as_secs_f64());
                        first_token = false;
                    }
                    if text.is_empty() {
                        continue;
                    }
                    let c = match kind {
                        Kind::Chat => {
                            json!({ "index": 0, "delta": { "content": text }, "logprobs": null, "finish_reason": null })
                        }
                        Kind::Completion => {
                            json!({ "index": 0, "text": text, "logprobs": null, "finish_reason": null })
                        }
                    };
                    if send(chunk(c)).await.is_err() {
                        return; // client gone: dropping the generation cancels it
                    }
                }
                Event::Done {
                    finish_reason,
                    usage,
                } => {
                    state.metrics.generation(
                        usage.prompt_tokens,
                        usage.completion_tokens,
                        t0.elapsed().as_secs_f64(),
                    );
                    let f = finish_str(finish_reason);
                    let c = match kind {
                        Kind::Chat => {
                            json!({ "index": 0, "delta": {}, "logprobs": null, "finish_reason": f })
                        }
                        Kind::Completion => {
                            json!({ "index": 0, "text": "", "logprobs": null, "finish_reason": f })
                        }
                    };
                    let mut last = chunk(c);
                    if p.include_usage {
                        let _ = send(last).await;
                        last = chunk(Value::Null);
                        last["choices"] = json!([]);
                        last["usage"] = usage_json(&usage);
                    } else {
                        last["usage"] = usage_json(&usage);
                    }
                    let _ = send(last).await;
                    break;
                }
                Event::Error(e) => {
                    let _ = send(json!({ "error": { "message": e, "type": "server_error", "param": null, "code": null } })).await;
                    break;
                }
            }
        }
        let _ = tx.send(Ok(SseEvent::default().data("[DONE]"))).await;
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// A stream fed by a task through a small bounded channel (backpressure reaches the engine's
/// per-request channel, so a slow client parks only its own sequence).
fn async_stream<F, Fut>(f: F) -> impl Stream<Item = Result<SseEvent, Infallible>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<SseEvent, Infallible>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    tokio::spawn(f(tx));
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

async fn models(State(state): State<AppState>) -> Response {
    let base = state.engine.model_name().to_string();
    let mut data =
        vec![json!({ "id": base, "object": "model", "created": 0, "owned_by": "openledger" })];
    for a in state.engine.adapters().list() {
        data.push(json!({
            "id": format!("{base}:{}", a.name), "object": "model", "created": 0, "owned_by": "openledger",
            "root": base, "parent": base, "adapter_sha256": a.id,
        }));
    }
    state.metrics.request("/v1/models", 200);
    Json(json!({ "object": "list", "data": data })).into_response()
}

async fn health(State(state): State<AppState>) -> Response {
    let s = state.engine.stats();
    Json(json!({
        "status": "ok",
        "model": state.engine.model_name(),
        "active_sequences": s.active(),
        "queued_requests": s.queued(),
    }))
    .into_response()
}

async fn metrics(State(state): State<AppState>) -> Response {
    let body = state.metrics.render();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}
