//! Sampling, chat template, stop sequences, streaming and continuous batching on the real model.

use std::time::Duration;

use openledger_engine::{
    ChatMessage, Engine, EngineConfig, Event, FinishReason, GenerateRequest, Prompt,
    SamplingParams, inference::Error as InferenceError,
};

use crate::{engine, greedy, model_path, run_together};

fn sampled(prompt: &str, seed: u64, max_tokens: usize) -> GenerateRequest {
    GenerateRequest {
        prompt: Prompt::Text(prompt.into()),
        adapter: None,
        params: SamplingParams {
            temperature: 0.9,
            top_p: 0.95,
            max_tokens,
            seed,
            ..Default::default()
        },
    }
}

#[test]
fn greedy_completion_is_sensible() {
    let out = engine()
        .generate_blocking(greedy("The capital of France is", 4))
        .unwrap();
    assert!(out.text.contains("Paris"), "{:?}", out.text);
    assert_eq!(out.usage.prompt_tokens, 5);
    assert_eq!(out.usage.completion_tokens, 4);
    assert_eq!(out.usage.total_tokens, 9);
    assert_eq!(out.finish_reason, FinishReason::Length);
    assert_eq!(engine().tokenizer().decode(&out.tokens), out.text);
}

#[test]
fn same_seed_gives_same_output() {
    let e = engine();
    let a = e
        .generate_blocking(sampled("Once upon a time", 42, 8))
        .unwrap();
    let b = e
        .generate_blocking(sampled("Once upon a time", 42, 8))
        .unwrap();
    assert_eq!(a, b);
    let others: Vec<_> = (43..46)
        .map(|s| {
            e.generate_blocking(sampled("Once upon a time", s, 8))
                .unwrap()
                .tokens
        })
        .collect();
    assert!(
        others.iter().any(|t| *t != a.tokens),
        "other seeds should sample differently"
    );
}

#[test]
fn chat_prompt_uses_the_chatml_template() {
    let e = engine();
    let prompt = Prompt::Chat(vec![ChatMessage {
        role: "user".into(),
        content: "Hi".into(),
    }]);
    let ids = e.tokenize(&prompt);
    let t = e.tokenizer();
    let (start, end) = (
        t.token_to_id("<|im_start|>").unwrap(),
        t.token_to_id("<|im_end|>").unwrap(),
    );
    assert_eq!(ids[0], start);
    assert_eq!(
        ids.iter().filter(|&&i| i == start).count(),
        3,
        "system, user, assistant"
    );
    assert_eq!(ids.iter().filter(|&&i| i == end).count(), 2);
    assert!(t.decode(&ids).ends_with("<|im_start|>assistant\n"));
    let out = e
        .generate_blocking(GenerateRequest {
            prompt,
            adapter: None,
            params: greedy("", 6).params,
        })
        .unwrap();
    assert!(!out.text.is_empty());
    assert!(!out.text.contains("<|im_end|>"));
}

#[test]
fn stop_sequence_ends_generation_without_the_stop_text() {
    let mut req = greedy("The capital of France is", 8);
    req.params.stop = vec![".".into()];
    let out = engine().generate_blocking(req).unwrap();
    assert_eq!(out.text, " Paris");
    assert_eq!(out.finish_reason, FinishReason::Stop);
}

#[test]
fn streamed_text_equals_the_whole_text() {
    let e = engine();
    let whole = e
        .generate_blocking(greedy("List three colors:", 8))
        .unwrap();
    let mut g = e.generate(greedy("List three colors:", 8)).unwrap();
    let (mut text, mut n) = (String::new(), 0);
    loop {
        match g.events.blocking_recv().expect("stream ends with Done") {
            Event::Token { text: t, .. } => {
                n += 1;
                text.push_str(&t);
            }
            Event::Done { usage, .. } => {
                assert_eq!(usage.completion_tokens, n);
                break;
            }
            Event::Error(e) => panic!("{e}"),
        }
    }
    assert_eq!(text, whole.text);
    assert!(n > 1);
}

/// Requests decoded together return exactly what each returns alone.
#[test]
fn concurrent_requests_match_solo_runs() {
    let e = engine();
    let reqs = [
        greedy("The capital of France is", 6),
        sampled("Once upon a time", 7, 6),
        greedy("1, 2, 3, 4,", 5),
        sampled("The best thing about Rust is", 9, 7),
    ];
    let solo: Vec<_> = reqs
        .iter()
        .map(|r| e.generate_blocking(r.clone()).unwrap())
        .collect();
    let together = run_together(e, &reqs);
    assert_eq!(together, solo);
    assert!(e.stats().batch_size.count() > 0);
}

/// A prompt prefilled in many small chunks (over several steps, next to other sequences)
/// gives exactly the output of a prompt prefilled in one step.
#[test]
fn chunked_prefill_gives_the_same_output() {
    let chunked = Engine::start(EngineConfig {
        model_path: model_path(),
        max_prefill_tokens: 7,
        ..Default::default()
    })
    .unwrap();
    let prompt = "Write a detailed guide to keeping bees in a city garden, covering hives, \
                  neighbours, flowers, water, seasons and the first honey harvest.";
    let mut reqs = [greedy(prompt, 8), sampled(prompt, 3, 8)];
    for r in &mut reqs {
        r.params.ignore_eos = true;
    }
    let whole: Vec<_> = reqs
        .iter()
        .map(|r| engine().generate_blocking(r.clone()).unwrap())
        .collect();
    assert!(
        whole[0].usage.prompt_tokens > 3 * 7,
        "the prompt must span several chunks"
    );
    assert!(whole.iter().all(|c| c.usage.completion_tokens == 8));
    // Both at once: their chunks share steps with each other and with decode rows.
    let got = run_together(&chunked, &reqs);
    assert_eq!(got, whole);
    let steps = chunked
        .stats()
        .steps
        .load(std::sync::atomic::Ordering::Relaxed);
    let prompt_steps = 2 * whole[0].usage.prompt_tokens / 7;
    assert!(steps >= prompt_steps as u64 + 7, "{steps} steps in all");
}

/// A consumer that never reads does not hold up others; when it reads later, its output is
/// complete and unchanged. A consumer that disconnects is dropped.
#[test]
fn slow_or_gone_consumers_do_not_stall_others() {
    let e = Engine::start(EngineConfig {
        model_path: model_path(),
        stream_buffer: 1,
        ..Default::default()
    })
    .unwrap();
    let solo = e
        .generate_blocking(greedy("Write a poem about the sea.", 10))
        .unwrap();
    let mut parked = e
        .generate(greedy("Write a poem about the sea.", 10))
        .unwrap();
    let gone = e.generate(greedy("Tell me a long story.", 200)).unwrap();
    drop(gone);
    // Not reading `parked` at all while another request runs to completion.
    let other = e
        .generate_blocking(greedy("The capital of France is", 12))
        .unwrap();
    assert_eq!(other.usage.completion_tokens, 12);
    let mut text = String::new();
    while let Some(ev) = parked.events.blocking_recv() {
        if let Event::Token { text: t, .. } = ev {
            text.push_str(&t);
        }
    }
    assert_eq!(text, solo.text);
    for _ in 0..100 {
        if e.stats()
            .cancelled
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the disconnected request was not dropped");
}

#[test]
fn invalid_requests_are_refused_before_compute() {
    let e = engine();
    let long = "word ".repeat(e.model_config().context_len + 10);
    assert!(matches!(
        e.generate(greedy(&long, 4)),
        Err(InferenceError::ContextOverflow { .. })
    ));
    let mut bad = greedy("hi", 4);
    bad.params.temperature = -1.0;
    assert!(matches!(
        e.generate(bad),
        Err(InferenceError::InvalidParam {
            param: "temperature",
            ..
        })
    ));
    assert!(matches!(
        e.generate(greedy("", 4)),
        Err(InferenceError::InvalidParam {
            param: "prompt",
            ..
        })
    ));
    let mut unknown = greedy("hi", 4);
    unknown.adapter = Some("nope".into());
    assert!(matches!(
        e.generate(unknown),
        Err(InferenceError::UnknownAdapter { .. })
    ));
}

#[test]
fn missing_model_file_is_a_clear_error() {
    let err = Engine::start(EngineConfig {
        model_path: "/nonexistent/model.gguf".into(),
        ..Default::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("fetch-model.sh"), "{err}");
}
