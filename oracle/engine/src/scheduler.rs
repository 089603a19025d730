//! The continuous-batching scheduler: one OS thread that owns the model and runs forward steps.
//!
//! Requests arrive on a bounded queue and join the running batch at the next step boundary;
//! finished or cancelled sequences leave at the end of a step. Prompts are prefilled in chunks
//! next to the other sequences' decode rows: each step feeds at most `max_prefill_tokens`
//! prompt tokens in all (oldest request first), so a long prompt delays the running sequences
//! by one chunk's worth of compute per step, never by its whole length. Each request streams
//! its events through its own bounded channel: when a consumer does not keep up, its sequence
//! is parked (skipped by the next steps, its events kept) until the channel has room again, so
//! the other sequences go on; when the consumer disconnects, the sequence is dropped.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use openledger_inference::{Decoder, Error as InferenceError, Event};
use openledger_tokenizer::Tokenizer;
use tokio::sync::mpsc as tmpsc;

use crate::Result;
use crate::lora::LoraAdapter;
use crate::metrics::EngineStats;
use crate::model::{Llama, SeqState, StepRow};
use crate::sampling::{Sampler, SamplingParams};

/// A queued request, as the scheduler takes it.
pub(crate) struct Job {
    pub(crate) prompt: Vec<u32>,
    pub(crate) adapter: Option<Arc<LoraAdapter>>,
    pub(crate) params: SamplingParams,
    pub(crate) tx: tmpsc::Sender<Event>,
}

/// A sequence in the running batch.
struct Seq {
    state: SeqState,
    prompt: Vec<u32>,
    /// Prompt tokens already fed; the prompt is done when this reaches its length.
    prefilled: usize,
    /// The last sampled token, fed at the next step once the prompt is done.
    feed: Vec<u32>,
    sampler: Sampler,
    /// Turns sampled tokens into events (stop rules, text).
    decoder: Decoder,
    adapter: Option<Arc<LoraAdapter>>,
    tx: tmpsc::Sender<Event>,
    /// Events the consumer has not taken yet.
    outbox: VecDeque<Event>,
    /// Ended (done, failed); leaves the batch once its events are delivered.
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
}

/// The scheduler thread's state.
pub(crate) struct Worker {
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
    /// A scheduler over `model` taking jobs from `rx`.
    pub(crate) fn new(
        model: Llama,
        tokenizer: Arc<Tokenizer>,
        stats: Arc<EngineStats>,
        rx: Receiver<Job>,
        max_batch: usize,
        max_prefill: usize,
    ) -> Self {
        let stop_ids = openledger_inference::stop_ids(&tokenizer);
        Self {
            model,
            tokenizer,
            stats,
            rx,
            max_batch,
            max_prefill: max_prefill.max(1),
            stop_ids,
            active: Vec::new(),
            waiting: VecDeque::new(),
        }
    }

    /// Runs until every engine handle is dropped.
    pub(crate) fn run(mut self) {
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
                    s.outbox.push_back(Event::Error(InferenceError::Inference {
                        reason: e.to_string(),
                    }));
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
            let decoder = Decoder::new(&job.params, job.prompt.len(), self.stop_ids.clone());
            self.active.push(Seq {
                state: self.model.new_state(),
                prompt: job.prompt,
                prefilled: 0,
                feed: Vec::new(),
                sampler: Sampler::new(&job.params),
                decoder,
                adapter: job.adapter,
                tx: job.tx,
                outbox: VecDeque::new(),
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
            s.feed.clear();
            s.feed.push(tok);
            let context_full = s.state.pos() + 1 >= context;
            s.done = s
                .decoder
                .push(&self.tokenizer, tok, context_full, &mut s.outbox);
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
