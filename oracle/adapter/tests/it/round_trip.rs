//! Writing then reading gives the adapter back; the bytes (and so the ids) are stable.

use openledger_adapter::{
    AdapterTensor, AdapterWeights, BaseShape, Target, content_id, write_adapter,
};
use proptest::{
    prelude::*,
    test_runner::{Config, RngSeed},
};
use safetensors::Dtype;

use crate::{f32_bytes, raw_file};

const DEFAULT_SEED: u64 = 20_260_801;

fn config(cases: u32) -> Config {
    let seed = std::env::var("OPENLEDGER_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SEED);
    eprintln!("proptest seed {seed} (reproduce with OPENLEDGER_TEST_SEED={seed})");
    Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..Config::default()
    }
}

/// One rank-1 pair on layer 0's query projection of a 2-wide model, alpha 2.
fn tiny() -> AdapterTensor {
    AdapterTensor {
        layer: 0,
        target: Target::Q,
        a: vec![1.0, -2.0],
        b: vec![0.5, 0.25],
        shape: (1, 2, 2),
    }
}

/// The file is exactly the safetensors layout worked out by hand: the 8-byte little-endian
/// header length (184), the JSON header (alpha as metadata, tensors sorted by name) padded
/// with spaces to a multiple of 8, then A and B as little-endian f32. Its id is the SHA-256
/// of those 208 bytes, computed independently (Python's `hashlib`), so a change to the
/// layout, which would change every adapter's id, fails here.
#[test]
fn tiny_file_is_byte_exact_with_a_hand_checked_id() {
    let file = write_adapter(2.0, &[tiny()]).unwrap();
    let header = r#"{"__metadata__":{"alpha":"2"},"blk.0.attn_q.lora_a":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]},"blk.0.attn_q.lora_b":{"dtype":"F32","shape":[2,1],"data_offsets":[8,16]}}       "#;
    assert_eq!(header.len(), 184);
    let mut expect = 184u64.to_le_bytes().to_vec();
    expect.extend(header.as_bytes());
    expect.extend([
        0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0, 0x00, 0x00, 0x00, 0x3f, 0x00, 0x00, 0x80,
        0x3e,
    ]);
    assert_eq!(file, expect);
    assert_eq!(
        content_id(&file),
        "dead66bcc5316073d04c38540160722a2c10f0f46264e7b9191935dff3122f93"
    );
    let read = AdapterWeights::read(&file).unwrap();
    assert_eq!((read.alpha(), read.rank(), read.scale()), (2.0, 1, 2.0));
    assert_eq!(read.tensors(), [tiny()]);
}

#[test]
fn alpha_defaults_to_the_rank() {
    let file = raw_file(
        &[
            (
                "blk.0.attn_q.lora_a",
                Dtype::F32,
                vec![1, 2],
                f32_bytes(&[1.0, 2.0]),
            ),
            (
                "blk.0.attn_q.lora_b",
                Dtype::F32,
                vec![2, 1],
                f32_bytes(&[3.0, 4.0]),
            ),
        ],
        None,
    );
    let w = AdapterWeights::read(&file).unwrap();
    assert_eq!((w.alpha(), w.scale()), (1.0, 1.0));
}

/// PEFT names and half-precision tensors read as the same adapter as ours in f32.
#[test]
fn peft_names_and_half_precision_read_as_ours() {
    let (a, b) = ([1.0f32, -2.0], [0.5f32, 0.25]);
    let f16 = |v: &[f32]| -> Vec<u8> {
        v.iter()
            .flat_map(|x| half::f16::from_f32(*x).to_le_bytes())
            .collect()
    };
    let bf16 = |v: &[f32]| -> Vec<u8> {
        v.iter()
            .flat_map(|x| half::bf16::from_f32(*x).to_le_bytes())
            .collect()
    };
    let f64s =
        |v: &[f32]| -> Vec<u8> { v.iter().flat_map(|x| (*x as f64).to_le_bytes()).collect() };
    let p = "base_model.model.model.layers.0.self_attn.q_proj";
    let (pa, pb) = (format!("{p}.lora_A.weight"), format!("{p}.lora_B.weight"));
    for (da, db, ba, bb) in [
        (Dtype::F16, Dtype::BF16, f16(&a), bf16(&b)),
        (Dtype::F64, Dtype::F16, f64s(&a), f16(&b)),
    ] {
        let file = raw_file(
            &[(&pa, da, vec![1, 2], ba), (&pb, db, vec![2, 1], bb)],
            Some("2"),
        );
        let w = AdapterWeights::read(&file).unwrap();
        assert_eq!(w.tensors(), [tiny()], "{da:?}/{db:?}");
    }
}

/// A random well-formed adapter.
fn adapter() -> impl Strategy<Value = (BaseShape, AdapterWeights)> {
    (
        1usize..4,
        1usize..6,
        1usize..6,
        1usize..6,
        1usize..4,
        prop::sample::subsequence(Target::ALL.to_vec(), 1..=7),
        -64.0f32..64.0,
        any::<u64>(),
    )
        .prop_map(
            |(n_layer, hidden, ffn, kv_dim, rank, targets, alpha, seed)| {
                let base = BaseShape {
                    n_layer,
                    hidden,
                    ffn,
                    kv_dim,
                };
                let mut s = seed | 1;
                let mut next = move || {
                    s ^= s << 13;
                    s ^= s >> 7;
                    s ^= s << 17;
                    f32::from_bits((s >> 32) as u32 & 0xbfff_ffff) // finite, any sign and size
                };
                let tensors = (0..n_layer)
                    .flat_map(|layer| targets.iter().map(move |&t| (layer, t)))
                    .map(|(layer, target)| {
                        let (d_in, d_out) = (base.in_dim(target), base.out_dim(target));
                        AdapterTensor {
                            layer,
                            target,
                            a: (0..rank * d_in).map(|_| next()).collect(),
                            b: (0..d_out * rank).map(|_| next()).collect(),
                            shape: (rank, d_in, d_out),
                        }
                    })
                    .collect();
                (base, AdapterWeights::new(alpha, tensors).unwrap())
            },
        )
}

proptest! {
    #![proptest_config(config(64))]

    /// Every well-formed adapter reads back bit for bit, fits its base, and writing it
    /// again gives the same bytes (so the same id).
    #[test]
    fn write_then_read_is_the_identity((base, w) in adapter()) {
        let file = w.to_bytes().unwrap();
        let read = AdapterWeights::read(&file).unwrap();
        prop_assert_eq!(&read, &w);
        read.check_fits(&base).unwrap();
        prop_assert_eq!(read.to_bytes().unwrap(), file);
    }
}
