//! [`TchEngine`]: a [`TchModel`] served through the inference interface ([`Backend`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use openledger_inference::{
    AdapterInfo, Backend, Error as InferenceError, Event, GenerateRequest, Generation, Load,
    Result as InferenceResult, check_prompt,
};
use openledger_tokenizer::Tokenizer;
use tokio::sync::mpsc;

use crate::{Error, TchModel};

/// Settings of a [`TchEngine`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TchEngineConfig {
    /// Name under which the model is served.
    pub model_name: String,
    /// Longest sequence (prompt + generated) run through the module: TorchScript modules do
    /// not declare their context window. Default 2048.
    pub context_len: usize,
    /// Generations run at once; more wait in the queue. Default 4.
    pub max_active: usize,
    /// Requests waiting before new ones are refused as overloaded. Default 64.
    pub max_queue: usize,
    /// Events buffered per request before its generation waits for the consumer. Default 64.
    pub stream_buffer: usize,
}

impl Default for TchEngineConfig {
    fn default() -> Self {
        Self {
            model_name: "torchscript".into(),
            context_len: 2048,
            max_active: 4,
            max_queue: 64,
            stream_buffer: 64,
        }
    }
}

/// A TorchScript model served through [`Backend`]: each request runs on a worker thread of
/// its own (at most `max_active` at once), streaming its events through a bounded channel; a
/// consumer that goes away ends its generation at the next token. No adapters.
#[derive(Debug, Clone)]
pub struct TchEngine {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    model: TchModel,
    config: TchEngineConfig,
    /// Generations running.
    active: AtomicU64,
    /// Requests admitted and not yet finished (running or waiting for a slot).
    admitted: AtomicU64,
    /// Slots for running generations.
    slots: std::sync::Mutex<usize>,
    slot_free: std::sync::Condvar,
}

impl TchEngine {
    /// Serves `model` with `config`.
    pub fn new(model: TchModel, config: TchEngineConfig) -> Result<Self, Error> {
        if config.max_active == 0 || config.stream_buffer == 0 || config.context_len < 2 {
            return Err(Error::InvalidConfig {
                reason: "max_active and stream_buffer must be at least 1, context_len at least 2"
                    .into(),
            });
        }
        let slots = config.max_active;
        Ok(Self {
            inner: Arc::new(Inner {
                model,
                config,
                active: AtomicU64::new(0),
                admitted: AtomicU64::new(0),
                slots: std::sync::Mutex::new(slots),
                slot_free: std::sync::Condvar::new(),
            }),
        })
    }

    /// The served model.
    pub fn model(&self) -> &TchModel {
        &self.inner.model
    }
}

impl Inner {
    /// Waits for a free slot.
    fn acquire(&self) {
        let mut free = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        while *free == 0 {
            free = self.slot_free.wait(free).unwrap_or_else(|p| p.into_inner());
        }
        *free -= 1;
    }

    fn release(&self) {
        *self.slots.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        self.slot_free.notify_one();
    }
}

impl From<Error> for InferenceError {
    /// Bad parameters and empty prompts are the client's; the rest is the model's.
    fn from(e: Error) -> Self {
        match e {
            Error::InvalidParams { param, reason } => {
                InferenceError::InvalidParam { param, reason }
            }
            Error::EmptyPrompt => InferenceError::InvalidParam {
                param: "prompt",
                reason: e.to_string(),
            },
            other => InferenceError::Inference {
                reason: other.to_string(),
            },
        }
    }
}

impl Backend for TchEngine {
    fn kind(&self) -> &'static str {
        "tch"
    }

    fn model_name(&self) -> &str {
        &self.inner.config.model_name
    }

    fn tokenizer(&self) -> &Tokenizer {
        self.inner.model.tokenizer()
    }

    fn adapters(&self) -> Vec<AdapterInfo> {
        Vec::new()
    }

    fn has_adapter(&self, _key: &str) -> bool {
        false
    }

    fn generate(&self, req: GenerateRequest) -> InferenceResult<Generation> {
        req.params.validate()?;
        if req.adapter.is_some() {
            return Err(InferenceError::Unsupported {
                backend: "tch",
                what: "LoRA adapters".into(),
            });
        }
        let inner = &self.inner;
        let prompt = req.prompt.tokens(inner.model.tokenizer());
        check_prompt(
            &prompt,
            inner.model.tokenizer().vocab_size(),
            inner.config.context_len,
        )?;
        let waiting = inner
            .admitted
            .load(Relaxed)
            .saturating_sub(inner.active.load(Relaxed));
        if waiting as usize >= inner.config.max_queue {
            return Err(InferenceError::Overloaded {
                queued: waiting as usize,
            });
        }
        inner.admitted.fetch_add(1, Relaxed);
        let (tx, rx) = mpsc::channel(inner.config.stream_buffer);
        let prompt_tokens = prompt.len();
        let inner = self.inner.clone();
        let params = req.params;
        let spawned = std::thread::Builder::new()
            .name("tch-generation".into())
            .spawn(move || {
                inner.acquire();
                inner.active.fetch_add(1, Relaxed);
                let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    inner
                        .model
                        .generate_with(&prompt, &params, inner.config.context_len, |ev| {
                            tx.blocking_send(ev).is_ok()
                        })
                }));
                let failure = match run {
                    Ok(Ok(())) => None,
                    Ok(Err(e)) => Some(InferenceError::from(e)),
                    Err(_) => Some(InferenceError::Inference {
                        reason: "the generation worker panicked".into(),
                    }),
                };
                if let Some(e) = failure {
                    tracing::error!(target: "engine_tch", error = %e, "generation failed");
                    let _ = tx.blocking_send(Event::Error(e));
                }
                inner.active.fetch_sub(1, Relaxed);
                inner.admitted.fetch_sub(1, Relaxed);
                inner.release();
            });
        if let Err(e) = spawned {
            self.inner.admitted.fetch_sub(1, Relaxed);
            return Err(InferenceError::Inference {
                reason: format!("cannot start a generation thread: {e}"),
            });
        }
        Ok(Generation {
            prompt_tokens,
            events: rx,
        })
    }

    fn load(&self) -> Load {
        let active = self.inner.active.load(Relaxed);
        Load {
            active,
            queued: self.inner.admitted.load(Relaxed).saturating_sub(active),
        }
    }
}
