//! The one completion path: a request is started, its events are observed in one place
//! ([`Run::next`]: first-token time, the finished usage) and answered as one JSON response or
//! as server-sent events. Metering, receipts and the journal hook in here, for both.

use std::convert::Infallible;
use std::time::Instant;

use axum::Json;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use openledger_engine::inference::Collected;
use openledger_engine::{Event, GenerateRequest, Generation, Prompt};
use serde_json::{Value, json};

use super::error::ApiError;
use super::openai::{Kind, Prepared, now_secs, usage_json};
use crate::AppState;

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
}

impl Run {
    /// Checks and queues the request on the backend (before any compute).
    pub(crate) async fn start(
        state: &AppState,
        kind: Kind,
        prompt: Prompt,
        prepared: Prepared,
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
        })
    }

    /// The next event, observed: the first token's latency and, at the end, the generation's
    /// usage are recorded here and nowhere else. `None` when the backend dropped the stream.
    async fn next(&mut self) -> Option<Event> {
        let ev = self.generation.events.recv().await?;
        let seconds = self.started.elapsed().as_secs_f64();
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
        Ok(Json(json!({
            "id": run.id, "object": kind.object(), "created": run.created,
            "model": run.prepared.model,
            "choices": [kind.choice(&done.text, done.finish_reason)],
            "usage": usage_json(&done.usage),
        }))
        .into_response())
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
                            return; // client gone: dropping the generation cancels it
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
