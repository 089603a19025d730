//! Attention as candle tensor ops over device KV caches: the path of CUDA and other devices
//! ([`super::AttentionPath::Tensor`]), which also runs on the CPU.

use candle_core::{DType, Device, Tensor};

use crate::Result;

pub(super) fn rope_tables(
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
pub(super) fn rope(
    x: &Tensor,
    heads: usize,
    hd: usize,
    cos: &Tensor,
    sin: &Tensor,
) -> Result<Tensor> {
    let t = x.dim(0)?;
    let x = x
        .reshape((1, t, heads, hd))?
        .transpose(1, 2)?
        .contiguous()?;
    Ok(candle_nn::rotary_emb::rope_i(&x, cos, sin)?)
}

/// Causal grouped-query attention for one sequence: `q` is `(1, n_head, len, hd)`, `k`/`v`
/// are the full cache `(1, n_kv, past+len, hd)`; returns `(len, n_head·hd)`.
pub(super) fn attention(
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
