//! The HTTP contract every backend must meet, written once and run against each served
//! backend ([`contract_tests!`]): the candle engine always, the libtorch one with the `tch`
//! feature. The checks hold for any model: usage is the tokenizer's count, streaming and
//! non-streaming agree, stop sequences cut the output, and bad requests get typed errors.

use std::net::SocketAddr;

use openledger_engine::inference::Tokenizer;
use serde_json::{Value, json};

use crate::http::{get_text, post, sse};

/// A running server under test.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The served model name.
    pub model: &'static str,
    /// Its backend's `kind` (reported by `/health`).
    pub backend: &'static str,
    /// The model's context window in tokens.
    pub context_len: usize,
}

/// Generates the contract's tests for the target that `$target` (an expression) returns.
#[macro_export]
macro_rules! contract_tests {
    ($target:expr) => {
        #[tokio::test]
        async fn usage_is_the_tokenizers_count() {
            $crate::contract::usage_is_the_tokenizers_count($target).await
        }
        #[tokio::test]
        async fn streaming_matches_non_streaming() {
            $crate::contract::streaming_matches_non_streaming($target).await
        }
        #[tokio::test]
        async fn stop_sequences_cut_the_output() {
            $crate::contract::stop_sequences_cut_the_output($target).await
        }
        #[tokio::test]
        async fn bad_requests_get_typed_errors() {
            $crate::contract::bad_requests_get_typed_errors($target).await
        }
        #[tokio::test]
        async fn models_health_and_metrics() {
            $crate::contract::models_health_and_metrics($target).await
        }
    };
}

fn tokenizer() -> Tokenizer {
    let path = crate::test_config().engine.model_path;
    Tokenizer::from_gguf(&path).expect("the model's tokenizer")
}

/// Checks a `usage` object: prompt tokens as the tokenizer counts them, and the total.
fn check_usage(usage: &Value, prompt_tokens: usize, max_tokens: u64, finish: &Value) {
    assert_eq!(usage["prompt_tokens"], prompt_tokens, "{usage}");
    let completion = usage["completion_tokens"].as_u64().unwrap();
    assert!((1..=max_tokens).contains(&completion), "{usage}");
    assert_eq!(
        usage["total_tokens"].as_u64().unwrap(),
        prompt_tokens as u64 + completion
    );
    match finish.as_str() {
        Some("length") => assert_eq!(completion, max_tokens, "{usage}"),
        Some("stop") => {}
        other => panic!("finish_reason {other:?}"),
    }
}

/// Prompt tokens are the tokenizer's count (after the chat template for chat).
pub async fn usage_is_the_tokenizers_count(t: Target) {
    let tok = tokenizer();
    let prompt = "The capital of France is";
    let (s, body) = post(
        t.addr,
        "/v1/completions",
        json!({ "model": t.model, "prompt": prompt, "max_tokens": 4, "temperature": 0 }),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["object"], "text_completion");
    assert_eq!(body["model"], t.model);
    let choice = &body["choices"][0];
    assert!(choice["text"].is_string());
    check_usage(
        &body["usage"],
        tok.count(prompt),
        4,
        &choice["finish_reason"],
    );

    let messages = json!([{ "role": "user", "content": "Hi" }]);
    let (s, body) = post(
        t.addr,
        "/v1/chat/completions",
        json!({ "model": t.model, "messages": messages, "max_tokens": 3, "temperature": 0 }),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let chat = [openledger_engine::ChatMessage {
        role: "user".into(),
        content: "Hi".into(),
    }];
    let templated = tok.count(&openledger_engine::render_chatml(&chat));
    check_usage(
        &body["usage"],
        templated,
        3,
        &body["choices"][0]["finish_reason"],
    );
}

/// The streamed pieces add up to the non-streamed text, with the same usage.
pub async fn streaming_matches_non_streaming(t: Target) {
    let req = |stream: bool| {
        json!({
            "model": t.model,
            "messages": [{ "role": "user", "content": "What is 2 + 2?" }],
            "max_tokens": 6, "temperature": 0.7, "seed": 5, "stream": stream,
            "stream_options": { "include_usage": true },
        })
    };
    let (s, whole) = post(t.addr, "/v1/chat/completions", req(false)).await;
    assert_eq!(s, 200, "{whole}");
    let chunks = sse(t.addr, "/v1/chat/completions", req(true)).await;
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"].get(0)?["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, whole["choices"][0]["message"]["content"]);
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"], json!([]));
    assert_eq!(last["usage"], whole["usage"]);
    let finish = chunks
        .iter()
        .find_map(|c| c["choices"].get(0)?["finish_reason"].as_str())
        .expect("a chunk with the finish reason");
    assert_eq!(finish, whole["choices"][0]["finish_reason"]);
}

/// A stop sequence taken from the model's own greedy output ends the output just before
/// its first occurrence, streamed or not.
pub async fn stop_sequences_cut_the_output(t: Target) {
    let req = |stop: Option<&str>, stream: bool| {
        json!({ "model": t.model, "prompt": "Once upon a time", "max_tokens": 12,
                "temperature": 0, "stop": stop, "stream": stream })
    };
    let (s, whole) = post(t.addr, "/v1/completions", req(None, false)).await;
    assert_eq!(s, 200, "{whole}");
    let text = whole["choices"][0]["text"].as_str().unwrap().to_string();
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    assert!(chars.len() >= 4, "greedy output too short to cut: {text:?}");
    // Two characters from the middle of the output.
    let (at, _) = chars[chars.len() / 2];
    let end = chars
        .get(chars.len() / 2 + 2)
        .map_or(text.len(), |&(i, _)| i);
    let stop = &text[at..end];
    let want = &text[..text.find(stop).unwrap()];
    let (s, cut) = post(t.addr, "/v1/completions", req(Some(stop), false)).await;
    assert_eq!(s, 200, "{cut}");
    assert_eq!(cut["choices"][0]["text"], want, "stop {stop:?}");
    assert_eq!(cut["choices"][0]["finish_reason"], "stop");
    let chunks = sse(t.addr, "/v1/completions", req(Some(stop), true)).await;
    let streamed: String = chunks
        .iter()
        .filter_map(|c| c["choices"].get(0)?["text"].as_str())
        .collect();
    assert_eq!(streamed, want);
}

/// What the client can fix is a 4xx naming the parameter; the server lives on.
pub async fn bad_requests_get_typed_errors(t: Target) {
    let r = reqwest::Client::new()
        .post(format!("http://{}/v1/chat/completions", t.addr))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let chat = |extra: Value| {
        let mut b = json!({ "model": t.model, "messages": [{ "role": "user", "content": "hi" }], "max_tokens": 2 });
        b.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        b
    };
    let long = "word ".repeat(t.context_len + 10);
    let cases = [
        (chat(json!({ "model": "gpt-4" })), 404, Some("model")),
        (chat(json!({ "temperature": 5 })), 400, Some("temperature")),
        (chat(json!({ "top_p": 0 })), 400, Some("top_p")),
        (chat(json!({ "max_tokens": 0 })), 400, Some("max_tokens")),
        (chat(json!({ "n": 2 })), 400, Some("n")),
        (chat(json!({ "messages": [] })), 400, Some("messages")),
        (
            chat(json!({ "messages": [{ "role": "user", "content": long }] })),
            400,
            Some("messages"),
        ),
    ];
    for (body, status, param) in cases {
        let (s, err) = post(t.addr, "/v1/chat/completions", body.clone()).await;
        assert_eq!(s, status, "{body} -> {err}");
        assert_eq!(err["error"]["type"], "invalid_request_error", "{err}");
        assert_eq!(err["error"]["param"], json!(param), "{err}");
    }
    let (s, health) = get_text(t.addr, "/health").await;
    assert_eq!(s, 200);
    let health: Value = serde_json::from_str(&health).unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["backend"], t.backend);
}

/// `/v1/models` lists the model; `/metrics` counts the requests.
pub async fn models_health_and_metrics(t: Target) {
    let (s, models) = get_text(t.addr, "/v1/models").await;
    assert_eq!(s, 200);
    let models: Value = serde_json::from_str(&models).unwrap();
    assert_eq!(models["data"][0]["id"], t.model);
    let (s, _) = post(
        t.addr,
        "/v1/completions",
        json!({ "model": t.model, "prompt": "Hi", "max_tokens": 2 }),
    )
    .await;
    assert_eq!(s, 200);
    let (s, m) = get_text(t.addr, "/metrics").await;
    assert_eq!(s, 200);
    assert!(
        m.contains("oracle_requests_total{endpoint=\"/v1/completions\",status=\"200\"}"),
        "{m}"
    );
}
