//! [`Engine`]: the handle to the candle engine, and its [`Backend`] implementation.

use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use openledger_inference::{
    AdapterInfo, Backend, Completion, Error as InferenceError, GenerateRequest, Generation, Load,
    Prompt, Result as InferenceResult, check_prompt,
};
use openledger_tokenizer::Tokenizer;
use tokio::sync::mpsc as tmpsc;

use crate::config::EngineConfig;
use crate::lora::AdapterStore;
use crate::metrics::EngineStats;
use crate::model::{Llama, LlamaConfig};
use crate::scheduler::{Job, Worker};
use crate::{Error, Result};

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
        let worker = Worker::new(
            model,
            tokenizer.clone(),
            stats.clone(),
            rx,
            config.max_batch,
            config.max_prefill_tokens,
        );
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
        prompt.tokens(&self.shared.tokenizer)
    }

    /// Validates the request, loads its adapter if needed, and queues it. Errors here come
    /// before any compute; see [`InferenceError::is_client_error`] for whose they are.
    ///
    /// Tokenizing and a cold adapter load are CPU/disk work: call it from a blocking context
    /// (e.g. `tokio::task::spawn_blocking`).
    pub fn generate(&self, req: GenerateRequest) -> InferenceResult<Generation> {
        req.params.validate()?;
        let prompt = self.tokenize(&req.prompt);
        let cfg = &self.shared.model_cfg;
        check_prompt(&prompt, cfg.vocab, cfg.context_len)?;
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
                    TrySendError::Full(_) => Err(InferenceError::Overloaded { queued }),
                    TrySendError::Disconnected(_) => Err(InferenceError::Stopped),
                }
            }
        }
    }

    /// Generates to the end, blocking the calling thread (for tools and tests; not from
    /// inside an async runtime).
    pub fn generate_blocking(&self, req: GenerateRequest) -> InferenceResult<Completion> {
        self.generate(req)?.collect_blocking()
    }
}

impl Backend for Engine {
    fn kind(&self) -> &'static str {
        "candle"
    }

    fn model_name(&self) -> &str {
        Engine::model_name(self)
    }

    fn tokenizer(&self) -> &Tokenizer {
        &self.shared.tokenizer
    }

    fn adapters(&self) -> Vec<AdapterInfo> {
        self.shared
            .adapters
            .list()
            .into_iter()
            .map(|a| AdapterInfo {
                name: a.name,
                id: a.id,
            })
            .collect()
    }

    fn has_adapter(&self, key: &str) -> bool {
        self.shared.adapters.resolve(key).is_some()
    }

    fn generate(&self, req: GenerateRequest) -> InferenceResult<Generation> {
        Engine::generate(self, req)
    }

    fn load(&self) -> Load {
        let s = &self.shared.stats;
        Load {
            active: s.active(),
            queued: s.queued(),
        }
    }
}
