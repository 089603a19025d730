//! Weight formats on the real model: the default `q4` runs the file's own 4-bit weights with
//! this crate's kernel, and is as close to the exact (`f32`) product of those weights as
//! candle's own kernel on them (`gguf`).

use openledger_engine::Llama;
use openledger_engine::model::{StepRow, WeightFormat};
use openledger_engine::q4::Q4Matrix;

use crate::model_path;

/// "The capital of France is" and a fixed continuation, fed one token per step (the same
/// tokens to every model, so their logits are comparable at every position).
const TOKENS: [u32; 12] = [
    504, 3575, 282, 4649, 314, 7042, 30, 198, 198, 504, 2988, 314,
];

fn logits_per_position(model: &Llama) -> Vec<Vec<f32>> {
    let mut st = model.new_state();
    TOKENS
        .iter()
        .map(|t| {
            model
                .forward(&mut [StepRow {
                    tokens: &[*t],
                    state: &mut st,
                    adapter: None,
                }])
                .unwrap()
                .remove(0)
        })
        .collect()
}

/// Relative L2 distance of `a` from `reference`, per position.
fn distances(a: &[Vec<f32>], reference: &[Vec<f32>]) -> Vec<f32> {
    a.iter()
        .zip(reference)
        .map(|(a, r)| {
            let norm = r.iter().map(|v| v * v).sum::<f32>().sqrt();
            let diff = a.iter().zip(r).map(|(x, y)| (x - y).powi(2)).sum::<f32>();
            diff.sqrt() / norm
        })
        .collect()
}

#[test]
fn q4_runs_the_files_weights_as_closely_as_candle_does() {
    let cpu = candle_core::Device::Cpu;
    let q4 = Llama::load(&model_path(), WeightFormat::Q4, &cpu).unwrap();
    let kernels = q4.kernels();
    if Q4Matrix::available().unwrap() {
        // 30 layers × 7 projections in Q4_1; the lm_head (the Q8_0 token embedding) in int8.
        assert!(kernels.starts_with("q4 avx2 x210, int8 "), "{kernels}");
    } else {
        assert!(!kernels.contains("q4"), "{kernels}");
    }
    let exact = logits_per_position(&Llama::load(&model_path(), WeightFormat::F32, &cpu).unwrap());
    let candle =
        logits_per_position(&Llama::load(&model_path(), WeightFormat::Gguf, &cpu).unwrap());
    let ours = logits_per_position(&q4);
    let (d_ours, d_candle) = (distances(&ours, &exact), distances(&candle, &exact));
    eprintln!("relative L2 distance from f32, q4: {d_ours:.4?}");
    eprintln!("relative L2 distance from f32, gguf: {d_candle:.4?}");
    // Both quantize activations to 8 bits per block of 32, so neither is exact; a wrong
    // kernel would be off by the order of the logits themselves.
    let mean = |d: &[f32]| d.iter().sum::<f32>() / d.len() as f32;
    assert!(
        mean(&d_ours) <= 1.5 * mean(&d_candle),
        "q4 is further from the exact product ({}) than candle ({})",
        mean(&d_ours),
        mean(&d_candle)
    );
    assert!(d_ours.iter().all(|&d| d < 0.2), "{d_ours:?}");
}
