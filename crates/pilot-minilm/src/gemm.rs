//! Single-threaded f32 matrix products against column panels packed once: the encoder's
//! linear layers and its attention, on AVX-512 when the CPU has it.
//!
//! `gemm` (via candle) reached about a quarter of this machine's AVX2 peak on the encoder's
//! shapes (M = a few hundred tokens, K = 384 or 1536): packing every call, a thread handoff per
//! call and AVX2 only (its AVX-512 code needs nightly Rust). Here the weights are packed at
//! load into panels of [`NR`] columns, the left matrix is read in place (no copy per call), the
//! micro-kernel uses intrinsics only for its loads, FMAs and stores, and one wrapper per
//! instruction set compiles it with that set enabled. [`dispatch`] compiles the rest of the
//! forward pass (normalisation, softmax, GELU) the same way. Threads split whole batches (see
//! `embedder.rs`), never one product, so nothing here synchronises.
//!
//! Blocking, measured on the encoder's shapes (`examples/cpu_cost.rs`: one thread, CPU-ms per
//! RouterBench query): KC 64 → 192 took 14.0 → 13.0 ms; MB 32, 128 or 256 instead of 64 did
//! not help. Reading the left rows in place instead of packing them (the row-interleaving copy
//! compiled to scatters) took about 5 %.

/// Columns per packed panel (two AVX-512 vectors).
pub const NR: usize = 32;

/// Rows of the left matrix taken together as one block: its `MB × KC` slice (48 KiB) stays in
/// L2 while every panel passes over it, so a panel is read from memory once per block.
const MB: usize = 64;

/// Inner-dimension steps per pass: a panel's slice (`KC × NR`, 24 KiB) stays in L1 while
/// every tile of the block passes over it. Longer passes mean fewer partial sums written out
/// and read back (K = 384 takes two passes, K = 1536 eight).
const KC: usize = 192;

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

/// Work to compile once per instruction set: [`dispatch`] inlines [`Kernel::run`] (which must
/// be `#[inline(always)]`, as must whatever it calls) into a function with that set enabled,
/// so its element-wise loops vectorise with it. (A closure would not do: LLVM keeps a large
/// closure out of line, compiled for the baseline.)
pub trait Kernel {
    /// What the work returns.
    type Output;
    /// Does the work.
    fn run(self) -> Self::Output;
}

/// Runs `kernel` compiled for `isa`, or plainly when the CPU lacks the set.
#[inline(always)]
pub fn dispatch<K: Kernel>(isa: Isa, kernel: K) -> K::Output {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => x86::with_avx512(kernel),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => x86::with_avx2(kernel),
        Isa::Portable => kernel.run(),
    }
}

/// `out[i][j] = Σ_k a[i][k] · B[k][j]` for `i < m` and every column `j` of `b`, with row `i`
/// of `a` at `a[i * lda ..][..k]` and of `out` at `out[i * ldo ..][..b.width()]`.
///
/// The shapes are the caller's invariants (the encoder's own buffers); a short slice panics
/// on indexing rather than reading out of bounds.
pub fn matmul(isa: Isa, a: &[f32], lda: usize, m: usize, b: &Panels, out: &mut [f32], ldo: usize) {
    let product = Product {
        a,
        lda,
        m,
        b,
        bias: None,
        ldo,
    };
    product.dispatch(isa, out);
}

/// [`matmul`] plus `bias[j]` on every row: a linear layer `x · Wᵀ + b`, with `bias` as long as
/// `b.width()`. The bias is added last, after the whole inner sum, as a separate pass would.
pub fn matmul_bias(isa: Isa, a: &[f32], m: usize, b: &Panels, bias: &[f32], out: &mut [f32]) {
    let product = Product {
        a,
        lda: b.k,
        m,
        b,
        bias: Some(bias),
        ldo: b.width(),
    };
    product.dispatch(isa, out);
}

impl Product<'_> {
    /// Runs the product with the kernels of `isa`.
    fn dispatch(&self, isa: Isa, out: &mut [f32]) {
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => x86::avx512(self, out),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => x86::avx2(self, out),
            Isa::Portable => self.run::<4, _>(out, portable_tile::<4>),
        }
    }
}

struct Product<'a> {
    a: &'a [f32],
    lda: usize,
    m: usize,
    b: &'a Panels,
    /// Added to every row after the last inner pass (`b.width()` values).
    bias: Option<&'a [f32]>,
    ldo: usize,
}

impl Product<'_> {
    /// The blocked product with `MR`-row micro-tiles computed by `tile`; inlined into each
    /// instruction-set wrapper so it is compiled with that set. A tile reads its `MR` rows of
    /// the left matrix in place (broadcasting one value of each per step), so nothing is
    /// repacked per call; a partial last tile repeats its last row and drops the extra results.
    #[inline(always)]
    fn run<const MR: usize, T>(&self, out: &mut [f32], tile: T)
    where
        T: Fn(&[&[f32]; MR], &[[f32; NR]], Dest<'_>),
    {
        let k = self.b.k;
        if k == 0 || self.m == 0 {
            return;
        }
        let panel_count = self.b.panels.len() / k;
        for block in (0..self.m).step_by(MB) {
            let block_end = (block + MB).min(self.m);
            for k0 in (0..k).step_by(KC) {
                let k1 = (k0 + KC).min(k);
                for p in 0..panel_count {
                    let panel = &self.b.panels[p * k + k0..p * k + k1];
                    let bias = self
                        .bias
                        .filter(|_| k1 == k)
                        .map(|b| &b[p * NR..(p + 1) * NR]);
                    for first in (block..block_end).step_by(MR) {
                        let valid = MR.min(block_end - first);
                        let rows: [&[f32]; MR] = std::array::from_fn(|i| {
                            let at = (first + i.min(valid - 1)) * self.lda;
                            &self.a[at + k0..at + k1]
                        });
                        let dest = Dest {
                            out: &mut *out,
                            at: first * self.ldo + p * NR,
                            ldo: self.ldo,
                            valid,
                            accumulate: k0 > 0,
                            bias,
                        };
                        tile(&rows, panel, dest);
                    }
                }
            }
        }
    }
}

/// Where a micro-tile's results go: `valid` rows of [`NR`] values at `out[at + lane * ldo ..]`.
/// A tile starts from what is there when `accumulate` (a later pass over the inner dimension)
/// and adds `bias` after its own sum (on the last pass). Rows past `valid` are dropped.
struct Dest<'o> {
    out: &'o mut [f32],
    at: usize,
    ldo: usize,
    valid: usize,
    accumulate: bool,
    bias: Option<&'o [f32]>,
}

impl Dest<'_> {
    /// Row `lane` of the tile in `out` (a short `out` panics here, never reads out of bounds).
    #[inline(always)]
    fn row(&mut self, lane: usize) -> &mut [f32] {
        let at = self.at + lane * self.ldo;
        &mut self.out[at..at + NR]
    }

    /// The tile's starting values: zero, or what the earlier passes left in `out`.
    #[inline(always)]
    fn start<const MR: usize>(&mut self) -> [[f32; NR]; MR] {
        let mut c = [[0.0f32; NR]; MR];
        if self.accumulate {
            for (lane, values) in c.iter_mut().enumerate().take(self.valid) {
                values.copy_from_slice(self.row(lane));
            }
        }
        c
    }

    /// Writes the tile's sums (plus the bias) back to `out`.
    #[inline(always)]
    fn finish<const MR: usize>(mut self, c: &[[f32; NR]; MR]) {
        for (lane, values) in c.iter().enumerate().take(self.valid) {
            let bias = self.bias;
            let row = self.row(lane);
            row.copy_from_slice(values);
            if let Some(bias) = bias {
                for (v, b) in row.iter_mut().zip(bias) {
                    *v += b;
                }
            }
        }
    }
}

/// One `MR × NR` tile of the product over a pass of the inner dimension, in plain Rust (LLVM
/// vectorises it across the wrong loop, with gathers, so the x86 sets have their own).
fn portable_tile<const MR: usize>(a: &[&[f32]; MR], b: &[[f32; NR]], mut dest: Dest<'_>) {
    let mut c = dest.start::<MR>();
    for (step, bv) in b.iter().enumerate() {
        for (row, a) in c.iter_mut().zip(a) {
            let x = a[step];
            for (acc, &y) in row.iter_mut().zip(bv) {
                *acc += x * y;
            }
        }
    }
    dest.finish(&c);
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::{
        __m256, __m512, _mm256_fmadd_ps, _mm256_loadu_ps, _mm256_set1_ps, _mm256_setzero_ps,
        _mm256_storeu_ps, _mm512_add_ps, _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_set1_ps,
        _mm512_setzero_ps, _mm512_storeu_ps,
    };

    use super::{Dest, Kernel, NR, Product, portable_tile};

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

    /// `kernel` compiled with AVX-512F and FMA if the CPU has them, else plainly.
    #[inline(always)]
    pub(super) fn with_avx512<K: Kernel>(kernel: K) -> K::Output {
        if std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has AVX-512F and FMA, the features `inline_avx512` enables.
            #[allow(unsafe_code)]
            unsafe {
                inline_avx512(kernel)
            }
        } else {
            kernel.run()
        }
    }

    /// `kernel` compiled with AVX2 and FMA if the CPU has them, else plainly.
    #[inline(always)]
    pub(super) fn with_avx2<K: Kernel>(kernel: K) -> K::Output {
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has AVX2 and FMA, the features `inline_avx2` enables.
            #[allow(unsafe_code)]
            unsafe {
                inline_avx2(kernel)
            }
        } else {
            kernel.run()
        }
    }

    #[target_feature(enable = "avx512f,fma")]
    fn inline_avx512<K: Kernel>(kernel: K) -> K::Output {
        kernel.run()
    }

    #[target_feature(enable = "avx2,fma")]
    fn inline_avx2<K: Kernel>(kernel: K) -> K::Output {
        kernel.run()
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
    /// of A, sixteen FMAs. The accumulators start from `out` and go back to it directly.
    #[inline(always)]
    #[allow(unsafe_code)]
    fn tile_avx512(a: &[&[f32]; 8], b: &[[f32; NR]], mut dest: Dest<'_>) {
        // Every row cut to the panel slice's length, one by one in sight of LLVM, so the
        // indexing below compiles without bounds checks and the row pointers stay in registers.
        let n = b.len();
        let [r0, r1, r2, r3, r4, r5, r6, r7] = *a;
        let rows = [
            &r0[..n],
            &r1[..n],
            &r2[..n],
            &r3[..n],
            &r4[..n],
            &r5[..n],
            &r6[..n],
            &r7[..n],
        ];
        // SAFETY (every block below): only reached through `run_avx512`, which runs after
        // AVX-512F and FMA were detected; each load or store addresses 16 consecutive f32 at
        // offset 0 or 16 of a slice of `NR` = 32 values (a `[f32; 32]`, a row of `out` or the
        // bias), so all accesses are in bounds.
        let mut c: [[__m512; 2]; 8] = unsafe { [[_mm512_setzero_ps(); 2]; 8] };
        if dest.accumulate {
            for (lane, acc) in c.iter_mut().enumerate().take(dest.valid) {
                let p = dest.row(lane).as_ptr();
                *acc = unsafe { [_mm512_loadu_ps(p), _mm512_loadu_ps(p.add(16))] };
            }
        }
        for (step, bv) in b.iter().enumerate() {
            let p = bv.as_ptr();
            let (b0, b1) = unsafe { (_mm512_loadu_ps(p), _mm512_loadu_ps(p.add(16))) };
            for (row, a) in c.iter_mut().zip(rows) {
                let x = a[step];
                unsafe {
                    let x = _mm512_set1_ps(x);
                    row[0] = _mm512_fmadd_ps(x, b0, row[0]);
                    row[1] = _mm512_fmadd_ps(x, b1, row[1]);
                }
            }
        }
        if let Some(bias) = dest.bias {
            let p = bias.as_ptr();
            let (b0, b1) = unsafe { (_mm512_loadu_ps(p), _mm512_loadu_ps(p.add(16))) };
            for acc in &mut c {
                unsafe {
                    acc[0] = _mm512_add_ps(acc[0], b0);
                    acc[1] = _mm512_add_ps(acc[1], b1);
                }
            }
        }
        for (lane, acc) in c.iter().enumerate().take(dest.valid) {
            let p = dest.row(lane).as_mut_ptr();
            unsafe {
                _mm512_storeu_ps(p, acc[0]);
                _mm512_storeu_ps(p.add(16), acc[1]);
            }
        }
    }

    /// 4 rows × 32 columns as two passes of 4 × 16 (8 ymm accumulators each), starting from
    /// and ending in a copy of the tile.
    #[inline(always)]
    #[allow(unsafe_code)]
    fn tile_avx2(a: &[&[f32]; 4], b: &[[f32; NR]], mut dest: Dest<'_>) {
        let n = b.len();
        let [r0, r1, r2, r3] = *a;
        let rows = [&r0[..n], &r1[..n], &r2[..n], &r3[..n]];
        let mut tile = dest.start::<4>();
        for half in [0, 16] {
            // SAFETY (every block below): only reached through `run_avx2`, after AVX2 and FMA
            // were detected; each load or store addresses 8 consecutive f32 at offset
            // `half + 0` or `half + 8` of a `[f32; 32]`, in bounds.
            let mut c: [[__m256; 2]; 4] = [[unsafe { _mm256_setzero_ps() }; 2]; 4];
            for (acc, t) in c.iter_mut().zip(&tile) {
                let p = t.as_ptr();
                *acc = unsafe {
                    [
                        _mm256_loadu_ps(p.add(half)),
                        _mm256_loadu_ps(p.add(half + 8)),
                    ]
                };
            }
            for (step, bv) in b.iter().enumerate() {
                let p = bv.as_ptr();
                let (b0, b1) = unsafe {
                    (
                        _mm256_loadu_ps(p.add(half)),
                        _mm256_loadu_ps(p.add(half + 8)),
                    )
                };
                for (row, a) in c.iter_mut().zip(rows) {
                    let x = a[step];
                    unsafe {
                        let x = _mm256_set1_ps(x);
                        row[0] = _mm256_fmadd_ps(x, b0, row[0]);
                        row[1] = _mm256_fmadd_ps(x, b1, row[1]);
                    }
                }
            }
            for (t, acc) in tile.iter_mut().zip(&c) {
                let p = t.as_mut_ptr();
                unsafe {
                    _mm256_storeu_ps(p.add(half), acc[0]);
                    _mm256_storeu_ps(p.add(half + 8), acc[1]);
                }
            }
        }
        dest.finish(&tile);
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
            // With a bias (zero past the real columns), over a buffer holding old values.
            let bias: Vec<f32> = (0..64)
                .map(|j| if j < n { j as f32 - 20.0 } else { 0.0 })
                .collect();
            let mut biased = vec![7.0f32; m * 64];
            matmul_bias(isa, &a, m, &b, &bias, &mut biased);
            for i in 0..m {
                for j in 0..64 {
                    let want = out[i * 64 + j] + bias[j];
                    let got = biased[i * 64 + j];
                    assert!(
                        (got - want).abs() < 1e-4,
                        "{isa:?} bias ({i}, {j}): {got} vs {want}"
                    );
                }
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
