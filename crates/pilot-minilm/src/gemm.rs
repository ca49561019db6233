//! Single-threaded f32 matrix products against column panels packed once: the encoder's
//! linear layers and its attention, on AVX-512 when the CPU has it.
//!
//! `gemm` (via candle) reached about a quarter of this machine's AVX2 peak on the encoder's
//! shapes (M = a few hundred tokens, K = 384 or 1536): packing every call, a thread handoff per
//! call and AVX2 only (its AVX-512 code needs nightly Rust). Here the weights are packed at
//! load into panels of [`NR`] columns, the micro-kernel is plain safe Rust with fixed trip
//! counts that LLVM turns into register-held FMA vectors, and one wrapper per instruction set
//! compiles it with that set enabled. Threads split whole batches (see `embedder.rs`), never
//! one product, so nothing here synchronises.

/// Columns per packed panel (two AVX-512 vectors).
pub const NR: usize = 32;

/// Rows of the left matrix packed together into one block; its packed copy (`MB × K`) stays in
/// L2 while every panel passes over it, so a panel is read from memory once per block.
const MB: usize = 64;

/// Inner-dimension steps per pass: a panel's slice (`KC × NR`, 8 KiB) stays in L1 while
/// every tile of the block passes over it, instead of being evicted by the left matrix.
const KC: usize = 64;

/// The right-hand matrix of a product, packed as panels of [`NR`] columns: panel `p` holds
/// row `k` (of `K`) at `panels[p * K + k]`, columns `p * NR .. p * NR + NR`.
#[derive(Clone, Debug, Default)]
pub struct Panels {
    k: usize,
    panels: Vec<[f32; NR]>,
}

impl Panels {
    /// Packs the transpose of a row-major `[n, k]` matrix (a linear layer's `[out, in]`
    /// weight, so that `x · Wᵀ` is a product with these panels). Columns past `n` (up to a
    /// multiple of [`NR`]) are zero.
    pub fn from_rows_transposed(w: &[f32], n: usize, k: usize) -> Self {
        let count = n.div_ceil(NR);
        let mut panels = vec![[0.0f32; NR]; count * k];
        for (row, values) in w.chunks_exact(k).take(n).enumerate() {
            let (p, j) = (row / NR, row % NR);
            for (slot, &v) in panels[p * k..(p + 1) * k].iter_mut().zip(values) {
                slot[j] = v;
            }
        }
        Self { k, panels }
    }

    /// Packs `n` rows of length `k` read from `src` (row `r` at `src[r * stride ..]`) as the
    /// columns of the product: the keys of one attention head, so scores are `Q · Kᵀ`.
    pub fn pack_transposed_rows(&mut self, src: &[f32], stride: usize, n: usize, k: usize) {
        let count = n.div_ceil(NR);
        self.k = k;
        self.panels.clear();
        self.panels.resize(count * k, [0.0; NR]);
        for r in 0..n {
            let (p, j) = (r / NR, r % NR);
            let row = &src[r * stride..r * stride + k];
            for (slot, &v) in self.panels[p * k..(p + 1) * k].iter_mut().zip(row) {
                slot[j] = v;
            }
        }
    }

    /// Packs `k` rows of [`NR`] values read from `src` (row `r` at `src[r * stride ..]`) as
    /// one panel: the values of one attention head, so the context is `P · V`.
    pub fn pack_rows(&mut self, src: &[f32], stride: usize, k: usize) {
        self.k = k;
        self.panels.clear();
        self.panels.extend((0..k).map(|r| {
            let mut row = [0.0f32; NR];
            row.copy_from_slice(&src[r * stride..r * stride + NR]);
            row
        }));
    }

    /// Number of output columns (a multiple of [`NR`]).
    pub fn width(&self) -> usize {
        self.panels.len().checked_div(self.k).unwrap_or(0) * NR
    }
}

/// The instruction set the products run with, chosen once at load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    /// AVX-512F with FMA: 8 × 32 micro-tiles.
    #[cfg(target_arch = "x86_64")]
    Avx512,
    /// AVX2 with FMA: 4 × 32 micro-tiles.
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// Whatever the build targets (no runtime-detected features).
    Portable,
}

impl Isa {
    /// The best set this CPU supports.
    pub fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("fma") {
                return Self::Avx512;
            }
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                return Self::Avx2;
            }
        }
        Self::Portable
    }
}

/// `out[i][j] = Σ_k a[i][k] · B[k][j]` for `i < m` and every column `j` of `b`, with row `i`
/// of `a` at `a[i * lda ..][..k]` and of `out` at `out[i * ldo ..][..b.width()]`.
///
/// The shapes are the caller's invariants (the encoder's own buffers); a short slice panics
/// on indexing rather than reading out of bounds.
pub fn matmul(isa: Isa, a: &[f32], lda: usize, m: usize, b: &Panels, out: &mut [f32], ldo: usize) {
    let product = Product { a, lda, m, b, ldo };
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => x86::avx512(&product, out),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => x86::avx2(&product, out),
        Isa::Portable => product.run::<4, _>(out, portable_tile::<4>),
    }
}

struct Product<'a> {
    a: &'a [f32],
    lda: usize,
    m: usize,
    b: &'a Panels,
    ldo: usize,
}

impl Product<'_> {
    /// The blocked product with `MR`-row micro-tiles computed by `tile`; inlined into each
    /// instruction-set wrapper so it is compiled with that set.
    #[inline(always)]
    fn run<const MR: usize, T>(&self, out: &mut [f32], tile: T)
    where
        T: Fn(&[[f32; MR]], &[[f32; NR]]) -> [[f32; NR]; MR],
    {
        let k = self.b.k;
        if k == 0 || self.m == 0 {
            return;
        }
        let panel_count = self.b.panels.len() / k;
        let mut packed: Vec<[f32; MR]> = Vec::with_capacity(MB.div_ceil(MR) * k);
        for block in (0..self.m).step_by(MB) {
            let rows = MB.min(self.m - block);
            let tiles = rows.div_ceil(MR);
            // Row-interleaved copy of the block: tile t, step kk holds its MR rows' column kk.
            packed.clear();
            packed.resize(tiles * k, [0.0; MR]);
            for r in 0..rows {
                let (t, lane) = (r / MR, r % MR);
                let row = &self.a[(block + r) * self.lda..(block + r) * self.lda + k];
                for (slot, &v) in packed[t * k..(t + 1) * k].iter_mut().zip(row) {
                    slot[lane] = v;
                }
            }
            for k0 in (0..k).step_by(KC) {
                let k1 = (k0 + KC).min(k);
                for p in 0..panel_count {
                    let panel = &self.b.panels[p * k + k0..p * k + k1];
                    for t in 0..tiles {
                        let c = tile(&packed[t * k + k0..t * k + k1], panel);
                        let first = block + t * MR;
                        for (lane, values) in c.iter().enumerate().take(self.m - first) {
                            let at = (first + lane) * self.ldo + p * NR;
                            let dst = &mut out[at..at + NR];
                            if k0 == 0 {
                                dst.copy_from_slice(values);
                            } else {
                                for (d, v) in dst.iter_mut().zip(values) {
                                    *d += v;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// One `MR × NR` tile of the product over the whole inner dimension, in plain Rust (LLVM
/// vectorises it across the wrong loop, with gathers, so the x86 sets have their own).
fn portable_tile<const MR: usize>(a: &[[f32; MR]], b: &[[f32; NR]]) -> [[f32; NR]; MR] {
    let mut c = [[0.0f32; NR]; MR];
    for (av, bv) in a.iter().zip(b) {
        for (row, &x) in c.iter_mut().zip(av) {
            for (acc, &y) in row.iter_mut().zip(bv) {
                *acc += x * y;
            }
        }
    }
    c
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::{
        __m256, __m512, _mm256_fmadd_ps, _mm256_loadu_ps, _mm256_set1_ps, _mm256_setzero_ps,
        _mm256_storeu_ps, _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_set1_ps, _mm512_setzero_ps,
        _mm512_storeu_ps,
    };

    use super::{NR, Product, portable_tile};

    /// The product with AVX-512F and FMA if the CPU has them (checked here, a cached flag
    /// read), else portably.
    pub(super) fn avx512(product: &Product<'_>, out: &mut [f32]) {
        if std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has AVX-512F and FMA, the features `run_avx512` enables.
            #[allow(unsafe_code)]
            unsafe {
                run_avx512(product, out);
            }
        } else {
            product.run::<4, _>(out, portable_tile::<4>);
        }
    }

    /// The product with AVX2 and FMA if the CPU has them, else portably.
    pub(super) fn avx2(product: &Product<'_>, out: &mut [f32]) {
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has AVX2 and FMA, the features `run_avx2` enables.
            #[allow(unsafe_code)]
            unsafe {
                run_avx2(product, out);
            }
        } else {
            product.run::<4, _>(out, portable_tile::<4>);
        }
    }

    #[target_feature(enable = "avx512f,fma")]
    fn run_avx512(product: &Product<'_>, out: &mut [f32]) {
        product.run::<8, _>(out, tile_avx512);
    }

    #[target_feature(enable = "avx2,fma")]
    fn run_avx2(product: &Product<'_>, out: &mut [f32]) {
        product.run::<4, _>(out, tile_avx2);
    }

    /// 8 rows × 32 columns in 16 zmm accumulators: per step two loads of B, eight broadcasts
    /// of A, sixteen FMAs.
    #[inline(always)]
    #[allow(unsafe_code)]
    fn tile_avx512(a: &[[f32; 8]], b: &[[f32; NR]]) -> [[f32; NR]; 8] {
        // SAFETY (every block below): only reached through `run_avx512`, which runs after
        // AVX-512F and FMA were detected; each load or store addresses 16 consecutive f32
        // inside a `[f32; 32]` (offset 0 or 16), so all accesses are in bounds.
        let mut c: [[__m512; 2]; 8] = unsafe { [[_mm512_setzero_ps(); 2]; 8] };
        for (av, bv) in a.iter().zip(b) {
            let p = bv.as_ptr();
            let (b0, b1) = unsafe { (_mm512_loadu_ps(p), _mm512_loadu_ps(p.add(16))) };
            for (row, &x) in c.iter_mut().zip(av) {
                unsafe {
                    let x = _mm512_set1_ps(x);
                    row[0] = _mm512_fmadd_ps(x, b0, row[0]);
                    row[1] = _mm512_fmadd_ps(x, b1, row[1]);
                }
            }
        }
        let mut out = [[0.0f32; NR]; 8];
        for (o, row) in out.iter_mut().zip(&c) {
            let p = o.as_mut_ptr();
            unsafe {
                _mm512_storeu_ps(p, row[0]);
                _mm512_storeu_ps(p.add(16), row[1]);
            }
        }
        out
    }

    /// 4 rows × 32 columns as two passes of 4 × 16 (8 ymm accumulators each).
    #[inline(always)]
    #[allow(unsafe_code)]
    fn tile_avx2(a: &[[f32; 4]], b: &[[f32; NR]]) -> [[f32; NR]; 4] {
        let mut out = [[0.0f32; NR]; 4];
        for half in [0, 16] {
            // SAFETY (every block below): only reached through `run_avx2`, after AVX2 and FMA
            // were detected; each load or store addresses 8 consecutive f32 at offset
            // `half + 0` or `half + 8` of a `[f32; 32]`, in bounds.
            let mut c: [[__m256; 2]; 4] = unsafe { [[_mm256_setzero_ps(); 2]; 4] };
            for (av, bv) in a.iter().zip(b) {
                let p = bv.as_ptr();
                let (b0, b1) = unsafe {
                    (
                        _mm256_loadu_ps(p.add(half)),
                        _mm256_loadu_ps(p.add(half + 8)),
                    )
                };
                for (row, &x) in c.iter_mut().zip(av) {
                    unsafe {
                        let x = _mm256_set1_ps(x);
                        row[0] = _mm256_fmadd_ps(x, b0, row[0]);
                        row[1] = _mm256_fmadd_ps(x, b1, row[1]);
                    }
                }
            }
            for (o, row) in out.iter_mut().zip(&c) {
                let p = o.as_mut_ptr();
                unsafe {
                    _mm256_storeu_ps(p.add(half), row[0]);
                    _mm256_storeu_ps(p.add(half + 8), row[1]);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic matrix with entries in [-1, 1).
    fn matrix(rows: usize, cols: usize, seed: u32) -> Vec<f32> {
        let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..rows * cols)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                (state as f32 / u32::MAX as f32) * 2.0 - 1.0
            })
            .collect()
    }

    fn naive(a: &[f32], w: &[f32], m: usize, n: usize, k: usize) -> Vec<f32> {
        let mut out = vec![0.0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                out[i * n + j] = (0..k)
                    .map(|kk| f64::from(a[i * k + kk]) * f64::from(w[j * k + kk]))
                    .sum::<f64>() as f32;
            }
        }
        out
    }

    #[test]
    fn every_instruction_set_matches_the_naive_product() {
        // Odd shapes: a partial row block, partial micro-tiles, a partly zero last panel, and
        // an inner dimension of two full passes and a partial one.
        let (m, n, k) = (75, 40, 2 * KC + 37);
        let a = matrix(m, k, 1);
        let w = matrix(n, k, 2);
        let b = Panels::from_rows_transposed(&w, n, k);
        assert_eq!(b.width(), 64);
        let expected = naive(&a, &w, m, n, k);
        let mut isas = vec![Isa::Portable, Isa::detect()];
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            isas.push(Isa::Avx2);
        }
        for isa in isas {
            let mut out = vec![f32::NAN; m * 64];
            matmul(isa, &a, k, m, &b, &mut out, 64);
            for i in 0..m {
                for j in 0..n {
                    let (got, want) = (out[i * 64 + j], expected[i * n + j]);
                    assert!(
                        (got - want).abs() < 1e-4,
                        "{isa:?} ({i}, {j}): {got} vs {want}"
                    );
                }
                assert!(out[i * 64 + n..(i + 1) * 64].iter().all(|&v| v == 0.0));
            }
        }
    }

    #[test]
    fn attention_packings_give_scores_and_contexts() {
        let (len, dim, stride) = (5, NR, 3 * NR);
        let q = matrix(len, stride, 3);
        let kv = matrix(len, stride, 4);
        let mut keys = Panels::default();
        keys.pack_transposed_rows(&kv, stride, len, dim);
        let mut scores = vec![0.0f32; len * keys.width()];
        matmul(
            Isa::detect(),
            &q,
            stride,
            len,
            &keys,
            &mut scores,
            keys.width(),
        );
        for i in 0..len {
            for j in 0..len {
                let want: f32 = (0..dim)
                    .map(|d| q[i * stride + d] * kv[j * stride + d])
                    .sum();
                assert!((scores[i * keys.width() + j] - want).abs() < 1e-4);
            }
        }
        let mut values = Panels::default();
        values.pack_rows(&kv[NR..], stride, len);
        let mut context = vec![0.0f32; len * NR];
        matmul(Isa::detect(), &q, stride, len, &values, &mut context, NR);
        for i in 0..len {
            for d in 0..NR {
                let want: f32 = (0..len)
                    .map(|j| q[i * stride + j] * kv[j * stride + NR + d])
                    .sum();
                assert!((context[i * NR + d] - want).abs() < 1e-4);
            }
        }
    }
}
