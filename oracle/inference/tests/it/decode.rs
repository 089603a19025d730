//! [`Decoder`]: the released text, stop tokens, stop sequences and limits.

use openledger_inference::{
    Collected, Completion, Decoder, Event, FinishReason, SamplingParams, Usage, stop_ids,
};

use crate::{seed, tokenizer};

fn params(max_tokens: usize, stop: &[&str]) -> SamplingParams {
    SamplingParams {
        max_tokens,
        stop: stop.iter().map(|s| s.to_string()).collect(),
        ..SamplingParams::greedy(max_tokens)
    }
}

/// Feeds `tokens` until the decoder ends (or they run out) and returns every event.
fn run(params: &SamplingParams, tokens: &[u32]) -> (Vec<Event>, bool) {
    let tok = tokenizer();
    let mut d = Decoder::new(params, 3, stop_ids(tok));
    let mut events = Vec::new();
    for &id in tokens {
        if d.push(tok, id, false, &mut events) {
            return (events, true);
        }
    }
    (events, false)
}

fn collect(events: Vec<Event>) -> Completion {
    let mut c = Collected::default();
    for e in events {
        if let Some(done) = c.push(e) {
            return done.expect("no error event");
        }
    }
    panic!("no Done event")
}

fn texts(events: &[Event]) -> Vec<&str> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Token { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

#[test]
fn released_pieces_add_up_to_the_decoded_text_including_multibyte_characters() {
    let tok = tokenizer();
    for text in [
        "The capital of France is Paris.",
        "naïve café, Straße, 日本語のテキスト, emoji 🎉🦀 and ÅÄÖ",
        "  leading spaces\n\nand\ttabs ",
    ] {
        let ids = tok.encode(text);
        let (events, ended) = run(&params(10_000, &[]), &ids);
        assert!(!ended);
        assert_eq!(events.len(), ids.len(), "one event per token");
        assert_eq!(texts(&events).concat(), text);
        // No piece ever holds half a character.
        assert!(texts(&events).iter().all(|t| !t.contains('\u{FFFD}')));
    }
}

#[test]
fn random_texts_round_trip_piece_by_piece() {
    let tok = tokenizer();
    let alphabet: Vec<char> = "ab cdé日本🎉\n.,!Ωж".chars().collect();
    let mut state = seed();
    for _ in 0..200 {
        let len = 1 + (next(&mut state) % 40) as usize;
        let text: String = (0..len)
            .map(|_| alphabet[(next(&mut state) % alphabet.len() as u64) as usize])
            .collect();
        let ids = tok.encode(&text);
        let (events, _) = run(&params(10_000, &[]), &ids);
        assert_eq!(texts(&events).concat(), tok.decode(&ids), "text {text:?}");
    }
}

fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[test]
fn an_end_of_sequence_token_ends_without_its_text_and_is_counted() {
    let tok = tokenizer();
    let eos = tok.eos_id().expect("SmolLM2 declares an EOS");
    let mut ids = tok.encode("Hello there");
    let n = ids.len();
    ids.extend([eos, 42, 43]);
    let (events, ended) = run(&params(100, &[]), &ids);
    assert!(ended);
    let done = collect(events);
    assert_eq!(done.text, "Hello there");
    assert_eq!(done.finish_reason, FinishReason::Stop);
    assert_eq!(done.usage, Usage::new(3, n + 1));
    assert_eq!(done.tokens.last(), Some(&eos));
    // `<|endoftext|>` stops too.
    let eot = tok.token_to_id("<|endoftext|>").expect("in the vocabulary");
    assert!(stop_ids(tok).contains(&eot));
}

#[test]
fn ignore_eos_keeps_going_through_end_of_sequence_tokens() {
    let tok = tokenizer();
    let eos = tok.eos_id().expect("EOS");
    let p = SamplingParams {
        ignore_eos: true,
        ..params(3, &[])
    };
    let (events, ended) = run(&p, &[eos, eos, eos, eos]);
    assert!(ended);
    let done = collect(events);
    assert_eq!(done.finish_reason, FinishReason::Length);
    assert_eq!(done.tokens, vec![eos; 3]);
}

#[test]
fn a_stop_sequence_ends_the_output_just_before_it_even_across_tokens() {
    let tok = tokenizer();
    let ids = tok.encode("The capital of France is Paris. It is big.");
    for stop in ["Paris", "is Par", ". It", "s P"] {
        let (events, ended) = run(&params(100, &[stop, "never"]), &ids);
        assert!(ended, "{stop:?} matched");
        let done = collect(events);
        let want = &"The capital of France is Paris. It is big."
            [.."The capital of France is Paris. It is big."
                .find(stop)
                .unwrap()];
        assert_eq!(done.text, want, "stop {stop:?}");
        assert_eq!(done.finish_reason, FinishReason::Stop);
        assert!(done.usage.completion_tokens < ids.len());
    }
}

#[test]
fn text_that_may_start_a_stop_sequence_is_held_back_then_released() {
    let tok = tokenizer();
    let ids = tok.encode("one two three");
    // "two" could be the start of "two!" until "three" arrives.
    let (events, ended) = run(&params(100, &["two!"]), &ids);
    assert!(!ended);
    let pieces = texts(&events);
    assert_eq!(pieces.concat(), "one two three");
    let two_at = pieces
        .iter()
        .scan(String::new(), |acc, p| {
            acc.push_str(p);
            Some(acc.clone())
        })
        .position(|so_far| so_far.contains("two"))
        .expect("released eventually");
    let two_token = ids
        .iter()
        .position(|&t| tok.decode(&[t]).contains("two"))
        .expect("a token for two");
    assert!(two_at > two_token, "held back at least one token");
}

#[test]
fn max_tokens_and_a_full_context_end_with_length_and_release_everything() {
    let tok = tokenizer();
    let ids = tok.encode("alpha beta gamma delta");
    // A held-back stop prefix is released when the limit ends the generation.
    let (events, ended) = run(&params(2, &["beta gamma"]), &ids);
    assert!(ended);
    let done = collect(events);
    assert_eq!(done.text, tok.decode(&ids[..2]));
    assert_eq!(done.finish_reason, FinishReason::Length);
    assert_eq!(done.usage.completion_tokens, 2);

    let mut d = Decoder::new(&params(100, &[]), 1, stop_ids(tok));
    let mut events = Vec::new();
    assert!(!d.push(tok, ids[0], false, &mut events));
    assert!(d.push(tok, ids[1], true, &mut events));
    assert!(d.is_done());
    assert_eq!(collect(events).finish_reason, FinishReason::Length);
}

#[test]
fn an_incomplete_character_at_the_end_comes_out_as_a_replacement() {
    let tok = tokenizer();
    // The byte tokens of "🎉" (4 bytes): stop after the first two.
    let ids = tok.encode("🎉");
    assert!(ids.len() >= 2, "a multi-token character: {ids:?}");
    let (events, ended) = run(&params(1, &[]), &ids);
    assert!(ended);
    assert_eq!(collect(events).text, tok.decode(&ids[..1]));
}
