//! Int8 matrix multiply for the CPU: `y = x·Wᵀ` with `W` held as 8-bit integers in blocks of
//! 32 with one `f32` scale each (the Q8_0 scheme), and `x` quantized the same way on the fly.
//!
//! Why not candle's quantized matmul: for a batch of `m` decode rows it costs about `m` times
//! one row (measured 13.8 ms for 1 row and 81.6 ms for 8 rows of SmolLM2-135M), because its
//! AVX2 dot product is compute-bound. This kernel uses AVX-512 VNNI (`vpdpbusd`, 64
//! multiply-adds per instruction) where the CPU has it, and a register tile of 4 rows × 4
//! columns so each weight byte loaded serves 4 rows; elsewhere it runs a portable loop
//! (`OPENLEDGER_NO_VNNI=1` forces the portable loop, to compare the two).
//!
//! ## Numerics
//! Output element `(r, c)` is `Σ_b dx[r,b]·dw[c,b]·Σ_{i∈b} qx[r,i]·qw[c,i]`: the per-block
//! integer sums are exact, the scales and the sum over blocks are `f32`. Each `(r, c)` element
//! goes through the same instruction sequence whatever the number of rows and wherever it
//! falls in a tile, so **a row's result never depends on the other rows of the batch** (tested
//! bit for bit). The AVX-512 and portable paths sum in different orders and may differ in the
//! last bits.
//!
//! The VNNI path feeds activations as unsigned bytes `qx + 128` (the instruction multiplies
//! unsigned by signed) and subtracts `128·Σ_b dx[r,b]·dw[c,b]·Σ_{i∈b} qw[c,i]`, with the
//! per-block weight sums precomputed.
//!
//! `unsafe` is confined to this module: SIMD intrinsics behind a runtime CPU-feature check,
//! with the bounds each load relies on written next to it.
#![allow(unsafe_code)]

use rayon::prelude::*;

use crate::{Error, Result};

/// Values per quantization block.
pub const BLOCK: usize = 32;

/// Columns per parallel work item: 16 columns of `k = 1536` int8 weights are 24 KiB, which
/// stay in L1 while every row tile of the batch passes over them.
const COLS_PER_TASK: usize = 16;

/// A weight matrix `W` of shape `(n, k)` (`n` outputs, `k` inputs), quantized to int8 in
/// blocks of [`BLOCK`] along `k`.
#[derive(Debug, Clone)]
pub struct Int8Matrix {
    n: usize,
    k: usize,
    /// `n × k` quantized weights, row-major.
    q: Vec<i8>,
    /// `n × k/32` block scales.
    d: Vec<f32>,
    /// `n × k/32`: `128 · d · Σq` per block (the correction for the unsigned activations).
    offset: Vec<f32>,
}

/// Activation rows quantized for one multiply.
struct Quantized {
    /// `m × k` values `q + 128` (the VNNI path) or `q` reinterpreted (the portable path).
    q: Vec<u8>,
    /// `m × k/32` block scales.
    d: Vec<f32>,
}

/// Quantizes one block of 32 values: `d = max|x| / 127`, `q = round(x / d)`.
fn quantize_block(x: &[f32], q: &mut [i8]) -> f32 {
    let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
    let d = amax / 127.0;
    let id = if d > 0.0 { 1.0 / d } else { 0.0 };
    for (q, &v) in q.iter_mut().zip(x) {
        *q = (v * id).round() as i8;
    }
    d
}

impl Int8Matrix {
    /// Quantizes `w`, given row-major as `(n, k)`; `k` must be a multiple of 32.
    pub fn quantize(w: &[f32], n: usize, k: usize) -> Result<Self> {
        if k == 0 || !k.is_multiple_of(BLOCK) || w.len() != n * k {
            return Err(Error::ModelFormat {
                reason: format!(
                    "int8 weights need k a positive multiple of {BLOCK} and n·k values; \
                     got n={n}, k={k}, {} values",
                    w.len()
                ),
            });
        }
        let kb = k / BLOCK;
        let mut q = vec![0i8; n * k];
        let mut d = vec![0f32; n * kb];
        let mut offset = vec![0f32; n * kb];
        for ((wb, qb), (db, ob)) in w
            .chunks_exact(BLOCK)
            .zip(q.chunks_exact_mut(BLOCK))
            .zip(d.iter_mut().zip(offset.iter_mut()))
        {
            *db = quantize_block(wb, qb);
            let sum: i32 = qb.iter().map(|&v| v as i32).sum();
            *ob = 128.0 * *db * sum as f32;
        }
        Ok(Self { n, k, q, d, offset })
    }

    /// Number of outputs `n`.
    pub fn rows(&self) -> usize {
        self.n
    }

    /// Number of inputs `k`.
    pub fn cols(&self) -> usize {
        self.k
    }

    /// The matrix as `f32` (the quantized values times their scales), row-major `(n, k)`.
    pub fn dequantize(&self) -> Vec<f32> {
        self.q
            .chunks_exact(BLOCK)
            .zip(&self.d)
            .flat_map(|(q, &d)| q.iter().map(move |&v| v as f32 * d))
            .collect()
    }

    /// `y = x·Wᵀ` for `m = x.len() / k` rows; returns `m × n` values, row-major.
    pub fn matmul(&self, x: &[f32]) -> Result<Vec<f32>> {
        if !x.len().is_multiple_of(self.k) {
            return Err(Error::InvalidRequest {
                reason: format!("int8 matmul: {} inputs are not rows of {}", x.len(), self.k),
            });
        }
        let m = x.len() / self.k;
        if m == 0 {
            return Ok(Vec::new());
        }
        let vnni = vnni::available() && self.k.is_multiple_of(64);
        let xq = self.quantize_rows(x, m, vnni);
        // Work items own disjoint column ranges; each writes its columns of every row into a
        // column-major buffer, transposed at the end.
        let mut out_t = vec![0f32; self.n * m];
        out_t
            .par_chunks_mut(COLS_PER_TASK * m)
            .enumerate()
            .for_each(|(task, out)| {
                let c0 = task * COLS_PER_TASK;
                let cols = out.len() / m;
                if vnni {
                    // SAFETY: `available()` checked the CPU features; `k` is a multiple of 64.
                    unsafe { vnni::columns(self, &xq, m, c0, cols, out) }
                } else {
                    portable_columns(self, &xq, m, c0, cols, out)
                }
            });
        if m == 1 {
            return Ok(out_t);
        }
        let mut y = vec![0f32; m * self.n];
        for (c, col) in out_t.chunks_exact(m).enumerate() {
            for (r, &v) in col.iter().enumerate() {
                y[r * self.n + c] = v;
            }
        }
        Ok(y)
    }

    fn quantize_rows(&self, x: &[f32], m: usize, unsigned: bool) -> Quantized {
        let kb = self.k / BLOCK;
        let mut q = vec![0u8; m * self.k];
        let mut d = vec![0f32; m * kb];
        let mut qi = [0i8; BLOCK];
        for ((xb, qb), db) in x
            .chunks_exact(BLOCK)
            .zip(q.chunks_exact_mut(BLOCK))
            .zip(d.iter_mut())
        {
            *db = quantize_block(xb, &mut qi);
            for (o, &v) in qb.iter_mut().zip(&qi) {
                *o = if unsigned {
                    (v as i16 + 128) as u8
                } else {
                    v as u8
                };
            }
        }
        Quantized { q, d }
    }
}

/// The portable kernel: columns `c0..c0+cols` of every row, into `out[(c - c0)·m + r]`.
fn portable_columns(
    w: &Int8Matrix,
    x: &Quantized,
    m: usize,
    c0: usize,
    cols: usize,
    out: &mut [f32],
) {
    let (k, kb) = (w.k, w.k / BLOCK);
    for ci in 0..cols {
        let c = c0 + ci;
        let wq = &w.q[c * k..(c + 1) * k];
        let wd = &w.d[c * kb..(c + 1) * kb];
        for r in 0..m {
            let xq = &x.q[r * k..(r + 1) * k];
            let xd = &x.d[r * kb..(r + 1) * kb];
            let mut acc = 0f32;
            for b in 0..kb {
                let s: i32 = wq[b * BLOCK..(b + 1) * BLOCK]
                    .iter()
                    .zip(&xq[b * BLOCK..(b + 1) * BLOCK])
                    .map(|(&a, &b)| a as i32 * b as i8 as i32)
                    .sum();
                acc += wd[b] * xd[b] * s as f32;
            }
            out[ci * m + r] = acc;
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod vnni {
    use std::arch::x86_64::*;

    use super::{BLOCK, Int8Matrix, Quantized};

    /// Whether this CPU runs the AVX-512 VNNI kernel.
    pub fn available() -> bool {
        static AVAILABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *AVAILABLE.get_or_init(|| {
            std::is_x86_feature_detected!("avx512f")
                && std::is_x86_feature_detected!("avx512bw")
                && std::is_x86_feature_detected!("avx512vnni")
                && std::env::var_os("OPENLEDGER_NO_VNNI").is_none()
        })
    }

    /// Columns `c0..c0+cols` of every row, into `out[(c - c0)·m + r]`, in tiles of up to 4
    /// rows × 4 columns.
    ///
    /// # Safety
    /// The CPU must have AVX-512 F, BW and VNNI, and `w.k` must be a multiple of 64.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub unsafe fn columns(
        w: &Int8Matrix,
        x: &Quantized,
        m: usize,
        c0: usize,
        cols: usize,
        out: &mut [f32],
    ) {
        let mut c = 0;
        while c < cols {
            let nc = (cols - c).min(4);
            let mut r = 0;
            while r < m {
                let nr = (m - r).min(4);
                // SAFETY: forwarded from this function's contract.
                unsafe {
                    match (nr, nc) {
                        (4, 4) => tile::<4, 4>(w, x, m, r, c0 + c, c, out),
                        (3, 4) => tile::<3, 4>(w, x, m, r, c0 + c, c, out),
                        (2, 4) => tile::<2, 4>(w, x, m, r, c0 + c, c, out),
                        (1, 4) => tile::<1, 4>(w, x, m, r, c0 + c, c, out),
                        (4, _) => tile::<4, 1>(w, x, m, r, c0 + c, c, out),
                        (3, _) => tile::<3, 1>(w, x, m, r, c0 + c, c, out),
                        (2, _) => tile::<2, 1>(w, x, m, r, c0 + c, c, out),
                        _ => tile::<1, 1>(w, x, m, r, c0 + c, c, out),
                    }
                }
                r += nr;
            }
            c += if nc == 4 { 4 } else { 1 };
        }
    }

    /// One tile: rows `r0..r0+R`, columns `col..col+C` (`out` columns from `oc`).
    ///
    /// # Safety
    /// As for [`columns`]; `r0 + R <= m` and `col + C <= n`.
    #[inline]
    #[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn tile<const R: usize, const C: usize>(
        w: &Int8Matrix,
        x: &Quantized,
        m: usize,
        r0: usize,
        col: usize,
        oc: usize,
        out: &mut [f32],
    ) {
        let (k, kb) = (w.k, w.k / BLOCK);
        // Lanes 0..8 of a 64-byte chunk's dot product belong to its first block, 8..16 to the
        // second: this index spreads two block scales over those lanes.
        let spread = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
        let mut acc = [[_mm512_setzero_ps(); C]; R];
        let wq = w.q.as_ptr();
        let xq = x.q.as_ptr();
        for chunk in 0..k / 64 {
            let mut wv = [_mm512_setzero_si512(); C];
            let mut ws = [_mm512_setzero_ps(); C];
            for j in 0..C {
                // SAFETY: column `col + j < n` and `chunk·64 + 64 <= k`, in bounds of `w.q`;
                // two block scales at `2·chunk` are in bounds of `w.d` (`kb` is even).
                unsafe {
                    wv[j] = _mm512_loadu_si512(wq.add((col + j) * k + chunk * 64).cast());
                    let pair = _mm512_castsi512_ps(_mm512_set1_epi64(
                        w.d.as_ptr()
                            .add((col + j) * kb + 2 * chunk)
                            .cast::<i64>()
                            .read_unaligned(),
                    ));
                    ws[j] = _mm512_permutexvar_ps(spread, pair);
                }
            }
            for i in 0..R {
                let r = r0 + i;
                // SAFETY: row `r < m`, same bounds as above for `x`.
                let (xv, xs) = unsafe {
                    let xv = _mm512_loadu_si512(xq.add(r * k + chunk * 64).cast());
                    let pair = _mm512_castsi512_ps(_mm512_set1_epi64(
                        x.d.as_ptr()
                            .add(r * kb + 2 * chunk)
                            .cast::<i64>()
                            .read_unaligned(),
                    ));
                    (xv, _mm512_permutexvar_ps(spread, pair))
                };
                for j in 0..C {
                    let dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), xv, wv[j]);
                    let scale = _mm512_mul_ps(xs, ws[j]);
                    acc[i][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), scale, acc[i][j]);
                }
            }
        }
        // Subtract the offset of the unsigned activations: 128·Σ_b dx[b]·dw[b]·Σq_w[b],
        // 16 blocks at a time.
        for b in (0..kb).step_by(16) {
            let mask: __mmask16 = if kb - b >= 16 {
                0xFFFF
            } else {
                (1u16 << (kb - b)) - 1
            };
            for j in 0..C {
                // SAFETY: masked loads read only blocks `< kb` of the column's row.
                let off = unsafe {
                    _mm512_maskz_loadu_ps(mask, w.offset.as_ptr().add((col + j) * kb + b))
                };
                for i in 0..R {
                    let dx =
                        unsafe { _mm512_maskz_loadu_ps(mask, x.d.as_ptr().add((r0 + i) * kb + b)) };
                    acc[i][j] = _mm512_fnmadd_ps(dx, off, acc[i][j]);
                }
            }
        }
        for i in 0..R {
            for j in 0..C {
                out[(oc + j) * m + r0 + i] = _mm512_reduce_add_ps(acc[i][j]);
            }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod vnni {
    use super::{Int8Matrix, Quantized};

    pub fn available() -> bool {
        false
    }

    pub unsafe fn columns(
        _: &Int8Matrix,
        _: &Quantized,
        _: usize,
        _: usize,
        _: usize,
        _: &mut [f32],
    ) {
        unreachable!("the VNNI kernel exists only on x86_64")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::testing::values;

    /// `x·Wᵀ` in f64 over the quantized values: what both kernels approximate.
    fn reference(w: &Int8Matrix, x: &[f32]) -> Vec<f64> {
        let (n, k, kb) = (w.n, w.k, w.k / BLOCK);
        let m = x.len() / k;
        let xq = w.quantize_rows(x, m, false);
        let mut y = vec![0f64; m * n];
        for r in 0..m {
            for c in 0..n {
                let mut acc = 0f64;
                for b in 0..kb {
                    let s: i64 = (b * BLOCK..(b + 1) * BLOCK)
                        .map(|i| w.q[c * k + i] as i64 * xq.q[r * k + i] as i8 as i64)
                        .sum();
                    acc += w.d[c * kb + b] as f64 * xq.d[r * kb + b] as f64 * s as f64;
                }
                y[r * n + c] = acc;
            }
        }
        y
    }

    fn check_close(got: &[f32], want: &[f64], what: &str) {
        let scale = want.iter().fold(1f64, |m, v| m.max(v.abs()));
        for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
            assert!(
                (g as f64 - w).abs() <= 1e-5 * scale,
                "{what}: element {i}: {g} vs {w}"
            );
        }
    }

    #[test]
    fn matches_the_exact_product_of_the_quantized_values() {
        // Shapes cover: k a multiple of 64 (VNNI) or only of 32 (portable), n not a multiple
        // of 4 (the single-column tiles), row counts across tile boundaries.
        for (n, k) in [(37usize, 128usize), (16, 64), (21, 96), (64, 576)] {
            let w = Int8Matrix::quantize(&values(n as u64, n * k, 0.5), n, k).unwrap();
            for m in [1usize, 3, 4, 7, 9] {
                let x = values(100 + m as u64, m * k, 2.0);
                let got = w.matmul(&x).unwrap();
                check_close(&got, &reference(&w, &x), &format!("n={n} k={k} m={m}"));
                let mut portable = vec![0f32; n * m];
                let xq = w.quantize_rows(&x, m, false);
                portable_columns(&w, &xq, m, 0, n, &mut portable);
                let want = reference(&w, &x);
                for r in 0..m {
                    for c in 0..n {
                        let (g, e) = (portable[c * m + r] as f64, want[r * n + c]);
                        assert!((g - e).abs() <= 1e-5 * e.abs().max(1.0), "portable {r},{c}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_row_does_not_depend_on_the_other_rows() {
        let (n, k) = (50, 192);
        let w = Int8Matrix::quantize(&values(1, n * k, 0.5), n, k).unwrap();
        let x = values(2, 11 * k, 1.0);
        let alone: Vec<Vec<f32>> = (0..11)
            .map(|r| w.matmul(&x[r * k..(r + 1) * k]).unwrap())
            .collect();
        for m in 1..=11 {
            let y = w.matmul(&x[..m * k]).unwrap();
            for r in 0..m {
                assert_eq!(&y[r * n..(r + 1) * n], alone[r].as_slice(), "m={m} row {r}");
            }
        }
    }

    #[test]
    fn quantization_error_is_within_half_a_step() {
        let (n, k) = (8, 64);
        let wf = values(3, n * k, 1.0);
        let w = Int8Matrix::quantize(&wf, n, k).unwrap();
        for (b, (orig, deq)) in wf
            .chunks(BLOCK)
            .zip(w.dequantize().chunks(BLOCK))
            .enumerate()
        {
            let step = w.d[b];
            for (o, d) in orig.iter().zip(deq) {
                assert!((o - d).abs() <= step * 0.5 + 1e-7, "block {b}");
            }
        }
    }

    #[test]
    fn bad_shapes_are_refused() {
        assert!(Int8Matrix::quantize(&[0.0; 60], 2, 30).is_err());
        assert!(Int8Matrix::quantize(&[0.0; 63], 2, 32).is_err());
        let w = Int8Matrix::quantize(&[0.0; 64], 2, 32).unwrap();
        assert!(w.matmul(&[0.0; 33]).is_err());
        assert_eq!(w.matmul(&[1.0; 32]).unwrap(), vec![0.0, 0.0]);
        assert!(w.matmul(&[]).unwrap().is_empty());
    }
}
