//! Reading, writing and validating adapter files.
//!
//! One safetensors file per adapter. For each adapted projection of layer `i`:
//! - `blk.{i}.{proj}.lora_a`: shape `(rank, in)`,
//! - `blk.{i}.{proj}.lora_b`: shape `(out, rank)`,
//!
//! where `proj` is a [`Target::gguf_name`]; PEFT tensor names are read too (see
//! [`TensorName`]). The safetensors metadata carries `alpha` (default: the rank). The delta
//! added to `y = x·Wᵀ` is `(alpha / rank) · B·(A·x)`. Files are written in `F32`; `F32`,
//! `F16`, `BF16` and `F64` tensors are read.

use std::collections::{BTreeMap, HashMap};

use safetensors::{Dtype, SafeTensors, tensor::TensorView};

use crate::{BaseShape, Error, Factor, Result, Target, TensorName};

/// The metadata key holding alpha.
const ALPHA_KEY: &str = "alpha";

/// The weights of one adapted projection.
#[derive(Debug, Clone, PartialEq)]
pub struct AdapterTensor {
    /// Layer index.
    pub layer: usize,
    /// Which projection.
    pub target: Target,
    /// `A`, row-major `(rank, in)`.
    pub a: Vec<f32>,
    /// `B`, row-major `(out, rank)`.
    pub b: Vec<f32>,
    /// `(rank, in, out)`.
    pub shape: (usize, usize, usize),
}

/// The content of an adapter file: alpha and the low-rank pairs, checked to be a
/// well-formed adapter (every pair complete, one non-zero rank, data matching the shapes).
/// Whether it fits a particular base model is [`AdapterWeights::check_fits`].
#[derive(Debug, Clone, PartialEq)]
pub struct AdapterWeights {
    alpha: f32,
    rank: usize,
    /// Sorted by (layer, target), at most one per pair.
    tensors: Vec<AdapterTensor>,
}

impl AdapterWeights {
    /// Checks and assembles an adapter from its pairs (in any order).
    pub fn new(alpha: f32, mut tensors: Vec<AdapterTensor>) -> Result<Self> {
        if !alpha.is_finite() {
            return Err(Error::BadAlpha {
                value: alpha.to_string(),
            });
        }
        tensors.sort_by_key(|t| (t.layer, t.target));
        let first = tensors.first().ok_or(Error::Empty)?;
        let rank = first.shape.0;
        for (k, t) in tensors.iter().enumerate() {
            let (layer, target) = (t.layer, t.target);
            if k > 0 && (tensors[k - 1].layer, tensors[k - 1].target) == (layer, target) {
                return Err(Error::DuplicatePair { layer, target });
            }
            let (r, d_in, d_out) = t.shape;
            if r == 0 {
                return Err(Error::ZeroRank { layer, target });
            }
            if r != rank {
                return Err(Error::MixedRanks {
                    layer,
                    target,
                    rank: r,
                    expected: rank,
                });
            }
            for (factor, len, rows, cols) in [
                (Factor::A, t.a.len(), r, d_in),
                (Factor::B, t.b.len(), d_out, r),
            ] {
                if Some(len) != rows.checked_mul(cols) {
                    return Err(Error::DataLength {
                        layer,
                        target,
                        factor,
                        len,
                        rows,
                        cols,
                    });
                }
            }
        }
        Ok(Self {
            alpha,
            rank,
            tensors,
        })
    }

    /// Parses and checks the bytes of an adapter file.
    pub fn read(file: &[u8]) -> Result<Self> {
        let st =
            SafeTensors::deserialize(file).map_err(|source| Error::NotSafetensors { source })?;
        let (_, meta) =
            SafeTensors::read_metadata(file).map_err(|source| Error::NotSafetensors { source })?;
        let alpha = meta
            .metadata()
            .as_ref()
            .and_then(|m| m.get(ALPHA_KEY))
            .map(|s| match s.trim().parse::<f32>() {
                Ok(a) if a.is_finite() => Ok(a),
                _ => Err(Error::BadAlpha { value: s.clone() }),
            })
            .transpose()?;
        // Sorted by name, so a file with several faults always reports the same one.
        let mut named = st.tensors();
        named.sort_by(|(x, _), (y, _)| x.cmp(y));
        let mut pairs: BTreeMap<(usize, Target), [Option<Matrix>; 2]> = BTreeMap::new();
        for (name, view) in named {
            let tn = TensorName::parse(&name)
                .ok_or_else(|| Error::UnknownTensor { name: name.clone() })?;
            let matrix = Matrix::from_view(&name, &view)?;
            let slot = &mut pairs.entry((tn.layer, tn.target)).or_default()[tn.factor as usize];
            if slot.is_some() {
                return Err(Error::DuplicateTensor {
                    layer: tn.layer,
                    target: tn.target,
                    factor: tn.factor,
                });
            }
            *slot = Some(matrix);
        }
        let mut tensors = Vec::with_capacity(pairs.len());
        for ((layer, target), [a, b]) in pairs {
            let missing = |factor| Error::MissingFactor {
                layer,
                target,
                factor,
            };
            let a = a.ok_or_else(|| missing(Factor::A))?;
            let b = b.ok_or_else(|| missing(Factor::B))?;
            if a.rows != b.cols {
                return Err(Error::PairRankMismatch {
                    layer,
                    target,
                    a_rank: a.rows,
                    b_rank: b.cols,
                });
            }
            tensors.push(AdapterTensor {
                layer,
                target,
                shape: (a.rows, a.cols, b.rows),
                a: a.values,
                b: b.values,
            });
        }
        let rank = tensors.first().map_or(0, |t| t.shape.0);
        Self::new(alpha.unwrap_or(rank as f32), tensors)
    }

    /// Serializes the adapter: the file bytes, which determine its content id.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let data: Vec<(String, Vec<usize>, Vec<u8>)> = self
            .tensors
            .iter()
            .flat_map(|t| {
                let (r, d_in, d_out) = t.shape;
                let name = |factor| {
                    TensorName {
                        layer: t.layer,
                        target: t.target,
                        factor,
                    }
                    .to_string()
                };
                [
                    (name(Factor::A), vec![r, d_in], le_bytes(&t.a)),
                    (name(Factor::B), vec![d_out, r], le_bytes(&t.b)),
                ]
            })
            .collect();
        let views = data
            .iter()
            .map(|(name, shape, bytes)| {
                TensorView::new(Dtype::F32, shape.clone(), bytes).map(|v| (name.as_str(), v))
            })
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|source| Error::Serialize { source })?;
        let meta = HashMap::from([(ALPHA_KEY.to_string(), self.alpha.to_string())]);
        safetensors::serialize(views, Some(meta)).map_err(|source| Error::Serialize { source })
    }

    /// Checks that every pair fits the base model: its layer exists and `A`, `B` have the
    /// projection's input and output sizes.
    pub fn check_fits(&self, base: &BaseShape) -> Result<()> {
        for t in &self.tensors {
            let (layer, target) = (t.layer, t.target);
            if layer >= base.n_layer {
                return Err(Error::LayerOutOfRange {
                    layer,
                    target,
                    n_layer: base.n_layer,
                });
            }
            let (rank, d_in, d_out) = t.shape;
            let (want_in, want_out) = (base.in_dim(target), base.out_dim(target));
            if (d_in, d_out) != (want_in, want_out) {
                return Err(Error::ShapeMismatch {
                    layer,
                    target,
                    rank,
                    d_in,
                    d_out,
                    want_in,
                    want_out,
                });
            }
        }
        Ok(())
    }

    /// LoRA alpha.
    pub fn alpha(&self) -> f32 {
        self.alpha
    }

    /// LoRA rank, shared by every pair.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// The factor the delta is scaled by: `alpha / rank`.
    pub fn scale(&self) -> f32 {
        self.alpha / self.rank as f32
    }

    /// The pairs, sorted by (layer, target).
    pub fn tensors(&self) -> &[AdapterTensor] {
        &self.tensors
    }

    /// The pairs, sorted by (layer, target), by value.
    pub fn into_tensors(self) -> Vec<AdapterTensor> {
        self.tensors
    }
}

/// Serializes an adapter in our safetensors layout; returns the file bytes.
pub fn write_adapter(alpha: f32, tensors: &[AdapterTensor]) -> Result<Vec<u8>> {
    AdapterWeights::new(alpha, tensors.to_vec())?.to_bytes()
}

fn le_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// A 2-D tensor read from a file, widened to `f32`.
struct Matrix {
    rows: usize,
    cols: usize,
    values: Vec<f32>,
}

impl Matrix {
    fn from_view(name: &str, view: &TensorView<'_>) -> Result<Self> {
        let &[rows, cols] = view.shape() else {
            return Err(Error::NotMatrix {
                name: name.to_string(),
                shape: view.shape().to_vec(),
            });
        };
        let data = view.data();
        let values: Vec<f32> = match view.dtype() {
            Dtype::F32 => data
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            Dtype::F16 => data
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            Dtype::BF16 => data
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            Dtype::F64 => data
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().expect("8-byte chunk")) as f32)
                .collect(),
            other => {
                return Err(Error::UnsupportedDtype {
                    name: name.to_string(),
                    dtype: format!("{other:?}"),
                });
            }
        };
        // safetensors checked that the data length matches the shape and dtype.
        debug_assert_eq!(values.len(), rows * cols);
        Ok(Self { rows, cols, values })
    }
}
