//! Int8 matrix multiply for the CPU: `y = x·Wᵀ` with `W` held as 8-bit integers in blocks of
//! 32 with one `f32` scale each (the Q8_0 scheme), and `x` quantized the same way on the fly.
//!
//! Why not candle's quantized matmul: for a batch of `m` decode rows it costs about `m` times
//! one row (measured 13.8 ms for 1 row and 81.6 ms for 8 rows of SmolLM2-135M), because it
//! multiplies one row by one column at a time. Every kernel here works on **register tiles**
//! of several rows × several columns, so each weight byte loaded serves every row of the tile.
//!
//! ## Kernels
//! One [`Kernel`] per CPU family, chosen at run time ([`Kernel::best`]) or forced with
//! `OPENLEDGER_KERNEL=avx512vnni|avx2|portable` (to measure a slower path on a faster CPU):
//! - [`Kernel::Avx512Vnni`]: AVX-512 F/BW/VNNI, `vpdpbusd` (64 multiply-adds per instruction),
//!   tiles of 4 rows × 4 columns.
//! - [`Kernel::Avx2`]: AVX2 + FMA (every x86-64 CPU since Haswell and Zen 1), `vpmaddubsw` +
//!   `vpmaddwd` (32 multiply-adds per pair), tiles of 4 rows × 2 columns (16 `ymm` registers:
//!   8 accumulators, the tile's weights and their magnitudes, one activation vector).
//! - [`Kernel::Portable`]: plain Rust over tiles of 4 rows × 1 column, written so the compiler
//!   vectorizes the block dot product with the baseline SIMD of the target (SSE2 on x86-64,
//!   NEON on aarch64). What every other CPU runs.
//!
//! There is no hand-written aarch64 (NEON dotprod / i8mm) or AVX-VNNI (256-bit `vpdpbusd`)
//! kernel: no machine that builds and tests this crate has them, so such code could not be
//! tested; those CPUs run the portable and AVX2 kernels respectively.
//!
//! ## Numerics
//! Output element `(r, c)` is `Σ_b dx[r,b]·dw[c,b]·Σ_{i∈b} qx[r,i]·qw[c,i]`: the per-block
//! integer sums are exact, the scales and the sum over blocks are `f32`. Within a kernel, each
//! `(r, c)` element goes through the same instruction sequence whatever the number of rows and
//! wherever it falls in a tile, so **a row's result never depends on the other rows of the
//! batch** (tested bit for bit, for every kernel). The kernels sum the `f32` terms in different
//! orders, so two kernels may differ in the last bits (tested against the exact product).
//!
//! The VNNI kernel feeds activations as unsigned bytes `qx + 128` (the instruction multiplies
//! unsigned by signed) and subtracts `128·Σ_b dx[r,b]·dw[c,b]·Σ_{i∈b} qw[c,i]`, with the
//! per-block weight sums precomputed. The AVX2 kernel multiplies `|qw|` by `qx·sign(qw)`
//! (`vpsignb`); both are at most 127 in magnitude, so the 16-bit pair sums of `vpmaddubsw`
//! (at most 2·127·127 = 32,258) never saturate.
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

/// The environment variable that forces a [`Kernel`] (read once, by [`Kernel::selected`]).
pub const KERNEL_ENV: &str = "OPENLEDGER_KERNEL";

/// An implementation of the int8 product, one per CPU family (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// AVX-512 F, BW and VNNI: tiles of 4 rows × 4 columns.
    Avx512Vnni,
    /// AVX2 and FMA: tiles of 4 rows × 2 columns.
    Avx2,
    /// Plain Rust, vectorized by the compiler: tiles of 4 rows × 1 column. Runs everywhere.
    Portable,
}

impl Kernel {
    /// Every kernel, fastest first.
    pub const ALL: [Kernel; 3] = [Kernel::Avx512Vnni, Kernel::Avx2, Kernel::Portable];

    /// The name used by `OPENLEDGER_KERNEL` and printed by the benchmarks.
    pub fn name(self) -> &'static str {
        match self {
            Kernel::Avx512Vnni => "avx512vnni",
            Kernel::Avx2 => "avx2",
            Kernel::Portable => "portable",
        }
    }

    /// Whether this CPU can run the kernel.
    pub fn is_supported(self) -> bool {
        match self {
            Kernel::Avx512Vnni => vnni::available(),
            Kernel::Avx2 => avx2::available(),
            Kernel::Portable => true,
        }
    }

    /// The fastest kernel this CPU supports.
    pub fn best() -> Kernel {
        Self::ALL
            .into_iter()
            .find(|k| k.is_supported())
            .unwrap_or(Kernel::Portable)
    }

    /// The kernel new matrices use: `OPENLEDGER_KERNEL` when set (read once per process), else
    /// [`Kernel::best`]. Fails when the variable names an unknown kernel or one this CPU lacks.
    pub fn selected() -> Result<Kernel> {
        static SELECTED: std::sync::OnceLock<std::result::Result<Kernel, String>> =
            std::sync::OnceLock::new();
        SELECTED
            .get_or_init(|| match std::env::var(KERNEL_ENV) {
                Err(_) => Ok(Kernel::best()),
                Ok(v) => v
                    .parse::<Kernel>()
                    .map_err(|e| e.to_string())
                    .and_then(|k| k.check().map_err(|e| e.to_string())),
            })
            .clone()
            .map_err(|reason| Error::InvalidConfig {
                field: KERNEL_ENV,
                reason,
            })
    }

    /// `Ok(self)` if this CPU supports the kernel, else a clear error.
    pub fn check(self) -> Result<Kernel> {
        if self.is_supported() {
            Ok(self)
        } else {
            Err(Error::InvalidConfig {
                field: KERNEL_ENV,
                reason: format!(
                    "this CPU cannot run the {} int8 kernel; the best it supports is {}",
                    self.name(),
                    Kernel::best().name()
                ),
            })
        }
    }
}

impl std::fmt::Display for Kernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Kernel {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.name() == s.trim().to_ascii_lowercase())
            .ok_or_else(|| Error::InvalidConfig {
                field: KERNEL_ENV,
                reason: format!("unknown int8 kernel {s:?}; use avx512vnni, avx2 or portable"),
            })
    }
}

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
    /// The kernel that multiplies by this matrix.
    kernel: Kernel,
}

/// Activation rows quantized for one multiply.
struct Quantized {
    /// `m × k` values `q + 128` (the VNNI kernel) or `q` reinterpreted (AVX2); empty for the
    /// portable kernel.
    q: Vec<u8>,
    /// `m × k` values `q` widened to 16 bits (the portable kernel; empty otherwise).
    wide: Vec<i16>,
    /// `m × k/32` block scales.
    d: Vec<f32>,
}

/// Quantizes one block of 32 values: `d = max|x| / 127`, `q = round(x / d)`.
pub(crate) fn quantize_block(x: &[f32], q: &mut [i8]) -> f32 {
    let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
    let d = amax / 127.0;
    let id = if d > 0.0 { 1.0 / d } else { 0.0 };
    for (q, &v) in q.iter_mut().zip(x) {
        *q = (v * id).round() as i8;
    }
    d
}

impl Int8Matrix {
    /// Quantizes `w`, given row-major as `(n, k)`; `k` must be a multiple of 32. Multiplies
    /// with [`Kernel::selected`].
    pub fn quantize(w: &[f32], n: usize, k: usize) -> Result<Self> {
        Self::quantize_for(w, n, k, Kernel::selected()?)
    }

    /// As [`Int8Matrix::quantize`], multiplying with `kernel` (which this CPU must support).
    /// The VNNI kernel needs `k` a multiple of 64; for other `k` the matrix uses the next
    /// kernel this CPU supports.
    pub fn quantize_for(w: &[f32], n: usize, k: usize, kernel: Kernel) -> Result<Self> {
        if k == 0 || !k.is_multiple_of(BLOCK) || w.len() != n * k {
            return Err(Error::ModelFormat {
                reason: format!(
                    "int8 weights need k a positive multiple of {BLOCK} and n·k values; \
                     got n={n}, k={k}, {} values",
                    w.len()
                ),
            });
        }
        let mut kernel = kernel.check()?;
        if kernel == Kernel::Avx512Vnni && !k.is_multiple_of(64) {
            kernel = if Kernel::Avx2.is_supported() {
                Kernel::Avx2
            } else {
                Kernel::Portable
            };
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
        Ok(Self {
            n,
            k,
            q,
            d,
            offset,
            kernel,
        })
    }

    /// Number of outputs `n`.
    pub fn rows(&self) -> usize {
        self.n
    }

    /// Number of inputs `k`.
    pub fn cols(&self) -> usize {
        self.k
    }

    /// The kernel that multiplies by this matrix.
    pub fn kernel(&self) -> Kernel {
        self.kernel
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
        let xq = self.quantize_rows(x, m);
        // Work items own disjoint column ranges; each writes its columns of every row into a
        // column-major buffer, transposed at the end.
        let mut out_t = vec![0f32; self.n * m];
        out_t
            .par_chunks_mut(COLS_PER_TASK * m)
            .enumerate()
            .for_each(|(task, out)| {
                let c0 = task * COLS_PER_TASK;
                let cols = out.len() / m;
                match self.kernel {
                    // SAFETY: `quantize_for` checked the CPU features, and that `k` is a
                    // multiple of 64 for VNNI.
                    Kernel::Avx512Vnni => unsafe { vnni::columns(self, &xq, m, c0, cols, out) },
                    // SAFETY: `quantize_for` checked the CPU features.
                    Kernel::Avx2 => unsafe { avx2::columns(self, &xq, m, c0, cols, out) },
                    Kernel::Portable => portable_columns(self, &xq, m, c0, cols, out),
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

    /// Quantizes `m` activation rows into the representation this matrix's kernel reads: one
    /// pass, one representation.
    fn quantize_rows(&self, x: &[f32], m: usize) -> Quantized {
        let kb = self.k / BLOCK;
        let len = m * self.k;
        let (mut q, mut wide) = match self.kernel {
            Kernel::Portable => (Vec::new(), vec![0i16; len]),
            _ => (vec![0u8; len], Vec::new()),
        };
        let mut d = vec![0f32; m * kb];
        let mut qi = [0i8; BLOCK];
        for (b, (xb, db)) in x.chunks_exact(BLOCK).zip(d.iter_mut()).enumerate() {
            *db = quantize_block(xb, &mut qi);
            let at = b * BLOCK..(b + 1) * BLOCK;
            match self.kernel {
                Kernel::Avx512Vnni => {
                    for (o, &v) in q[at].iter_mut().zip(&qi) {
                        *o = (v as i16 + 128) as u8;
                    }
                }
                Kernel::Avx2 => {
                    for (o, &v) in q[at].iter_mut().zip(&qi) {
                        *o = v as u8;
                    }
                }
                Kernel::Portable => {
                    for (o, &v) in wide[at].iter_mut().zip(&qi) {
                        *o = v as i16;
                    }
                }
            }
        }
        Quantized { q, wide, d }
    }
}

/// The tiles the SIMD kernels walk over `m` rows × `cols` columns, column by column: tiles of
/// up to `rows` rows and `tile_cols` columns, then single columns where fewer than `tile_cols`
/// remain. Yields `(first row, rows, first column, columns)`.
fn tiles(
    m: usize,
    cols: usize,
    rows: usize,
    tile_cols: usize,
) -> impl Iterator<Item = (usize, usize, usize, usize)> {
    let full = cols / tile_cols * tile_cols;
    (0..full)
        .step_by(tile_cols)
        .map(move |c| (c, tile_cols))
        .chain((full..cols).map(|c| (c, 1)))
        .flat_map(move |(c, nc)| {
            (0..m)
                .step_by(rows)
                .map(move |r| (r, (m - r).min(rows), c, nc))
        })
}

/// Rows per tile of the portable kernel.
const PORTABLE_ROWS: usize = 4;

/// The portable kernel: columns `c0..c0+cols` of every row, into `out[(c - c0)·m + r]`, in
/// tiles of up to 4 rows × 1 column (each weight block is loaded once for the tile's rows).
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
        for r0 in (0..m).step_by(PORTABLE_ROWS) {
            let nr = (m - r0).min(PORTABLE_ROWS);
            let mut acc = [0f32; PORTABLE_ROWS];
            for (b, (wb, &dw)) in wq.chunks_exact(BLOCK).zip(wd).enumerate() {
                // Widened once, used by every row of the tile.
                let wb: [i16; BLOCK] = std::array::from_fn(|i| wb[i] as i16);
                for (i, acc) in acc.iter_mut().enumerate().take(nr) {
                    let r = r0 + i;
                    let xb = &x.wide[r * k + b * BLOCK..r * k + (b + 1) * BLOCK];
                    let xb: &[i16; BLOCK] = xb.try_into().expect("a block is 32 values");
                    *acc += dw * x.d[r * kb + b] * dot_block(&wb, xb) as f32;
                }
            }
            for (i, &a) in acc.iter().enumerate().take(nr) {
                out[ci * m + r0 + i] = a;
            }
        }
    }
}

/// `Σ w[i]·x[i]` over one block of 16-bit values: products of 16-bit values summed in
/// 32 bits, a shape compilers turn into `pmaddwd` (SSE2) or `smlal` (NEON).
#[inline(always)]
fn dot_block(w: &[i16; BLOCK], x: &[i16; BLOCK]) -> i32 {
    let mut s = 0i32;
    for i in 0..BLOCK {
        s += w[i] as i32 * x[i] as i32;
    }
    s
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{BLOCK, Int8Matrix, Quantized};

    /// Rows per tile.
    const ROWS: usize = 4;
    /// Columns per tile.
    const COLS: usize = 2;

    /// Whether this CPU runs the AVX2 kernel.
    pub fn available() -> bool {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }

    /// Columns `c0..c0+cols` of every row, into `out[(c - c0)·m + r]`, in tiles of up to 4
    /// rows × 2 columns.
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA; `x` holds signed values (not offset by 128).
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn columns(
        w: &Int8Matrix,
        x: &Quantized,
        m: usize,
        c0: usize,
        cols: usize,
        out: &mut [f32],
    ) {
        for (r, nr, c, nc) in super::tiles(m, cols, ROWS, COLS) {
            // SAFETY: forwarded from this function's contract; `r + nr <= m` and
            // `c0 + c + nc <= n`.
            unsafe {
                match (nr, nc) {
                    (4, 2) => tile::<4, 2>(w, x, m, r, c0 + c, c, out),
                    (3, 2) => tile::<3, 2>(w, x, m, r, c0 + c, c, out),
                    (2, 2) => tile::<2, 2>(w, x, m, r, c0 + c, c, out),
                    (1, 2) => tile::<1, 2>(w, x, m, r, c0 + c, c, out),
                    (4, _) => tile::<4, 1>(w, x, m, r, c0 + c, c, out),
                    (3, _) => tile::<3, 1>(w, x, m, r, c0 + c, c, out),
                    (2, _) => tile::<2, 1>(w, x, m, r, c0 + c, c, out),
                    _ => tile::<1, 1>(w, x, m, r, c0 + c, c, out),
                }
            }
        }
    }

    /// One tile: rows `r0..r0+R`, columns `col..col+C` (`out` columns from `oc`).
    ///
    /// # Safety
    /// As for [`columns`]; `r0 + R <= m` and `col + C <= n`.
    #[inline]
    #[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
    #[target_feature(enable = "avx2,fma")]
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
        let ones = _mm256_set1_epi16(1);
        let mut acc = [[_mm256_setzero_ps(); C]; R];
        let wq = w.q.as_ptr();
        let xq = x.q.as_ptr();
        for b in 0..kb {
            let mut wv = [_mm256_setzero_si256(); C];
            let mut wa = [_mm256_setzero_si256(); C];
            let mut wd = [0f32; C];
            for j in 0..C {
                // SAFETY: column `col + j < n` and block `b < kb`: 32 bytes in bounds of `w.q`,
                // one scale in bounds of `w.d`.
                unsafe {
                    wv[j] = _mm256_loadu_si256(wq.add((col + j) * k + b * BLOCK).cast());
                    wd[j] = *w.d.get_unchecked((col + j) * kb + b);
                }
                wa[j] = _mm256_sign_epi8(wv[j], wv[j]);
            }
            for i in 0..R {
                let r = r0 + i;
                // SAFETY: row `r < m` and block `b < kb`, in bounds of `x.q` and `x.d`.
                let (xv, xd) = unsafe {
                    (
                        _mm256_loadu_si256(xq.add(r * k + b * BLOCK).cast()),
                        *x.d.get_unchecked(r * kb + b),
                    )
                };
                for j in 0..C {
                    let signed = _mm256_sign_epi8(xv, wv[j]);
                    let pairs = _mm256_maddubs_epi16(wa[j], signed);
                    let dot = _mm256_madd_epi16(pairs, ones);
                    let scale = _mm256_set1_ps(xd * wd[j]);
                    acc[i][j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), scale, acc[i][j]);
                }
            }
        }
        for i in 0..R {
            for j in 0..C {
                out[(oc + j) * m + r0 + i] = hsum(acc[i][j]);
            }
        }
    }

    /// The sum of the 8 lanes.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn hsum(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_movehdup_ps(s));
        _mm_cvtss_f32(s)
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod avx2 {
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
        unreachable!("the AVX2 kernel exists only on x86_64")
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
        for (r, nr, c, nc) in super::tiles(m, cols, 4, 4) {
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
        let mut xq = vec![0i8; x.len()];
        let xd: Vec<f32> = x
            .chunks_exact(BLOCK)
            .zip(xq.chunks_exact_mut(BLOCK))
            .map(|(xb, qb)| quantize_block(xb, qb))
            .collect();
        let mut y = vec![0f64; m * n];
        for r in 0..m {
            for c in 0..n {
                let mut acc = 0f64;
                for b in 0..kb {
                    let s: i64 = (b * BLOCK..(b + 1) * BLOCK)
                        .map(|i| w.q[c * k + i] as i64 * xq[r * k + i] as i64)
                        .sum();
                    acc += w.d[c * kb + b] as f64 * xd[r * kb + b] as f64 * s as f64;
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

    /// The kernels this CPU runs (always at least the portable one).
    fn supported() -> Vec<Kernel> {
        let ks: Vec<Kernel> = Kernel::ALL
            .into_iter()
            .filter(|k| k.is_supported())
            .collect();
        eprintln!(
            "int8 kernels tested on this CPU: {}",
            ks.iter().map(|k| k.name()).collect::<Vec<_>>().join(", ")
        );
        ks
    }

    #[test]
    fn every_kernel_matches_the_exact_product_of_the_quantized_values() {
        // Shapes cover: k a multiple of 64 (VNNI) or only of 32, n odd or not a multiple of 4
        // (the narrower column tiles), row counts across tile boundaries.
        for kernel in supported() {
            for (n, k) in [(37usize, 128usize), (16, 64), (21, 96), (64, 576), (3, 32)] {
                let w =
                    Int8Matrix::quantize_for(&values(n as u64, n * k, 0.5), n, k, kernel).unwrap();
                for m in [1usize, 2, 3, 4, 5, 7, 9] {
                    let x = values(100 + m as u64, m * k, 2.0);
                    let got = w.matmul(&x).unwrap();
                    check_close(
                        &got,
                        &reference(&w, &x),
                        &format!("{kernel} ({}) n={n} k={k} m={m}", w.kernel()),
                    );
                }
            }
        }
    }

    #[test]
    fn a_row_does_not_depend_on_the_other_rows_in_any_kernel() {
        let (n, k) = (50, 192);
        for kernel in supported() {
            let w = Int8Matrix::quantize_for(&values(1, n * k, 0.5), n, k, kernel).unwrap();
            let mul = |x: &[f32]| w.matmul(x).unwrap();
            crate::model::testing::assert_rows_independent(n, k, 11, mul, kernel.name());
        }
    }

    #[test]
    fn the_kernels_agree_with_each_other() {
        let (n, k, m) = (72, 576, 6);
        let wf = values(7, n * k, 0.3);
        let x = values(8, m * k, 3.0);
        let results: Vec<(Kernel, Vec<f32>)> = supported()
            .into_iter()
            .map(|kernel| {
                let w = Int8Matrix::quantize_for(&wf, n, k, kernel).unwrap();
                (kernel, w.matmul(&x).unwrap())
            })
            .collect();
        let (first, want) = &results[0];
        let want: Vec<f64> = want.iter().map(|&v| v as f64).collect();
        for (kernel, got) in &results[1..] {
            check_close(got, &want, &format!("{kernel} vs {first}"));
        }
    }

    #[test]
    fn tiles_cover_every_element_once() {
        for (m, cols, rows, tile_cols) in [(9, 16, 4, 2), (1, 7, 4, 4), (5, 3, 4, 4), (4, 8, 4, 2)]
        {
            let mut seen = vec![0u8; m * cols];
            for (r, nr, c, nc) in tiles(m, cols, rows, tile_cols) {
                assert!(nr >= 1 && nr <= rows && (nc == tile_cols || nc == 1));
                for i in r..r + nr {
                    for j in c..c + nc {
                        seen[j * m + i] += 1;
                    }
                }
            }
            assert!(seen.iter().all(|&v| v == 1), "m={m} cols={cols}");
        }
    }

    #[test]
    fn kernels_are_named_and_checked() {
        for kernel in Kernel::ALL {
            assert_eq!(kernel.name().parse::<Kernel>().unwrap(), kernel);
        }
        assert_eq!(" AVX2 ".parse::<Kernel>().unwrap(), Kernel::Avx2);
        let err = "sse9".parse::<Kernel>().unwrap_err().to_string();
        assert!(err.contains("avx512vnni, avx2 or portable"), "{err}");
        assert!(Kernel::Portable.is_supported());
        assert!(Kernel::best().is_supported());
        for kernel in Kernel::ALL.into_iter().filter(|k| !k.is_supported()) {
            let err = Int8Matrix::quantize_for(&[0.0; 64], 2, 32, kernel).unwrap_err();
            assert!(err.to_string().contains("cannot run"), "{err}");
        }
        // k = 96 is not a multiple of 64: a VNNI request falls back to the next kernel.
        let w = Int8Matrix::quantize_for(&[0.0; 96], 1, 96, Kernel::best()).unwrap();
        assert_ne!(w.kernel(), Kernel::Avx512Vnni);
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
