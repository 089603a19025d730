//! The one completion path: a request is started, its events are observed in one place
//! ([`Run::next`]: first-token time, the finished usage, the tokens a paid request is charged
//! for) and answered as one JSON response or as server-sent events.
//!
//! Paid requests ([`Paid`]): the voucher was authorised and the worst case reserved before
//! [`Run::start`]; when the generation ends its receipt is journaled ([`Payments::record`])
//! **before** the response, or the stream's last chunk, is sent, and the response carries the
//! receipt (`openledger.receipt_id`, header `x-openledger-receipt`). A streaming client that
//! goes away pays for the prompt and the tokens generated so far; a non-streaming paid request
//! runs to its end on its own task, so a client that goes away pays for the whole answer it
//! asked for. A backend failure (5xx) is never charged.

use std::convert::Infallible;
use std::time::Instant;

use axum::Json;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use openledger_engine::inference::Collected;
use openledger_engine::{Event, GenerateRequest, Generation, Prompt};
use serde_json::{Value, json};

use axum::body::Bytes;
use openledger_payments::{Authorized, Payments, Served};

use super::error::ApiError;
use super::openai::{Kind, Prepared, now_secs, usage_json};
use crate::AppState;

/// What a paid request carries through its run.
pub(crate) struct Paid {
    pub(crate) payments: Payments,
    pub(crate) auth: Option<Authorized>,
    /// The request body as received (the receipt's promptHash).
    pub(crate) body: Bytes,
    pub(crate) prompt_tokens: u64,
    /// Generated token ids and text so far.
    tokens: Vec<u32>,
    text: String,
}

impl Paid {
    pub(crate) fn new(
        payments: Payments,
        auth: Authorized,
        body: Bytes,
        prompt_tokens: u64,
    ) -> Self {
        Self {
            payments,
            auth: Some(auth),
            body,
            prompt_tokens,
            tokens: Vec::new(),
            text: String::new(),
        }
    }

    /// Journals the receipt for `completion_tokens` tokens (at most once).
    async fn record(&mut self, completion_tokens: u64) -> Result<Served, ApiError> {
        let auth = self
            .auth
            .take()
            .ok_or_else(|| ApiError::internal("receipt recorded twice"))?;
        self.payments
            .record(
                auth,
                &self.body,
                self.prompt_tokens,
                completion_tokens,
                &self.text,
                &self.tokens,
            )
            .await
            .map_err(|e| ApiError::internal(format!("the receipt could not be journaled: {e}")))
    }
}

/// The receipt part of a paid response.
fn receipt_json(served: &Served) -> Value {
    let r = &served.receipt;
    json!({
        "receipt_id": r.requestId, "fee": r.fee.to_string(), "model_version": r.modelVersion,
        "attributed_ppm": r.attributed_ppm(), "receipt_url": format!("/v1/receipts/{}", r.requestId),
    })
}

/// A started generation and what its response needs.
pub(crate) struct Run {
    state: AppState,
    kind: Kind,
    prepared: Prepared,
    id: String,
    created: u64,
    started: Instant,
    generation: Generation,
    first_token_seen: bool,
    paid: Option<Paid>,
}

impl Run {
    /// Checks and queues the request on the backend (before any compute).
    pub(crate) async fn start(
        state: &AppState,
        kind: Kind,
        prompt: Prompt,
        prepared: Prepared,
        paid: Option<Paid>,
    ) -> Result<Self, ApiError> {
        let started = Instant::now();
        let backend = state.backend.clone();
        let req = GenerateRequest {
            prompt,
            adapter: prepared.adapter.clone(),
            params: prepared.params.clone(),
        };
        let generation = tokio::task::spawn_blocking(move || backend.generate(req))
            .await
            .map_err(|e| ApiError::internal(format!("the request's worker failed: {e}")))??;
        Ok(Self {
            state: state.clone(),
            kind,
            prepared,
            id: kind.new_id(),
            created: now_secs(),
            started,
            generation,
            first_token_seen: false,
            paid,
        })
    }

    /// The next event, observed: the first token's latency and, at the end, the generation's
    /// usage are recorded here and nowhere else. `None` when the backend dropped the stream.
    async fn next(&mut self) -> Option<Event> {
        let ev = self.generation.events.recv().await?;
        let seconds = self.started.elapsed().as_secs_f64();
        if let (Event::Token { id, text }, Some(paid)) = (&ev, self.paid.as_mut()) {
            paid.tokens.push(*id);
            paid.text.push_str(text);
        }
        match &ev {
            Event::Token { .. } if !self.first_token_seen => {
                self.first_token_seen = true;
                self.state.metrics.first_token(seconds);
            }
            Event::Done { usage, .. } => {
                self.state.metrics.generation(
                    usage.prompt_tokens,
                    usage.completion_tokens,
                    seconds,
                );
            }
            _ => {}
        }
        Some(ev)
    }

    /// Answers with the whole completion once it has ended.
    pub(crate) async fn respond(self) -> Result<Response, ApiError> {
        if self.prepared.stream {
            return Ok(self.stream().into_response());
        }
        if self.paid.is_some() {
            // Runs to its end (and is journaled) even if the client goes away.
            return tokio::spawn(self.collect())
                .await
                .map_err(|e| ApiError::internal(format!("the request's task failed: {e}")))?;
        }
        self.collect().await
    }

    /// Collects the whole completion, journals a paid one, and answers with it.
    async fn collect(self) -> Result<Response, ApiError> {
        let mut run = self;
        let mut acc = Collected::default();
        let done = loop {
            let Some(ev) = run.next().await else {
                return Err(ApiError::from(openledger_engine::inference::Error::Stopped));
            };
            if let Some(done) = acc.push(ev) {
                break done?;
            }
        };
        let kind = run.kind;
        let mut body = json!({
            "id": run.id, "object": kind.object(), "created": run.created,
            "model": run.prepared.model,
            "choices": [kind.choice(&done.text, done.finish_reason)],
            "usage": usage_json(&done.usage),
        });
        let mut receipt_header = None;
        if let Some(paid) = run.paid.as_mut() {
            let served = paid.record(done.usage.completion_tokens as u64).await?;
            receipt_header = Some(served.receipt.requestId.to_string());
            body["openledger"] = receipt_json(&served);
        }
        let mut resp = Json(body).into_response();
        if let Some(id) = receipt_header
            && let Ok(v) = axum::http::HeaderValue::from_str(&id)
        {
            resp.headers_mut().insert("x-openledger-receipt", v);
        }
        Ok(resp)
    }

    /// Journals a paid stream the client left: prompt plus the tokens generated so far.
    async fn charge_cut_off(&mut self) {
        if let Some(paid) = self.paid.as_mut() {
            let n = paid.tokens.len() as u64;
            if let Err(e) = paid.record(n).await {
                tracing::error!(target: "oracle::api", "cut-off stream not journaled: {e:?}");
            }
        }
    }

    /// A streamed chunk around `choice`.
    fn chunk(&self, choice: Value) -> Value {
        json!({
            "id": self.id, "object": self.kind.chunk_object(), "created": self.created,
            "model": self.prepared.model, "choices": [choice],
        })
    }

    /// Answers as server-sent events: a chunk per piece of text, the finish reason with the
    /// usage, then `[DONE]`. A client that goes away drops the stream, which cancels the
    /// generation.
    fn stream(mut self) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        tokio::spawn(async move {
            let send = |v: Value| tx.send(Ok(SseEvent::default().data(v.to_string())));
            if self.kind == Kind::Chat {
                let first = self.chunk(
                    json!({ "index": 0, "delta": { "role": "assistant", "content": "" }, "logprobs": null, "finish_reason": null }),
                );
                if send(first).await.is_err() {
                    self.charge_cut_off().await;
                    return;
                }
            }
            while let Some(ev) = self.next().await {
                match ev {
                    Event::Token { text, .. } => {
                        if text.is_empty() {
                            continue;
                        }
                        if send(self.chunk(self.kind.delta(&text, None)))
                            .await
                            .is_err()
                        {
                            // Client gone: it pays for what was generated so far; dropping
                            // the generation then cancels it.
                            self.charge_cut_off().await;
                            return;
                        }
                    }
                    Event::Done {
                        finish_reason,
                        usage,
                    } => {
                        let mut last = self.chunk(self.kind.delta("", Some(finish_reason)));
                        if self.prepared.include_usage {
                            let _ = send(last).await;
                            last = self.chunk(Value::Null);
                            last["choices"] = json!([]);
                        }
                        last["usage"] = usage_json(&usage);
                        if let Some(paid) = self.paid.as_mut() {
                            match paid.record(usage.completion_tokens as u64).await {
                                Ok(served) => last["openledger"] = receipt_json(&served),
                                Err(e) => {
                                    let _ = send(e.body()).await;
                                    return;
                                }
                            }
                        }
                        let _ = send(last).await;
                        break;
                    }
                    Event::Error(e) => {
                        let _ = send(ApiError::from(e).body()).await;
                        break;
                    }
                }
            }
            let _ = tx.send(Ok(SseEvent::default().data("[DONE]"))).await;
        });
        // The bounded channel passes backpressure to the backend's per-request channel, so a
        // slow client parks only its own sequence.
        Sse::new(tokio_stream::wrappers::ReceiverStream::new(rx)).keep_alive(KeepAlive::default())
    }
}
