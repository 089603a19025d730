//! Sampling, chat template, stop sequences, streaming and continuous batching on the real model.

use openledger_engine::metrics::{BATCH_SIZE, CANCELLED, STEPS};
use openledger_engine::{
    ChatMessage, Engine, EngineConfig, Event, FinishReason, GenerateRequest, Prompt,
    SamplingParams, inference::Error as InferenceError,
};

use crate::recorder::Captured;
use crate::{DEADLINE, engine, greedy, model_path, run_together, within};

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

/// Requests decoded together return exactly what each returns alone, and really were
/// decoded together: they shared forward steps.
#[test]
fn concurrent_requests_match_solo_runs() {
    // An engine of its own, so that only these requests' steps are recorded.
    let recorded = Captured::default();
    let e = &recorded
        .scope(|| {
            Engine::start(EngineConfig {
                model_path: model_path(),
                ..Default::default()
            })
        })
        .unwrap();
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
    let alone = recorded.values();
    let together = run_together(e, &reqs);
    assert_eq!(together, solo);
    let all = recorded.values();
    let solo_rows = alone.histogram(BATCH_SIZE);
    assert!(
        solo_rows.iter().all(|&rows| rows == 1.0),
        "a request alone steps one row at a time: {solo_rows:?}"
    );
    let rows = &all.histogram(BATCH_SIZE)[solo_rows.len()..];
    assert!(
        rows.iter().any(|&rows| rows >= 2.0),
        "no step decoded two requests at once: {rows:?}"
    );
    let (solo_steps, together_steps) = (
        alone.counter(STEPS),
        all.counter(STEPS) - alone.counter(STEPS),
    );
    assert!(
        together_steps < solo_steps,
        "{together_steps} steps together, {solo_steps} one by one"
    );
}

/// A prompt prefilled in many small chunks (over several steps, next to other sequences)
/// gives exactly the output of a prompt prefilled in one step.
#[test]
fn chunked_prefill_gives_the_same_output() {
    let recorded = Captured::default();
    let chunked = recorded
        .scope(|| {
            Engine::start(EngineConfig {
                model_path: model_path(),
                max_prefill_tokens: 7,
                ..Default::default()
            })
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
    let steps = recorded.values().counter(STEPS);
    let prompt_steps = 2 * whole[0].usage.prompt_tokens / 7;
    assert!(steps >= prompt_steps as u64 + 7, "{steps} steps in all");
}

/// A consumer that never reads does not hold up others; when it reads later, its output is
/// complete and unchanged. A consumer that disconnects is dropped. Every wait has a deadline,
/// so a stall fails the test instead of hanging it.
#[test]
fn slow_or_gone_consumers_do_not_stall_others() {
    let recorded = Captured::default();
    let e = recorded
        .scope(|| {
            Engine::start(EngineConfig {
                model_path: model_path(),
                stream_buffer: 1,
                ..Default::default()
            })
        })
        .unwrap();
    let poem = || greedy("Write a poem about the sea.", 10);
    let solo = within("a request alone", e.generate(poem()).unwrap().collect()).unwrap();
    let mut parked = e.generate(poem()).unwrap();
    let gone = e.generate(greedy("Tell me a long story.", 200)).unwrap();
    drop(gone);
    // Not reading `parked` at all while another request runs to completion.
    let other = within(
        "a request next to a parked one",
        e.generate(greedy("The capital of France is", 12))
            .unwrap()
            .collect(),
    )
    .unwrap();
    assert_eq!(other.usage.completion_tokens, 12);
    let text = within("the parked request's events", async {
        let mut text = String::new();
        while let Some(ev) = parked.events.recv().await {
            if let Event::Token { text: t, .. } = ev {
                text.push_str(&t);
            }
        }
        text
    });
    assert_eq!(text, solo.text);
    recorded.wait_until("the disconnected request to be dropped", DEADLINE, |v| {
        v.counter(CANCELLED) >= 1
    });
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
