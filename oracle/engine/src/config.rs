//! [`EngineConfig`]: the candle engine's settings.

use std::path::PathBuf;

use candle_core::Device;

use crate::model::WeightFormat;
use crate::{Error, Result};

/// Engine settings. Deserializes from a table with these field names (missing fields take
/// their defaults; unknown ones are refused).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// Path of the GGUF model. Default: [`DEFAULT_MODEL_FILE`](crate::DEFAULT_MODEL_FILE) in the
    /// working directory (this default reads no environment; the `openledger` binary's loader
    /// puts the file in `$OPENLEDGER_MODEL_DIR`, see `openledger_config::Paths`).
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
            model_path: PathBuf::from(openledger_tokenizer::DEFAULT_MODEL_FILE),
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
    /// The candle device named by [`EngineConfig::device`].
    pub(crate) fn device(&self) -> Result<Device> {
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
