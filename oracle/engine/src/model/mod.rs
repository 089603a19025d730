//! A Llama decoder that runs many sequences in one step and applies per-row LoRA deltas.
//!
//! Adapted from `candle_transformers::models::quantized_llama` (MIT / Apache-2.0): the same
//! GGUF tensor names, RMSNorm, RoPE, grouped-query attention and SwiGLU MLP. What differs:
//!
//! - one call runs a *batch of sequences*, each with its own KV cache, position and adapter;
//!   the token rows of all sequences go through every linear layer together, attention runs
//!   per sequence (on the CPU in one parallel kernel over host KV
//!   caches; elsewhere as candle ops);
//! - every linear layer has a hook that adds `scale · B·(A·x)` for rows whose adapter targets
//!   it, computed per row so a row's result never depends on which other rows share the batch;
//! - the weights can stay as stored in the GGUF, or be re-quantized to Q8_0 (the default; on
//!   the CPU through [`crate::int8`]), or be dequantized to f32.

use std::io::{Read, Seek};
use std::path::Path;

use candle_core::quantized::{QTensor, gguf_file};
use candle_core::{DType, Device, Tensor};
use candle_nn::kv_cache::KvCache;

use crate::attention::{Attention, LayerKv, SeqRows};
use crate::lora::{LoraAdapter, Target};
use crate::{Error, Result};

mod linear;
mod lora_rows;
mod tensor_attention;
#[cfg(any(test, feature = "test-utils"))]
pub mod testing;
#[cfg(test)]
mod tests;

use self::linear::Linear;
pub use self::linear::WeightFormat;
use self::lora_rows::LoraRows;
use self::tensor_attention::{attention, rope, rope_tables};

/// KV cache growth step, in positions. Caches grow by this much when full, so a short
/// sequence does not reserve memory for the whole context window.
const KV_GROW: usize = 256;

/// Shape of a Llama model, read from GGUF metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaConfig {
    /// Number of transformer blocks.
    pub n_layer: usize,
    /// Number of attention (query) heads.
    pub n_head: usize,
    /// Number of key/value heads (grouped-query attention).
    pub n_kv_head: usize,
    /// Hidden size.
    pub hidden: usize,
    /// MLP inner size.
    pub ffn: usize,
    /// Vocabulary size.
    pub vocab: usize,
    /// RMSNorm epsilon.
    pub rms_eps: f64,
    /// RoPE frequency base.
    pub rope_base: f32,
    /// Maximum context length in tokens.
    pub context_len: usize,
}

impl LlamaConfig {
    /// Size of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden / self.n_head
    }

    /// Output size of a target projection.
    pub fn out_dim(&self, target: Target) -> usize {
        self.adapter_shape().out_dim(target)
    }

    /// Input size of a target projection.
    pub fn in_dim(&self, target: Target) -> usize {
        self.adapter_shape().in_dim(target)
    }
}

#[derive(Debug, Clone)]
struct RmsNorm {
    weight: Tensor,
    eps: f32,
}

impl RmsNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(candle_nn::ops::rms_norm(x, &self.weight, self.eps)?)
    }
}

#[derive(Debug, Clone)]
struct Layer {
    attn_norm: RmsNorm,
    wq: Linear,
    wk: Linear,
    wv: Linear,
    wo: Linear,
    ffn_norm: RmsNorm,
    w_gate: Linear,
    w_up: Linear,
    w_down: Linear,
}

/// Per-sequence decoding state: the KV cache of every layer and the number of positions
/// already processed.
#[derive(Debug, Clone)]
pub struct SeqState {
    kv: Kv,
    pos: usize,
}

/// A sequence's KV caches, one per layer: in host memory for the CPU attention kernel, as
/// candle tensors on other devices.
#[derive(Debug, Clone)]
enum Kv {
    Host(Vec<LayerKv>),
    Device(Vec<KvCache>),
}

impl SeqState {
    /// Number of tokens already in the cache.
    pub fn pos(&self) -> usize {
        self.pos
    }
}

/// One sequence's part of a forward step.
pub struct StepRow<'a> {
    /// New tokens to feed (the whole prompt on the first step, then one token per step).
    pub tokens: &'a [u32],
    /// The sequence's cache; advanced by `tokens.len()`.
    pub state: &'a mut SeqState,
    /// The adapter applied to this row, if any.
    pub adapter: Option<&'a LoraAdapter>,
}

/// How attention runs, chosen once when the model is loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttentionPath {
    /// This crate's CPU kernel over host KV caches (the CPU default).
    Host,
    /// candle tensor ops over device KV caches (the default on CUDA and other devices; it
    /// runs on the CPU too, which is how tests cover it without a GPU).
    Tensor,
}

impl AttentionPath {
    /// The default path for `device`.
    pub fn for_device(device: &Device) -> Self {
        if device.is_cpu() {
            Self::Host
        } else {
            Self::Tensor
        }
    }
}

/// A Llama model loaded once and shared by every sequence.
#[derive(Debug)]
pub struct Llama {
    cfg: LlamaConfig,
    embed: Tensor,
    layers: Vec<Layer>,
    norm: RmsNorm,
    lm_head: Linear,
    cos: Tensor,
    sin: Tensor,
    /// How attention runs.
    attention: AttentionPath,
    /// The CPU attention kernel (sized for the context with [`AttentionPath::Host`]).
    host_attention: Attention,
    device: Device,
}

fn md_u32(ct: &gguf_file::Content, key: &str) -> Result<usize> {
    let v = ct.metadata.get(key).ok_or_else(|| Error::ModelFormat {
        reason: format!("GGUF metadata has no {key}"),
    })?;
    Ok(v.to_u32()? as usize)
}

impl Llama {
    /// Loads a Llama-architecture GGUF file.
    pub fn load(path: &Path, format: WeightFormat, device: &Device) -> Result<Self> {
        let mut file = std::fs::File::open(path).map_err(|source| Error::ModelFile {
            path: path.to_path_buf(),
            source,
        })?;
        let ct = gguf_file::Content::read(&mut file).map_err(|e| Error::ModelFormat {
            reason: format!("{}: {e}", path.display()),
        })?;
        Self::from_gguf(&ct, &mut file, format, device)
    }

    /// Builds the model from parsed GGUF content.
    pub fn from_gguf<R: Read + Seek>(
        ct: &gguf_file::Content,
        reader: &mut R,
        format: WeightFormat,
        device: &Device,
    ) -> Result<Self> {
        let arch = ct
            .metadata
            .get("general.architecture")
            .and_then(|v| v.to_string().ok())
            .cloned()
            .unwrap_or_default();
        if arch != "llama" {
            return Err(Error::ModelFormat {
                reason: format!("architecture {arch:?} is not supported (only llama)"),
            });
        }
        let n_head = md_u32(ct, "llama.attention.head_count")?;
        let hidden = md_u32(ct, "llama.embedding_length")?;
        let cfg = LlamaConfig {
            n_layer: md_u32(ct, "llama.block_count")?,
            n_head,
            n_kv_head: md_u32(ct, "llama.attention.head_count_kv")?,
            hidden,
            ffn: md_u32(ct, "llama.feed_forward_length")?,
            vocab: 0,
            rms_eps: ct
                .metadata
                .get("llama.attention.layer_norm_rms_epsilon")
                .and_then(|v| v.to_f32().ok())
                .unwrap_or(1e-5) as f64,
            rope_base: ct
                .metadata
                .get("llama.rope.freq_base")
                .and_then(|v| v.to_f32().ok())
                .unwrap_or(10_000.0),
            context_len: md_u32(ct, "llama.context_length").unwrap_or(2048),
        };
        let mut tensor = |name: &str| -> Result<QTensor> {
            ct.tensor(reader, name, device)
                .map_err(|e| Error::ModelFormat {
                    reason: format!("tensor {name}: {e}"),
                })
        };
        let embed_q = tensor("token_embd.weight")?;
        let embed = embed_q.dequantize(device)?;
        let vocab = embed.dim(0)?;
        let norm = |q: QTensor| -> Result<RmsNorm> {
            Ok(RmsNorm {
                weight: q.dequantize(device)?,
                eps: cfg.rms_eps as f32,
            })
        };
        let output_norm = norm(tensor("output_norm.weight")?)?;
        let lm_head_q = match tensor("output.weight") {
            Ok(t) => t,
            Err(_) => embed_q, // tied embeddings (SmolLM2)
        };
        let lm_head = Linear::new(lm_head_q, format, device)?;
        let mut layers = Vec::with_capacity(cfg.n_layer);
        for i in 0..cfg.n_layer {
            let p = format!("blk.{i}");
            let mut lin =
                |n: &str| Linear::new(tensor(&format!("{p}.{n}.weight"))?, format, device);
            let wq = lin("attn_q")?;
            let wk = lin("attn_k")?;
            let wv = lin("attn_v")?;
            let wo = lin("attn_output")?;
            let w_gate = lin("ffn_gate")?;
            let w_up = lin("ffn_up")?;
            let w_down = lin("ffn_down")?;
            layers.push(Layer {
                attn_norm: norm(tensor(&format!("{p}.attn_norm.weight"))?)?,
                ffn_norm: norm(tensor(&format!("{p}.ffn_norm.weight"))?)?,
                wq,
                wk,
                wv,
                wo,
                w_gate,
                w_up,
                w_down,
            });
        }
        let cfg = LlamaConfig { vocab, ..cfg };
        let (cos, sin) = rope_tables(cfg.head_dim(), cfg.rope_base, cfg.context_len, device)?;
        let attention = AttentionPath::for_device(device);
        let host_attention = host_attention(&cfg, attention);
        Ok(Self {
            attention,
            host_attention,
            cfg,
            embed,
            layers,
            norm: output_norm,
            lm_head,
            cos,
            sin,
            device: device.clone(),
        })
    }

    /// The model's shape.
    pub fn config(&self) -> &LlamaConfig {
        &self.cfg
    }

    /// Which matrix kernels the linear layers run, with how many layers each, e.g.
    /// `"q4 avx2 x210, int8 avx2 x1"`.
    pub fn kernels(&self) -> String {
        let mut counts: Vec<(String, usize)> = Vec::new();
        let linears = self
            .layers
            .iter()
            .flat_map(|l| [&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down])
            .chain([&self.lm_head]);
        for lin in linears {
            let name = match lin {
                Linear::Int8(w) => format!("int8 {}", w.kernel()),
                Linear::Q4(_) => "q4 avx2".to_string(),
                Linear::Candle(_) => "candle".to_string(),
            };
            match counts.iter_mut().find(|(n, _)| *n == name) {
                Some((_, c)) => *c += 1,
                None => counts.push((name, 1)),
            }
        }
        counts
            .iter()
            .map(|(n, c)| format!("{n} x{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The model with attention on `path` instead of its device's default. Sequence states
    /// must be created after the switch.
    ///
    /// # Errors
    /// [`AttentionPath::Host`] on a device other than the CPU.
    pub fn with_attention(mut self, path: AttentionPath) -> Result<Self> {
        if path == AttentionPath::Host && !self.device.is_cpu() {
            return Err(Error::InvalidConfig {
                field: "attention",
                reason: "the host attention kernel runs on the CPU only".into(),
            });
        }
        self.attention = path;
        self.host_attention = host_attention(&self.cfg, path);
        Ok(self)
    }

    /// How attention runs.
    pub fn attention(&self) -> AttentionPath {
        self.attention
    }

    /// A fresh, empty sequence state.
    pub fn new_state(&self) -> SeqState {
        let n = self.cfg.n_layer;
        let kv = match self.attention {
            AttentionPath::Host => Kv::Host(vec![LayerKv::default(); n]),
            AttentionPath::Tensor => Kv::Device((0..n).map(|_| KvCache::new(2, KV_GROW)).collect()),
        };
        SeqState { kv, pos: 0 }
    }

    /// Runs one step for a batch of sequences and returns, for each row, the logits after its
    /// last new token.
    ///
    /// A row's result depends only on that row (its tokens, cache and adapter), never on the
    /// other rows in the batch: the quantized matmuls and every other op here work row by row.
    /// (With [`WeightFormat::F32`] the `gemm` blocking may differ with the batch size, so that
    /// guarantee holds only up to float rounding.)
    pub fn forward(&self, rows: &mut [StepRow<'_>]) -> Result<Vec<Vec<f32>>> {
        // On CPU this runs the step inside candle's rayon pool: the hundreds of small parallel
        // sections of a step then start on a warm worker instead of handing off from this
        // thread each time (a handoff costs a scheduler slice on a busy machine).
        self.device.with_context(|| self.forward_inner(rows))
    }

    fn forward_inner(&self, rows: &mut [StepRow<'_>]) -> Result<Vec<Vec<f32>>> {
        let cfg = &self.cfg;
        let mut spans = Vec::with_capacity(rows.len());
        let mut all_tokens = Vec::new();
        let mut positions = Vec::new();
        for row in rows.iter() {
            if row.tokens.is_empty() {
                return Err(Error::InvalidRequest {
                    reason: "a forward step needs at least one token per sequence".into(),
                });
            }
            if row.state.pos + row.tokens.len() > cfg.context_len {
                return Err(Error::ContextOverflow {
                    tokens: row.state.pos + row.tokens.len(),
                    limit: cfg.context_len,
                });
            }
            spans.push((all_tokens.len(), row.tokens.len()));
            all_tokens.extend_from_slice(row.tokens);
            positions.extend((row.state.pos..row.state.pos + row.tokens.len()).map(|p| p as u32));
        }
        let n_tok = all_tokens.len();
        let ids = Tensor::from_vec(all_tokens, n_tok, &self.device)?;
        // Per-row RoPE tables for the tensor attention; `None` for the host kernel, which has
        // its own.
        let device_rope = if self.attention == AttentionPath::Host {
            None
        } else {
            let pos = Tensor::from_vec(positions, n_tok, &self.device)?;
            Some((
                self.cos.index_select(&pos, 0)?,
                self.sin.index_select(&pos, 0)?,
            ))
        };
        let adapters: Vec<Option<&LoraAdapter>> = rows.iter().map(|r| r.adapter).collect();
        let lora = LoraRows::new(&adapters, &spans);

        let mut x = self.embed.index_select(&ids, 0)?; // (T, hidden)
        for (li, layer) in self.layers.iter().enumerate() {
            let residual = &x;
            let h = layer.attn_norm.forward(&x)?;
            let [q, k, v] = Linear::forward_many([&layer.wq, &layer.wk, &layer.wv], &h)?;
            let q = lora.apply(li, Target::Q, &h, q)?;
            let k = lora.apply(li, Target::K, &h, k)?;
            let v = lora.apply(li, Target::V, &h, v)?;
            let attn = match &device_rope {
                None => self.host_attention_step(li, &q, &k, &v, rows, &spans)?,
                Some((cos, sin)) => {
                    self.device_attention_step(li, &q, &k, &v, rows, &spans, (cos, sin))?
                }
            };
            let attn = lora.apply(li, Target::O, &attn, layer.wo.forward(&attn)?)?;
            let x1 = (attn + residual)?;
            let h = layer.ffn_norm.forward(&x1)?;
            let [gate, up] = Linear::forward_many([&layer.w_gate, &layer.w_up], &h)?;
            let gate = lora.apply(li, Target::Gate, &h, gate)?;
            let up = lora.apply(li, Target::Up, &h, up)?;
            let m = (candle_nn::ops::silu(&gate)? * up)?;
            let down = lora.apply(li, Target::Down, &m, layer.w_down.forward(&m)?)?;
            x = (down + x1)?;
        }
        for (row, &(_, len)) in rows.iter_mut().zip(&spans) {
            row.state.pos += len;
        }
        let last: Vec<u32> = spans.iter().map(|&(s, l)| (s + l - 1) as u32).collect();
        let last = Tensor::from_vec(last, spans.len(), &self.device)?;
        let x = x.index_select(&last, 0)?;
        let x = self.norm.forward(&x)?;
        let logits = self.lm_head.forward(&x)?;
        Ok(logits.to_dtype(DType::F32)?.to_vec2::<f32>()?)
    }

    /// One layer's attention for every row, with the CPU kernel ([`Attention`]).
    fn host_attention_step(
        &self,
        li: usize,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        rows: &mut [StepRow<'_>],
        spans: &[(usize, usize)],
    ) -> Result<Tensor> {
        let t = q.dim(0)?;
        let mut qs = q.flatten_all()?.to_vec1::<f32>()?;
        let mut ks = k.flatten_all()?.to_vec1::<f32>()?;
        let vs = v.flatten_all()?.to_vec1::<f32>()?;
        let mut seqs = Vec::with_capacity(rows.len());
        for (row, &(start, len)) in rows.iter_mut().zip(spans) {
            let Kv::Host(layers) = &mut row.state.kv else {
                unreachable!("host attention creates host caches")
            };
            seqs.push(SeqRows {
                start,
                len,
                past: row.state.pos,
                kv: &mut layers[li],
            });
        }
        let out = self
            .host_attention
            .forward(&mut qs, &mut ks, &vs, &mut seqs);
        Ok(Tensor::from_vec(out, (t, self.cfg.hidden), &self.device)?)
    }

    /// One layer's attention for every row, as candle ops (CUDA and other devices).
    #[allow(clippy::too_many_arguments)]
    fn device_attention_step(
        &self,
        li: usize,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        rows: &mut [StepRow<'_>],
        spans: &[(usize, usize)],
        (cos, sin): (&Tensor, &Tensor),
    ) -> Result<Tensor> {
        let cfg = &self.cfg;
        let (n_head, n_kv, hd) = (cfg.n_head, cfg.n_kv_head, cfg.head_dim());
        let n_tok = q.dim(0)?;
        // RoPE for all token rows at once, each at its own position.
        let q = rope(q, n_head, hd, cos, sin)?; // (1, n_head, T, hd)
        let k = rope(k, n_kv, hd, cos, sin)?; // (1, n_kv, T, hd)
        let v = v.reshape((1, n_tok, n_kv, hd))?.transpose(1, 2)?;
        let mut outs = Vec::with_capacity(rows.len());
        for (row, &(start, len)) in rows.iter_mut().zip(spans) {
            let q = q.narrow(2, start, len)?;
            let k = k.narrow(2, start, len)?.contiguous()?;
            let v = v.narrow(2, start, len)?.contiguous()?;
            let past = row.state.pos;
            let Kv::Device(layers) = &mut row.state.kv else {
                unreachable!("tensor attention creates device caches")
            };
            let (k, v) = layers[li].append(&k, &v)?;
            outs.push(attention(&q, &k, &v, past, n_head, n_kv, hd)?);
        }
        Ok(Tensor::cat(&outs, 0)?) // (T, hidden)
    }
}

/// The CPU attention kernel for `cfg`, with its buffers sized for the context window only
/// when it is the path that runs.
fn host_attention(cfg: &LlamaConfig, path: AttentionPath) -> Attention {
    let context = match path {
        AttentionPath::Host => cfg.context_len,
        AttentionPath::Tensor => 0,
    };
    Attention::new(
        cfg.n_head,
        cfg.n_kv_head,
        cfg.head_dim(),
        cfg.rope_base,
        context,
        KV_GROW,
    )
}
