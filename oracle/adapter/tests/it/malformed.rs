//! Every way an adapter file can be wrong gives its own error, naming where.

use openledger_adapter::{
    AdapterTensor, AdapterWeights, BaseShape, Error, Factor, Target, write_adapter,
};
use safetensors::Dtype;

use crate::{f32_bytes, raw_file};

/// `A` `(rank, d_in)` and `B` `(d_out, rank)` of `blk.{layer}.attn_q`, filled with ones.
fn q_pair(layer: usize, a: [usize; 2], b: [usize; 2]) -> Vec<(String, Dtype, Vec<usize>, Vec<u8>)> {
    let ones = |s: [usize; 2]| f32_bytes(&vec![1.0; s[0] * s[1]]);
    vec![
        (
            format!("blk.{layer}.attn_q.lora_a"),
            Dtype::F32,
            a.to_vec(),
            ones(a),
        ),
        (
            format!("blk.{layer}.attn_q.lora_b"),
            Dtype::F32,
            b.to_vec(),
            ones(b),
        ),
    ]
}

fn file(tensors: &[(String, Dtype, Vec<usize>, Vec<u8>)], alpha: Option<&str>) -> Vec<u8> {
    let t: Vec<_> = tensors
        .iter()
        .map(|(n, d, s, b)| (n.as_str(), *d, s.clone(), b.clone()))
        .collect();
    raw_file(&t, alpha)
}

fn read_err(bytes: &[u8]) -> Error {
    AdapterWeights::read(bytes).expect_err("the file must be refused")
}

#[test]
fn bytes_that_are_not_safetensors() {
    let good = file(&q_pair(0, [1, 2], [2, 1]), Some("1"));
    for bad in [
        Vec::new(),
        b"not an adapter".to_vec(),
        good[..good.len() - 1].to_vec(),
        [good.as_slice(), &[0]].concat(),
    ] {
        assert!(
            matches!(read_err(&bad), Error::NotSafetensors { .. }),
            "{} bytes",
            bad.len()
        );
    }
}

#[test]
fn alpha_that_is_not_a_finite_number() {
    for bad in ["abc", "", "inf", "NaN"] {
        let err = read_err(&file(&q_pair(0, [1, 2], [2, 1]), Some(bad)));
        assert!(
            matches!(&err, Error::BadAlpha { value } if value == bad),
            "{err}"
        );
    }
    let t = AdapterWeights::read(&file(&q_pair(0, [1, 2], [2, 1]), None))
        .unwrap()
        .into_tensors();
    assert!(matches!(
        AdapterWeights::new(f32::NAN, t),
        Err(Error::BadAlpha { .. })
    ));
}

#[test]
fn a_tensor_that_is_not_a_lora_factor() {
    let mut t = q_pair(0, [1, 2], [2, 1]);
    t.push((
        "token_embd.weight".into(),
        Dtype::F32,
        vec![1, 1],
        f32_bytes(&[0.0]),
    ));
    let err = read_err(&file(&t, None));
    assert!(
        matches!(&err, Error::UnknownTensor { name } if name == "token_embd.weight"),
        "{err}"
    );
}

#[test]
fn an_integer_tensor() {
    let mut t = q_pair(0, [1, 2], [2, 1]);
    t[1].1 = Dtype::I32;
    let err = read_err(&file(&t, None));
    assert!(
        matches!(&err, Error::UnsupportedDtype { name, dtype } if name == "blk.0.attn_q.lora_b" && dtype == "I32"),
        "{err}"
    );
}

#[test]
fn a_tensor_that_is_not_a_matrix() {
    let mut t = q_pair(0, [1, 2], [2, 1]);
    t[0].2 = vec![2];
    let err = read_err(&file(&t, None));
    assert!(
        matches!(&err, Error::NotMatrix { shape, .. } if *shape == [2]),
        "{err}"
    );
}

#[test]
fn one_factor_under_two_names() {
    let mut t = q_pair(0, [1, 2], [2, 1]);
    t.push((
        "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight".into(),
        Dtype::F32,
        vec![1, 2],
        f32_bytes(&[1.0, 1.0]),
    ));
    let err = read_err(&file(&t, None));
    assert!(
        matches!(
            err,
            Error::DuplicateTensor {
                layer: 0,
                target: Target::Q,
                factor: Factor::A
            }
        ),
        "{err}"
    );
}

#[test]
fn a_pair_missing_one_factor() {
    for (keep, missing) in [(0, Factor::B), (1, Factor::A)] {
        let t = vec![q_pair(3, [1, 2], [2, 1]).remove(keep)];
        let err = read_err(&file(&t, None));
        assert!(
            matches!(err, Error::MissingFactor { layer: 3, target: Target::Q, factor } if factor == missing),
            "{err}"
        );
    }
}

#[test]
fn no_lora_tensors() {
    assert!(matches!(read_err(&file(&[], Some("8"))), Error::Empty));
    assert!(matches!(
        AdapterWeights::new(8.0, vec![]),
        Err(Error::Empty)
    ));
}

#[test]
fn rank_zero() {
    let err = read_err(&file(&q_pair(0, [0, 2], [2, 0]), None));
    assert!(
        matches!(
            err,
            Error::ZeroRank {
                layer: 0,
                target: Target::Q
            }
        ),
        "{err}"
    );
}

#[test]
fn a_and_b_of_different_ranks() {
    let err = read_err(&file(&q_pair(0, [1, 2], [2, 2]), None));
    assert!(
        matches!(
            err,
            Error::PairRankMismatch {
                a_rank: 1,
                b_rank: 2,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn pairs_of_different_ranks() {
    let mut t = q_pair(0, [1, 2], [2, 1]);
    t.extend(q_pair(1, [2, 2], [2, 2]));
    let err = read_err(&file(&t, None));
    assert!(
        matches!(
            err,
            Error::MixedRanks {
                layer: 1,
                rank: 2,
                expected: 1,
                ..
            }
        ),
        "{err}"
    );
}

fn pair(layer: usize, a: usize, b: usize) -> AdapterTensor {
    AdapterTensor {
        layer,
        target: Target::Down,
        a: vec![0.5; a],
        b: vec![0.5; b],
        shape: (1, 4, 2),
    }
}

#[test]
fn values_that_do_not_fill_the_shape_are_not_written() {
    for (t, factor, len) in [(pair(0, 3, 2), Factor::A, 3), (pair(0, 4, 5), Factor::B, 5)] {
        let err = write_adapter(1.0, &[t]).unwrap_err();
        assert!(
            matches!(err, Error::DataLength { factor: f, len: l, .. } if f == factor && l == len),
            "{err}"
        );
    }
    let err = write_adapter(1.0, &[pair(2, 4, 2), pair(2, 4, 2)]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::DuplicatePair {
                layer: 2,
                target: Target::Down
            }
        ),
        "{err}"
    );
}

/// A well-formed file checked against models it does not fit.
#[test]
fn a_file_that_does_not_fit_the_base_model() {
    let w = AdapterWeights::read(&write_adapter(1.0, &[pair(1, 4, 2)]).unwrap()).unwrap();
    let fits = BaseShape {
        n_layer: 2,
        hidden: 2,
        ffn: 4,
        kv_dim: 2,
    };
    w.check_fits(&fits).unwrap();
    let err = w.check_fits(&BaseShape { n_layer: 1, ..fits }).unwrap_err();
    assert!(
        matches!(
            err,
            Error::LayerOutOfRange {
                layer: 1,
                n_layer: 1,
                ..
            }
        ),
        "{err}"
    );
    for base in [
        BaseShape { ffn: 5, ..fits },
        BaseShape { hidden: 3, ..fits },
    ] {
        let err = w.check_fits(&base).unwrap_err();
        assert!(
            matches!(
                err,
                Error::ShapeMismatch {
                    layer: 1,
                    target: Target::Down,
                    rank: 1,
                    d_in: 4,
                    d_out: 2,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("the model needs"), "{err}");
    }
}
