//! The OpenAI-compatible HTTP API: routes and handlers.
//!
//! Request parsing and checks are in [`openai`], errors in [`error`], and the one path every
//! completion takes (streamed or not) in [`completion`].

mod completion;
mod error;
mod openai;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use openledger_engine::Prompt;
use serde_json::json;

pub use error::ApiError;

use self::completion::Run;
use self::openai::{
    ChatBody, CompletionBody, Kind, chat_messages, completion_prompt, parse_json, prepare,
};
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

async fn not_found() -> ApiError {
    ApiError::unknown_url()
}

async fn completions(State(state): State<AppState>, body: Bytes) -> Response {
    let r = async {
        let b: CompletionBody = parse_json(&body)?;
        let prompt = completion_prompt(b.prompt)?;
        let p = prepare(&state, b.common, 16)?;
        Run::start(&state, Kind::Completion, prompt, p)
            .await?
            .respond()
            .await
    };
    respond(&state, Kind::Completion, r.await)
}

async fn chat_completions(State(state): State<AppState>, body: Bytes) -> Response {
    let r = async {
        let b: ChatBody = parse_json(&body)?;
        let messages = chat_messages(b.messages)?;
        let p = prepare(&state, b.common, state.config.default_max_tokens)?;
        Run::start(&state, Kind::Chat, Prompt::Chat(messages), p)
            .await?
            .respond()
            .await
    };
    respond(&state, Kind::Chat, r.await)
}

/// Counts the answer by endpoint and status.
fn respond(state: &AppState, kind: Kind, r: Result<Response, ApiError>) -> Response {
    let resp = r.unwrap_or_else(IntoResponse::into_response);
    state
        .metrics
        .request(kind.endpoint(), resp.status().as_u16());
    resp
}

async fn models(State(state): State<AppState>) -> Response {
    let base = state.backend.model_name().to_string();
    let mut data =
        vec![json!({ "id": base, "object": "model", "created": 0, "owned_by": "openledger" })];
    for a in state.backend.adapters() {
        data.push(json!({
            "id": format!("{base}:{}", a.name), "object": "model", "created": 0, "owned_by": "openledger",
            "root": base, "parent": base, "adapter_sha256": a.id,
        }));
    }
    state.metrics.request("/v1/models", 200);
    Json(json!({ "object": "list", "data": data })).into_response()
}

async fn health(State(state): State<AppState>) -> Response {
    let load = state.backend.load();
    Json(json!({
        "status": "ok",
        "backend": state.backend.kind(),
        "model": state.backend.model_name(),
        "active_sequences": load.active,
        "queued_requests": load.queued,
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
