//! Choosing and starting the backend the server serves through.

use std::path::PathBuf;
use std::sync::Arc;

use openledger_engine::{Backend, Engine, EngineConfig};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Which inference backend serves requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendKind {
    /// The candle engine: GGUF models, continuous batching, LoRA adapters (the default).
    #[default]
    Candle,
    /// libtorch: TorchScript models exported from PyTorch (needs the `tch` feature).
    Tch,
}

impl std::str::FromStr for BackendKind {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "candle" => Ok(Self::Candle),
            "tch" => Ok(Self::Tch),
            other => Err(format!("unknown backend {other:?}: use candle or tch")),
        }
    }
}

/// Settings of the libtorch backend (the `[oracle.tch]` table).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TchConfig {
    /// The TorchScript model (`torch.jit.script(model).save(path)`). Default: none (required
    /// with `backend = "tch"`).
    pub model: Option<PathBuf>,
    /// A GGUF file whose tokenizer the model was trained with. Default: the candle engine's
    /// `model_path` (SmolLM2's tokenizer).
    pub tokenizer: Option<PathBuf>,
    /// Name under which the model is served. Default `torchscript`.
    pub model_name: String,
    /// Longest sequence run through the module. Default 2048.
    pub context_len: usize,
    /// Generations run at once. Default 4.
    pub max_active: usize,
}

impl Default for TchConfig {
    fn default() -> Self {
        Self {
            model: None,
            tokenizer: None,
            model_name: "torchscript".into(),
            context_len: 2048,
            max_active: 4,
        }
    }
}

/// Loads the model and starts the chosen backend (blocking: model loading is disk and CPU
/// work).
pub(crate) fn start(
    kind: BackendKind,
    engine: &EngineConfig,
    tch: &TchConfig,
    max_queue: usize,
) -> Result<Arc<dyn Backend>> {
    match kind {
        BackendKind::Candle => Ok(Arc::new(Engine::start(engine.clone())?)),
        BackendKind::Tch => start_tch(engine, tch, max_queue),
    }
}

#[cfg(feature = "tch")]
fn start_tch(engine: &EngineConfig, tch: &TchConfig, max_queue: usize) -> Result<Arc<dyn Backend>> {
    use openledger_engine_tch::{TchEngine, TchEngineConfig, TchModel};
    let model_path = tch.model.clone().ok_or_else(|| Error::Backend {
        reason: "backend tch needs a TorchScript model: --model (OPENLEDGER_ORACLE_TCH_MODEL, \
                 [oracle.tch] model)"
            .into(),
    })?;
    let tokenizer_path = tch
        .tokenizer
        .clone()
        .unwrap_or_else(|| engine.model_path.clone());
    let tokenizer =
        openledger_engine::inference::Tokenizer::from_gguf(&tokenizer_path).map_err(|e| {
            Error::Backend {
                reason: format!("tokenizer {}: {e}", tokenizer_path.display()),
            }
        })?;
    let tch_err = |e: openledger_engine_tch::Error| Error::Backend {
        reason: e.to_string(),
    };
    let model = TchModel::load(&model_path, tokenizer).map_err(tch_err)?;
    let served = TchEngine::new(
        model,
        TchEngineConfig {
            model_name: tch.model_name.clone(),
            context_len: tch.context_len,
            max_active: tch.max_active,
            max_queue,
            ..TchEngineConfig::default()
        },
    )
    .map_err(tch_err)?;
    Ok(Arc::new(served))
}

#[cfg(not(feature = "tch"))]
fn start_tch(_: &EngineConfig, _: &TchConfig, _: usize) -> Result<Arc<dyn Backend>> {
    Err(Error::Backend {
        reason: "this binary was built without the tch feature: rebuild with --features tch \
                 (libtorch: eval \"$(scripts/setup-libtorch.sh)\")"
            .into(),
    })
}
