//! [`TchModel`]: a TorchScript causal LM on libtorch.

use std::path::Path;

use openledger_tokenizer::Tokenizer;
use tch::{CModule, Device, Kind, TchError, Tensor};

use openledger_inference::{Collected, Completion, Decoder, Event, stop_ids};

use crate::{Error, Result, Sampler, SamplingParams};

/// A TorchScript causal language model with the tokenizer it was trained with.
///
/// `forward(ids: int64 [1, T]) -> float logits [1, T, V]`, `V` the tokenizer's vocabulary
/// size (checked at load). `Send + Sync`: share it in an `Arc`; libtorch runs concurrent
/// forwards safely.
#[derive(Debug)]
pub struct TchModel {
    module: CModule,
    /// The model file, for error messages.
    path: String,
    tokenizer: Tokenizer,
    device: Device,
    /// Tokens that end a generation: the tokenizer's EOS and `<|endoftext|>`, as in the
    /// candle engine.
    stop_ids: Vec<u32>,
}

/// Logits of one forward pass: a row of `vocab` scores for each input position.
#[derive(Debug, Clone, PartialEq)]
pub struct Logits {
    /// Number of input positions (`T`).
    pub positions: usize,
    /// Vocabulary size (`V`).
    pub vocab: usize,
    /// Row-major `[T, V]` scores, as `float32`.
    pub data: Vec<f32>,
}

impl Logits {
    /// The scores predicting the token after position `t`.
    ///
    /// # Panics
    /// When `t >= positions`.
    pub fn row(&self, t: usize) -> &[f32] {
        &self.data[t * self.vocab..(t + 1) * self.vocab]
    }
}

impl TchModel {
    /// Loads the TorchScript module at `path` on the CPU; see [`TchModel::load_on`].
    pub fn load(path: impl AsRef<Path>, tokenizer: Tokenizer) -> Result<Self> {
        Self::load_on(path, tokenizer, Device::Cpu)
    }

    /// Loads the TorchScript module at `path` on `device` (`Device::Cuda(0)` needs the `cuda`
    /// feature, see the crate docs) and checks with one probe token that it maps ids
    /// `[1, T]` to logits `[1, T, V]` over this tokenizer's vocabulary.
    pub fn load_on(path: impl AsRef<Path>, tokenizer: Tokenizer, device: Device) -> Result<Self> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        #[cfg(feature = "cuda")]
        crate::cuda_link::anchor();
        if !path.is_file() {
            return Err(Error::ModelNotFound { path: shown });
        }
        let mut module = CModule::load_on_device(path, device).map_err(|e| Error::Load {
            path: shown.clone(),
            reason: first_line(&e),
        })?;
        module.set_eval();
        let stop_ids = stop_ids(&tokenizer);
        let model = Self {
            module,
            path: shown,
            tokenizer,
            device,
            stop_ids,
        };
        // The probe: a model that fails on one token, or answers in another shape, is not one
        // this backend can serve; say so at load rather than on the first request.
        let probe = model.eos_or_zero();
        let _probe_logits = model.run(&[probe]).map_err(|e| match e {
            Error::Forward { reason, .. } => Error::BadModel {
                path: model.path.clone(),
                reason: format!("forward on one token failed: {reason}"),
            },
            other => other,
        })?;
        Ok(model)
    }

    /// The tokenizer the model counts with.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Counts the tokens of `text` as the model sees them (for metering).
    pub fn count_tokens(&self, text: &str) -> usize {
        self.tokenizer.count(text)
    }

    /// The device the module runs on.
    pub fn device(&self) -> Device {
        self.device
    }

    /// Runs the module on `ids` and returns the logits of every position.
    pub fn forward(&self, ids: &[u32]) -> Result<Logits> {
        if ids.is_empty() {
            return Err(Error::EmptyPrompt);
        }
        let logits = self.run(ids)?;
        let positions = ids.len();
        let vocab = self.tokenizer.vocab_size();
        let data = to_vec(&logits.f_view([-1]), positions)?;
        Ok(Logits {
            positions,
            vocab,
            data,
        })
    }

    /// Generates a continuation of `prompt`; see [`TchModel::generate_ids`].
    pub fn generate(&self, prompt: &str, params: &SamplingParams) -> Result<Completion> {
        self.generate_ids(&self.tokenizer.encode(prompt), params)
    }

    /// Generates up to `params.max_tokens` tokens after `prompt_ids`, with the stop rules of
    /// every backend (`openledger_inference::Decoder`: end-of-sequence tokens, stop
    /// sequences). Greedy when `params.temperature` is 0; otherwise seeded temperature + top-p
    /// sampling, the same tokens for the same seed.
    pub fn generate_ids(&self, prompt_ids: &[u32], params: &SamplingParams) -> Result<Completion> {
        let mut acc = Collected::default();
        let mut done = None;
        self.generate_with(prompt_ids, params, usize::MAX, |ev| {
            done = acc.push(ev);
            true
        })?;
        match done {
            Some(Ok(c)) => Ok(c),
            Some(Err(e)) => Err(Error::Forward {
                tokens: prompt_ids.len(),
                reason: e.to_string(),
            }),
            None => unreachable!("a generation that returns Ok has ended"),
        }
    }

    /// Runs a generation, handing each event to `emit` until it ends or `emit` returns false
    /// (the consumer is gone). `context_len` is the longest sequence to run.
    pub(crate) fn generate_with(
        &self,
        prompt_ids: &[u32],
        params: &SamplingParams,
        context_len: usize,
        mut emit: impl FnMut(Event) -> bool,
    ) -> Result<()> {
        params.validate()?;
        if prompt_ids.is_empty() {
            return Err(Error::EmptyPrompt);
        }
        let mut sampler = Sampler::new(params);
        let mut decoder = Decoder::new(params, prompt_ids.len(), self.stop_ids.clone());
        let mut seq = prompt_ids.to_vec();
        let mut events = Vec::with_capacity(2);
        while !decoder.is_done() {
            let last = self.run(&seq)?.f_select(0, -1);
            let row = to_vec(&last, seq.len())?;
            let tok = sampler.sample(&row)?;
            seq.push(tok);
            decoder.push(&self.tokenizer, tok, seq.len() >= context_len, &mut events);
            for ev in events.drain(..) {
                if !emit(ev) {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Forward pass returning the logits `[T, V]` as a float32 CPU tensor, shape checked.
    fn run(&self, ids: &[u32]) -> Result<Tensor> {
        let tokens = ids.len();
        let forward_err = |e: TchError| Error::Forward {
            tokens,
            reason: first_line(&e),
        };
        let ids: Vec<i64> = ids.iter().map(|&i| i64::from(i)).collect();
        let input = Tensor::from_slice(&ids)
            .f_view([1, -1])
            .map_err(forward_err)?
            .to_device(self.device);
        let out = tch::no_grad(|| self.module.forward_ts(&[input])).map_err(forward_err)?;
        let vocab = self.tokenizer.vocab_size();
        let size = out.size();
        if size != [1, tokens as i64, vocab as i64] {
            return Err(Error::BadModel {
                path: self.path.clone(),
                reason: format!(
                    "ids [1, {tokens}] gave output of shape {size:?}, expected [1, {tokens}, {vocab}]"
                ),
            });
        }
        out.f_select(0, 0)
            .and_then(|t| t.f_to_kind(Kind::Float))
            .map(|t| t.to_device(Device::Cpu))
            .map_err(forward_err)
    }

    fn eos_or_zero(&self) -> u32 {
        self.stop_ids.first().copied().unwrap_or(0)
    }
}

/// Copies a float tensor (a `Result` from an `f_` op) into a `Vec`.
fn to_vec(t: &Result<Tensor, TchError>, tokens: usize) -> Result<Vec<f32>> {
    let err = |e: &TchError| Error::Forward {
        tokens,
        reason: first_line(e),
    };
    let t = t.as_ref().map_err(err)?;
    Vec::<f32>::try_from(&t.contiguous()).map_err(|e| err(&e))
}

/// libtorch errors carry a C++ backtrace after the first line; keep the message.
fn first_line(e: &TchError) -> String {
    let s = e.to_string();
    s.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("unknown libtorch error")
        .trim()
        .to_owned()
}
