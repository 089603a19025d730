//! The random adapter that tests and benchmarks use (`test-utils` feature).

use crate::{AdapterTensor, AdapterWeights, BaseShape, Target};

/// A reproducible random adapter: `rank`-`rank` pairs on `targets` of every layer, values
/// uniform in `[-scale, scale)` drawn from `seed`. The same fields give the same bytes (and
/// so the same content id) on every platform.
///
/// ```
/// use openledger_adapter::{BaseShape, Target, testing::RandomAdapter};
/// let base = BaseShape { n_layer: 2, hidden: 8, ffn: 16, kv_dim: 4 };
/// let small = RandomAdapter { rank: 2, targets: vec![Target::Down], ..RandomAdapter::new(7) };
/// assert_eq!(small.weights(&base).tensors().len(), 2);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RandomAdapter {
    /// Seed of the values.
    pub seed: u64,
    /// LoRA rank. Default 8.
    pub rank: usize,
    /// LoRA alpha. Default 16.
    pub alpha: f32,
    /// Adapted projections, in every layer. Default `[Q, V]`.
    pub targets: Vec<Target>,
    /// Values are in `[-scale, scale)`. Default 0.25.
    pub scale: f32,
    /// Make every `B` zero, so the adapter changes nothing. Default false.
    pub zero_b: bool,
}

impl RandomAdapter {
    /// The default adapter for `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            rank: 8,
            alpha: 16.0,
            targets: vec![Target::Q, Target::V],
            scale: 0.25,
            zero_b: false,
        }
    }

    /// The pairs for a base model of this shape. Each matrix has its own stream of values
    /// (derived from the seed, layer, target and factor), so adding a target leaves the
    /// others unchanged.
    pub fn tensors(&self, base: &BaseShape) -> Vec<AdapterTensor> {
        let r = self.rank;
        let mut out = Vec::with_capacity(base.n_layer * self.targets.len());
        for layer in 0..base.n_layer {
            for &target in &self.targets {
                let (d_in, d_out) = (base.in_dim(target), base.out_dim(target));
                let stream = |factor: u64| {
                    mix(self.seed ^ mix((layer as u64) << 8 | (target as u64) << 1 | factor))
                };
                let b = if self.zero_b {
                    vec![0.0; d_out * r]
                } else {
                    values(stream(1), d_out * r, self.scale)
                };
                out.push(AdapterTensor {
                    layer,
                    target,
                    a: values(stream(0), r * d_in, self.scale),
                    b,
                    shape: (r, d_in, d_out),
                });
            }
        }
        out
    }

    /// The adapter for a base model of this shape.
    pub fn weights(&self, base: &BaseShape) -> AdapterWeights {
        AdapterWeights::new(self.alpha, self.tensors(base)).expect("the fixture is well-formed")
    }

    /// The adapter's file bytes for a base model of this shape.
    pub fn to_bytes(&self, base: &BaseShape) -> Vec<u8> {
        self.weights(base)
            .to_bytes()
            .expect("the fixture serializes")
    }
}

/// The splitmix64 finalizer: spreads nearby inputs over all 64 bits.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `n` values uniform in `[-scale, scale)` from an xorshift64 stream.
fn values(seed: u64, n: usize, scale: f32) -> Vec<f32> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content_id;

    const BASE: BaseShape = BaseShape {
        n_layer: 2,
        hidden: 8,
        ffn: 16,
        kv_dim: 4,
    };

    #[test]
    fn same_fields_give_the_same_file_and_other_seeds_differ() {
        let a = RandomAdapter::new(3).to_bytes(&BASE);
        assert_eq!(a, RandomAdapter::new(3).to_bytes(&BASE));
        assert_ne!(
            content_id(&a),
            content_id(&RandomAdapter::new(4).to_bytes(&BASE))
        );
    }

    #[test]
    fn fits_its_base_with_values_in_range() {
        let r = RandomAdapter {
            rank: 3,
            scale: 0.1,
            targets: Target::ALL.to_vec(),
            ..RandomAdapter::new(9)
        };
        let w = r.weights(&BASE);
        w.check_fits(&BASE).unwrap();
        assert_eq!((w.rank(), w.alpha(), w.tensors().len()), (3, 16.0, 14));
        let all: Vec<f32> = w
            .tensors()
            .iter()
            .flat_map(|t| t.a.iter().chain(&t.b))
            .copied()
            .collect();
        assert!(all.iter().all(|v| (-0.1..0.1).contains(v)));
        assert!(all.iter().any(|v| *v < -0.05) && all.iter().any(|v| *v > 0.05));
        // Distinct streams: no two matrices start alike.
        let firsts: std::collections::HashSet<u32> = w
            .tensors()
            .iter()
            .flat_map(|t| [t.a[0].to_bits(), t.b[0].to_bits()])
            .collect();
        assert_eq!(firsts.len(), 28);
    }

    #[test]
    fn zero_b_zeroes_only_b() {
        let w = RandomAdapter {
            zero_b: true,
            ..RandomAdapter::new(1)
        }
        .weights(&BASE);
        assert!(w.tensors().iter().all(|t| t.b.iter().all(|v| *v == 0.0)));
        assert!(w.tensors().iter().all(|t| t.a.iter().any(|v| *v != 0.0)));
    }

    #[test]
    fn adding_a_target_keeps_the_others_values() {
        let qv = RandomAdapter::new(5).tensors(&BASE);
        let qvd = RandomAdapter {
            targets: vec![Target::Q, Target::V, Target::Down],
            ..RandomAdapter::new(5)
        }
        .tensors(&BASE);
        for t in &qv {
            assert!(qvd.contains(t), "layer {} {}", t.layer, t.target);
        }
    }
}
