//! Tests of the adapter file format through its public API: round trips, a hand-checked
//! file and id, and one case per way a file can be malformed.

mod malformed;
mod round_trip;

use safetensors::{Dtype, tensor::TensorView};

/// A safetensors file with these raw tensors `(name, dtype, shape, bytes)` and, if given,
/// this `alpha` metadata: for building files our writer would refuse to produce.
pub fn raw_file(tensors: &[(&str, Dtype, Vec<usize>, Vec<u8>)], alpha: Option<&str>) -> Vec<u8> {
    let views: Vec<(&str, TensorView<'_>)> = tensors
        .iter()
        .map(|(n, d, s, b)| {
            (
                *n,
                TensorView::new(*d, s.clone(), b).expect("consistent view"),
            )
        })
        .collect();
    let meta = alpha.map(|a| [("alpha".to_string(), a.to_string())].into());
    safetensors::serialize(views, meta).expect("serializes")
}

/// Little-endian `f32` bytes.
pub fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}
