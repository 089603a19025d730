//! The OpenAI-compatible HTTP API: routes and handlers.
//!
//! Request parsing and checks are in [`openai`], errors in [`error`], and the one path every
//! completion takes (streamed or not) in [`completion`].

mod completion;
mod error;
mod openai;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use openledger_engine::Prompt;
use serde_json::json;

pub use error::ApiError;

use self::completion::{Paid, Run};
use self::openai::{
    Body, ChatFields, CompletionFields, Kind, Prepared, chat_messages, completion_prompt,
    parse_body, prepare,
};
use crate::AppState;

/// The router with every endpoint.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/completions", post(completions))
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/models", get(models))
        .route("/v1/receipts/{id}", get(receipt))
        .route("/v1/batches/{sequence}", get(batch))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::unknown_url()
}

async fn completions(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let r = async {
        let b: Body<CompletionFields> = parse_body(&body)?;
        let prompt = completion_prompt(b.own.prompt)?;
        let p = prepare(&state, b.common, 16)?;
        start(&state, Kind::Completion, prompt, p, &headers, body.clone())
            .await?
            .respond()
            .await
    };
    respond(&state, Kind::Completion, r.await)
}

async fn chat_completions(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let r = async {
        let b: Body<ChatFields> = parse_body(&body)?;
        let messages = chat_messages(b.own.messages)?;
        let p = prepare(&state, b.common, state.config.default_max_tokens)?;
        start(
            &state,
            Kind::Chat,
            Prompt::Chat(messages),
            p,
            &headers,
            body.clone(),
        )
        .await?
        .respond()
        .await
    };
    respond(&state, Kind::Chat, r.await)
}

/// Starts a run; in paid mode, first authorises the voucher for the prompt's worst case (the
/// prompt is tokenized once, here, with the model's tokenizer and its chat template).
async fn start(
    state: &AppState,
    kind: Kind,
    prompt: Prompt,
    mut prepared: Prepared,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Run, ApiError> {
    let Some(payments) = state.payments.clone() else {
        return Run::start(state, kind, prompt, prepared, None).await;
    };
    let backend = state.backend.clone();
    let tokens = tokio::task::spawn_blocking(move || prompt.tokens(backend.tokenizer()))
        .await
        .map_err(|e| ApiError::internal(format!("tokenizer task failed: {e}")))?;
    let key = bearer(headers);
    let auth = payments
        .authorize(
            key.as_deref(),
            &prepared.model,
            tokens.len() as u64,
            prepared.params.max_tokens as u64,
        )
        .await
        .map_err(ApiError::refused)?;
    prepared.adapter = auth.adapter.clone();
    let prompt_tokens = tokens.len() as u64;
    let paid = Paid::new(payments, auth, body, prompt_tokens);
    Run::start(state, kind, Prompt::Tokens(tokens), prepared, Some(paid)).await
}

/// The bearer token of `Authorization`, if any.
fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))?;
    Some(token.trim().to_string())
}

async fn receipt(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let r = (|| {
        let payments = state.payments.as_ref().ok_or_else(unpaid)?;
        let id: alloy::primitives::B256 = id
            .parse()
            .map_err(|_| ApiError::invalid("a receipt id is 0x + 64 hex digits", None))?;
        payments
            .receipt_view(id)
            .ok_or_else(|| ApiError::not_found(format!("no receipt {id} on this node")))
    })();
    match r {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn batch(State(state): State<AppState>, Path(sequence): Path<String>) -> Response {
    let r = (|| {
        let payments = state.payments.as_ref().ok_or_else(unpaid)?;
        let sequence: u64 = sequence
            .parse()
            .map_err(|_| ApiError::invalid("a batch sequence number is a decimal integer", None))?;
        payments.batch_view(sequence).ok_or_else(|| {
            ApiError::not_found(format!("no batch {sequence} of this operator on this node"))
        })
    })();
    match r {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

fn unpaid() -> ApiError {
    ApiError::not_found("this node serves unpaid (no chain configured): it keeps no receipts")
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
    if let Some(payments) = &state.payments {
        let data: Vec<_> = payments
            .models()
            .into_iter()
            .filter(|m| m.serving.is_ok())
            .map(|m| {
                let f = &m.facts;
                json!({
                    "id": openledger_payments::model_name(f.id), "object": "model", "created": 0,
                    "owned_by": f.developer, "version": f.version,
                    "price_per_1k_tokens": f.price_per_1k.to_string(),
                    "adapter_sha256": m.serving.as_ref().ok().cloned().flatten(),
                    "datanets": f.datanets.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
                })
            })
            .collect();
        state.metrics.request("/v1/models", 200);
        return Json(json!({ "object": "list", "data": data })).into_response();
    }
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
