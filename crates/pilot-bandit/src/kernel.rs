//! The hot-path kernels of the ridge learners, written so the compiler can vectorise them.
//!
//! pilot-embed's kernels sum left to right, which pins floating-point order and keeps LLVM from
//! using SIMD; its Sherman–Morrison mirrors the lower triangle with strided writes. At d = 256
//! with 11 arms that order alone misses the speed target, so the per-decision work (a quadratic
//! form per arm, one matrix–vector product and one rank-1 update per feedback) lives here with
//! eight independent accumulators and row-contiguous access. The tests check these kernels
//! against pilot-embed's `quad_form` and `sherman_morrison`. Callers check lengths: every
//! function here trusts that matrices are `d × d` with `d = x.len()`.

use pilot_core::Real;

/// Independent partial sums per dot product: eight `f32` fill two SSE or one AVX register.
const LANES: usize = 8;

/// `a·b` over the common length, with `LANES` partial sums so the loop vectorises.
#[inline]
pub(crate) fn dot<F: Real>(a: &[F], b: &[F]) -> F {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [F::ZERO; LANES];
    let chunks_a = a.chunks_exact(LANES);
    let chunks_b = b.chunks_exact(LANES);
    let mut tail = F::ZERO;
    for (x, y) in chunks_a.remainder().iter().zip(chunks_b.remainder()) {
        tail += *x * *y;
    }
    for (x, y) in chunks_a.zip(chunks_b) {
        for l in 0..LANES {
            acc[l] += x[l] * y[l];
        }
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// Four dot products `rᵢ·x` at once over the first `n` entries: one load of `x` feeds four
/// rows, and the 4 × `LANES` partial sums keep enough independent additions in flight to hide
/// their latency (the single-row form is latency-bound at d = 256).
#[inline]
fn dot4<F: Real>(rows: [&[F]; 4], x: &[F], n: usize) -> [F; 4] {
    let n = n
        .min(x.len())
        .min(rows.iter().map(|r| r.len()).min().unwrap_or(0));
    let (r0, r1, r2, r3, x) = (
        &rows[0][..n],
        &rows[1][..n],
        &rows[2][..n],
        &rows[3][..n],
        &x[..n],
    );
    let mut acc = [[F::ZERO; LANES]; 4];
    let full = n - n % LANES;
    let mut o = 0;
    while o < full {
        for l in 0..LANES {
            let xv = x[o + l];
            acc[0][l] += r0[o + l] * xv;
            acc[1][l] += r1[o + l] * xv;
            acc[2][l] += r2[o + l] * xv;
            acc[3][l] += r3[o + l] * xv;
        }
        o += LANES;
    }
    for j in full..n {
        let xv = x[j];
        acc[0][0] += r0[j] * xv;
        acc[1][0] += r1[j] * xv;
        acc[2][0] += r2[j] * xv;
        acc[3][0] += r3[j] * xv;
    }
    acc.map(|a| ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7])))
}

/// `xᵀAx` for a symmetric `d × d` matrix `a`, reading only its lower triangle (half the
/// memory traffic of a full product), four rows at a time.
#[inline]
pub(crate) fn sym_quad_form<F: Real>(a: &[F], x: &[F]) -> F {
    let d = x.len();
    if a.len() < d * d {
        return F::ZERO;
    }
    let two = F::ONE + F::ONE;
    let mut sum = F::ZERO;
    let mut i = 0;
    while i + 4 <= d {
        // The common prefix 0..i of rows i..i+4, then the strictly lower corner of the 4 × 4
        // diagonal block.
        let rows = [
            &a[i * d..i * d + i],
            &a[(i + 1) * d..(i + 1) * d + i],
            &a[(i + 2) * d..(i + 2) * d + i],
            &a[(i + 3) * d..(i + 3) * d + i],
        ];
        let mut off = dot4(rows, x, i);
        for (k, o) in off.iter_mut().enumerate() {
            for j in i..i + k {
                *o += a[(i + k) * d + j] * x[j];
            }
        }
        for (k, o) in off.iter().enumerate() {
            let r = i + k;
            sum += x[r] * (a[r * d + r] * x[r] + two * *o);
        }
        i += 4;
    }
    for r in i..d {
        let off_diagonal = dot(&a[r * d..r * d + r], &x[..r]);
        sum += x[r] * (a[r * d + r] * x[r] + two * off_diagonal);
    }
    sum
}

/// `out = A·x` for a `d × d` row-major matrix, four rows at a time.
#[inline]
pub(crate) fn mat_vec<F: Real>(a: &[F], x: &[F], out: &mut [F]) {
    let d = x.len();
    if a.len() < d * d {
        return;
    }
    let mut i = 0;
    while i + 4 <= d.min(out.len()) {
        let rows = [
            &a[i * d..(i + 1) * d],
            &a[(i + 1) * d..(i + 2) * d],
            &a[(i + 2) * d..(i + 3) * d],
            &a[(i + 3) * d..(i + 4) * d],
        ];
        out[i..i + 4].copy_from_slice(&dot4(rows, x, d));
        i += 4;
    }
    for r in i..d.min(out.len()) {
        out[r] = dot(&a[r * d..(r + 1) * d], x);
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
