//! The hot-path kernels of the ridge learners, written so the compiler can vectorise them.
//!
//! pilot-embed's kernels sum left to right, which pins floating-point order and keeps LLVM from
//! using SIMD; its Sherman–Morrison mirrors the lower triangle with strided writes. At d = 256
//! with 11 arms that order alone misses the speed target, so the per-decision work (a quadratic
//! form per arm, one matrix–vector product and one rank-1 update per feedback) lives here with
//! eight independent accumulators and row-contiguous access. The tests check these kernels
//! against pilot-embed's `quad_form` and `sherman_morrison`. Callers check lengths: every
//! function here trusts that matrices are `d × d` with `d = x.len()`.
//!
//! The inner loops walk `[F; LANES]` chunks (`as_chunks`) rather than indexing `slice[o + l]`:
//! with the lengths in the types there are no bounds checks between the loads, and LLVM turns
//! each chunk step into packed `mulps`/`addps` on baseline SSE2. The summation order is fixed
//! by the lane layout, not by the target, so results are the same bits on every platform.

use pilot_core::Real;

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

/// Four dot products `rᵢ·x` at once over the common length: one load of `x` feeds four rows,
/// and the 4 × `LANES` partial sums keep enough independent additions in flight to hide their
/// latency (the single-row form is latency-bound at d = 256).
#[inline]
fn dot4<F: Real>(rows: [&[F]; 4], x: &[F]) -> [F; 4] {
    let [r0, r1, r2, r3] = rows;
    let n = x
        .len()
        .min(r0.len())
        .min(r1.len())
        .min(r2.len())
        .min(r3.len());
    let (xc, xt) = x[..n].as_chunks::<LANES>();
    let (c0, t0) = r0[..n].as_chunks::<LANES>();
    let (c1, t1) = r1[..n].as_chunks::<LANES>();
    let (c2, t2) = r2[..n].as_chunks::<LANES>();
    let (c3, t3) = r3[..n].as_chunks::<LANES>();
    let [mut a0, mut a1, mut a2, mut a3] = lane_sums4([c0, c1, c2, c3], xc);
    for ((((&xv, &v0), &v1), &v2), &v3) in xt.iter().zip(t0).zip(t1).zip(t2).zip(t3) {
        a0[0] += v0 * xv;
        a1[0] += v1 * xv;
        a2[0] += v2 * xv;
        a3[0] += v3 * xv;
    }
    [
        reduce_lanes(a0),
        reduce_lanes(a1),
        reduce_lanes(a2),
        reduce_lanes(a3),
    ]
}

/// The `LANES` partial sums of four dot products with `x` over whole chunks; not inlined for
/// the reason given at [`lane_sums`].
#[inline(never)]
fn lane_sums4<F: Real>(rows: [&[[F; LANES]]; 4], x: &[[F; LANES]]) -> [[F; LANES]; 4] {
    let mut acc = [[F::ZERO; LANES]; 4];
    let [acc0, acc1, acc2, acc3] = &mut acc;
    let [c0, c1, c2, c3] = rows;
    for ((((xv, r0), r1), r2), r3) in x.iter().zip(c0).zip(c1).zip(c2).zip(c3) {
        mul_add_lanes(acc0, r0, xv);
        mul_add_lanes(acc1, r1, xv);
        mul_add_lanes(acc2, r2, xv);
        mul_add_lanes(acc3, r3, xv);
    }
    acc
}

/// `xᵀAx` for a symmetric `d × d` matrix `a`, reading only its lower triangle (half the
/// memory traffic of a full product): Σ_r A_rr·x_r² + 2·Σ_{c<r} x_r·A_rc·x_c.
#[inline]
pub(crate) fn sym_quad_form<F: Real>(a: &[F], x: &[F]) -> F {
    let d = x.len();
    if a.len() < d * d {
        return F::ZERO;
    }
    lower_quad_form(a, x)
}

/// [`sym_quad_form`] once the shape is checked; kept out of line so the per-arm loop of a
/// select stays small and this one loop gets the registers.
#[inline(never)]
fn lower_quad_form<F: Real>(a: &[F], x: &[F]) -> F {
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
/// [`lane_sums`] this needs no call boundary. `d` is `x.len()` and `a.len() >= d²` (checked by
/// the caller).
#[inline(always)]
fn quad_form_parts<F: Real>(a: &[F], x: &[F]) -> QuadParts<F> {
    let d = x.len();
    let mut parts = QuadParts {
        diagonal: F::ZERO,
        lanes: [F::ZERO; LANES],
        rest: F::ZERO,
    };
    let (x_blocks, _) = x.as_chunks::<4>();
    for (block, &[x0, x1, x2, x3]) in x_blocks.iter().enumerate() {
        let i = 4 * block;
        let row = |k: usize| a.get((i + k) * d..(i + k) * d + i + 4);
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
    for r in 4 * x_blocks.len()..d {
        let (Some(prefix), Some(&diagonal)) = (a.get(r * d..r * d + r), a.get(r * d + r)) else {
            return parts;
        };
        parts.rest += x[r] * dot(prefix, &x[..r]);
        parts.diagonal += diagonal * x[r] * x[r];
    }
    parts
}

/// `out = A·x` for a `d × d` row-major matrix, four rows at a time.
#[inline]
pub(crate) fn mat_vec<F: Real>(a: &[F], x: &[F], out: &mut [F]) {
    let d = x.len();
    if a.len() < d * d || d == 0 {
        return;
    }
    let n = d.min(out.len());
    let mut rows = a[..d * d].chunks_exact(d);
    let mut out_blocks = out[..n].chunks_exact_mut(4);
    for block in out_blocks.by_ref() {
        let (Some(r0), Some(r1), Some(r2), Some(r3)) =
            (rows.next(), rows.next(), rows.next(), rows.next())
        else {
            return;
        };
        block.copy_from_slice(&dot4([r0, r1, r2, r3], x));
    }
    for (o, row) in out_blocks.into_remainder().iter_mut().zip(rows) {
        *o = dot(row, x);
    }
}

/// `A ← A − u·uᵀ` on the full matrix, row by row.
///
/// IEEE multiplication is commutative, so `u_i·u_j == u_j·u_i` bit for bit and a symmetric `A`
/// stays exactly symmetric without mirroring.
#[inline]
pub(crate) fn sub_outer<F: Real>(a: &mut [F], u: &[F]) {
    let d = u.len();
    for (row, &ui) in a.chunks_exact_mut(d.max(1)).zip(u) {
        for (aij, &uj) in row.iter_mut().zip(u) {
            *aij -= ui * uj;
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    fn spd(d: usize) -> [f64; 16] {
        // B·Bᵀ + I for a fixed B: symmetric positive definite.
        let b = [
            1.0, 0.5, -0.2, 0.3, 0.1, 2.0, 0.4, -0.7, 0.0, 0.3, 1.5, 0.2, -1.0, 0.0, 0.6, 0.9,
        ];
        let mut a = [0.0; 16];
        for i in 0..d {
            for j in 0..d {
                let mut s = if i == j { 1.0 } else { 0.0 };
                for k in 0..d {
                    s += b[i * d + k] * b[j * d + k];
                }
                a[i * d + j] = s;
            }
        }
        a
    }

    #[test]
    fn quad_form_matches_pilot_embed() {
        for d in 1..=4 {
            let full = spd(d);
            let a = &full[..d * d];
            let x = &[0.3, -1.2, 0.7, 2.0][..d];
            let mut ax = [0.0; 4];
            let want = pilot_embed::quad_form(a, x, &mut ax[..d]).unwrap();
            assert!((sym_quad_form(a, x) - want).abs() < 1e-12, "d = {d}");
            let mut out = [0.0; 4];
            mat_vec(a, x, &mut out[..d]);
            for (g, w) in out.iter().zip(ax) {
                assert!((g - w).abs() < 1e-12);
            }
        }
        // Every block/remainder split of the four-row kernels, against plain sums.
        for d in [5usize, 8, 13, 19, 33] {
            let a: std::vec::Vec<f64> = (0..d * d)
                .map(|k| ((k / d).min(k % d) as f64 * 0.3 + (k / d).max(k % d) as f64).sin())
                .collect();
            let x: std::vec::Vec<f64> = (0..d).map(|i| (i as f64 * 0.7).cos()).collect();
            let mut want_ax = std::vec![0.0; d];
            let want = pilot_embed::quad_form(&a, &x, &mut want_ax).unwrap();
            assert!((sym_quad_form(&a, &x) - want).abs() < 1e-9, "d = {d}");
            let mut out = std::vec![0.0; d];
            mat_vec(&a, &x, &mut out);
            for (g, w) in out.iter().zip(&want_ax) {
                assert!((g - w).abs() < 1e-9, "d = {d}");
            }
        }
        let long: [f32; 19] = core::array::from_fn(|i| i as f32 * 0.1 - 0.7);
        let seq: f32 = long.iter().map(|v| v * v).sum();
        assert!((dot(&long, &long) - seq).abs() < 1e-5);
    }

    #[test]
    fn rank_one_update_matches_sherman_morrison_and_stays_symmetric() {
        let mut a = spd(4);
        let mut reference = a;
        let x = [0.5, -0.25, 1.0, 0.75];
        let mut s = [0.0; 4];
        pilot_embed::sherman_morrison(&mut reference, &x, 1.0, &mut s).unwrap();
        mat_vec(&a, &x, &mut s);
        let c = 1.0 / (1.0 + dot(&x, &s));
        let u: [f64; 4] = core::array::from_fn(|i| libm::sqrt(c) * s[i]);
        sub_outer(&mut a, &u);
        for i in 0..4 {
            for j in 0..4 {
                assert!((a[i * 4 + j] - reference[i * 4 + j]).abs() < 1e-12);
                assert_eq!(a[i * 4 + j].to_bits(), a[j * 4 + i].to_bits());
            }
        }
    }
}
