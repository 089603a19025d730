//! Tiny generated models for fast unit tests.

use std::io::Cursor;

use candle_core::quantized::GgmlDType;
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
