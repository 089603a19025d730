//! How linear-layer weights are held ([`WeightFormat`]) and multiplied ([`Linear`]).

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Device, Module, Tensor};

use crate::int8::Int8Matrix;
use crate::q4::Q4Matrix;
use crate::{Error, Result};

/// How the linear-layer weights are held in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WeightFormat {
    /// Exactly as stored in the GGUF file (for SmolLM2: Q4_1, which candle runs with scalar
    /// code: measured 18 tok/s single-stream vs 75 for Q8_0).
    Gguf,
    /// 4-bit tensors (Q4_0, Q4_1) kept exactly as in the file and run by this crate's 4-bit
    /// kernel ([`crate::q4`], AVX2 + FMA); every other tensor as [`WeightFormat::Q8_0`]. The
    /// default: the file's own weights, about half the bytes of int8, and the fastest measured
    /// on an AVX2 CPU (AMD EPYC Zen 3, 2 cores) at every batch size. Batch-invariant by
    /// construction. On devices other than the CPU, on CPUs without AVX2, and with
    /// `OPENLEDGER_KERNEL=portable` it is `Q8_0`.
    #[default]
    Q4,
    /// Re-quantized to Q8_0 at load (about 1.6× the Q4_1 size, 143 MB for SmolLM2-135M). On the
    /// CPU it runs this crate's int8 kernel ([`crate::int8`]: AVX-512 VNNI or AVX2 where
    /// available, register tiles so a batch shares each weight load), on other devices
    /// candle's Q8_0 kernels. Batch-invariant by construction. On AVX-512 VNNI CPUs this may
    /// beat `q4` (whose kernel is AVX2 at most); that comparison has not been measured.
    Q8_0,
    /// Dequantized to f32 at load (540 MB for SmolLM2-135M; `gemm` kernels). About as fast as
    /// Q8_0 for 8-sequence batches, much slower single-stream; more robust than the quantized
    /// kernels (whose worker threads spin) when the CPU is oversubscribed.
    F32,
}

impl std::str::FromStr for WeightFormat {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "gguf" => Ok(Self::Gguf),
            "q4" => Ok(Self::Q4),
            "q8_0" | "q8" => Ok(Self::Q8_0),
            "f32" => Ok(Self::F32),
            other => Err(Error::InvalidConfig {
                field: "weight_format",
                reason: format!("unknown weight format {other:?}; use q4, gguf, q8_0 or f32"),
            }),
        }
    }
}

/// A linear layer `y = x·Wᵀ` over weights in one of the [`WeightFormat`]s.
#[derive(Debug, Clone)]
pub(super) enum Linear {
    /// Q8_0 on the CPU: this crate's int8 kernel ([`crate::int8`]).
    Int8(Int8Matrix),
    /// 4-bit on the CPU: this crate's 4-bit kernel ([`crate::q4`]).
    Q4(Q4Matrix),
    /// Everything else: candle's quantized or `f32` matmul.
    Candle(QMatMul),
}

impl Linear {
    pub(super) fn new(q: QTensor, format: WeightFormat, device: &Device) -> Result<Self> {
        Ok(match format {
            WeightFormat::Gguf => Self::Candle(QMatMul::from_qtensor(q)?),
            WeightFormat::Q4 if device.is_cpu() && Q4Matrix::available()? => {
                let (n, k) = q.shape().dims2()?;
                match Q4Matrix::from_ggml(q.dtype(), &q.data()?, n, k)? {
                    Some(w) => Self::Q4(w),
                    None => Self::new(q, WeightFormat::Q8_0, device)?,
                }
            }
            WeightFormat::Q4 => Self::new(q, WeightFormat::Q8_0, device)?,
            WeightFormat::Q8_0 if device.is_cpu() => {
                let (n, k) = q.shape().dims2()?;
                let f = q.dequantize(device)?.flatten_all()?.to_vec1::<f32>()?;
                Self::Int8(Int8Matrix::quantize(&f, n, k)?)
            }
            WeightFormat::Q8_0 => {
                let f = q.dequantize(device)?;
                Self::Candle(QMatMul::from_qtensor(QTensor::quantize(
                    &f,
                    GgmlDType::Q8_0,
                )?)?)
            }
            WeightFormat::F32 => Self::Candle(QMatMul::Tensor(q.dequantize(device)?)),
        })
    }

    /// The forward pass of several layers on one input (a layer's q, k, v; gate, up). 4-bit
    /// layers share one quantization of `x` and one parallel section; the results are exactly
    /// those of [`Linear::forward`] one by one.
    pub(super) fn forward_many<const N: usize>(
        lins: [&Linear; N],
        x: &Tensor,
    ) -> Result<[Tensor; N]> {
        let q4: Vec<&Q4Matrix> = lins
            .iter()
            .filter_map(|l| match l {
                Self::Q4(w) => Some(w),
                _ => None,
            })
            .collect();
        let mut out = Vec::with_capacity(N);
        if q4.len() < N {
            for l in lins {
                out.push(l.forward(x)?);
            }
        } else {
            let xs = x.flatten_all()?.to_vec1::<f32>()?;
            for (y, w) in Q4Matrix::matmul_many(&q4, &xs)?.into_iter().zip(&q4) {
                out.push(Tensor::from_vec(y, (x.dim(0)?, w.rows()), x.device())?);
            }
        }
        Ok(out.try_into().expect("one result per layer"))
    }

    pub(super) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Self::Int8(w) => on_host(x, w.rows(), |x| w.matmul(x)),
            Self::Q4(w) => on_host(x, w.rows(), |x| w.matmul(x)),
            Self::Candle(w @ QMatMul::Tensor(_)) if x.dim(0)? == 1 => {
                // `gemm` runs a single row through a GEMV path that sums in another order than
                // its multi-row kernels (whose per-row results do not depend on the row count;
                // see `f32_matmul_rows_do_not_depend_on_the_row_count`). Two rows keep a
                // sequence's result the same whether it runs alone or in a batch.
                let y = w.forward(&Tensor::cat(&[x, x], 0)?)?;
                Ok(y.narrow(0, 0, 1)?)
            }
            Self::Candle(w) => Ok(w.forward(x)?),
        }
    }
}

/// Runs a host matrix kernel over the rows of `x` and returns its `(rows, n)` result.
fn on_host(
    x: &Tensor,
    n: usize,
    matmul: impl FnOnce(&[f32]) -> Result<Vec<f32>>,
) -> Result<Tensor> {
    let y = matmul(&x.flatten_all()?.to_vec1::<f32>()?)?;
    Ok(Tensor::from_vec(y, (x.dim(0)?, n), x.device())?)
}
