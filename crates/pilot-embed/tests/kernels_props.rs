//! Property tests: every kernel, in `f32` and `f64`, against a plain `f64` reference; the
//! fixed-size forms against the slice forms; and every error path.
#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is the failure report.

use pilot_core::{ErrorKind, Real};
use pilot_embed::{fixed, linalg};
use proptest::prelude::*;

// ---------------------------------------------------------------- plain f64 references

fn ref_dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn ref_norm(a: &[f64]) -> f64 {
    ref_dot(a, a).sqrt()
}

fn ref_matvec(m: &[f64], x: &[f64]) -> Vec<f64> {
    m.chunks(x.len()).map(|row| ref_dot(row, x)).collect()
}

/// Inverse by Gauss–Jordan elimination with partial pivoting (independent of the kernels).
fn ref_inverse(a: &[f64], d: usize) -> Vec<f64> {
    let mut m = a.to_vec();
    let mut inv = vec![0.0; d * d];
    for i in 0..d {
        inv[i * d + i] = 1.0;
    }
    for col in 0..d {
        let pivot = (col..d)
            .max_by(|&r, &s| m[r * d + col].abs().total_cmp(&m[s * d + col].abs()))
            .unwrap();
        for k in 0..d {
            m.swap(col * d + k, pivot * d + k);
            inv.swap(col * d + k, pivot * d + k);
        }
        let p = m[col * d + col];
        for k in 0..d {
            m[col * d + k] /= p;
            inv[col * d + k] /= p;
        }
        for r in 0..d {
            if r != col {
                let f = m[r * d + col];
                for k in 0..d {
                    m[r * d + k] -= f * m[col * d + k];
                    inv[r * d + k] -= f * inv[col * d + k];
                }
            }
        }
    }
    inv
}

/// A symmetric positive definite `d × d` matrix `B·Bᵀ + shift·I` from the entries of `B`.
fn spd(b: &[f64], d: usize, shift: f64) -> Vec<f64> {
    let mut a = vec![0.0; d * d];
    for i in 0..d {
        for j in 0..d {
            a[i * d + j] = ref_dot(&b[i * d..(i + 1) * d], &b[j * d..(j + 1) * d]);
        }
        a[i * d + i] += shift;
    }
    a
}

// ---------------------------------------------------------------- helpers

fn cast<F: Real>(v: &[f64]) -> Vec<F> {
    v.iter().map(|&x| F::from_f64(x)).collect()
}

fn back<F: Real>(v: &[F]) -> Vec<f64> {
    v.iter().map(|x| x.to_f64()).collect()
}

/// Relative tolerance of `F` for sums of a few dozen terms.
fn tol<F: Real>() -> f64 {
    F::EPSILON.to_f64() * 64.0
}

fn assert_close(got: f64, want: f64, scale: f64, tol: f64, what: &str) {
    assert!(
        (got - want).abs() <= tol * (scale + 1.0),
        "{what}: got {got}, want {want} (scale {scale}, tol {tol})"
    );
}

fn vec_of(len: impl Into<proptest::sample::SizeRange>) -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(-10.0f64..10.0, len)
}

fn pair(max: usize) -> impl Strategy<Value = (Vec<f64>, Vec<f64>)> {
    (1..=max).prop_flat_map(|d| (vec_of(d), vec_of(d)))
}

// ---------------------------------------------------------------- kernel checks, generic in F

fn check_products<F: Real>(a: &[f64], b: &[f64]) {
    let (fa, fb) = (cast::<F>(a), cast::<F>(b));
    // Compare against the reference on the values F actually holds.
    let (ra, rb) = (back(&fa), back(&fb));
    let scale: f64 = ra.iter().zip(&rb).map(|(x, y)| (x * y).abs()).sum();
    let got = linalg::dot(&fa, &fb).unwrap().to_f64();
    assert_close(got, ref_dot(&ra, &rb), scale, tol::<F>(), "dot");
    let n = linalg::norm(&fa).unwrap().to_f64();
    assert_close(n, ref_norm(&ra), ref_norm(&ra), tol::<F>(), "norm");
    let (na, nb) = (ref_norm(&ra), ref_norm(&rb));
    if na > 1e-3 && nb > 1e-3 {
        let c = linalg::cosine(&fa, &fb).unwrap().to_f64();
        assert!((-1.0..=1.0).contains(&c));
        let want = ref_dot(&ra, &rb) / (na * nb);
        assert_close(c, want, scale / (na * nb), tol::<F>(), "cosine");
        let mut unit = fa.clone();
        let former = linalg::normalize(&mut unit).unwrap().to_f64();
        assert_close(former, na, na, tol::<F>(), "normalize: former norm");
        for (u, x) in back(&unit).iter().zip(&ra) {
            assert_close(*u, x / na, 1.0, tol::<F>(), "normalize: component");
        }
    }
}

fn check_projection<F: Real>(w: &[f64], x: &[f64]) {
    let (fw, fx) = (cast::<F>(w), cast::<F>(x));
    let (rw, rx) = (back(&fw), back(&fx));
    let rows = w.len() / x.len();
    let mut out = vec![F::ZERO; rows];
    linalg::project(&fw, &fx, &mut out).unwrap();
    let want = ref_matvec(&rw, &rx);
    for (r, (g, wv)) in back(&out).iter().zip(&want).enumerate() {
        let row = &rw[r * x.len()..(r + 1) * x.len()];
        let scale: f64 = row.iter().zip(&rx).map(|(a, b)| (a * b).abs()).sum();
        assert_close(*g, *wv, scale, tol::<F>(), "project");
    }
}

fn check_cholesky<F: Real>(b: &[f64], d: usize, rhs: &[f64]) {
    let a = cast::<F>(&spd(b, d, 1.0));
    let ra = back(&a);
    let scale = ra.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let mut l = vec![F::ZERO; d * d];
    linalg::cholesky(&a, d, &mut l).unwrap();
    let rl = back(&l);
    for i in 0..d {
        for j in 0..d {
            if j > i {
                assert_eq!(rl[i * d + j], 0.0, "cholesky: upper triangle");
            }
            let llt: f64 = (0..d).map(|k| rl[i * d + k] * rl[j * d + k]).sum();
            assert_close(llt, ra[i * d + j], scale, tol::<F>(), "cholesky: L·Lᵀ = A");
        }
    }
    // Solving against the reference inverse; the tolerance grows with the condition number.
    let inv = ref_inverse(&ra, d);
    let cond = scale * inv.iter().fold(0.0f64, |m, v| m.max(v.abs())) * d as f64;
    let mut x = cast::<F>(rhs);
    let want = ref_matvec(&inv, &back(&x));
    linalg::cholesky_solve(&l, &mut x).unwrap();
    let xs = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for (g, w) in back(&x).iter().zip(&want) {
        assert_close(*g, *w, xs * cond, tol::<F>(), "cholesky_solve");
    }
    // lower_mul against the reference product with the lower triangle.
    let mut out = vec![F::ZERO; d];
    let z = cast::<F>(rhs);
    linalg::lower_mul(&l, &z, &mut out).unwrap();
    let want = ref_matvec(&rl, &back(&z));
    let ls = rl.iter().fold(0.0f64, |m, v| m.max(v.abs())) * 10.0 * d as f64;
    for (g, w) in back(&out).iter().zip(&want) {
        assert_close(*g, *w, ls, tol::<F>(), "lower_mul");
    }
}

/// Starts from `A⁻¹ = I/λ`, applies every update and compares with the reference inverse of
/// `λI + Σ w·x·xᵀ`.
fn check_sherman_morrison<F: Real>(d: usize, lambda: f64, updates: &[(Vec<f64>, f64)]) {
    let mut a = vec![0.0; d * d];
    let mut a_inv = vec![F::ZERO; d * d];
    for i in 0..d {
        a[i * d + i] = lambda;
        a_inv[i * d + i] = F::from_f64(1.0 / lambda);
    }
    let mut scratch = vec![F::ZERO; d];
    for (x, w) in updates {
        let fx = cast::<F>(&x[..d]);
        let rx = back(&fx);
        let fw = F::from_f64(*w);
        linalg::sherman_morrison(&mut a_inv, &fx, fw, &mut scratch).unwrap();
        for i in 0..d {
            for j in 0..d {
                a[i * d + j] += fw.to_f64() * rx[i] * rx[j];
            }
        }
    }
    let want = ref_inverse(&a, d);
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    // A⁻¹ has eigenvalues in (0, 1/λ]; each update loses a few ulps times the condition number.
    let cond = a.iter().fold(0.0f64, |m, v| m.max(v.abs())) / lambda * d as f64;
    let got = back(&a_inv);
    for i in 0..d {
        for j in 0..d {
            assert_eq!(got[i * d + j], got[j * d + i], "symmetry");
            assert_close(
                got[i * d + j],
                want[i * d + j],
                scale * cond * updates.len() as f64,
                tol::<F>(),
                "sherman_morrison vs direct inverse",
            );
        }
    }
}

// ---------------------------------------------------------------- properties

// Case count from PROPTEST_CASES (256 by default; `cargo xtask ci` asks for more).
proptest! {
    #[test]
    fn products_match_reference((a, b) in pair(48)) {
        check_products::<f32>(&a, &b);
        check_products::<f64>(&a, &b);
    }

    #[test]
    fn projection_matches_reference(
        (w, x) in (1usize..12, 1usize..24)
            .prop_flat_map(|(rows, cols)| (vec_of(rows * cols), vec_of(cols)))
    ) {
        check_projection::<f32>(&w, &x);
        check_projection::<f64>(&w, &x);
    }

    #[test]
    fn cholesky_reconstructs_and_solves(
        (d, b, rhs) in (1usize..10).prop_flat_map(|d| (Just(d), vec_of(d * d), vec_of(d)))
    ) {
        let b: Vec<f64> = b.iter().map(|v| v / 4.0).collect();
        check_cholesky::<f32>(&b, d, &rhs);
        check_cholesky::<f64>(&b, d, &rhs);
    }

    #[test]
    fn sherman_morrison_tracks_the_direct_inverse(
        (d, lambda, updates) in (1usize..12).prop_flat_map(|d| (
            Just(d),
            0.5f64..4.0,
            prop::collection::vec((prop::collection::vec(-1.0f64..1.0, d), 0.0f64..2.0), 1..8),
        ))
    ) {
        check_sherman_morrison::<f32>(d, lambda, &updates);
        check_sherman_morrison::<f64>(d, lambda, &updates);
    }

    #[test]
    fn fixed_forms_equal_slice_forms(
        w in prop::collection::vec(-10.0f32..10.0, 3 * 8),
        x in prop::collection::vec(-10.0f32..10.0, 8),
        y in prop::collection::vec(-1.0f32..1.0, 8),
    ) {
        let xa: [f32; 8] = x.clone().try_into().unwrap();
        let ya: [f32; 8] = y.clone().try_into().unwrap();
        let mut wa = [[0.0f32; 8]; 3];
        wa.as_flattened_mut().copy_from_slice(&w);
        prop_assert_eq!(fixed::dot(&xa, &ya), linalg::dot(&x, &y));
        prop_assert_eq!(fixed::norm(&xa), linalg::norm(&x));
        prop_assert_eq!(fixed::cosine(&xa, &ya), linalg::cosine(&x, &y));
        let mut out = [0.0f32; 3];
        linalg::project(&w, &x, &mut out).unwrap();
        prop_assert_eq!(fixed::project(&wa, &xa).unwrap(), out);
        let mut ident = [[0.0f32; 8]; 8];
        (0..8).for_each(|i| ident[i][i] = 1.0);
        let mut flat = ident.as_flattened().to_vec();
        let mut scratch = [0.0f32; 8];
        linalg::sherman_morrison(&mut flat, &y, 0.5, &mut scratch).unwrap();
        fixed::sherman_morrison(&mut ident, &ya, 0.5).unwrap();
        prop_assert_eq!(ident.as_flattened(), &flat[..]);
        prop_assert_eq!(fixed::quad_form(&ident, &xa), linalg::quad_form(&flat, &x, &mut scratch));
        let mut l = vec![0.0f32; 64];
        linalg::cholesky(&flat, 8, &mut l).unwrap();
        let lf = fixed::cholesky(&ident).unwrap();
        prop_assert_eq!(lf.as_flattened(), &l[..]);
        let mut solved = x.clone();
        linalg::cholesky_solve(&l, &mut solved).unwrap();
        prop_assert_eq!(&fixed::cholesky_solve(&lf, &xa).unwrap()[..], &solved[..]);
        let mut lm = [0.0f32; 8];
        linalg::lower_mul(&l, &y, &mut lm).unwrap();
        prop_assert_eq!(fixed::lower_mul(&lf, &ya).unwrap(), lm);
    }

    // ------------------------------------------------------------ error paths

    #[test]
    fn non_finite_values_are_rejected(
        (a, b) in pair(16),
        at in any::<prop::sample::Index>(),
        bad in prop::sample::select(vec![f64::NAN, f64::INFINITY, f64::NEG_INFINITY]),
    ) {
        let i = at.index(a.len());
        let mut poisoned = a.clone();
        poisoned[i] = bad;
        let kind = ErrorKind::NonFinite;
        prop_assert_eq!(linalg::dot(&poisoned, &b).unwrap_err().kind(), kind);
        prop_assert_eq!(linalg::dot(&b, &poisoned).unwrap_err().kind(), kind);
        prop_assert_eq!(linalg::norm(&poisoned).unwrap_err().kind(), kind);
        prop_assert_eq!(linalg::cosine(&poisoned, &b).unwrap_err().kind(), kind);
        let mut copy = poisoned.clone();
        prop_assert_eq!(linalg::normalize(&mut copy).unwrap_err().kind(), kind);
        prop_assert!(copy.iter().zip(&poisoned).all(|(x, y)| x.to_bits() == y.to_bits()));
        let mut out = vec![0.0; 1];
        prop_assert_eq!(linalg::project(&poisoned, &b, &mut out).unwrap_err().kind(), kind);
        prop_assert_eq!(linalg::project(&b, &poisoned, &mut out).unwrap_err().kind(), kind);

        // The inverse is untouched when the update is rejected.
        let d = a.len();
        let mut a_inv = vec![0.0f64; d * d];
        (0..d).for_each(|k| a_inv[k * d + k] = 1.0);
        let before = a_inv.clone();
        let mut scratch = vec![0.0; d];
        prop_assert_eq!(
            linalg::sherman_morrison(&mut a_inv, &poisoned, 1.0, &mut scratch).unwrap_err().kind(),
            kind
        );
        prop_assert_eq!(
            linalg::sherman_morrison(&mut a_inv, &b, bad, &mut scratch).unwrap_err().kind(),
            kind
        );
        prop_assert_eq!(&a_inv, &before);

        let mut m = before.clone();
        m[i * d + i] = bad;
        let mut l = vec![0.0; d * d];
        prop_assert_eq!(linalg::cholesky(&m, d, &mut l).unwrap_err().kind(), kind);
        let mut rhs = poisoned.clone();
        prop_assert_eq!(linalg::cholesky_solve(&before, &mut rhs).unwrap_err().kind(), kind);
        let mut out = vec![0.0; d];
        prop_assert_eq!(linalg::lower_mul(&before, &poisoned, &mut out).unwrap_err().kind(), kind);
    }

    #[test]
    fn wrong_dimensions_are_rejected(a in vec_of(1..16), extra in 1usize..4) {
        let d = a.len();
        let b: Vec<f64> = (0..d + extra).map(|k| k as f64).collect();
        let kind = ErrorKind::DimensionMismatch;
        prop_assert_eq!(linalg::dot(&a, &b).unwrap_err().kind(), kind);
        prop_assert_eq!(linalg::cosine(&a, &b).unwrap_err().kind(), kind);
        let mut out = vec![0.0; 2];
        prop_assert_eq!(linalg::project(&a, &b, &mut out).unwrap_err().kind(), kind);
        let square = vec![1.0; d * d];
        let mut scratch = vec![0.0; d];
        let mut wrong = vec![1.0; d * d + extra];
        prop_assert_eq!(
            linalg::sherman_morrison(&mut wrong, &a, 1.0, &mut scratch).unwrap_err().kind(),
            kind
        );
        let mut short = vec![0.0; d + extra];
        let mut sq = square.clone();
        prop_assert_eq!(
            linalg::sherman_morrison(&mut sq, &a, 1.0, &mut short).unwrap_err().kind(),
            kind
        );
        let mut l = vec![0.0; d * d + extra];
        prop_assert_eq!(linalg::cholesky(&square, d, &mut l).unwrap_err().kind(), kind);
        let mut rhs = b.clone();
        prop_assert_eq!(linalg::cholesky_solve(&square, &mut rhs).unwrap_err().kind(), kind);
        let mut out = vec![0.0; d + extra];
        prop_assert_eq!(linalg::lower_mul(&square, &a, &mut out).unwrap_err().kind(), kind);
        let mut ax = vec![0.0; d];
        prop_assert_eq!(linalg::quad_form(&square, &b, &mut ax).unwrap_err().kind(), kind);
    }

    #[test]
    fn zero_vectors_have_no_direction(d in 1usize..32, b in vec_of(32)) {
        let zero = vec![0.0f32; d];
        let b: Vec<f32> = b[..d].iter().map(|&v| v as f32 + 11.0).collect();
        prop_assert_eq!(linalg::cosine(&zero, &b).unwrap_err().kind(), ErrorKind::ZeroVector);
        prop_assert_eq!(linalg::cosine(&b, &zero).unwrap_err().kind(), ErrorKind::ZeroVector);
        let mut z = zero.clone();
        prop_assert_eq!(linalg::normalize(&mut z).unwrap_err().kind(), ErrorKind::ZeroVector);
        prop_assert_eq!(z, zero);
    }

    #[test]
    fn indefinite_matrices_are_rejected(
        (d, b) in (1usize..8).prop_flat_map(|d| (Just(d), vec_of(d * d))),
        flip in any::<prop::sample::Index>(),
    ) {
        // A positive definite matrix with one diagonal entry made very negative is indefinite.
        let mut a = spd(&b, d, 1.0);
        let k = flip.index(d);
        a[k * d + k] = -1.0 - a.iter().map(|v| v.abs()).sum::<f64>();
        let mut l = vec![0.0; d * d];
        let err = linalg::cholesky(&a, d, &mut l).unwrap_err();
        prop_assert_eq!(err.kind(), ErrorKind::NotPositiveDefinite);

        // An "inverse" of -I makes 1 + xᵀA⁻¹x ≤ 0 for ‖x‖ ≥ 1; the update must refuse it.
        let mut neg = vec![0.0; d * d];
        (0..d).for_each(|i| neg[i * d + i] = -1.0);
        let before = neg.clone();
        let mut x = vec![0.0; d];
        x[k] = 1.0 + b[0].abs();
        let mut scratch = vec![0.0; d];
        let err = linalg::sherman_morrison(&mut neg, &x, 1.0, &mut scratch).unwrap_err();
        prop_assert_eq!(err.kind(), ErrorKind::NotPositiveDefinite);
        prop_assert_eq!(neg, before);
    }
}

#[test]
fn negative_weights_and_empty_inputs() {
    let mut a_inv = [1.0f32, 0.0, 0.0, 1.0];
    let mut s = [0.0f32; 2];
    let err = linalg::sherman_morrison(&mut a_inv, &[1.0, 1.0], -0.5, &mut s).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidParameter);
    assert_eq!(a_inv, [1.0, 0.0, 0.0, 1.0]);
    let empty: [f64; 0] = [];
    assert_eq!(linalg::dot(&empty, &empty).unwrap(), 0.0);
    assert_eq!(
        linalg::normalize::<f32>(&mut []).unwrap_err().kind(),
        ErrorKind::ZeroVector
    );
    // Overflow to ∞ inside a sum of finite values is still reported, not returned.
    assert_eq!(
        linalg::dot(&[f32::MAX, f32::MAX], &[2.0, 2.0])
            .unwrap_err()
            .kind(),
        ErrorKind::NonFinite
    );
}
