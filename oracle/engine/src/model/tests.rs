//! Unit tests of the model: formats, LoRA, batching, attention paths.

use candle_core::quantized::QMatMul;

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

/// The attention path of CUDA and other devices (candle ops over device caches), run on
/// the CPU, gives the host kernel's logits, for prefill and decode, with an adapter.
#[test]
fn tensor_attention_matches_the_host_kernel() {
    let host = tiny_model(&tiny_weights(4), WeightFormat::Gguf);
    assert_eq!(host.attention(), AttentionPath::Host);
    let tensor = tiny_model(&tiny_weights(4), WeightFormat::Gguf)
        .with_attention(AttentionPath::Tensor)
        .unwrap();
    assert_eq!(tensor.attention(), AttentionPath::Tensor);
    assert!(matches!(tensor.new_state().kv, Kv::Device(_)));
    let a = adapter(23, false, 8.0);
    for (prompt, adapter) in [(vec![3u32, 1, 4, 1, 5, 9], None), (vec![2, 7], Some(&a))] {
        let want = run(&host, &prompt, adapter, 5);
        let got = run(&tensor, &prompt, adapter, 5);
        for (step, (w, g)) in want.iter().zip(&got).enumerate() {
            let diff = w
                .iter()
                .zip(g)
                .map(|(x, y)| (x - y).abs())
                .fold(0f32, f32::max);
            assert!(diff < 1e-4, "step {step}: logits differ by {diff}");
        }
    }
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
