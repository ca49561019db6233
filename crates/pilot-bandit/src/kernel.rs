//! The hot-path kernels of the ridge learners, written so the compiler can vectorise them.
//!
//! pilot-embed's kernels sum left to right, which pins floating-point order and keeps LLVM from
//! using SIMD; its Sherman–Morrison mirrors the lower triangle with strided writes. At d = 256
//! with 11 arms that order alone misses the speed target, so the per-decision work (a quadratic
//! form per arm, one matrix–vector product and one rank-1 update per feedback) lives here with
//! eight independent accumulators and row-contiguous access. Matrices are symmetric and packed
//! ([`packed`](crate::packed): the lower triangle row after row), so every kernel reads each
//! stored entry once. The tests check these kernels against pilot-embed's `quad_form`,
//! `sherman_morrison` and `cholesky` on the unpacked matrices. Callers check lengths: the
//! kernels return early (or zero) on a shape that does not fit instead of indexing out of range.
//!
//! The inner loops walk `[F; LANES]` chunks (`as_chunks`) rather than indexing `slice[o + l]`:
//! with the lengths in the types there are no bounds checks between the loads, and LLVM turns
//! each chunk step into packed `mulps`/`addps` on baseline SSE2 (and into 256-bit AVX2 ones in
//! the variants of the `avx2` module, chosen at run time with the `std` feature on x86-64).
//! The summation order is fixed by the lane layout, not by the target or the vector width, so
//! results are the same bits on every platform.

use pilot_core::{Detail, Error, ErrorKind, Real, Result};

use crate::packed;

/// `avx2::$kernel(args)` when the CPU has AVX2 (the `std` feature on x86-64: the `avx2`
/// module), otherwise `$baseline(args)`; both give the same bits.
macro_rules! with_avx2 {
    ($kernel:ident, $baseline:ident($($arg:expr),*)) => {{
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, the only feature the `avx2` variants enable.
            #[allow(unsafe_code)]
            return unsafe { avx2::$kernel($($arg),*) };
        }
        $baseline($($arg),*)
    }};
}

/// Independent partial sums per dot product: eight `f32` fill two SSE or one AVX register.
const LANES: usize = 8;

/// `acc[l] += a[l]·x[l]` for every lane: one packed multiply and add per register.
#[inline(always)]
fn mul_add_lanes<F: Real>(acc: &mut [F; LANES], a: &[F; LANES], x: &[F; LANES]) {
    for ((s, &ai), &xi) in acc.iter_mut().zip(a).zip(x) {
        *s += ai * xi;
    }
}

/// The lanes summed in a fixed pairwise order.
#[inline(always)]
fn reduce_lanes<F: Real>(a: [F; LANES]) -> F {
    // Halves first (one packed add), then the four sums pairwise.
    let h: [F; 4] = core::array::from_fn(|l| a[l] + a[l + 4]);
    (h[0] + h[1]) + (h[2] + h[3])
}

/// `a·b` over the common length, with `LANES` partial sums so the loop vectorises.
#[inline]
pub(crate) fn dot<F: Real>(a: &[F], b: &[F]) -> F {
    let n = a.len().min(b.len());
    let (chunks_a, tail_a) = a[..n].as_chunks::<LANES>();
    let (chunks_b, tail_b) = b[..n].as_chunks::<LANES>();
    let mut tail = F::ZERO;
    for (x, y) in tail_a.iter().zip(tail_b) {
        tail += *x * *y;
    }
    reduce_lanes(lane_sums(chunks_a, chunks_b)) + tail
}

/// The `LANES` partial sums of `a·b` over whole chunks.
///
/// Not inlined on purpose: the sums leave through memory as one contiguous array, which is
/// what steers LLVM's SLP vectoriser into packing lanes `0..4` and `4..8` of the same sum into
/// a register. Inlined into the final horizontal reduction it packs across sums instead and
/// spends more time shuffling than multiplying.
#[inline(never)]
fn lane_sums<F: Real>(a: &[[F; LANES]], b: &[[F; LANES]]) -> [F; LANES] {
    let mut acc = [F::ZERO; LANES];
    for (x, y) in a.iter().zip(b) {
        mul_add_lanes(&mut acc, x, y);
    }
    acc
}

/// Largest packed matrix, in bytes, whose quadratic forms a select computes through staged
/// weights ([`quad_weights`], then one flat [`weighted_sum`] per arm): up to here the weights
/// stay in L1 beside each arm's A⁻¹ and the flat dot product has no per-row work at all. Past
/// it the weights would double the traffic from L2, and the four-row kernel
/// ([`sym_quad_form`]), which reads only A⁻¹ and x, is faster. In `f32` this is d ≤ 90.
const STAGED_MAX_BYTES: usize = 16 * 1024;

/// Whether quadratic forms at dimension `d` go through staged weights.
pub(crate) fn stages_weights<F: Real>(d: usize) -> bool {
    packed::len(d).saturating_mul(F::BYTES) <= STAGED_MAX_BYTES
}

/// The weights `w`, packed like A, with xᵀAx = Σ_k A_k·w_k for every symmetric A: x_r² on the
/// diagonal and (x_r + x_r)·x_c below it. `w` is `d(d+1)/2` long with `d = x.len()`.
pub(crate) fn quad_weights<F: Real>(x: &[F], w: &mut [F]) {
    for (r, &xr) in x.iter().enumerate() {
        let Some((diagonal, below)) = w
            .get_mut(packed::row_start(r)..packed::diagonal(r) + 1)
            .and_then(<[F]>::split_last_mut)
        else {
            return;
        };
        let twice = xr + xr;
        for (wc, &xc) in below.iter_mut().zip(x) {
            *wc = twice * xc;
        }
        *diagonal = xr * xr;
    }
}

/// The entries of [`quad_weights`] one at a time, in packed order, for a caller without
/// scratch space.
struct Weights<'a, F> {
    x: &'a [F],
    row: usize,
    col: usize,
}

impl<F: Real> Iterator for Weights<'_, F> {
    type Item = F;

    fn next(&mut self) -> Option<F> {
        let xr = *self.x.get(self.row)?;
        let w = if self.col == self.row {
            self.row += 1;
            self.col = 0;
            xr * xr
        } else {
            let xc = self.x.get(self.col).copied().unwrap_or(F::ZERO);
            self.col += 1;
            (xr + xr) * xc
        };
        Some(w)
    }
}

/// Independent accumulators of a weighted sum: one `LANES`-wide sum alone would wait on its
/// own previous addition every chunk (latency-bound at small d); four keep the adder busy.
const ACCS: usize = 4;

/// The `ACCS` partial-sum vectors of a weighted sum.
type WideAcc<F> = [[F; LANES]; ACCS];

/// xᵀAx from staged weights: a flat dot product over the packed entries, chunk k summed into
/// accumulator k mod [`ACCS`].
#[inline]
pub(crate) fn weighted_sum<F: Real>(a: &[F], w: &[F]) -> F {
    let n = a.len().min(w.len());
    let (chunks_a, tail_a) = a[..n].as_chunks::<LANES>();
    let (chunks_w, tail_w) = w[..n].as_chunks::<LANES>();
    let acc = wide_lane_sums_from([[F::ZERO; LANES]; ACCS], chunks_a, chunks_w);
    let mut tail = F::ZERO;
    for (&v, &u) in tail_a.iter().zip(tail_w) {
        tail += v * u;
    }
    reduce_wide(acc) + tail
}

/// [`weighted_sum`] of `a` and the weights of `x`, generated in pieces on the stack instead of
/// staged: the same products summed in the same accumulators and order, so the same bits. For
/// [`Ridge::estimate`](crate::Ridge::estimate), which has no scratch space.
pub(crate) fn weighted_quad_form_unstaged<F: Real>(a: &[F], x: &[F]) -> F {
    /// Chunks generated per piece: 64 scalars on the stack, a multiple of [`ACCS`] so every
    /// piece but the last starts at accumulator 0 as the staged sum would.
    const PIECE: usize = 2 * ACCS;
    let n = a.len().min(packed::len(x.len()));
    let (chunks, tail) = a[..n].as_chunks::<LANES>();
    let mut weights = Weights { x, row: 0, col: 0 };
    let mut piece = [[F::ZERO; LANES]; PIECE];
    let mut acc = [[F::ZERO; LANES]; ACCS];
    for group in chunks.chunks(PIECE) {
        let piece = &mut piece[..group.len()];
        for slot in piece.iter_mut().flatten() {
            *slot = weights.next().unwrap_or(F::ZERO);
        }
        acc = wide_lane_sums_from(acc, group, piece);
    }
    let mut tail_sum = F::ZERO;
    for (&v, w) in tail.iter().zip(weights) {
        tail_sum += v * w;
    }
    reduce_wide(acc) + tail_sum
}

/// The accumulators summed pairwise, then across lanes.
#[inline(always)]
fn reduce_wide<F: Real>(acc: WideAcc<F>) -> F {
    let [a0, a1, a2, a3] = acc;
    let pair =
        |x: [F; LANES], y: [F; LANES]| -> [F; LANES] { core::array::from_fn(|l| x[l] + y[l]) };
    reduce_lanes(pair(pair(a0, a1), pair(a2, a3)))
}

/// `acc[k mod ACCS] += a_k·b_k` lane by lane over whole chunks, continuing from `acc`.
#[inline]
fn wide_lane_sums_from<F: Real>(acc: WideAcc<F>, a: &[[F; LANES]], b: &[[F; LANES]]) -> WideAcc<F> {
    with_avx2!(wide_lane_sums_from, wide_lane_sums_baseline(acc, a, b))
}

/// Out of line for the reason given at [`lane_sums`].
#[inline(never)]
fn wide_lane_sums_baseline<F: Real>(
    acc: WideAcc<F>,
    a: &[[F; LANES]],
    b: &[[F; LANES]],
) -> WideAcc<F> {
    wide_lane_sums_body(acc, a, b)
}

/// The body of [`wide_lane_sums_from`], inlined into each instruction-set variant.
#[inline(always)]
fn wide_lane_sums_body<F: Real>(
    mut acc: WideAcc<F>,
    a: &[[F; LANES]],
    b: &[[F; LANES]],
) -> WideAcc<F> {
    let (quads_a, rest_a) = a.as_chunks::<ACCS>();
    let (quads_b, rest_b) = b.as_chunks::<ACCS>();
    for (qa, qb) in quads_a.iter().zip(quads_b) {
        for ((s, x), y) in acc.iter_mut().zip(qa).zip(qb) {
            mul_add_lanes(s, x, y);
        }
    }
    for ((s, x), y) in acc.iter_mut().zip(rest_a).zip(rest_b) {
        mul_add_lanes(s, x, y);
    }
    acc
}

/// `xᵀAx` for a symmetric `d × d` matrix `a` in packed form ([`packed`](crate::packed)):
/// Σ_r A_rr·x_r² + 2·Σ_{c<r} x_r·A_rc·x_c.
#[inline]
pub(crate) fn sym_quad_form<F: Real>(a: &[F], x: &[F]) -> F {
    if a.len() < packed::len(x.len()) {
        return F::ZERO;
    }
    with_avx2!(lower_quad_form, lower_quad_form(a, x))
}

/// [`sym_quad_form`] once the shape is checked; kept out of line so the per-arm loop of a
/// select stays small and this one loop gets the registers.
#[inline(never)]
fn lower_quad_form<F: Real>(a: &[F], x: &[F]) -> F {
    quad_form_value(a, x)
}

/// The body of [`lower_quad_form`], inlined into each instruction-set variant.
#[inline(always)]
fn quad_form_value<F: Real>(a: &[F], x: &[F]) -> F {
    let two = F::ONE + F::ONE;
    let parts = quad_form_parts(a, x);
    parts.diagonal + two * (reduce_lanes(parts.lanes) + parts.rest)
}

/// `t` as a half chunk, if it is one.
#[inline(always)]
fn half<F>(t: &[F]) -> Option<&[F; LANES / 2]> {
    t.try_into().ok()
}

/// The pieces of a quadratic form before the final horizontal sum.
struct QuadParts<F> {
    /// Σ A_rr·x_r².
    diagonal: F,
    /// Off-diagonal products x_r·A_rc·x_c of whole chunks, summed by lane `c mod LANES`.
    lanes: [F; LANES],
    /// The other off-diagonal products (chunk tails and the corners of the 4 × 4 blocks).
    rest: F,
}

/// The lower triangle of `a` against `x`, four rows at a time: per chunk of 8 columns the
/// four rows are combined first, t_c = Σ_k x_{i+k}·A_{i+k,c}, and only t_c·x_c enters the
/// running lane sums. So one pass of a single vector accumulator covers the whole triangle:
/// no per-row horizontal sums, no call per row, and one loop-carried packed addition per 16
/// multiply-adds. With a single sum there is only one way to pack the lanes, so unlike
/// [`lane_sums`] this needs no call boundary. `d` is `x.len()` and `a` is packed with
/// `a.len() >= d·(d + 1)/2` (checked by the caller).
#[inline(always)]
fn quad_form_parts<F: Real>(a: &[F], x: &[F]) -> QuadParts<F> {
    let mut parts = QuadParts {
        diagonal: F::ZERO,
        lanes: [F::ZERO; LANES],
        rest: F::ZERO,
    };
    let (x_blocks, _) = x.as_chunks::<4>();
    for (block, &[x0, x1, x2, x3]) in x_blocks.iter().enumerate() {
        let i = 4 * block;
        let row = |k: usize| a.get(packed::row_start(i + k)..packed::row_start(i + k) + i + 4);
        let (Some(r0), Some(r1), Some(r2), Some(r3)) = (row(0), row(1), row(2), row(3)) else {
            return parts;
        };
        // The common prefix 0..i of rows i..i+4.
        let (p0, k0) = r0.split_at(i);
        let (p1, k1) = r1.split_at(i);
        let (p2, k2) = r2.split_at(i);
        let (p3, k3) = r3.split_at(i);
        let (xc, xt) = x[..i].as_chunks::<LANES>();
        let (c0, t0) = p0.as_chunks::<LANES>();
        let (c1, t1) = p1.as_chunks::<LANES>();
        let (c2, t2) = p2.as_chunks::<LANES>();
        let (c3, t3) = p3.as_chunks::<LANES>();
        for ((((xv, v0), v1), v2), v3) in xc.iter().zip(c0).zip(c1).zip(c2).zip(c3) {
            for l in 0..LANES {
                let t = ((v0[l] * x0 + v1[l] * x1) + v2[l] * x2) + v3[l] * x3;
                parts.lanes[l] += t * xv[l];
            }
        }
        // i is a multiple of 4, so the tail is empty or one half chunk: packed into the low
        // lanes rather than summed one scalar at a time.
        if let (Some(xv), Some(v0), Some(v1), Some(v2), Some(v3)) =
            (half(xt), half(t0), half(t1), half(t2), half(t3))
        {
            for l in 0..LANES / 2 {
                let t = ((v0[l] * x0 + v1[l] * x1) + v2[l] * x2) + v3[l] * x3;
                parts.lanes[l] += t * xv[l];
            }
        } else {
            for ((((&xv, &v0), &v1), &v2), &v3) in xt.iter().zip(t0).zip(t1).zip(t2).zip(t3) {
                parts.rest += (((v0 * x0 + v1 * x1) + v2 * x2) + v3 * x3) * xv;
            }
        }
        // The 4 × 4 diagonal block: its strictly lower corner and its diagonal.
        if let (&[d0, ..], &[e10, d1, ..], &[e20, e21, d2, ..], &[e30, e31, e32, d3]) =
            (k0, k1, k2, k3)
        {
            parts.rest += x1 * (e10 * x0)
                + x2 * (e20 * x0 + e21 * x1)
                + x3 * ((e30 * x0 + e31 * x1) + e32 * x2);
            parts.diagonal += ((d0 * x0 * x0 + d1 * x1 * x1) + d2 * x2 * x2) + d3 * x3 * x3;
        }
    }
    for r in 4 * x_blocks.len()..x.len() {
        let Some((&diagonal, prefix)) = packed::row(a, r).and_then(<[F]>::split_last) else {
            return parts;
        };
        parts.rest += x[r] * dot(prefix, &x[..r]);
        parts.diagonal += diagonal * x[r] * x[r];
    }
    parts
}

/// `out = A·x` for a symmetric `d × d` matrix `a` in packed form, reading each stored entry
/// once: four rows at a time, a chunk of the rows' common prefix feeds both their own dot
/// products (row r·x) and, through symmetry, the earlier outputs (out_c += A_rc·x_r). With
/// `d = x.len()`, a shape that does not fit (`a.len() < d·(d + 1)/2` or `out.len() != d`)
/// leaves `out` zero instead of reading out of range.
#[inline]
pub(crate) fn sym_mat_vec<F: Real>(a: &[F], x: &[F], out: &mut [F]) {
    out.iter_mut().for_each(|o| *o = F::ZERO);
    if a.len() < packed::len(x.len()) || out.len() != x.len() {
        return;
    }
    with_avx2!(sym_mat_vec_rows, sym_mat_vec_rows(a, x, out))
}

/// [`sym_mat_vec`] once the shapes are checked and `out` is zero.
#[inline(never)]
fn sym_mat_vec_rows<F: Real>(a: &[F], x: &[F], out: &mut [F]) {
    sym_mat_vec_body(a, x, out);
}

/// The body of [`sym_mat_vec_rows`], inlined into each instruction-set variant.
#[inline(always)]
fn sym_mat_vec_body<F: Real>(a: &[F], x: &[F], out: &mut [F]) {
    let (x_blocks, _) = x.as_chunks::<4>();
    for (block, &[x0, x1, x2, x3]) in x_blocks.iter().enumerate() {
        let i = 4 * block;
        let row = |k: usize| a.get(packed::row_start(i + k)..packed::row_start(i + k) + i + 4);
        let (Some(r0), Some(r1), Some(r2), Some(r3)) = (row(0), row(1), row(2), row(3)) else {
            return;
        };
        let (p0, k0) = r0.split_at(i);
        let (p1, k1) = r1.split_at(i);
        let (p2, k2) = r2.split_at(i);
        let (p3, k3) = r3.split_at(i);
        let (head, _) = out.split_at_mut(i);
        let (oc, ot) = head.as_chunks_mut::<LANES>();
        let (xc, xt) = x[..i].as_chunks::<LANES>();
        let (c0, t0) = p0.as_chunks::<LANES>();
        let (c1, t1) = p1.as_chunks::<LANES>();
        let (c2, t2) = p2.as_chunks::<LANES>();
        let (c3, t3) = p3.as_chunks::<LANES>();
        let mut acc = [[F::ZERO; LANES]; 4];
        for (((((ov, xv), v0), v1), v2), v3) in
            oc.iter_mut().zip(xc).zip(c0).zip(c1).zip(c2).zip(c3)
        {
            for l in 0..LANES {
                acc[0][l] += v0[l] * xv[l];
                acc[1][l] += v1[l] * xv[l];
                acc[2][l] += v2[l] * xv[l];
                acc[3][l] += v3[l] * xv[l];
                ov[l] += ((v0[l] * x0 + v1[l] * x1) + v2[l] * x2) + v3[l] * x3;
            }
        }
        // As in the quadratic form, the tail is empty or one half chunk.
        for (l, (((((o, &xv), &v0), &v1), &v2), &v3)) in ot
            .iter_mut()
            .zip(xt)
            .zip(t0)
            .zip(t1)
            .zip(t2)
            .zip(t3)
            .enumerate()
        {
            acc[0][l] += v0 * xv;
            acc[1][l] += v1 * xv;
            acc[2][l] += v2 * xv;
            acc[3][l] += v3 * xv;
            *o += ((v0 * x0 + v1 * x1) + v2 * x2) + v3 * x3;
        }
        // The 4 × 4 diagonal block, both triangles of it.
        if let (&[d0, ..], &[e10, d1, ..], &[e20, e21, d2, ..], &[e30, e31, e32, d3], Some(own)) =
            (k0, k1, k2, k3, out.get_mut(i..i + 4))
        {
            let [s0, s1, s2, s3] = acc.map(reduce_lanes);
            own[0] += s0 + (((d0 * x0 + e10 * x1) + e20 * x2) + e30 * x3);
            own[1] += s1 + (((e10 * x0 + d1 * x1) + e21 * x2) + e31 * x3);
            own[2] += s2 + (((e20 * x0 + e21 * x1) + d2 * x2) + e32 * x3);
            own[3] += s3 + (((e30 * x0 + e31 * x1) + e32 * x2) + d3 * x3);
        }
    }
    for r in 4 * x_blocks.len()..x.len() {
        let Some((&diagonal, prefix)) = packed::row(a, r).and_then(<[F]>::split_last) else {
            return;
        };
        let xr = x[r];
        let own = dot(prefix, &x[..r]) + diagonal * xr;
        for (o, &v) in out.iter_mut().zip(prefix) {
            *o += v * xr;
        }
        if let Some(o) = out.get_mut(r) {
            *o += own;
        }
    }
}

/// `A ← A − u·uᵀ` on a packed symmetric matrix, row by row.
#[inline]
pub(crate) fn sub_outer<F: Real>(a: &mut [F], u: &[F]) {
    with_avx2!(sub_outer, sub_outer_body(a, u))
}

/// The body of [`sub_outer`], inlined into each instruction-set variant.
#[inline(always)]
fn sub_outer_body<F: Real>(a: &mut [F], u: &[F]) {
    for (r, &ur) in u.iter().enumerate() {
        let Some(row) = a.get_mut(packed::row_start(r)..packed::row_start(r) + r + 1) else {
            return;
        };
        for (aij, &uj) in row.iter_mut().zip(u) {
            *aij -= ur * uj;
        }
    }
}

/// The hot kernels compiled for AVX2, chosen at run time when the CPU has it (the `std`
/// feature on x86-64; a no_std build gets what its target features say at compile time).
///
/// Only AVX2 is enabled, not FMA: Rust never fuses a multiply and an add on its own, and each
/// lane runs the same operations in the same order at any vector width, so these variants give
/// the same bits as the baseline ones (a test checks it). Decisions stay reproducible across
/// machines, and a wasm plugin built from this code still matches the native policy.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
mod avx2 {
    use pilot_core::Real;

    #[target_feature(enable = "avx2")]
    pub(super) fn wide_lane_sums_from<F: Real>(
        acc: super::WideAcc<F>,
        a: &[[F; super::LANES]],
        b: &[[F; super::LANES]],
    ) -> super::WideAcc<F> {
        super::wide_lane_sums_body(acc, a, b)
    }

    #[target_feature(enable = "avx2")]
    pub(super) fn lower_quad_form<F: Real>(a: &[F], x: &[F]) -> F {
        super::quad_form_value(a, x)
    }

    #[target_feature(enable = "avx2")]
    pub(super) fn sym_mat_vec_rows<F: Real>(a: &[F], x: &[F], out: &mut [F]) {
        super::sym_mat_vec_body(a, x, out);
    }

    #[target_feature(enable = "avx2")]
    pub(super) fn sub_outer<F: Real>(a: &mut [F], u: &[F]) {
        super::sub_outer_body(a, u);
    }
}

/// Factors the packed symmetric `a` (dimension `d`) in place into its packed lower Cholesky
/// factor L, A = L·Lᵀ (row by row, Cholesky–Banachiewicz: entry (i, j) of A is read just
/// before L_ij overwrites it).
///
/// # Errors
/// [`NotPositiveDefinite`](ErrorKind::NotPositiveDefinite) for a pivot that is not positive,
/// [`NonFinite`](ErrorKind::NonFinite) on overflow, [`DimensionMismatch`](ErrorKind::DimensionMismatch)
/// when `a` is shorter than `d·(d + 1)/2`. `a` is left partly factored then.
pub(crate) fn cholesky_in_place<F: Real>(a: &mut [F], d: usize) -> Result<()> {
    if a.len() < packed::len(d) {
        return Err(Error::dimension(
            "cholesky: packed matrix",
            packed::len(d),
            a.len(),
        ));
    }
    for i in 0..d {
        let (done, rest) = a.split_at_mut(packed::row_start(i));
        let row_i = &mut rest[..=i];
        for j in 0..=i {
            let (prefix_i, tail) = row_i.split_at_mut(j);
            let prefix_j = if j == i {
                &*prefix_i
            } else {
                done.get(packed::row_start(j)..packed::row_start(j) + j)
                    .unwrap_or(&[])
            };
            let s = tail[0] - dot(prefix_i, prefix_j);
            if !s.is_finite() {
                return Err(Error::non_finite("cholesky", s.to_f64()));
            }
            tail[0] = if j == i {
                if !(s > F::ZERO) {
                    return Err(
                        Error::new(ErrorKind::NotPositiveDefinite, "cholesky: pivot")
                            .with_detail(Detail::Index { index: i, len: d }),
                    );
                }
                s.sqrt()
            } else {
                let pivot = done.get(packed::diagonal(j)).copied().unwrap_or(F::ONE);
                s / pivot
            };
        }
    }
    Ok(())
}

/// `out = L·z` for a packed lower-triangular `l`; callers check the lengths.
pub(crate) fn lower_mul<F: Real>(l: &[F], z: &[F], out: &mut [F]) {
    for (r, o) in out.iter_mut().enumerate() {
        *o = packed::row(l, r).map_or(F::ZERO, |row| dot(row, z));
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    /// The packed lower triangle of a full row-major `d × d` matrix.
    fn pack(full: &[f64], d: usize) -> Vec<f64> {
        (0..d)
            .flat_map(|i| (0..=i).map(move |j| (i, j)))
            .map(|(i, j)| full[i * d + j])
            .collect()
    }

    /// A symmetric positive definite `d × d` matrix: B·Bᵀ + I for a fixed B.
    fn spd(d: usize) -> Vec<f64> {
        let b = |i: usize, k: usize| ((i * 7 + k * 3) as f64 * 0.37).sin();
        let mut a = std::vec![0.0; d * d];
        for i in 0..d {
            for j in 0..d {
                let s: f64 = (0..d).map(|k| b(i, k) * b(j, k)).sum();
                a[i * d + j] = s + if i == j { 1.0 } else { 0.0 };
            }
        }
        a
    }

    /// Every block/remainder split of the four-row kernels, against pilot-embed's plain sums.
    const DIMS: [usize; 12] = [1, 2, 3, 4, 5, 8, 12, 13, 16, 19, 33, 64];

    #[test]
    fn quad_form_and_mat_vec_match_pilot_embed() {
        for d in DIMS {
            let full = spd(d);
            let a = pack(&full, d);
            let x: Vec<f64> = (0..d).map(|i| (i as f64 * 0.7).cos()).collect();
            let mut want_ax = std::vec![0.0; d];
            let want = pilot_embed::quad_form(&full, &x, &mut want_ax).unwrap();
            assert!(
                (sym_quad_form(&a, &x) - want).abs() < 1e-9 * want.abs(),
                "d = {d}"
            );
            let mut out = std::vec![f64::NAN; d];
            sym_mat_vec(&a, &x, &mut out);
            for (g, w) in out.iter().zip(&want_ax) {
                assert!(
                    (g - w).abs() < 1e-9 * (1.0 + w.abs()),
                    "d = {d}: {g} vs {w}"
                );
            }
        }
        let long: [f32; 19] = core::array::from_fn(|i| i as f32 * 0.1 - 0.7);
        let seq: f32 = long.iter().map(|v| v * v).sum();
        assert!((dot(&long, &long) - seq).abs() < 1e-5);
    }

    /// The AVX2 variants give the baseline's bits, in `f32` and `f64`, on every block split.
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    #[test]
    fn avx2_variants_match_the_baseline_bit_for_bit() {
        if !std::is_x86_feature_detected!("avx2") {
            std::println!("no AVX2 on this CPU: nothing to compare");
            return;
        }
        fn check<F: Real + core::fmt::Debug>() {
            for d in DIMS.into_iter().chain([100, 256]) {
                let a: Vec<F> = (0..packed::len(d))
                    .map(|k| F::from_f64((k as f64 * 0.61).sin()))
                    .collect();
                let x: Vec<F> = (0..d)
                    .map(|i| F::from_f64((i as f64 * 0.7).cos()))
                    .collect();
                // SAFETY (all three calls): the CPU has AVX2, checked above.
                #[allow(unsafe_code)]
                let wide = unsafe { avx2::lower_quad_form(&a, &x) };
                assert_eq!(
                    wide.to_f64().to_bits(),
                    lower_quad_form(&a, &x).to_f64().to_bits()
                );
                let (mut narrow_out, mut wide_out) = (std::vec![F::ZERO; d], std::vec![F::ZERO; d]);
                sym_mat_vec_rows(&a, &x, &mut narrow_out);
                #[allow(unsafe_code)]
                unsafe {
                    avx2::sym_mat_vec_rows(&a, &x, &mut wide_out)
                };
                assert_eq!(narrow_out, wide_out, "d = {d}");
                let (mut narrow, mut wide) = (a.clone(), a.clone());
                sub_outer_body(&mut narrow, &x);
                #[allow(unsafe_code)]
                unsafe {
                    avx2::sub_outer(&mut wide, &x)
                };
                assert_eq!(narrow, wide, "d = {d}");
            }
        }
        check::<f32>();
        check::<f64>();
    }

    #[test]
    fn staged_and_unstaged_weights_give_the_same_bits_and_the_quadratic_form() {
        for d in DIMS.into_iter().chain([90, 91]) {
            let full = spd(d);
            let a = pack(&full, d);
            let x: Vec<f64> = (0..d).map(|i| (i as f64 * 0.9).sin() - 0.2).collect();
            let mut w = std::vec![f64::NAN; packed::len(d)];
            quad_weights(&x, &mut w);
            let staged = weighted_sum(&a, &w);
            let unstaged = weighted_quad_form_unstaged(&a, &x);
            assert_eq!(staged.to_bits(), unstaged.to_bits(), "d = {d}");
            let mut ax = std::vec![0.0; d];
            let want = pilot_embed::quad_form(&full, &x, &mut ax).unwrap();
            assert!((staged - want).abs() < 1e-9 * want.abs(), "d = {d}");
        }
        assert!(stages_weights::<f32>(90) && !stages_weights::<f32>(91));
        assert!(stages_weights::<f64>(63) && !stages_weights::<f64>(64));
    }

    #[test]
    fn short_matrices_give_zero_instead_of_reading_out_of_range() {
        let x = [1.0f64; 4];
        assert_eq!(sym_quad_form(&[1.0; 9], &x), 0.0);
        let mut out = [5.0; 4];
        sym_mat_vec(&[1.0; 9], &x, &mut out);
        assert_eq!(out, [0.0; 4]);
        let mut short = [1.0f64; 2];
        assert_eq!(
            cholesky_in_place(&mut short, 2).unwrap_err().kind(),
            ErrorKind::DimensionMismatch
        );
    }

    #[test]
    fn rank_one_update_matches_sherman_morrison() {
        for d in DIMS {
            let mut reference = spd(d);
            let mut a = pack(&reference, d);
            let x: Vec<f64> = (0..d).map(|i| (i as f64 * 1.3).sin()).collect();
            let mut s = std::vec![0.0; d];
            pilot_embed::sherman_morrison(&mut reference, &x, 1.0, &mut s).unwrap();
            sym_mat_vec(&a, &x, &mut s);
            let c = 1.0 / (1.0 + dot(&x, &s));
            let u: Vec<f64> = s.iter().map(|v| libm::sqrt(c) * v).collect();
            sub_outer(&mut a, &u);
            for (g, w) in a.iter().zip(pack(&reference, d)) {
                assert!((g - w).abs() < 1e-9 * (1.0 + w.abs()), "d = {d}");
            }
        }
    }

    #[test]
    fn packed_cholesky_matches_pilot_embed_and_rejects_indefinite() {
        for d in DIMS {
            let full = spd(d);
            let mut want = std::vec![0.0; d * d];
            pilot_embed::cholesky(&full, d, &mut want).unwrap();
            let mut l = pack(&full, d);
            cholesky_in_place(&mut l, d).unwrap();
            for (g, w) in l.iter().zip(pack(&want, d)) {
                assert!((g - w).abs() < 1e-9 * (1.0 + w.abs()), "d = {d}");
            }
            let z: Vec<f64> = (0..d).map(|i| i as f64 - 1.5).collect();
            let (mut got, mut lz) = (std::vec![0.0; d], std::vec![0.0; d]);
            lower_mul(&l, &z, &mut got);
            pilot_embed::lower_mul(&want, &z, &mut lz).unwrap();
            for (g, w) in got.iter().zip(&lz) {
                assert!((g - w).abs() < 1e-9 * (1.0 + w.abs()), "d = {d}");
            }
        }
        // [[1, 2], [2, 1]] has eigenvalues 3 and −1.
        let mut indefinite = [1.0f64, 2.0, 1.0];
        let err = cholesky_in_place(&mut indefinite, 2).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotPositiveDefinite);
    }
}
