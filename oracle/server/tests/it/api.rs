use std::path::Path;

use openledger_adapter::testing::RandomAdapter;
use openledger_engine::inference::Tokenizer;
use openledger_engine::{Device, Llama, Prompt, WeightFormat};
use openledger_oracle::Server;
use serde_json::{Value, json};

use crate::{
    http::{get_text, post, sse},
    shared_server, test_config,
};

#[tokio::test]
async fn completion_returns_text_and_usage() {
    let addr = shared_server();
    let (status, body) = post(
        addr,
        "/v1/completions",
        json!({ "model": "smollm2-135m", "prompt": "The capital of France is", "max_tokens": 4, "temperature": 0 }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["object"], "text_completion");
    assert!(
        body["choices"][0]["text"]
            .as_str()
            .unwrap()
            .contains("Paris"),
        "{body}"
    );
    assert_eq!(body["choices"][0]["finish_reason"], "length");
    assert_eq!(
        body["usage"],
        json!({ "prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9 })
    );
}

/// `prompt` as token ids (the model's own tokenization of a text) reads as the same prompt as
/// the text, and a prompt that is neither text nor ids is a 400 naming the field.
#[tokio::test]
async fn a_prompt_of_token_ids_is_the_same_prompt() {
    let addr = shared_server();
    let complete = |prompt: Value| json!({ "model": "smollm2-135m", "prompt": prompt, "max_tokens": 4, "temperature": 0 });
    let prompt = "The capital of France is";
    let tokenizer = Tokenizer::from_gguf(test_config().engine.model_path).unwrap();
    let tokens = Prompt::Text(prompt.into()).tokens(&tokenizer);
    let (status, text) = post(addr, "/v1/completions", complete(json!(prompt))).await;
    assert_eq!(status, 200, "{text}");
    let (status, ids) = post(addr, "/v1/completions", complete(json!(tokens))).await;
    assert_eq!(status, 200, "{ids}");
    assert_eq!(ids["choices"][0]["text"], text["choices"][0]["text"]);
    assert_eq!(ids["usage"], text["usage"]);
    for bad in [
        json!([1, "a"]),
        json!([-1]),
        json!([1.5]),
        json!(7),
        json!({ "text": "a" }),
    ] {
        let (status, err) = post(addr, "/v1/completions", complete(bad.clone())).await;
        assert_eq!(status, 400, "{bad} -> {err}");
        assert_eq!(err["error"]["param"], "prompt", "{bad} -> {err}");
    }
}

#[tokio::test]
async fn chat_streaming_matches_non_streaming() {
    let addr = shared_server();
    let req = |stream: bool| {
        json!({
            "model": "smollm2-135m",
            "messages": [{ "role": "user", "content": "What is 2 + 2?" }],
            "max_tokens": 6, "temperature": 0.7, "seed": 5, "stream": stream,
            "stream_options": { "include_usage": true },
        })
    };
    let (status, whole) = post(addr, "/v1/chat/completions", req(false)).await;
    assert_eq!(status, 200, "{whole}");
    assert_eq!(whole["object"], "chat.completion");
    assert_eq!(whole["choices"][0]["message"]["role"], "assistant");
    let usage = &whole["usage"];
    assert_eq!(usage["completion_tokens"], 6);
    assert!(
        usage["prompt_tokens"].as_u64().unwrap() > 20,
        "the chat template adds the system prompt"
    );

    let chunks = sse(addr, "/v1/chat/completions", req(true)).await;
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let text: String = chunks
        .iter()
        .filter_map(|c| {
            c["choices"]
                .get(0)?
                .get("delta")?
                .get("content")?
                .as_str()
                .map(String::from)
        })
        .collect();
    assert_eq!(
        text,
        whole["choices"][0]["message"]["content"].as_str().unwrap()
    );
    assert!(
        chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk")
    );
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"], json!([]));
    assert_eq!(&last["usage"], usage);
    assert!(chunks.iter().any(|c| {
        c["choices"]
            .get(0)
            .is_some_and(|ch| ch["finish_reason"] == "length")
    }));
}

#[tokio::test]
async fn completion_streaming_and_stop_sequences() {
    let addr = shared_server();
    let chunks = sse(
        addr,
        "/v1/completions",
        json!({ "model": "smollm2-135m", "prompt": "The capital of France is", "max_tokens": 8,
                "temperature": 0, "stop": ".", "stream": true }),
    )
    .await;
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["text"].as_str())
        .collect();
    assert_eq!(text, " Paris");
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "stop"
    );
}

#[tokio::test]
async fn bad_requests_get_openai_errors_and_the_server_lives_on() {
    let addr = shared_server();
    let client = reqwest::Client::new();
    let r = client
        .post(format!("http://{addr}/v1/chat/completions"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("malformed")
    );

    let chat = |extra: Value| {
        let mut b = json!({ "model": "smollm2-135m", "messages": [{ "role": "user", "content": "hi" }], "max_tokens": 2 });
        b.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        b
    };
    let cases = [
        (
            chat(json!({ "model": "gpt-4" })),
            404,
            Some("model_not_found"),
            Some("model"),
        ),
        (
            chat(json!({ "model": "smollm2-135m:no-such-adapter" })),
            404,
            Some("model_not_found"),
            Some("model"),
        ),
        (
            chat(json!({ "temperature": 5 })),
            400,
            None,
            Some("temperature"),
        ),
        (chat(json!({ "top_p": 0 })), 400, None, Some("top_p")),
        (
            chat(json!({ "max_tokens": 0 })),
            400,
            None,
            Some("max_tokens"),
        ),
        (
            chat(json!({ "max_tokens": 100000 })),
            400,
            None,
            Some("max_tokens"),
        ),
        (chat(json!({ "n": 3 })), 400, None, Some("n")),
        (chat(json!({ "messages": [] })), 400, None, Some("messages")),
        (
            chat(json!({ "messages": [{ "role": "user", "content": "word ".repeat(9000) }] })),
            400,
            Some("context_length_exceeded"),
            Some("messages"),
        ),
        (json!({ "messages": [] }), 400, None, None),
    ];
    for (body, status, code, param) in cases {
        let (s, err) = post(addr, "/v1/chat/completions", body.clone()).await;
        assert_eq!(s, status, "{body} -> {err}");
        assert!(
            err["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{err}"
        );
        if let Some(code) = code {
            assert_eq!(err["error"]["code"], code, "{err}");
        }
        if let Some(param) = param {
            assert_eq!(err["error"]["param"], param, "{err}");
        }
    }
    let (s, _) = post(
        addr,
        "/v1/completions",
        json!({ "model": "smollm2-135m", "prompt": ["a", "b"] }),
    )
    .await;
    assert_eq!(s, 400);
    let (s, _) = get_text(addr, "/v1/nothing").await;
    assert_eq!(s, 404);
    let (s, health) = get_text(addr, "/health").await;
    assert_eq!(s, 200);
    assert!(health.contains("\"ok\""));
}

#[tokio::test]
async fn models_and_metrics() {
    let addr = shared_server();
    let (s, models) = get_text(addr, "/v1/models").await;
    assert_eq!(s, 200);
    let models: Value = serde_json::from_str(&models).unwrap();
    assert_eq!(models["data"][0]["id"], "smollm2-135m");
    let (s, _) = post(
        addr,
        "/v1/completions",
        json!({ "model": "smollm2-135m", "prompt": "Hi", "max_tokens": 2 }),
    )
    .await;
    assert_eq!(s, 200);
    let (s, m) = get_text(addr, "/metrics").await;
    assert_eq!(s, 200);
    for needle in [
        "oracle_requests_total{endpoint=\"/v1/completions\",status=\"200\"}",
        "oracle_completion_tokens_total",
        "oracle_request_duration_seconds_bucket",
        "engine_batch_size_bucket",
        "adapter_cache_hits_total",
        "adapter_cache_misses_total",
        "adapter_cache_evictions_total",
    ] {
        assert!(m.contains(needle), "missing {needle} in\n{m}");
    }
}

/// Two of the fixture's adapters (rank 4 on q and v of every layer), `alpha` and `beta`.
fn write_adapters(dir: &Path) {
    let model = Llama::load(
        &test_config().engine.model_path,
        WeightFormat::Gguf,
        &Device::Cpu,
    )
    .unwrap();
    let shape = model.config().adapter_shape();
    drop(model);
    for (k, name) in ["alpha", "beta"].into_iter().enumerate() {
        let adapter = RandomAdapter {
            rank: 4,
            alpha: 8.0,
            scale: 0.5,
            ..RandomAdapter::new(1000 * k as u64)
        };
        std::fs::write(
            dir.join(format!("{name}.safetensors")),
            adapter.to_bytes(&shape),
        )
        .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adapters_are_listed_and_selected_by_model_name() {
    let dir = tempfile::tempdir().unwrap();
    write_adapters(dir.path());
    let mut config = test_config();
    config.engine.adapter_dir = Some(dir.path().to_path_buf());
    config.engine.adapter_cache = 1;
    let server = Server::bind(config).await.unwrap();
    let addr = server.local_addr();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run_until(async {
        let _ = stop_rx.await;
    }));

    let (_, models) = get_text(addr, "/v1/models").await;
    let models: Value = serde_json::from_str(&models).unwrap();
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["smollm2-135m", "smollm2-135m:alpha", "smollm2-135m:beta"]
    );
    let sha = models["data"][1]["adapter_sha256"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(sha.len(), 64);

    let complete = |model: String| {
        post(
            addr,
            "/v1/completions",
            json!({ "model": model, "prompt": "The capital of France is", "max_tokens": 5, "temperature": 0 }),
        )
    };
    let (s, base) = complete("smollm2-135m".into()).await;
    assert_eq!(s, 200, "{base}");
    let (s, alpha) = complete("smollm2-135m:alpha".into()).await;
    assert_eq!(s, 200, "{alpha}");
    let (_, by_hash) = complete(format!("smollm2-135m:{sha}")).await;
    let (_, beta) = complete("smollm2-135m:beta".into()).await;
    assert_eq!(
        alpha["choices"][0]["text"], by_hash["choices"][0]["text"],
        "name and sha256 select the same adapter"
    );
    assert_ne!(
        alpha["choices"][0]["text"], base["choices"][0]["text"],
        "the adapter changes the output"
    );
    assert_eq!(beta["usage"]["completion_tokens"], 5);

    let (_, m) = get_text(addr, "/metrics").await;
    // alpha (miss), alpha by hash (hit), beta (miss, evicts alpha with a cache of one)
    assert!(m.contains("adapter_cache_misses_total 2"), "{m}");
    assert!(m.contains("adapter_cache_hits_total 1"), "{m}");
    assert!(m.contains("adapter_cache_evictions_total 1"), "{m}");
    stop_tx.send(()).unwrap();
    task.await.unwrap().unwrap();
}
