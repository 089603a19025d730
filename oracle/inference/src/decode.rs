//! From sampled tokens to the events of a generation: incremental detokenization, the
//! end-of-sequence rule, stop sequences and `max_tokens`, the same for every backend.

use openledger_tokenizer::Tokenizer;

use crate::{Event, FinishReason, SamplingParams, Usage};

/// The tokens that end a generation: the tokenizer's end-of-sequence token and
/// `<|endoftext|>` (SmolLM2 declares `<|im_end|>` as EOS and ends raw text with
/// `<|endoftext|>`), unless [`SamplingParams::ignore_eos`] is set.
pub fn stop_ids(tokenizer: &Tokenizer) -> Vec<u32> {
    let mut ids: Vec<u32> = [tokenizer.eos_id(), tokenizer.token_to_id("<|endoftext|>")]
        .into_iter()
        .flatten()
        .collect();
    ids.dedup();
    ids
}

/// Text of a growing token sequence, decoding only a small window per token.
///
/// The window starts one released token back (so a decoder that treats the start of a
/// sequence specially sees the same context) and grows only while the newest tokens end in
/// an incomplete UTF-8 character, which is held back until it completes. For output that is
/// valid UTF-8 the released pieces add up to exactly `tokenizer.decode(all tokens)`.
#[derive(Debug, Default)]
struct Detokenizer {
    ids: Vec<u32>,
    /// Start of the decode window.
    prefix: usize,
    /// End of the text already released.
    read: usize,
}

impl Detokenizer {
    /// Adds a token and returns the text it completes (possibly empty).
    fn push(&mut self, tokenizer: &Tokenizer, id: u32) -> String {
        self.ids.push(id);
        let before = tokenizer.decode(&self.ids[self.prefix..self.read]);
        let now = tokenizer.decode(&self.ids[self.prefix..]);
        if now.len() > before.len() && !now.ends_with('\u{FFFD}') && now.starts_with(&before) {
            self.prefix = self.read;
            self.read = self.ids.len();
            now[before.len()..].to_string()
        } else {
            String::new()
        }
    }

    /// Releases whatever is held back (an incomplete character comes out as U+FFFD).
    fn flush(&mut self, tokenizer: &Tokenizer) -> String {
        let before = tokenizer.decode(&self.ids[self.prefix..self.read]);
        let now = tokenizer.decode(&self.ids[self.prefix..]);
        self.prefix = self.read;
        self.read = self.ids.len();
        now.strip_prefix(before.as_str())
            .unwrap_or_default()
            .to_string()
    }
}

/// Turns one generation's sampled tokens into its [`Event`]s.
///
/// Rules, applied to each token in order:
/// 1. A token of [`stop_ids`] ends the generation with [`FinishReason::Stop`] (unless
///    `ignore_eos`); it is counted in `completion_tokens` (it was computed) but its text is
///    not part of the output.
/// 2. Otherwise its text is added. If one of the stop sequences now occurs in the text, the
///    output ends just before it ([`FinishReason::Stop`]). Text that could be the start of a
///    stop sequence, or an incomplete character, is held back until it is decided.
/// 3. After `max_tokens` tokens, or when the caller says the context window is full, the
///    generation ends with [`FinishReason::Length`] and held-back text is released.
///
/// Each token costs a decode of a few tokens and a search of the held-back text plus the
/// longest stop sequence, so a generation is linear in its length.
#[derive(Debug)]
pub struct Decoder {
    detokenizer: Detokenizer,
    stop: Vec<String>,
    /// Longest stop sequence, in bytes.
    max_stop: usize,
    stop_ids: Vec<u32>,
    ignore_eos: bool,
    max_tokens: usize,
    prompt_tokens: usize,
    /// Tokens sampled so far (an end-of-sequence token included).
    sampled: usize,
    /// Text decoded so far: released up to `emitted`, held back after it.
    text: String,
    emitted: usize,
    done: bool,
}

impl Decoder {
    /// A decoder for a generation with `params` after a prompt of `prompt_tokens` tokens;
    /// `stop_ids` as from [`stop_ids`].
    pub fn new(params: &SamplingParams, prompt_tokens: usize, stop_ids: Vec<u32>) -> Self {
        Self {
            detokenizer: Detokenizer::default(),
            max_stop: params.stop.iter().map(String::len).max().unwrap_or(0),
            stop: params.stop.clone(),
            stop_ids,
            ignore_eos: params.ignore_eos,
            max_tokens: params.max_tokens,
            prompt_tokens,
            sampled: 0,
            text: String::new(),
            emitted: 0,
            done: false,
        }
    }

    /// Whether the generation has ended (no more tokens may be pushed).
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Token counts so far.
    pub fn usage(&self) -> Usage {
        Usage::new(self.prompt_tokens, self.sampled)
    }

    /// Takes the next sampled token and appends its events to `out`: one [`Event::Token`],
    /// then [`Event::Done`] when it ended the generation. `context_full` says the context
    /// window has no room for another token. Returns [`Decoder::is_done`].
    ///
    /// # Panics
    /// When called after the generation has ended.
    pub fn push(
        &mut self,
        tokenizer: &Tokenizer,
        id: u32,
        context_full: bool,
        out: &mut impl Extend<Event>,
    ) -> bool {
        assert!(!self.done, "token pushed after the generation ended");
        self.sampled += 1;
        if self.stop_ids.contains(&id) && !self.ignore_eos {
            self.finish(tokenizer, id, FinishReason::Stop, None, out);
            return true;
        }
        let piece = self.detokenizer.push(tokenizer, id);
        self.text.push_str(&piece);
        if let Some(end) = self.find_stop() {
            let end = end.max(self.emitted);
            let released = self.text[self.emitted..end].to_string();
            self.emitted = end;
            self.done = true;
            out.extend([
                Event::Token { id, text: released },
                Event::Done {
                    finish_reason: FinishReason::Stop,
                    usage: self.usage(),
                },
            ]);
            return true;
        }
        let safe = (self.text.len() - self.held_stop_prefix()).max(self.emitted);
        let released = self.text[self.emitted..safe].to_string();
        self.emitted = safe;
        if self.sampled >= self.max_tokens || context_full {
            self.finish(tokenizer, id, FinishReason::Length, Some(released), out);
            return true;
        }
        out.extend([Event::Token { id, text: released }]);
        false
    }

    /// Where the first stop sequence starts in the text, searching the held-back part and
    /// the overlap a stop sequence could reach back into.
    fn find_stop(&self) -> Option<usize> {
        if self.stop.is_empty() {
            return None;
        }
        let mut from = self.emitted.saturating_sub(self.max_stop);
        while !self.text.is_char_boundary(from) {
            from -= 1;
        }
        let window = &self.text[from..];
        self.stop
            .iter()
            .filter_map(|s| window.find(s.as_str()).map(|p| from + p))
            .min()
    }

    /// Length of the longest proper prefix of a stop sequence the text ends with.
    fn held_stop_prefix(&self) -> usize {
        self.stop
            .iter()
            .filter_map(|s| {
                (1..s.len())
                    .rev()
                    .find(|&k| s.is_char_boundary(k) && self.text.ends_with(&s[..k]))
            })
            .max()
            .unwrap_or(0)
    }

    /// Ends the generation: releases held-back text with token `id`'s event (`released` is
    /// what this token released already, `None` for an end-of-sequence token) and queues
    /// `Done`.
    fn finish(
        &mut self,
        tokenizer: &Tokenizer,
        id: u32,
        reason: FinishReason,
        released: Option<String>,
        out: &mut impl Extend<Event>,
    ) {
        let rest = self.detokenizer.flush(tokenizer);
        self.text.push_str(&rest);
        let mut text = released.unwrap_or_default();
        text.push_str(&self.text[self.emitted..]);
        self.emitted = self.text.len();
        self.done = true;
        out.extend([
            Event::Token { id, text },
            Event::Done {
                finish_reason: reason,
                usage: self.usage(),
            },
        ]);
    }
}
