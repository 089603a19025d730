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

use std::collections::HashMap;
use std::io::{Read, Seek};
use std::path::Path;

use candle_core::quantized::{GgmlDType, QMatMul, QTensor, gguf_file};
use candle_core::{D, DType, Device, Module, Tensor};
use candle_nn::kv_cache::KvCache;
use rayon::prelude::*;

use crate::attention::{Attention, LayerKv, SeqRows};
use crate::int8::Int8Matrix;
use crate::lora::{LoraAdapter, Target};
use crate::q4::Q4Matrix;
use crate::{Error, Result};

/// KV cache growth step, in positions. Caches grow by this much when full, so a short
/// sequence does not reserve memory for the whole context window.
const KV_GROW: usize = 256;

/// How the linear-layer weights are held in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WeightFormat {
    /// Exactly as stored in the GGUF file (for SmolLM2: Q4_1, which candle runs with scalar
    /// code: measured 18 tok/s single-stream vs 75 for Q8_0).
    Gguf,
    /// 4-bit tensors (Q4_0, Q4_1) kept exactly as in the file and run by this crate's 4-bit
    /// kernel ([`crate::q4`], AVX2 + FMA); every other tensor as [`WeightFormat::Q8_0`]. The
    /// default: the file's own weights, about half the bytes of int8, and the fastest measured
    /// on an AVX2 CPU (AMD EPYC Zen 3, 2 cores) at every batch size. Batch-invariant by
    /// construction. On devices other than the CPU, on CPUs without AVX2, and with
    /// `OPENLEDGER_KERNEL=portable` it is `Q8_0`.
    #[default]
    Q4,
    /// Re-quantized to Q8_0 at load (about 1.6× the Q4_1 size, 143 MB for SmolLM2-135M). On the
    /// CPU it runs this crate's int8 kernel ([`crate::int8`]: AVX-512 VNNI or AVX2 where
    /// available, register tiles so a batch shares each weight load), on other devices
    /// candle's Q8_0 kernels. Batch-invariant by construction. On AVX-512 VNNI CPUs this may
    /// beat `q4` (whose kernel is AVX2 at most); that comparison has not been measured.
    Q8_0,
    /// Dequantized to f32 at load (540 MB for SmolLM2-135M; `gemm` kernels). About as fast as
    /// Q8_0 for 8-sequence batches, much slower single-stream; more robust than the quantized
    /// kernels (whose worker threads spin) when the CPU is oversubscribed.
    F32,
}

impl std::str::FromStr for WeightFormat {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "gguf" => Ok(Self::Gguf),
            "q4" => Ok(Self::Q4),
            "q8_0" | "q8" => Ok(Self::Q8_0),
            "f32" => Ok(Self::F32),
            other => Err(Error::InvalidConfig {
                field: "weight_format",
                reason: format!("unknown weight format {other:?}; use q4, gguf, q8_0 or f32"),
            }),
        }
    }
}

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

/// A linear layer `y = x·Wᵀ` over weights in one of the [`WeightFormat`]s.
#[derive(Debug, Clone)]
enum Linear {
    /// Q8_0 on the CPU: this crate's int8 kernel ([`crate::int8`]).
    Int8(Int8Matrix),
    /// 4-bit on the CPU: this crate's 4-bit kernel ([`crate::q4`]).
    Q4(Q4Matrix),
    /// Everything else: candle's quantized or `f32` matmul.
    Candle(QMatMul),
}

impl Linear {
    fn new(q: QTensor, format: WeightFormat, device: &Device) -> Result<Self> {
        Ok(match format {
            WeightFormat::Gguf => Self::Candle(QMatMul::from_qtensor(q)?),
            WeightFormat::Q4 if device.is_cpu() && Q4Matrix::available()? => {
                let (n, k) = q.shape().dims2()?;
                match Q4Matrix::from_ggml(q.dtype(), &q.data()?, n, k)? {
                    Some(w) => Self::Q4(w),
                    None => Self::new(q, WeightFormat::Q8_0, device)?,
                }
            }
            WeightFormat::Q4 => Self::new(q, WeightFormat::Q8_0, device)?,
            WeightFormat::Q8_0 if device.is_cpu() => {
                let (n, k) = q.shape().dims2()?;
                let f = q.dequantize(device)?.flatten_all()?.to_vec1::<f32>()?;
                Self::Int8(Int8Matrix::quantize(&f, n, k)?)
            }
            WeightFormat::Q8_0 => {
                let f = q.dequantize(device)?;
                Self::Candle(QMatMul::from_qtensor(QTensor::quantize(
                    &f,
                    GgmlDType::Q8_0,
                )?)?)
            }
            WeightFormat::F32 => Self::Candle(QMatMul::Tensor(q.dequantize(device)?)),
        })
    }

    /// The forward pass of several layers on one input (a layer's q, k, v; gate, up). 4-bit
    /// layers share one quantization of `x` and one parallel section; the results are exactly
    /// those of [`Linear::forward`] one by one.
    fn forward_many<const N: usize>(lins: [&Linear; N], x: &Tensor) -> Result<[Tensor; N]> {
        let q4: Vec<&Q4Matrix> = lins
            .iter()
            .filter_map(|l| match l {
                Self::Q4(w) => Some(w),
                _ => None,
            })
            .collect();
        let mut out = Vec::with_capacity(N);
        if q4.len() < N {
            for l in lins {
                out.push(l.forward(x)?);
            }
        } else {
            let xs = x.flatten_all()?.to_vec1::<f32>()?;
            for (y, w) in Q4Matrix::matmul_many(&q4, &xs)?.into_iter().zip(&q4) {
                out.push(Tensor::from_vec(y, (x.dim(0)?, w.rows()), x.device())?);
            }
        }
        Ok(out.try_into().expect("one result per layer"))
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Self::Int8(w) => on_host(x, w.rows(), |x| w.matmul(x)),
            Self::Q4(w) => on_host(x, w.rows(), |x| w.matmul(x)),
            Self::Candle(w @ QMatMul::Tensor(_)) if x.dim(0)? == 1 => {
                // `gemm` runs a single row through a GEMV path that sums in another order than
                // its multi-row kernels (whose per-row results do not depend on the row count;
                // see `f32_matmul_rows_do_not_depend_on_the_row_count`). Two rows keep a
                // sequence's result the same whether it runs alone or in a batch.
                let y = w.forward(&Tensor::cat(&[x, x], 0)?)?;
                Ok(y.narrow(0, 0, 1)?)
            }
            Self::Candle(w) => Ok(w.forward(x)?),
        }
    }
}

/// Runs a host matrix kernel over the rows of `x` and returns its `(rows, n)` result.
fn on_host(
    x: &Tensor,
    n: usize,
    matmul: impl FnOnce(&[f32]) -> Result<Vec<f32>>,
) -> Result<Tensor> {
    let y = matmul(&x.flatten_all()?.to_vec1::<f32>()?)?;
    Ok(Tensor::from_vec(y, (x.dim(0)?, n), x.device())?)
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
    /// The CPU attention kernel (on other devices attention runs as candle ops).
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
        let host_attention = Attention::new(
            cfg.n_head,
            cfg.n_kv_head,
            cfg.head_dim(),
            cfg.rope_base,
            if device.is_cpu() { cfg.context_len } else { 0 },
            KV_GROW,
        );
        Ok(Self {
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

    /// A fresh, empty sequence state.
    pub fn new_state(&self) -> SeqState {
        let n = self.cfg.n_layer;
        let kv = if self.device.is_cpu() {
            Kv::Host(vec![LayerKv::default(); n])
        } else {
            Kv::Device((0..n).map(|_| KvCache::new(2, KV_GROW)).collect())
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
        // Per-row RoPE tables for the device attention; `None` on the CPU, whose attention
        // kernel has its own.
        let device_rope = if self.device.is_cpu() {
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
                unreachable!("CPU models create host caches")
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
                unreachable!("device models create device caches")
            };
            let (k, v) = layers[li].append(&k, &v)?;
            outs.push(attention(&q, &k, &v, past, n_head, n_kv, hd)?);
        }
        Ok(Tensor::cat(&outs, 0)?) // (T, hidden)
    }
}

fn rope_tables(
    head_dim: usize,
    base: f32,
    max_len: usize,
    dev: &Device,
) -> Result<(Tensor, Tensor)> {
    let theta: Vec<f32> = (0..head_dim)
        .step_by(2)
        .map(|i| 1f32 / base.powf(i as f32 / head_dim as f32))
        .collect();
    let n = theta.len();
    let theta = Tensor::from_vec(theta, (1, n), dev)?;
    let idx = Tensor::arange(0, max_len as u32, dev)?
        .to_dtype(DType::F32)?
        .reshape((max_len, 1))?;
    let freqs = idx.matmul(&theta)?;
    Ok((freqs.cos()?, freqs.sin()?))
}

/// Applies interleaved RoPE (GGUF Llama convention) to `(T, heads·hd)` rows, each with its own
/// position's `cos`/`sin` row; returns `(1, heads, T, hd)`.
fn rope(x: &Tensor, heads: usize, hd: usize, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    let t = x.dim(0)?;
    let x = x
        .reshape((1, t, heads, hd))?
        .transpose(1, 2)?
        .contiguous()?;
    Ok(candle_nn::rotary_emb::rope_i(&x, cos, sin)?)
}

/// Causal grouped-query attention for one sequence: `q` is `(1, n_head, len, hd)`, `k`/`v`
/// are the full cache `(1, n_kv, past+len, hd)`; returns `(len, n_head·hd)`.
fn attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    past: usize,
    n_head: usize,
    n_kv: usize,
    hd: usize,
) -> Result<Tensor> {
    let len = q.dim(2)?;
    let total = past + len;
    let n_rep = n_head / n_kv;
    // Heads j·n_rep .. (j+1)·n_rep share kv head j: fold them into the row dimension.
    let q = q.contiguous()?.reshape((n_kv, n_rep * len, hd))?;
    let k = k.contiguous()?.reshape((n_kv, total, hd))?;
    let v = v.contiguous()?.reshape((n_kv, total, hd))?;
    let att = (q.matmul(&k.t()?)? * (1.0 / (hd as f64).sqrt()))?;
    let att = if len > 1 {
        let mask: Vec<f32> = (0..len)
            .flat_map(|i| {
                (0..total).map(move |j| if j > past + i { f32::NEG_INFINITY } else { 0.0 })
            })
            .collect();
        let mask = Tensor::from_vec(mask, (len, total), q.device())?;
        att.reshape((n_kv, n_rep, len, total))?
            .broadcast_add(&mask)?
            .reshape((n_kv, n_rep * len, total))?
    } else {
        att
    };
    let att = candle_nn::ops::softmax_last_dim(&att)?;
    let y = att.matmul(&v)?; // (n_kv, n_rep·len, hd)
    Ok(y.reshape((n_head, len, hd))?
        .transpose(0, 1)?
        .reshape((len, n_head * hd))?)
}

/// Which token rows use which adapter, for the LoRA hooks of one forward step.
struct LoraRows<'a> {
    /// Per adapter (by position in `adapters`): the token row ranges it applies to.
    groups: Vec<(&'a LoraAdapter, Vec<(usize, usize)>)>,
}

impl<'a> LoraRows<'a> {
    fn new(adapters: &[Option<&'a LoraAdapter>], spans: &[(usize, usize)]) -> Self {
        let mut by_id: HashMap<&str, usize> = HashMap::new();
        let mut groups: Vec<(&'a LoraAdapter, Vec<(usize, usize)>)> = Vec::new();
        for (a, &span) in adapters.iter().zip(spans) {
            if let Some(a) = a {
                let gi = *by_id.entry(a.id()).or_insert_with(|| {
                    groups.push((a, Vec::new()));
                    groups.len() - 1
                });
                groups[gi].1.push(span);
            }
        }
        Self { groups }
    }

    /// Adds each adapted row's low-rank delta for `(layer, target)` to `y = x·Wᵀ`.
    fn apply(&self, layer: usize, target: Target, x: &Tensor, y: Tensor) -> Result<Tensor> {
        let active: Vec<_> = self
            .groups
            .iter()
            .filter_map(|(a, spans)| a.get(layer, target).map(|w| (w, spans)))
            .collect();
        if active.is_empty() {
            return Ok(y);
        }
        let (t, d_in) = x.dims2()?;
        let d_out = y.dim(D::Minus1)?;
        let xs = x.flatten_all()?.to_vec1::<f32>()?;
        let mut ys = y.flatten_all()?.to_vec1::<f32>()?;
        let mut row_weight = vec![None; t];
        for (w, spans) in active {
            for &(start, len) in spans.iter() {
                row_weight[start..start + len].fill(Some(w));
            }
        }
        // Rows in parallel: with many distinct adapters each row reads its own low-rank
        // weights, and a row's delta is the same whichever thread computes it.
        ys.par_chunks_mut(d_out)
            .zip(xs.par_chunks(d_in))
            .zip(row_weight.par_iter())
            .for_each_init(Vec::new, |h, ((y, x), w)| {
                if let Some(w) = w {
                    w.add_delta(x, y, h);
                }
            });
        Ok(Tensor::from_vec(ys, (t, d_out), y.device())?)
    }
}

/// Tiny generated models for fast unit tests.
#[cfg(any(test, feature = "test-utils"))]
pub mod testing {
    use std::io::Cursor;

    use candle_core::quantized::gguf_file::{self, Value};

    use super::*;

    /// Shape of the tiny test model.
    pub fn tiny_config() -> LlamaConfig {
        LlamaConfig {
            n_layer: 2,
            n_head: 4,
            n_kv_head: 2,
            hidden: 64,
            ffn: 128,
            vocab: 96,
            rms_eps: 1e-5,
            rope_base: 10_000.0,
            context_len: 64,
        }
    }

    /// Deterministic pseudo-random values in `[-scale, scale)`.
    pub fn values(seed: u64, n: usize, scale: f32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                ((s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
            })
            .collect()
    }

    /// Asserts that each of `rows` input rows (of `k` values) gives exactly the same output
    /// (`n` values) through `mul` in a batch of every size as alone: the batch invariance of
    /// the matrix kernels.
    pub fn assert_rows_independent(
        n: usize,
        k: usize,
        rows: usize,
        mul: impl Fn(&[f32]) -> Vec<f32>,
        what: &str,
    ) {
        let x = values(2, rows * k, 1.0);
        let alone: Vec<Vec<f32>> = (0..rows).map(|r| mul(&x[r * k..(r + 1) * k])).collect();
        for m in 1..=rows {
            let y = mul(&x[..m * k]);
            for (r, alone) in alone.iter().enumerate().take(m) {
                assert_eq!(
                    &y[r * n..(r + 1) * n],
                    alone.as_slice(),
                    "{what}: m={m} row {r}"
                );
            }
        }
    }

    /// The f32 weights of the tiny model, by GGUF name (`(out, in)` row-major for linears).
    pub fn tiny_weights(seed: u64) -> Vec<(String, Vec<f32>, Vec<usize>)> {
        let c = tiny_config();
        let kv = c.n_kv_head * c.head_dim();
        let mut w = vec![
            (
                "token_embd.weight".to_string(),
                values(seed, c.vocab * c.hidden, 1.0),
                vec![c.vocab, c.hidden],
            ),
            (
                "output_norm.weight".to_string(),
                vec![1.0; c.hidden],
                vec![c.hidden],
            ),
        ];
        for i in 0..c.n_layer {
            let s = seed + 100 * (i as u64 + 1);
            let lin = |n: &str, k: u64, o: usize, inp: usize| {
                (
                    format!("blk.{i}.{n}.weight"),
                    values(s + k, o * inp, 0.15),
                    vec![o, inp],
                )
            };
            w.push(lin("attn_q", 1, c.hidden, c.hidden));
            w.push(lin("attn_k", 2, kv, c.hidden));
            w.push(lin("attn_v", 3, kv, c.hidden));
            w.push(lin("attn_output", 4, c.hidden, c.hidden));
            w.push(lin("ffn_gate", 5, c.ffn, c.hidden));
            w.push(lin("ffn_up", 6, c.ffn, c.hidden));
            w.push(lin("ffn_down", 7, c.hidden, c.ffn));
            w.push((
                format!("blk.{i}.attn_norm.weight"),
                vec![1.0; c.hidden],
                vec![c.hidden],
            ));
            w.push((
                format!("blk.{i}.ffn_norm.weight"),
                vec![1.0; c.hidden],
                vec![c.hidden],
            ));
        }
        w
    }

    /// Builds a tiny Llama from f32 weights (as a GGUF in memory, then loaded as usual). The
    /// GGUF stores f32, except that for [`WeightFormat::Q4`] the layers' linear weights are
    /// stored as Q4_1 (as in the real model's file) so that format runs its 4-bit kernel.
    pub fn tiny_model(weights: &[(String, Vec<f32>, Vec<usize>)], format: WeightFormat) -> Llama {
        let c = tiny_config();
        let dev = Device::Cpu;
        let qt: Vec<(String, QTensor)> = weights
            .iter()
            .map(|(n, v, s)| {
                let t = Tensor::from_vec(v.clone(), s.as_slice(), &dev).expect("tensor");
                let dtype = if format == WeightFormat::Q4 && n.starts_with("blk.") && s.len() == 2 {
                    GgmlDType::Q4_1
                } else {
                    GgmlDType::F32
                };
                (n.clone(), QTensor::quantize(&t, dtype).expect("qtensor"))
            })
            .collect();
        let md = [
            ("general.architecture", Value::String("llama".into())),
            ("llama.block_count", Value::U32(c.n_layer as u32)),
            ("llama.attention.head_count", Value::U32(c.n_head as u32)),
            (
                "llama.attention.head_count_kv",
                Value::U32(c.n_kv_head as u32),
            ),
            ("llama.embedding_length", Value::U32(c.hidden as u32)),
            ("llama.feed_forward_length", Value::U32(c.ffn as u32)),
            ("llama.context_length", Value::U32(c.context_len as u32)),
            (
                "llama.attention.layer_norm_rms_epsilon",
                Value::F32(c.rms_eps as f32),
            ),
        ];
        let md_refs: Vec<(&str, &Value)> = md.iter().map(|(k, v)| (*k, v)).collect();
        let t_refs: Vec<(&str, &QTensor)> = qt.iter().map(|(n, t)| (n.as_str(), t)).collect();
        let mut buf = Cursor::new(Vec::new());
        gguf_file::write(&mut buf, &md_refs, &t_refs).expect("write gguf");
        buf.set_position(0);
        let ct = gguf_file::Content::read(&mut buf).expect("read gguf");
        Llama::from_gguf(&ct, &mut buf, format, &dev).expect("tiny model loads")
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;
    use crate::lora::{AdapterTensor, LoraAdapter, write_adapter};
    use openledger_adapter::testing::RandomAdapter;

    fn run(
        model: &Llama,
        prompt: &[u32],
        adapter: Option<&LoraAdapter>,
        steps: usize,
    ) -> Vec<Vec<f32>> {
        let mut st = model.new_state();
        let mut out = Vec::new();
        let mut feed = prompt.to_vec();
        for _ in 0..steps {
            let l = model
                .forward(&mut [StepRow {
                    tokens: &feed,
                    state: &mut st,
                    adapter,
                }])
                .expect("forward")
                .remove(0);
            feed = vec![crate::sampling::argmax(&l)];
            out.push(l);
        }
        out
    }

    fn adapter_tensors(seed: u64, zero_b: bool) -> Vec<AdapterTensor> {
        RandomAdapter {
            rank: 4,
            targets: vec![Target::Q, Target::V, Target::Down],
            scale: 0.3,
            zero_b,
            ..RandomAdapter::new(seed)
        }
        .tensors(&tiny_config().adapter_shape())
    }

    fn adapter(seed: u64, zero_b: bool, alpha: f32) -> LoraAdapter {
        let bytes = write_adapter(alpha, &adapter_tensors(seed, zero_b)).expect("serialize");
        LoraAdapter::from_bytes("t", &bytes, &tiny_config()).expect("parse")
    }

    #[test]
    fn zero_adapter_reproduces_base_bit_for_bit() {
        for fmt in [
            WeightFormat::Gguf,
            WeightFormat::Q4,
            WeightFormat::Q8_0,
            WeightFormat::F32,
        ] {
            let m = tiny_model(&tiny_weights(1), fmt);
            let z = adapter(7, true, 8.0);
            assert_eq!(
                run(&m, &[1, 2, 3, 4], None, 5),
                run(&m, &[1, 2, 3, 4], Some(&z), 5),
                "{fmt:?}"
            );
        }
    }

    /// The run-time delta equals merging `W + (alpha/r)·B·A` into the weights, computed here
    /// independently with plain loops.
    #[test]
    fn adapter_matches_independently_merged_weights() {
        let c = tiny_config();
        let base_w = tiny_weights(2);
        let tensors = adapter_tensors(11, false);
        let (alpha, r) = (8.0f32, 4usize);
        let mut merged = base_w.clone();
        for t in &tensors {
            let name = format!("blk.{}.{}.weight", t.layer, t.target.gguf_name());
            let w = &mut merged
                .iter_mut()
                .find(|(n, _, _)| *n == name)
                .expect("weight")
                .1;
            let (d_in, d_out) = (c.in_dim(t.target), c.out_dim(t.target));
            for o in 0..d_out {
                for i in 0..d_in {
                    let ba: f32 = (0..r).map(|k| t.b[o * r + k] * t.a[k * d_in + i]).sum();
                    w[o * d_in + i] += alpha / r as f32 * ba;
                }
            }
        }
        let bytes = write_adapter(alpha, &tensors).expect("serialize");
        let a = LoraAdapter::from_bytes("t", &bytes, &c).expect("parse");
        let base = tiny_model(&base_w, WeightFormat::Gguf);
        let merged = tiny_model(&merged, WeightFormat::Gguf);
        let prompt = [5, 9, 17, 33, 2];
        let with = run(&base, &prompt, Some(&a), 1).remove(0);
        let expect = run(&merged, &prompt, None, 1).remove(0);
        let plain = run(&base, &prompt, None, 1).remove(0);
        let max_diff = |x: &[f32], y: &[f32]| {
            x.iter()
                .zip(y)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max)
        };
        assert!(
            max_diff(&with, &plain) > 0.05,
            "the adapter must change the logits"
        );
        assert!(
            max_diff(&with, &expect) < 1e-3,
            "run-time LoRA differs from merged weights by {}",
            max_diff(&with, &expect)
        );
    }

    /// Each row of a mixed batch (different adapters, prompt lengths, prefill next to decode)
    /// gets exactly the logits it gets alone.
    #[test]
    fn mixed_batch_rows_equal_solo_runs() {
        // Quantized weights: exact by construction. (For f32 the property depends on `gemm`
        // and the matrix sizes: it holds for the real model's sizes, tested below and end to
        // end in tests/it, but not for this tiny model's. The tiny GGUF stores f32, so its
        // `Gguf` format is f32 too.)
        mixed_batch_case(WeightFormat::Q8_0);
        mixed_batch_case(WeightFormat::Q4);
    }

    fn mixed_batch_case(fmt: WeightFormat) {
        let m = tiny_model(&tiny_weights(3), fmt);
        let (a1, a2) = (adapter(21, false, 8.0), adapter(22, false, 4.0));
        let cases: Vec<(Vec<u32>, Option<&LoraAdapter>)> = vec![
            (vec![1, 2, 3], Some(&a1)),
            (vec![4, 5, 6, 7, 8, 9], None),
            (vec![10], Some(&a2)),
            (vec![11, 12], Some(&a1)),
        ];
        let steps = 4;
        let solo: Vec<_> = cases.iter().map(|(p, a)| run(&m, p, *a, steps)).collect();
        // Batched: sequence 3 joins one step late, so its prefill shares a step with decodes.
        let mut states: Vec<SeqState> = cases.iter().map(|_| m.new_state()).collect();
        let mut feeds: Vec<Vec<u32>> = cases.iter().map(|c| c.0.clone()).collect();
        let mut got: Vec<Vec<Vec<f32>>> = vec![Vec::new(); cases.len()];
        for step in 0..steps + 1 {
            let active: Vec<usize> = (0..cases.len())
                .filter(|&i| if i == 3 { step >= 1 } else { step < steps })
                .filter(|&i| got[i].len() < steps)
                .collect();
            let mut rows = Vec::new();
            for (i, (st, feed)) in states.iter_mut().zip(&feeds).enumerate() {
                if active.contains(&i) {
                    rows.push(StepRow {
                        tokens: feed,
                        state: st,
                        adapter: cases[i].1,
                    });
                }
            }
            let out = m.forward(&mut rows).expect("forward");
            for (&i, l) in active.iter().zip(out) {
                feeds[i] = vec![crate::sampling::argmax(&l)];
                got[i].push(l);
            }
        }
        assert_eq!(got, solo, "{fmt:?}");
    }

    /// The batch invariance of the f32 path rests on this property of candle's `gemm` matmul
    /// at SmolLM2-135M's sizes (for two rows or more); if a dependency update breaks it, this
    /// test says so first.
    #[test]
    fn f32_matmul_rows_do_not_depend_on_the_row_count() {
        let d = Device::Cpu;
        for (k, n) in [
            (576usize, 576usize),
            (576, 192),
            (576, 1536),
            (1536, 576),
            (576, 49152),
        ] {
            let w = Tensor::from_vec(values(1, n * k, 0.1), (n, k), &d).unwrap();
            let xs = values(2, 40 * k, 1.0);
            let row = |m: usize, r: usize| -> Vec<f32> {
                let x = Tensor::from_vec(xs[..m * k].to_vec(), (m, k), &d).unwrap();
                x.matmul(&w.t().unwrap())
                    .unwrap()
                    .get(r)
                    .unwrap()
                    .to_vec1()
                    .unwrap()
            };
            let want = row(2, 1);
            for m in [3, 8, 17, 40] {
                assert_eq!(row(m, 1), want, "k={k} n={n} m={m}");
            }
            let lin = Linear::Candle(QMatMul::Tensor(w.clone()));
            let one = Tensor::from_vec(xs[..k].to_vec(), (1, k), &d).unwrap();
            let two = Tensor::from_vec(xs[..2 * k].to_vec(), (2, k), &d).unwrap();
            let a: Vec<f32> = lin
                .forward(&one)
                .unwrap()
                .get(0)
                .unwrap()
                .to_vec1()
                .unwrap();
            let b: Vec<f32> = lin
                .forward(&two)
                .unwrap()
                .get(0)
                .unwrap()
                .to_vec1()
                .unwrap();
            assert_eq!(a, b, "a single row must match its result inside a batch");
        }
    }

    #[test]
    fn adapter_with_wrong_shape_is_refused() {
        let mut t = adapter_tensors(5, false);
        t[0].shape.1 += 1;
        let r = t[0].shape.0;
        t[0].a.extend(vec![0.0; r]);
        let bytes = write_adapter(8.0, &t).expect("serialize");
        let err = LoraAdapter::from_bytes("bad", &bytes, &tiny_config()).unwrap_err();
        assert!(err.to_string().contains("the model needs"), "{err}");
    }
}
