//! 4-bit matrix multiply for the CPU: `y = x·Wᵀ` with `W` kept in the GGUF file's own 4-bit
//! blocks (Q4_1: `w = d·q + m`, `q ∈ 0..16`, one `d` and `m` per 32 values; Q4_0 is Q4_1 with
//! `m = -8·d`), and `x` quantized to int8 in blocks of 32 on the fly (the Q8_0 scheme, as
//! [`crate::int8`]).
//!
//! Why: decode is bounded by the weight bytes read per token and by the multiply-adds per
//! byte. 4-bit weights are half the bytes of int8, the weights are exactly the file's (no
//! re-quantization), and unsigned 4-bit values need no sign fix-up before `vpmaddubsw`.
//!
//! ## Layout and kernel
//! Columns are stored in **panels of 8** (the last one padded with zero columns). Within a
//! panel, each block of 32 inputs is 4 vectors of 32 bytes; byte `4·c + e` of vector `h` holds
//! input `4h + e` of column `c` in its low nibble and input `4(h + 4) + e` in its high nibble.
//! So one `vpmaddubsw` of a weight vector with 4 activation bytes broadcast to every lane
//! gives every column of the panel its partial dot product at once: the 8 columns are the 8
//! lanes of the result, no horizontal sum is ever needed, and the activations are shared by 8
//! columns while the weights are shared by a tile of 4 rows.
//!
//! The 8 products per 16-bit lane in a block are summed in 16 bits: each `vpmaddubsw` pair is
//! at most 2·15·127 = 3,810 in magnitude and 8 of them at most 30,480 < 32,767, so nothing
//! saturates or wraps. Then `vpmaddwd` widens to 32 bits and the block is scaled in `f32`.
//!
//! ## Numerics
//! Output `(r, c)` is `Σ_b (d[c,b]·dx[r,b]·Σ_i q[c,i]·qx[r,i] + m[c,b]·dx[r,b]·Σ_i qx[r,i])`:
//! exact integer sums, scales and the block sum in `f32`. Each output is one lane of one
//! accumulator and goes through the same instructions whatever the number of rows and
//! wherever it falls in a tile, so **a row's result never depends on the other rows of the
//! batch** (tested bit for bit).
//!
//! The kernel needs AVX2 + FMA ([`Q4Matrix::available`]). There is no AVX-512 or NEON variant
//! (no machine that builds and tests this crate has them) and no portable one: a plain-Rust
//! version of this layout measured 6 GMAC/s here against 11 for the portable int8 kernel, so
//! on other CPUs (or with `OPENLEDGER_KERNEL=portable`) the model re-quantizes these tensors
//! to int8 instead ([`crate::model::WeightFormat::Q4`]).
#![allow(unsafe_code)]

use rayon::prelude::*;

use crate::int8::BLOCK;
use crate::{Error, Result};

/// Columns per panel.
pub const PANEL: usize = 8;

/// Bytes of one panel's block: 8 columns × 32 inputs × 4 bits.
const PANEL_BLOCK_BYTES: usize = PANEL * BLOCK / 2;

/// Panels per parallel work item (16 columns, as in [`crate::int8`]).
const PANELS_PER_TASK: usize = 2;

/// Rows per tile.
const ROWS: usize = 4;

/// A weight matrix `W` of shape `(n, k)` in 4-bit blocks, in panels of 8 columns.
#[derive(Debug, Clone)]
pub struct Q4Matrix {
    n: usize,
    k: usize,
    /// `panels × k/32 × 128` bytes in the layout of the module docs.
    q: Vec<u8>,
    /// `panels × k/32 × 8` scales `d`, one per column of the panel.
    d: Vec<f32>,
    /// `panels × k/32 × 8` offsets `m`.
    m: Vec<f32>,
}

/// One column's block: 32 values `q ∈ 0..16` with `w = d·q + m`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Q4Block {
    /// The scale.
    pub d: f32,
    /// The offset.
    pub m: f32,
    /// The 32 4-bit values, one per byte.
    pub q: [u8; BLOCK],
}

/// Activation rows quantized for one multiply.
struct Quantized {
    /// `m × k` signed values.
    q: Vec<i8>,
    /// `m × k/32` block scales.
    d: Vec<f32>,
    /// `m × k/32`: `d · Σq` per block (what the offsets `m` multiply).
    s: Vec<f32>,
}

fn f16(b: &[u8]) -> f32 {
    half::f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32()
}

impl Q4Matrix {
    /// Whether this process multiplies 4-bit matrices: the CPU has AVX2 and FMA and
    /// `OPENLEDGER_KERNEL` does not force the portable int8 kernel. Fails as
    /// [`crate::int8::Kernel::selected`] does.
    pub fn available() -> Result<bool> {
        Ok(avx2::available() && crate::int8::Kernel::selected()? != crate::int8::Kernel::Portable)
    }

    /// Builds the matrix from `n` columns of `k/32` blocks each (`blocks[c·k/32 + b]`). Needs
    /// AVX2 and FMA.
    pub fn from_blocks(blocks: &[Q4Block], n: usize, k: usize) -> Result<Self> {
        if k == 0 || !k.is_multiple_of(BLOCK) || blocks.len() != n * (k / BLOCK) {
            return Err(Error::ModelFormat {
                reason: format!(
                    "4-bit weights need k a positive multiple of {BLOCK} and n·k/{BLOCK} blocks; \
                     got n={n}, k={k}, {} blocks",
                    blocks.len()
                ),
            });
        }
        if !avx2::available() {
            return Err(Error::InvalidConfig {
                field: crate::int8::KERNEL_ENV,
                reason: "the 4-bit kernel needs AVX2 and FMA, which this CPU lacks; use \
                         weight_format q8_0"
                    .into(),
            });
        }
        if let Some(v) = blocks.iter().flat_map(|b| b.q).find(|&v| v > 15) {
            return Err(Error::ModelFormat {
                reason: format!("4-bit weight value {v} is out of range 0..16"),
            });
        }
        let kb = k / BLOCK;
        let panels = n.div_ceil(PANEL);
        let mut q = vec![0u8; panels * kb * PANEL_BLOCK_BYTES];
        let mut d = vec![0f32; panels * kb * PANEL];
        let mut m = vec![0f32; panels * kb * PANEL];
        for c in 0..n {
            let (p, lane) = (c / PANEL, c % PANEL);
            for b in 0..kb {
                let blk = &blocks[c * kb + b];
                let pb = p * kb + b;
                d[pb * PANEL + lane] = blk.d;
                m[pb * PANEL + lane] = blk.m;
                let out = &mut q[pb * PANEL_BLOCK_BYTES..(pb + 1) * PANEL_BLOCK_BYTES];
                for h in 0..4 {
                    for e in 0..4 {
                        out[h * 32 + lane * 4 + e] =
                            blk.q[4 * h + e] | (blk.q[4 * (h + 4) + e] << 4);
                    }
                }
            }
        }
        Ok(Self { n, k, q, d, m })
    }

    /// The matrix of a GGUF tensor's raw Q4_0 or Q4_1 data (`n` rows of `k` values, row-major,
    /// in the ggml block layout); `None` for any other type.
    pub fn from_ggml(
        dtype: candle_core::quantized::GgmlDType,
        data: &[u8],
        n: usize,
        k: usize,
    ) -> Result<Option<Self>> {
        match ggml_blocks(dtype, data, n, k)? {
            Some(blocks) => Self::from_blocks(&blocks, n, k).map(Some),
            None => Ok(None),
        }
    }

    /// Number of outputs `n`.
    pub fn rows(&self) -> usize {
        self.n
    }

    /// Number of inputs `k`.
    pub fn cols(&self) -> usize {
        self.k
    }

    /// The matrix as `f32` (`d·q + m`), row-major `(n, k)`.
    pub fn dequantize(&self) -> Vec<f32> {
        let kb = self.k / BLOCK;
        let mut w = vec![0f32; self.n * self.k];
        for c in 0..self.n {
            let (p, lane) = (c / PANEL, c % PANEL);
            for b in 0..kb {
                let pb = p * kb + b;
                let (d, m) = (self.d[pb * PANEL + lane], self.m[pb * PANEL + lane]);
                for i in 0..BLOCK {
                    w[c * self.k + b * BLOCK + i] = d * self.value(pb, lane, i) as f32 + m;
                }
            }
        }
        w
    }

    /// The 4-bit value of input `i` of the block `pb` (panel block index) in column `lane`.
    fn value(&self, pb: usize, lane: usize, i: usize) -> u8 {
        let (h, e) = ((i / 4) % 4, i % 4);
        let byte = self.q[pb * PANEL_BLOCK_BYTES + h * 32 + lane * 4 + e];
        if i < 16 { byte & 0x0F } else { byte >> 4 }
    }

    /// `y = x·Wᵀ` for `m = x.len() / k` rows; returns `m × n` values, row-major.
    pub fn matmul(&self, x: &[f32]) -> Result<Vec<f32>> {
        Ok(Self::matmul_many(&[self], x)?.remove(0))
    }

    /// `x·Wᵀ` for several matrices with the same `k` (e.g. a layer's q, k and v): `x` is
    /// quantized once and every matrix's panels run in one parallel section. Each result is
    /// exactly what [`Q4Matrix::matmul`] returns for that matrix.
    pub fn matmul_many(mats: &[&Q4Matrix], x: &[f32]) -> Result<Vec<Vec<f32>>> {
        let Some(k) = mats.first().map(|w| w.k) else {
            return Ok(Vec::new());
        };
        if let Some(w) = mats.iter().find(|w| w.k != k) {
            return Err(Error::InvalidRequest {
                reason: format!(
                    "q4 matmul: matrices with {} and {k} inputs in one call",
                    w.k
                ),
            });
        }
        if !x.len().is_multiple_of(k) {
            return Err(Error::InvalidRequest {
                reason: format!("q4 matmul: {} inputs are not rows of {k}", x.len()),
            });
        }
        let rows = x.len() / k;
        if rows == 0 {
            return Ok(vec![Vec::new(); mats.len()]);
        }
        let xq = quantize_rows(x, k);
        // Work items own disjoint panel ranges of one matrix and write them panel-major
        // (`rows × 8` values per panel); results are then copied out row-major without the
        // padding.
        let mut outs: Vec<Vec<f32>> = mats
            .iter()
            .map(|w| vec![0f32; w.n.div_ceil(PANEL) * PANEL * rows])
            .collect();
        let tasks: Vec<(&Q4Matrix, usize, &mut [f32])> = mats
            .iter()
            .zip(outs.iter_mut())
            .flat_map(|(w, out)| {
                out.chunks_mut(PANELS_PER_TASK * PANEL * rows)
                    .enumerate()
                    .map(move |(task, out)| (*w, task * PANELS_PER_TASK, out))
            })
            .collect();
        tasks.into_par_iter().for_each(|(w, p0, out)| {
            for (i, out) in out.chunks_exact_mut(PANEL * rows).enumerate() {
                // SAFETY: `from_blocks` checked the CPU features; panel `p0 + i` exists.
                unsafe { avx2::panel(w, &xq, rows, p0 + i, out) }
            }
        });
        Ok(mats
            .iter()
            .zip(&outs)
            .map(|(w, out_p)| {
                let mut y = vec![0f32; rows * w.n];
                for (p, panel) in out_p.chunks_exact(PANEL * rows).enumerate() {
                    let cols = (w.n - p * PANEL).min(PANEL);
                    for r in 0..rows {
                        y[r * w.n + p * PANEL..r * w.n + p * PANEL + cols]
                            .copy_from_slice(&panel[r * PANEL..r * PANEL + cols]);
                    }
                }
                y
            })
            .collect())
    }
}

/// The blocks of a GGUF tensor's raw Q4_0 or Q4_1 data (`n` rows of `k` values, row-major);
/// `None` for any other type.
pub fn ggml_blocks(
    dtype: candle_core::quantized::GgmlDType,
    data: &[u8],
    n: usize,
    k: usize,
) -> Result<Option<Vec<Q4Block>>> {
    use candle_core::quantized::GgmlDType;
    let block_bytes = match dtype {
        GgmlDType::Q4_0 => 18,
        GgmlDType::Q4_1 => 20,
        _ => return Ok(None),
    };
    if !k.is_multiple_of(BLOCK) || data.len() != n * (k / BLOCK) * block_bytes {
        return Err(Error::ModelFormat {
            reason: format!(
                "{dtype:?} tensor of {n}x{k} has {} bytes, expected {}",
                data.len(),
                n * (k / BLOCK) * block_bytes
            ),
        });
    }
    let blocks: Vec<Q4Block> = data
        .chunks_exact(block_bytes)
        .map(|raw| {
            let d = f16(&raw[0..2]);
            let (m, qs) = match dtype {
                GgmlDType::Q4_0 => (-8.0 * d, &raw[2..18]),
                _ => (f16(&raw[2..4]), &raw[4..20]),
            };
            let mut q = [0u8; BLOCK];
            for (i, &byte) in qs.iter().enumerate() {
                q[i] = byte & 0x0F;
                q[i + 16] = byte >> 4;
            }
            Q4Block { d, m, q }
        })
        .collect();
    Ok(Some(blocks))
}

/// Quantizes `x` (rows of `k`) to int8 blocks, as [`crate::int8`] does, with the block sums.
fn quantize_rows(x: &[f32], k: usize) -> Quantized {
    let blocks = x.len() / BLOCK;
    let mut q = vec![0i8; x.len()];
    let mut d = vec![0f32; blocks];
    let mut s = vec![0f32; blocks];
    debug_assert!(k.is_multiple_of(BLOCK));
    for (((xb, qb), db), sb) in x
        .chunks_exact(BLOCK)
        .zip(q.chunks_exact_mut(BLOCK))
        .zip(d.iter_mut())
        .zip(s.iter_mut())
    {
        *db = crate::int8::quantize_block(xb, qb);
        *sb = *db * qb.iter().map(|&v| v as i32).sum::<i32>() as f32;
    }
    Quantized { q, d, s }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{BLOCK, PANEL, PANEL_BLOCK_BYTES, Q4Matrix, Quantized, ROWS};

    /// Whether this CPU runs the AVX2 kernel.
    pub fn available() -> bool {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }

    /// Panel `p` of every row into `out[r·8 + lane]`.
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA; `p` is a panel of `w`; `out.len() == rows·8`.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn panel(w: &Q4Matrix, x: &Quantized, rows: usize, p: usize, out: &mut [f32]) {
        let mut r = 0;
        while r < rows {
            let nr = (rows - r).min(ROWS);
            // SAFETY: forwarded; `r + nr <= rows`.
            unsafe {
                match nr {
                    4 => tile::<4>(w, x, r, p, out),
                    3 => tile::<3>(w, x, r, p, out),
                    2 => tile::<2>(w, x, r, p, out),
                    _ => tile::<1>(w, x, r, p, out),
                }
            }
            r += nr;
        }
    }

    /// Rows `r0..r0+R` of panel `p`.
    ///
    /// # Safety
    /// As for [`panel`]; `r0 + R` rows exist in `x`.
    #[inline]
    #[allow(clippy::needless_range_loop)]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn tile<const R: usize>(
        w: &Q4Matrix,
        x: &Quantized,
        r0: usize,
        p: usize,
        out: &mut [f32],
    ) {
        let (k, kb) = (w.k, w.k / BLOCK);
        let nibble = _mm256_set1_epi8(0x0F);
        let ones = _mm256_set1_epi16(1);
        let mut acc = [_mm256_setzero_ps(); R];
        let xq = x.q.as_ptr();
        for b in 0..kb {
            let pb = p * kb + b;
            let mut dots = [_mm256_setzero_si256(); R];
            for h in 0..4 {
                // SAFETY: panel block `pb` is in bounds of `w.q` (`p` is a panel of `w`,
                // `b < kb`), vector `h < 4` of its 128 bytes.
                let packed = unsafe {
                    _mm256_loadu_si256(w.q.as_ptr().add(pb * PANEL_BLOCK_BYTES + h * 32).cast())
                };
                let lo = _mm256_and_si256(packed, nibble);
                let hi = _mm256_and_si256(_mm256_srli_epi16(packed, 4), nibble);
                for i in 0..R {
                    let row = xq.wrapping_add((r0 + i) * k + b * BLOCK);
                    // SAFETY: row `r0 + i` exists and `4(h + 4) + 4 <= 32`: both 4-byte reads
                    // are inside the row's block `b`.
                    let (xl, xh) = unsafe {
                        (
                            _mm256_set1_epi32(row.add(4 * h).cast::<i32>().read_unaligned()),
                            _mm256_set1_epi32(row.add(4 * (h + 4)).cast::<i32>().read_unaligned()),
                        )
                    };
                    dots[i] = _mm256_add_epi16(dots[i], _mm256_maddubs_epi16(lo, xl));
                    dots[i] = _mm256_add_epi16(dots[i], _mm256_maddubs_epi16(hi, xh));
                }
            }
            // SAFETY: 8 scales and 8 offsets of panel block `pb` are in bounds.
            let (wd, wm) = unsafe {
                (
                    _mm256_loadu_ps(w.d.as_ptr().add(pb * PANEL)),
                    _mm256_loadu_ps(w.m.as_ptr().add(pb * PANEL)),
                )
            };
            for i in 0..R {
                let r = r0 + i;
                // SAFETY: row `r` exists, block `b < kb`.
                let (dx, sx) = unsafe {
                    (
                        *x.d.get_unchecked(r * kb + b),
                        *x.s.get_unchecked(r * kb + b),
                    )
                };
                let dot = _mm256_cvtepi32_ps(_mm256_madd_epi16(dots[i], ones));
                let scale = _mm256_mul_ps(wd, _mm256_set1_ps(dx));
                acc[i] = _mm256_fmadd_ps(dot, scale, acc[i]);
                acc[i] = _mm256_fmadd_ps(wm, _mm256_set1_ps(sx), acc[i]);
            }
        }
        for i in 0..R {
            let o = &mut out[(r0 + i) * PANEL..(r0 + i + 1) * PANEL];
            // SAFETY: `o` has 8 values.
            unsafe { _mm256_storeu_ps(o.as_mut_ptr(), acc[i]) };
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod avx2 {
    use super::{Q4Matrix, Quantized};

    pub fn available() -> bool {
        false
    }

    pub unsafe fn panel(_: &Q4Matrix, _: &Quantized, _: usize, _: usize, _: &mut [f32]) {
        unreachable!("the AVX2 kernel exists only on x86_64")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::testing::values;

    /// Reproducible 4-bit blocks with small scales and offsets of both signs.
    fn blocks(seed: u64, n: usize, k: usize) -> Vec<Q4Block> {
        let v = values(seed, n * k + 2 * n * (k / BLOCK), 1.0);
        let (q, sc) = v.split_at(n * k);
        q.chunks_exact(BLOCK)
            .zip(sc.chunks_exact(2))
            .map(|(q, s)| Q4Block {
                d: s[0].abs() * 0.1 + 0.01,
                m: s[1] * 0.5,
                q: std::array::from_fn(|i| ((q[i] + 1.0) * 7.99) as u8),
            })
            .collect()
    }

    /// The exact product in f64 of the blocks' values and the quantized activations.
    fn reference(blocks: &[Q4Block], n: usize, k: usize, x: &[f32]) -> Vec<f64> {
        let kb = k / BLOCK;
        let rows = x.len() / k;
        let xq = quantize_rows(x, k);
        let mut y = vec![0f64; rows * n];
        for r in 0..rows {
            for c in 0..n {
                y[r * n + c] = (0..kb)
                    .map(|b| {
                        let blk = &blocks[c * kb + b];
                        let s: f64 = (0..BLOCK)
                            .map(|i| {
                                (blk.d as f64 * blk.q[i] as f64 + blk.m as f64)
                                    * xq.q[r * k + b * BLOCK + i] as f64
                            })
                            .sum();
                        s * xq.d[r * kb + b] as f64
                    })
                    .sum();
            }
        }
        y
    }

    /// The kernel runs only with AVX2 and FMA; without them construction is refused.
    fn kernel_runs_here() -> bool {
        let here = avx2::available();
        if !here {
            let err = Q4Matrix::from_blocks(&blocks(1, 8, 32), 8, 32).unwrap_err();
            assert!(err.to_string().contains("AVX2"), "{err}");
        }
        here
    }

    #[test]
    fn matches_the_exact_product() {
        if !kernel_runs_here() {
            return;
        }
        for (n, k) in [(8usize, 32usize), (13, 64), (16, 576), (37, 96), (1, 32)] {
            let bl = blocks(n as u64, n, k);
            let w = Q4Matrix::from_blocks(&bl, n, k).unwrap();
            for rows in [1usize, 2, 3, 4, 5, 9] {
                let x = values(50 + rows as u64, rows * k, 2.0);
                let got = w.matmul(&x).unwrap();
                let want = reference(&bl, n, k, &x);
                let scale = want.iter().fold(1f64, |a, v| a.max(v.abs()));
                for (i, (&g, &e)) in got.iter().zip(&want).enumerate() {
                    assert!(
                        (g as f64 - e).abs() <= 1e-5 * scale,
                        "n={n} k={k} rows={rows} [{i}]: {g} vs {e}"
                    );
                }
            }
        }
    }

    #[test]
    fn extreme_values_do_not_saturate() {
        if !kernel_runs_here() {
            return;
        }
        // Every weight 15 and every activation ±127: the largest 16-bit partial sums.
        let k = 64;
        let bl = vec![
            Q4Block {
                d: 1.0,
                m: 0.0,
                q: [15; BLOCK],
            };
            8 * (k / BLOCK)
        ];
        let w = Q4Matrix::from_blocks(&bl, 8, k).unwrap();
        for sign in [1.0f32, -1.0] {
            let y = w.matmul(&vec![sign; k]).unwrap();
            let want = reference(&bl, 8, k, &vec![sign; k]);
            for (g, e) in y.iter().zip(&want) {
                assert!((*g as f64 - e).abs() <= 1e-3, "{g} vs {e}");
            }
        }
    }

    #[test]
    fn a_row_does_not_depend_on_the_other_rows() {
        if !kernel_runs_here() {
            return;
        }
        let (n, k) = (40, 192);
        let w = Q4Matrix::from_blocks(&blocks(3, n, k), n, k).unwrap();
        let mul = |x: &[f32]| w.matmul(x).unwrap();
        crate::model::testing::assert_rows_independent(n, k, 11, mul, "q4");
    }

    #[test]
    fn several_matrices_in_one_call_give_each_ones_own_product() {
        if !kernel_runs_here() {
            return;
        }
        let k = 96;
        let mats: Vec<Q4Matrix> = [8usize, 21, 3]
            .iter()
            .map(|&n| Q4Matrix::from_blocks(&blocks(n as u64 + 40, n, k), n, k).unwrap())
            .collect();
        let refs: Vec<&Q4Matrix> = mats.iter().collect();
        for rows in [1usize, 5] {
            let x = values(rows as u64, rows * k, 1.5);
            let many = Q4Matrix::matmul_many(&refs, &x).unwrap();
            for (w, y) in mats.iter().zip(&many) {
                assert_eq!(y, &w.matmul(&x).unwrap());
            }
        }
        let other = Q4Matrix::from_blocks(&blocks(1, 8, 64), 8, 64).unwrap();
        assert!(Q4Matrix::matmul_many(&[&mats[0], &other], &values(1, 96, 1.0)).is_err());
        assert!(Q4Matrix::matmul_many(&[], &[1.0]).unwrap().is_empty());
    }

    #[test]
    fn ggml_blocks_are_read_exactly() {
        use candle_core::quantized::{GgmlDType, QTensor};
        use candle_core::{Device, Tensor};
        let (n, k) = (12usize, 64usize);
        let t = Tensor::from_vec(values(9, n * k, 1.0), (n, k), &Device::Cpu).unwrap();
        for dtype in [GgmlDType::Q4_0, GgmlDType::Q4_1] {
            let qt = QTensor::quantize(&t, dtype).unwrap();
            let want = qt.dequantize(&Device::Cpu).unwrap().flatten_all().unwrap();
            let want = want.to_vec1::<f32>().unwrap();
            let bl = ggml_blocks(dtype, &qt.data().unwrap(), n, k)
                .unwrap()
                .expect("a 4-bit type");
            let got: Vec<f32> = bl
                .iter()
                .flat_map(|b| b.q.map(|q| b.d * q as f32 + b.m))
                .collect();
            for (i, (g, e)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (g - e).abs() <= 1e-6 * e.abs().max(1.0),
                    "{dtype:?} [{i}]: {g} vs {e}"
                );
            }
            if avx2::available() {
                let w = Q4Matrix::from_blocks(&bl, n, k).unwrap();
                assert_eq!(
                    w.dequantize(),
                    got,
                    "{dtype:?}: the panel layout round-trips"
                );
            }
        }
        let q8 = QTensor::quantize(&t, GgmlDType::Q8_0).unwrap();
        assert!(
            ggml_blocks(GgmlDType::Q8_0, &q8.data().unwrap(), n, k)
                .unwrap()
                .is_none()
        );
        let q4 = QTensor::quantize(&t, GgmlDType::Q4_1).unwrap();
        assert!(ggml_blocks(GgmlDType::Q4_1, &q4.data().unwrap(), n + 1, k).is_err());
    }

    #[test]
    fn bad_input_is_refused() {
        if !kernel_runs_here() {
            return;
        }
        let b = blocks(1, 2, 32);
        assert!(Q4Matrix::from_blocks(&b, 3, 32).is_err());
        assert!(Q4Matrix::from_blocks(&b, 2, 30).is_err());
        let mut bad = b.clone();
        bad[1].q[5] = 16;
        assert!(Q4Matrix::from_blocks(&bad, 2, 32).is_err());
        let w = Q4Matrix::from_blocks(&b, 2, 32).unwrap();
        assert!(w.matmul(&[0.0; 33]).is_err());
        assert!(w.matmul(&[]).unwrap().is_empty());
    }
}
