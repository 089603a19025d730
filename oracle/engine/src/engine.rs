//! The engine handle and its continuous-batching scheduler.
//!
//! One OS thread owns the model and runs forward steps. Requests arrive on a bounded queue
//! and join the running batch at the next step boundary; finished or cancelled sequences
//! leave at the end of a step. Prompts are prefilled in chunks next to the other sequences'
//! decode rows: each step feeds at most `max_prefill_tokens` prompt tokens in all (oldest
//! request first), so a long prompt delays the running sequences by one chunk's worth of
//! compute per step, never by its whole length. Each request streams its events through its own bounded
//! channel: when a consumer does not keep up, its sequence is parked (skipped by the next
//! steps, its events kept) until the channel has room again, so the other sequences go on;
//! when the consumer disconnects, the sequence is dropped.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use candle_core::Device;
use openledger_tokenizer::Tokenizer;
use tokio::sync::mpsc as tmpsc;

use crate::chat::{ChatMessage, render_chatml};
use crate::lora::{AdapterStore, LoraAdapter};
use crate::metrics::EngineStats;
use crate::model::{Llama, LlamaConfig, SeqState, StepRow, WeightFormat};
use crate::sampling::{Sampler, SamplingParams};
use crate::{Error, Result};

/// Engine settings. Deserializes from a table with these field names (missing fields take
/// their defaults; unknown ones are refused).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// Path of the GGUF model. Default: `$OPENLEDGER_MODEL_DIR/SmolLM2-135M-Instruct.Q4_1.gguf`
    /// (model dir default `~/.cache/openledger/models`).
    pub model_path: PathBuf,
    /// Name under which the base model is served. Default `smollm2-135m`.
    pub model_name: String,
    /// `cpu` or `cuda:N`. Default `cpu`.
    pub device: String,
    /// How linear weights are held. Default `q4` (see [`WeightFormat`]).
    pub weight_format: WeightFormat,
    /// Directory of `*.safetensors` LoRA adapters. Default: none.
    pub adapter_dir: Option<PathBuf>,
    /// Unpinned adapters kept in memory. Default 64.
    pub adapter_cache: usize,
    /// Adapters (names or ids) loaded at start and never evicted. Default: none.
    pub pinned_adapters: Vec<String>,
    /// Most sequences decoded together in one step. Default 16.
    pub max_batch: usize,
    /// Most requests waiting to join the batch before new ones are refused. Default 256.
    pub max_queue: usize,
    /// Prompt tokens prefilled per step, over all sequences; longer prompts are prefilled in
    /// chunks over several steps. Default 128 (about 0.3 s of compute for SmolLM2-135M on
    /// 2 cores: the most a new prompt adds to the others' time between tokens).
    pub max_prefill_tokens: usize,
    /// Events buffered per request before its sequence is parked. Default 64.
    pub stream_buffer: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            model_path: openledger_tokenizer::default_model_path(),
            model_name: "smollm2-135m".into(),
            device: "cpu".into(),
            weight_format: WeightFormat::default(),
            adapter_dir: None,
            adapter_cache: 64,
            pinned_adapters: Vec::new(),
            max_batch: 16,
            max_queue: 256,
            max_prefill_tokens: 128,
            stream_buffer: 64,
        }
    }
}

impl EngineConfig {
    fn device(&self) -> Result<Device> {
        match self.device.as_str() {
            "cpu" => Ok(Device::Cpu),
            d => {
                let ordinal = d
                    .strip_prefix("cuda")
                    .map(|n| n.trim_start_matches(':'))
                    .map(|n| {
                        if n.is_empty() {
                            Ok(0)
                        } else {
                            n.parse::<usize>()
                        }
                    })
                    .and_then(|r| r.ok())
                    .ok_or_else(|| Error::InvalidConfig {
                        field: "device",
                        reason: format!("{d:?}: use cpu or cuda:N"),
                    })?;
                Device::new_cuda(ordinal).map_err(|e| Error::InvalidConfig {
                    field: "device",
                    reason: format!("{d}: {e} (was the engine built with --features cuda?)"),
                })
            }
        }
    }
}

/// What to generate from.
#[derive(Debug, Clone, PartialEq)]
pub enum Prompt {
    /// Raw text, tokenized as is (no template).
    Text(String),
    /// A conversation, rendered with the model's chat template.
    Chat(Vec<ChatMessage>),
    /// Token ids, fed as is.
    Tokens(Vec<u32>),
}

/// A generation request.
#[derive(Debug, Clone)]
pub struct GenerateRequest {
    /// The prompt.
    pub prompt: Prompt,
    /// Adapter name or content id; `None` for the base model.
    pub adapter: Option<String>,
    /// Sampling parameters.
    pub params: SamplingParams,
}

/// Why a generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// End-of-sequence token or a stop sequence.
    Stop,
    /// `max_tokens` or the context window reached.
    Length,
}

/// Token counts for billing, from the model's own tokenizer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Usage {
    /// Tokens in the prompt (after the chat template).
    pub prompt_tokens: usize,
    /// Tokens sampled, including a final end-of-sequence token.
    pub completion_tokens: usize,
    /// Sum of both.
    pub total_tokens: usize,
}

/// A streamed event of one generation.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// New text (may be empty while a multi-byte character or a possible stop sequence is
    /// held back).
    Token {
        /// The sampled token id.
        id: u32,
        /// Text released by this token.
        text: String,
    },
    /// The generation ended.
    Done {
        /// Why.
        finish_reason: FinishReason,
        /// Token counts.
        usage: Usage,
    },
    /// The generation failed (an engine error); no more events follow.
    Error(String),
}

/// A running generation: its prompt size and its event stream.
#[derive(Debug)]
pub struct Generation {
    /// Prompt tokens (after the chat template).
    pub prompt_tokens: usize,
    /// Events, ending with [`Event::Done`] or [`Event::Error`]. Dropping it cancels.
    pub events: tmpsc::Receiver<Event>,
}

/// A finished, non-streamed generation.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// Generated text (without a matched stop sequence).
    pub text: String,
    /// Sampled token ids.
    pub tokens: Vec<u32>,
    /// Why it ended.
    pub finish_reason: FinishReason,
    /// Token counts.
    pub usage: Usage,
}

impl Generation {
    /// Waits for the whole generation.
    pub async fn collect(mut self) -> Result<Completion> {
        let mut acc = Collected::default();
        while let Some(ev) = self.events.recv().await {
            if let Some(done) = acc.push(ev) {
                return done;
            }
        }
        Err(Error::Stopped)
    }
}

/// Text and tokens gathered from a generation's events until it finishes.
#[derive(Default)]
struct Collected {
    text: String,
    tokens: Vec<u32>,
}

impl Collected {
    /// Takes one event; returns the outcome once the generation has ended.
    fn push(&mut self, ev: Event) -> Option<Result<Completion>> {
        match ev {
            Event::Token { id, text } => {
                self.tokens.push(id);
                self.text.push_str(&text);
                None
            }
            Event::Done {
                finish_reason,
                usage,
            } => Some(Ok(Completion {
                text: std::mem::take(&mut self.text),
                tokens: std::mem::take(&mut self.tokens),
                finish_reason,
                usage,
            })),
            Event::Error(e) => Some(Err(Error::InvalidRequest { reason: e })),
        }
    }
}

struct Job {
    prompt: Vec<u32>,
    adapter: Option<Arc<LoraAdapter>>,
    params: SamplingParams,
    tx: tmpsc::Sender<Event>,
}

struct Shared {
    tokenizer: Arc<Tokenizer>,
    adapters: Arc<AdapterStore>,
    model_cfg: LlamaConfig,
    stats: Arc<EngineStats>,
    config: EngineConfig,
    queue: SyncSender<Job>,
    worker: Mutex<Option<JoinHandle<()>>>,
}

/// A handle to the engine; cheap to clone. The scheduler thread stops when the last handle
/// is dropped.
#[derive(Clone)]
pub struct Engine {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("model", &self.shared.config.model_name)
            .finish()
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // The queue sender is dropped with `self`, which ends the worker loop; join it so no
        // thread outlives the engine.
        let (tx, _) = mpsc::sync_channel(0);
        drop(std::mem::replace(&mut self.queue, tx));
        if let Some(h) = self.worker.lock().ok().and_then(|mut w| w.take()) {
            let _ = h.join();
        }
    }
}

impl Engine {
    /// Loads the model, tokenizer and pinned adapters and starts the scheduler thread.
    pub fn start(config: EngineConfig) -> Result<Self> {
        let device = config.device()?;
        if config.max_batch == 0 || config.stream_buffer == 0 {
            return Err(Error::InvalidConfig {
                field: "max_batch",
                reason: "max_batch and stream_buffer must be at least 1".into(),
            });
        }
        let t0 = Instant::now();
        tracing::info!(target: "engine::load", path = %config.model_path.display(), format = ?config.weight_format, "loading model");
        // Fail early and clearly when the file is missing.
        std::fs::metadata(&config.model_path).map_err(|source| Error::ModelFile {
            path: config.model_path.clone(),
            source,
        })?;
        let tokenizer = Arc::new(Tokenizer::from_gguf(&config.model_path)?);
        let model = Llama::load(&config.model_path, config.weight_format, &device)?;
        let model_cfg = model.config().clone();
        tracing::info!(
            target: "engine::load",
            layers = model_cfg.n_layer,
            hidden = model_cfg.hidden,
            vocab = model_cfg.vocab,
            context = model_cfg.context_len,
            kernels = %model.kernels(),
            elapsed_ms = t0.elapsed().as_millis() as u64,
            "model loaded"
        );
        let adapters = Arc::new(AdapterStore::open(
            config.adapter_dir.as_deref(),
            config.adapter_cache,
            model_cfg.clone(),
        )?);
        for key in &config.pinned_adapters {
            adapters.pin(key)?;
        }
        let stats = Arc::new(EngineStats::register());
        let (queue, rx) = mpsc::sync_channel(config.max_queue.max(1));
        let stop_ids: Vec<u32> = [tokenizer.eos_id(), tokenizer.token_to_id("<|endoftext|>")]
            .into_iter()
            .flatten()
            .collect();
        let worker = Worker {
            model,
            tokenizer: tokenizer.clone(),
            stats: stats.clone(),
            rx,
            max_batch: config.max_batch,
            max_prefill: config.max_prefill_tokens.max(1),
            stop_ids,
            active: Vec::new(),
            waiting: VecDeque::new(),
        };
        let handle = std::thread::Builder::new()
            .name("engine-scheduler".into())
            .spawn(move || worker.run())
            .map_err(|e| Error::InvalidConfig {
                field: "engine",
                reason: e.to_string(),
            })?;
        Ok(Self {
            shared: Arc::new(Shared {
                tokenizer,
                adapters,
                model_cfg,
                stats,
                config,
                queue,
                worker: Mutex::new(Some(handle)),
            }),
        })
    }

    /// The served base model name.
    pub fn model_name(&self) -> &str {
        &self.shared.config.model_name
    }

    /// The model's shape.
    pub fn model_config(&self) -> &LlamaConfig {
        &self.shared.model_cfg
    }

    /// The tokenizer (the one used for billing counts).
    pub fn tokenizer(&self) -> &Arc<Tokenizer> {
        &self.shared.tokenizer
    }

    /// The adapter store.
    pub fn adapters(&self) -> &Arc<AdapterStore> {
        &self.shared.adapters
    }

    /// Scheduler statistics.
    pub fn stats(&self) -> &Arc<EngineStats> {
        &self.shared.stats
    }

    /// Tokenizes a prompt (applying the chat template for [`Prompt::Chat`]).
    pub fn tokenize(&self, prompt: &Prompt) -> Vec<u32> {
        match prompt {
            Prompt::Text(t) => self.shared.tokenizer.encode(t),
            Prompt::Chat(m) => self.shared.tokenizer.encode(&render_chatml(m)),
            Prompt::Tokens(t) => t.clone(),
        }
    }

    /// Validates the request, loads its adapter if needed, and queues it. Errors here are the
    /// caller's (4xx) except [`Error::Overloaded`] and [`Error::Stopped`].
    ///
    /// Tokenizing and a cold adapter load are CPU/disk work: call it from a blocking context
    /// (e.g. `tokio::task::spawn_blocking`).
    pub fn generate(&self, req: GenerateRequest) -> Result<Generation> {
        req.params.validate()?;
        let prompt = self.tokenize(&req.prompt);
        if prompt.is_empty() {
            return Err(Error::InvalidRequest {
                reason: "the prompt is empty".into(),
            });
        }
        let vocab = self.shared.model_cfg.vocab as u32;
        if let Some(bad) = prompt.iter().find(|&&t| t >= vocab) {
            return Err(Error::InvalidRequest {
                reason: format!("token id {bad} is outside the vocabulary"),
            });
        }
        let limit = self.shared.model_cfg.context_len;
        if prompt.len() >= limit {
            return Err(Error::ContextOverflow {
                tokens: prompt.len(),
                limit,
            });
        }
        let adapter = req
            .adapter
            .as_deref()
            .map(|a| self.shared.adapters.get(a))
            .transpose()?;
        let (tx, rx) = tmpsc::channel(self.shared.config.stream_buffer);
        let prompt_tokens = prompt.len();
        let job = Job {
            prompt,
            adapter,
            params: req.params,
            tx,
        };
        // Count before sending: the scheduler may take the job (and decrement) at once.
        self.shared.stats.enqueued();
        match self.shared.queue.try_send(job) {
            Ok(()) => Ok(Generation {
                prompt_tokens,
                events: rx,
            }),
            Err(e) => {
                let queued = self.shared.stats.dequeued() as usize;
                match e {
                    TrySendError::Full(_) => Err(Error::Overloaded { queued }),
                    TrySendError::Disconnected(_) => Err(Error::Stopped),
                }
            }
        }
    }

    /// Generates to the end, blocking the calling thread (for tools and tests; not from
    /// inside an async runtime).
    pub fn generate_blocking(&self, req: GenerateRequest) -> Result<Completion> {
        let mut g = self.generate(req)?;
        let mut acc = Collected::default();
        while let Some(ev) = g.events.blocking_recv() {
            if let Some(done) = acc.push(ev) {
                return done;
            }
        }
        Err(Error::Stopped)
    }
}

/// A sequence in the running batch.
struct Seq {
    state: SeqState,
    prompt: Vec<u32>,
    /// Prompt tokens already fed; the prompt is done when this reaches its length.
    prefilled: usize,
    /// The last sampled token, fed at the next step once the prompt is done.
    feed: Vec<u32>,
    generated: Vec<u32>,
    sampler: Sampler,
    params: SamplingParams,
    adapter: Option<Arc<LoraAdapter>>,
    tx: tmpsc::Sender<Event>,
    /// Events the consumer has not taken yet.
    outbox: VecDeque<Event>,
    /// Bytes of the decoded text already released.
    emitted: usize,
    done: bool,
}

impl Seq {
    /// Pushes queued events into the channel. Returns false when the consumer is gone.
    fn flush(&mut self) -> bool {
        while let Some(ev) = self.outbox.pop_front() {
            match self.tx.try_send(ev) {
                Ok(()) => {}
                Err(tmpsc::error::TrySendError::Full(ev)) => {
                    self.outbox.push_front(ev);
                    return true;
                }
                Err(tmpsc::error::TrySendError::Closed(_)) => return false,
            }
        }
        !self.tx.is_closed()
    }

    fn usage(&self) -> Usage {
        Usage {
            prompt_tokens: self.prompt.len(),
            completion_tokens: self.generated.len(),
            total_tokens: self.prompt.len() + self.generated.len(),
        }
    }
}

struct Worker {
    model: Llama,
    tokenizer: Arc<Tokenizer>,
    stats: Arc<EngineStats>,
    rx: Receiver<Job>,
    max_batch: usize,
    max_prefill: usize,
    stop_ids: Vec<u32>,
    active: Vec<Seq>,
    waiting: VecDeque<Job>,
}

impl Worker {
    fn run(mut self) {
        loop {
            // Take new requests; block only when there is nothing to do.
            let idle = self.active.is_empty() && self.waiting.is_empty();
            let first = if idle {
                match self.rx.recv() {
                    Ok(j) => Some(j),
                    Err(_) => return, // every handle dropped
                }
            } else {
                None
            };
            self.waiting.extend(first);
            while let Ok(j) = self.rx.try_recv() {
                self.waiting.push_back(j);
            }
            self.admit();
            // Deliver pending events; drop sequences whose consumer left.
            let stats = &self.stats;
            self.active.retain_mut(|s| {
                if !s.flush() {
                    if !s.done {
                        stats.cancelled();
                    }
                    return false;
                }
                !(s.done && s.outbox.is_empty())
            });
            self.stats.set_active(self.active.len());
            let runnable: Vec<usize> = (0..self.active.len())
                .filter(|&i| !self.active[i].done && self.active[i].outbox.is_empty())
                .collect();
            if runnable.is_empty() {
                if !self.active.is_empty() || !self.waiting.is_empty() {
                    // Everyone is parked behind a slow consumer: wait a little for new work.
                    match self.rx.recv_timeout(Duration::from_millis(2)) {
                        Ok(j) => self.waiting.push_back(j),
                        Err(RecvTimeoutError::Timeout) => {}
                        Err(RecvTimeoutError::Disconnected) => return,
                    }
                }
                continue;
            }
            if let Err(e) = self.step(&runnable) {
                tracing::error!(target: "engine::scheduler", error = %e, "forward step failed; failing its sequences");
                for &i in &runnable {
                    let s = &mut self.active[i];
                    s.outbox
                        .push_back(Event::Error(format!("inference failed: {e}")));
                    s.done = true;
                }
            }
        }
    }

    /// Moves waiting jobs into the batch, up to the batch size.
    fn admit(&mut self) {
        while self.active.len() < self.max_batch {
            let Some(job) = self.waiting.front() else {
                break;
            };
            if job.tx.is_closed() {
                self.waiting.pop_front();
                self.stats.dequeued();
                self.stats.cancelled();
                continue;
            }
            let Some(job) = self.waiting.pop_front() else {
                break;
            };
            self.stats.dequeued();
            self.active.push(Seq {
                state: self.model.new_state(),
                prompt: job.prompt,
                prefilled: 0,
                feed: Vec::new(),
                generated: Vec::new(),
                sampler: Sampler::new(&job.params),
                params: job.params,
                adapter: job.adapter,
                tx: job.tx,
                outbox: VecDeque::new(),
                emitted: 0,
                done: false,
            });
        }
    }

    /// Runs one forward step for the runnable sequences: every decoding one, and prefilling
    /// ones (oldest first) while the step's prompt-token budget lasts.
    fn step(&mut self, runnable: &[usize]) -> Result<()> {
        let t0 = Instant::now();
        let left: Vec<usize> = runnable
            .iter()
            .map(|&i| self.active[i].prompt.len() - self.active[i].prefilled)
            .collect();
        let chosen: Vec<(usize, usize)> = plan_step(&left, self.max_prefill)
            .into_iter()
            .map(|(k, n)| (runnable[k], n))
            .collect();
        let prompt_tokens: usize = chosen.iter().map(|&(_, n)| n).sum();
        let logits = {
            let mut rows: Vec<StepRow<'_>> = Vec::with_capacity(chosen.len());
            let mut next = chosen.iter().peekable();
            for (i, s) in self.active.iter_mut().enumerate() {
                let Some(&(_, n)) = next.next_if(|&&(j, _)| j == i) else {
                    continue;
                };
                let tokens = if n > 0 {
                    &s.prompt[s.prefilled..s.prefilled + n]
                } else {
                    &s.feed[..]
                };
                rows.push(StepRow {
                    tokens,
                    state: &mut s.state,
                    adapter: s.adapter.as_deref(),
                });
            }
            self.model.forward(&mut rows)?
        };
        self.stats.step(chosen.len(), prompt_tokens, t0.elapsed());
        let context = self.model.config().context_len;
        for (&(i, n), logits) in chosen.iter().zip(logits) {
            let s = &mut self.active[i];
            s.prefilled += n;
            if s.prefilled < s.prompt.len() {
                continue; // more of the prompt to feed: these logits are not a prediction
            }
            self.stats.generated();
            let tok = s.sampler.sample(&logits)?;
            s.generated.push(tok);
            s.feed.clear();
            s.feed.push(tok);
            if self.stop_ids.contains(&tok) && !s.params.ignore_eos {
                finish(s, &self.tokenizer, tok, FinishReason::Stop, true);
                continue;
            }
            if release_text(s, &self.tokenizer, tok) {
                continue; // a stop sequence matched
            }
            if s.generated.len() >= s.params.max_tokens || s.state.pos() + 1 >= context {
                finish(s, &self.tokenizer, tok, FinishReason::Length, false);
            }
        }
        Ok(())
    }
}

/// Chooses a step's rows. `left[k]` is the number of prompt tokens sequence `k` still has to
/// feed (0 once it decodes). Returns `(k, prompt tokens fed)` for each chosen sequence, in
/// order: every decoding sequence (with 0), and prefilling ones in order while `budget`
/// prompt tokens last, the last one taking a partial chunk.
fn plan_step(left: &[usize], budget: usize) -> Vec<(usize, usize)> {
    let mut budget = budget.max(1);
    let mut chosen = Vec::with_capacity(left.len());
    for (k, &l) in left.iter().enumerate() {
        if l == 0 {
            chosen.push((k, 0));
        } else if budget > 0 {
            let n = l.min(budget);
            budget -= n;
            chosen.push((k, n));
        }
    }
    chosen
}

/// Decodes the generated tokens and queues the newly released text for `tok`. Returns true
/// when a stop sequence ended the generation.
fn release_text(s: &mut Seq, tok_: &Tokenizer, tok: u32) -> bool {
    let text = tok_.decode(&s.generated);
    // Stop sequences: search the not yet released part (plus an overlap).
    let max_stop = s.params.stop.iter().map(String::len).max().unwrap_or(0);
    let mut search_from = s.emitted.saturating_sub(max_stop);
    while !text.is_char_boundary(search_from) {
        search_from -= 1;
    }
    let hit = s
        .params
        .stop
        .iter()
        .filter_map(|st| {
            text[search_from..]
                .find(st.as_str())
                .map(|p| search_from + p)
        })
        .min();
    if let Some(end) = hit {
        let end = end.max(s.emitted);
        let delta = text.get(s.emitted..end).unwrap_or_default().to_string();
        s.emitted = end;
        s.outbox.push_back(Event::Token {
            id: tok,
            text: delta,
        });
        s.outbox.push_back(Event::Done {
            finish_reason: FinishReason::Stop,
            usage: s.usage(),
        });
        s.done = true;
        return true;
    }
    // Hold back a trailing partial character and the longest suffix that may start a stop
    // sequence.
    let mut end = text.len();
    if text.ends_with('\u{FFFD}') {
        end -= '\u{FFFD}'.len_utf8();
    }
    let hold = s
        .params
        .stop
        .iter()
        .filter_map(|st| {
            (1..st.len())
                .rev()
                .find(|&k| st.is_char_boundary(k) && text[..end].ends_with(&st[..k]))
        })
        .max()
        .unwrap_or(0);
    let safe = end - hold;
    let safe = safe.max(s.emitted);
    let delta = text.get(s.emitted..safe).unwrap_or_default().to_string();
    s.emitted = safe;
    s.outbox.push_back(Event::Token {
        id: tok,
        text: delta,
    });
    false
}

/// Ends a sequence: releases any held-back text (an end-of-sequence token's own text is not
/// part of the output) and queues `Done`.
fn finish(s: &mut Seq, tok_: &Tokenizer, tok: u32, reason: FinishReason, end_token: bool) {
    let upto = if end_token {
        s.generated.len() - 1
    } else {
        s.generated.len()
    };
    let text = tok_.decode(&s.generated[..upto]);
    let rest = text.get(s.emitted..).unwrap_or_default().to_string();
    s.emitted = text.len();
    match s.outbox.back_mut() {
        // `release_text` already queued this token's event in this step: extend it.
        Some(Event::Token { id, text }) if !end_token && *id == tok => text.push_str(&rest),
        _ => s.outbox.push_back(Event::Token {
            id: tok,
            text: rest,
        }),
    }
    s.outbox.push_back(Event::Done {
        finish_reason: reason,
        usage: s.usage(),
    });
    s.done = true;
}

#[cfg(test)]
mod tests {
    use super::plan_step;

    #[test]
    fn decode_rows_always_run_and_prompts_share_the_budget_oldest_first() {
        // Two decoding sequences, a 300-token prompt, a 10-token prompt.
        let left = [0, 300, 0, 10];
        assert_eq!(
            plan_step(&left, 128),
            vec![(0, 0), (1, 128), (2, 0)],
            "the long prompt takes the whole budget; the short one waits"
        );
        assert_eq!(
            plan_step(&[0, 100, 0, 10], 128),
            vec![(0, 0), (1, 100), (2, 0), (3, 10)]
        );
        assert_eq!(
            plan_step(&[0, 120, 0, 10], 128),
            vec![(0, 0), (1, 120), (2, 0), (3, 8)],
            "the last prompt in gets a partial chunk"
        );
        // A step always makes progress, even with a zero budget.
        assert_eq!(plan_step(&[5], 0), vec![(0, 1)]);
        assert_eq!(plan_step(&[0, 0], 16), vec![(0, 0), (1, 0)]);
    }
}
