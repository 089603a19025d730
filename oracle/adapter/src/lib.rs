//! The OpenLedger LoRA adapter file format.
//!
//! **What it is for:** everything about an adapter that is not arithmetic on tensors, shared
//! by the inference engine and the fine-tuning code: the projections an adapter can target
//! ([`Target`]) and the names of their tensors ([`TensorName`]); how adapters are addressed
//! (their [`content_id`], the SHA-256 of the file, and their name, the file stem); reading
//! and writing our safetensors layout ([`AdapterWeights`], [`write_adapter`]); and checking
//! a file against a base model's sizes, given as plain numbers ([`BaseShape`]), with a typed
//! [`Error`] for every way a file can be wrong.
//!
//! **What it is not for:** applying adapters (the engine turns [`AdapterWeights`] into its
//! own tensors), caching them, or training them. It depends on no tensor library.
//!
//! The `test-utils` feature adds `testing::RandomAdapter`, the seeded random adapter that
//! tests and benchmarks use.
//!
//! # Example
//! ```
//! use openledger_adapter::{AdapterTensor, AdapterWeights, BaseShape, Target, content_id};
//!
//! let base = BaseShape { n_layer: 1, hidden: 2, ffn: 4, kv_dim: 2 };
//! let q = AdapterTensor {
//!     layer: 0,
//!     target: Target::Q,
//!     a: vec![1.0, 0.0],
//!     b: vec![0.5, -0.5],
//!     shape: (1, 2, 2),
//! };
//! let file = AdapterWeights::new(2.0, vec![q])?.to_bytes()?;
//! let read = AdapterWeights::read(&file)?;
//! read.check_fits(&base)?;
//! assert_eq!(read.scale(), 2.0);
//! assert_eq!(content_id(&file).len(), 64);
//! # Ok::<(), openledger_adapter::Error>(())
//! ```

mod file;
mod id;
mod shape;
mod target;
#[cfg(any(test, feature = "test-utils"))]
pub mod testing;

use std::path::PathBuf;

pub use file::{AdapterTensor, AdapterWeights, write_adapter};
pub use id::{FILE_EXTENSION, content_id, is_adapter_file, name_from_path};
pub use shape::BaseShape;
pub use target::{Factor, Target, TensorName};

/// Ways an adapter file can be wrong, or not fit its base model.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bytes are not a safetensors file (truncated, bad header, ...).
    #[error("not a safetensors file: {source}")]
    NotSafetensors {
        /// What the safetensors reader found.
        source: safetensors::SafeTensorError,
    },
    /// The `alpha` metadata entry (or the alpha given) is not a finite number.
    #[error("alpha {value:?} is not a finite number")]
    BadAlpha {
        /// The value found.
        value: String,
    },
    /// A tensor's name is neither ours nor PEFT's name of a LoRA factor.
    #[error(
        "unexpected tensor name {name:?}; adapter tensors are named blk.{{layer}}.{{proj}}.lora_a or .lora_b (or PEFT's names)"
    )]
    UnknownTensor {
        /// The tensor name.
        name: String,
    },
    /// A tensor's element type cannot be read.
    #[error("tensor {name}: dtype {dtype} is not supported; store F32, F16, BF16 or F64")]
    UnsupportedDtype {
        /// The tensor name.
        name: String,
        /// The element type found.
        dtype: String,
    },
    /// A tensor is not two-dimensional.
    #[error("tensor {name}: shape {shape:?} is not a matrix")]
    NotMatrix {
        /// The tensor name.
        name: String,
        /// The shape found.
        shape: Vec<usize>,
    },
    /// The file holds one factor twice (under our name and PEFT's).
    #[error("layer {layer} {target}: {factor} appears twice (under two names)")]
    DuplicateTensor {
        /// Layer index.
        layer: usize,
        /// Projection.
        target: Target,
        /// The repeated factor.
        factor: Factor,
    },
    /// The same projection was given twice.
    #[error("layer {layer} {target}: given twice")]
    DuplicatePair {
        /// Layer index.
        layer: usize,
        /// Projection.
        target: Target,
    },
    /// A projection has only one of its two factors.
    #[error("layer {layer} {target}: {factor} is missing; each adapted projection needs A and B")]
    MissingFactor {
        /// Layer index.
        layer: usize,
        /// Projection.
        target: Target,
        /// The absent factor.
        factor: Factor,
    },
    /// The file holds no LoRA tensors.
    #[error("no LoRA tensors in the adapter")]
    Empty,
    /// A pair has rank 0.
    #[error("layer {layer} {target}: rank 0; the rank must be at least 1")]
    ZeroRank {
        /// Layer index.
        layer: usize,
        /// Projection.
        target: Target,
    },
    /// `A`'s rows and `B`'s columns differ.
    #[error("layer {layer} {target}: A has rank {a_rank} but B has rank {b_rank}")]
    PairRankMismatch {
        /// Layer index.
        layer: usize,
        /// Projection.
        target: Target,
        /// Rows of `A`.
        a_rank: usize,
        /// Columns of `B`.
        b_rank: usize,
    },
    /// Pairs of different ranks in one adapter.
    #[error(
        "layer {layer} {target}: rank {rank}, but the adapter's rank is {expected}; all pairs must share one rank"
    )]
    MixedRanks {
        /// Layer index.
        layer: usize,
        /// Projection.
        target: Target,
        /// This pair's rank.
        rank: usize,
        /// The rank of the first pair.
        expected: usize,
    },
    /// A factor's values do not fill its shape.
    #[error("layer {layer} {target}: {factor} has {len} values but its shape is {rows}x{cols}")]
    DataLength {
        /// Layer index.
        layer: usize,
        /// Projection.
        target: Target,
        /// The factor.
        factor: Factor,
        /// Values given.
        len: usize,
        /// Rows of the shape.
        rows: usize,
        /// Columns of the shape.
        cols: usize,
    },
    /// A pair adapts a layer the base model does not have.
    #[error("layer {layer} {target}: the model has {n_layer} layers")]
    LayerOutOfRange {
        /// Layer index.
        layer: usize,
        /// Projection.
        target: Target,
        /// Layers of the model.
        n_layer: usize,
    },
    /// A pair's sizes are not the projection's sizes in the base model.
    #[error(
        "layer {layer} {target}: A is {rank}x{d_in}, B is {d_out}x{rank}; the model needs A rank x {want_in} and B {want_out} x rank"
    )]
    ShapeMismatch {
        /// Layer index.
        layer: usize,
        /// Projection.
        target: Target,
        /// The pair's rank.
        rank: usize,
        /// Columns of `A`.
        d_in: usize,
        /// Rows of `B`.
        d_out: usize,
        /// The projection's input size.
        want_in: usize,
        /// The projection's output size.
        want_out: usize,
    },
    /// The adapter could not be serialized (a shape too large for safetensors).
    #[error("cannot serialize the adapter: {source}")]
    Serialize {
        /// The safetensors error.
        source: safetensors::SafeTensorError,
    },
    /// An adapter file's stem is empty or not UTF-8, so it cannot be a name.
    #[error("{path}: an adapter file needs a UTF-8 name before .safetensors; rename it")]
    BadName {
        /// The file.
        path: PathBuf,
    },
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
