//! Fixed-size forms of the kernels: dimensions in the types (const generics), so shape errors
//! are compile errors.
//!
//! Each function flattens its arrays (`as_flattened`) and calls the slice kernel in
//! [`linalg`]: one algorithm, two forms, identical results. Only value errors
//! remain at run time (NaN/∞, zero vectors, matrices that are not positive definite).
//! Results are returned by value, so a caller never sees a half-written output.

use pilot_core::{Real, Result};

use crate::linalg;

/// Dot product `a·b`.
///
/// # Errors
/// [`NonFinite`](pilot_core::ErrorKind::NonFinite) for NaN/∞ input or overflow.
pub fn dot<F: Real, const D: usize>(a: &[F; D], b: &[F; D]) -> Result<F> {
    linalg::dot(a, b)
}

/// Euclidean norm `‖a‖`.
///
/// # Errors
/// [`NonFinite`](pilot_core::ErrorKind::NonFinite) for NaN/∞ input or overflow.
pub fn norm<F: Real, const D: usize>(a: &[F; D]) -> Result<F> {
    linalg::norm(a)
}

/// Cosine similarity, clamped to `[-1, 1]`.
///
/// # Errors
/// [`NonFinite`](pilot_core::ErrorKind::NonFinite) for NaN/∞,
/// [`ZeroVector`](pilot_core::ErrorKind::ZeroVector) when either vector has zero length.
pub fn cosine<F: Real, const D: usize>(a: &[F; D], b: &[F; D]) -> Result<F> {
    linalg::cosine(a, b)
}

/// Scales `a` to unit length in place and returns its former norm; `a` is untouched on error.
///
/// # Errors
/// [`NonFinite`](pilot_core::ErrorKind::NonFinite) for NaN/∞,
/// [`ZeroVector`](pilot_core::ErrorKind::ZeroVector) for a vector of zero length.
pub fn normalize<F: Real, const D: usize>(a: &mut [F; D]) -> Result<F> {
    linalg::normalize(a)
}

/// Projection `W·x` for a matrix of `OUT` rows of `IN` columns.
///
/// # Errors
/// [`NonFinite`](pilot_core::ErrorKind::NonFinite) for NaN/∞ in `w` or `x`.
pub fn project<F: Real, const IN: usize, const OUT: usize>(
    w: &[[F; IN]; OUT],
    x: &[F; IN],
) -> Result<[F; OUT]> {
    let mut out = [F::ZERO; OUT];
    linalg::project(w.as_flattened(), x, &mut out)?;
    Ok(out)
}

/// Quadratic form `xᵀAx` for a symmetric `A`.
///
/// # Errors
/// [`NonFinite`](pilot_core::ErrorKind::NonFinite) for NaN/∞.
pub fn quad_form<F: Real, const D: usize>(a: &[[F; D]; D], x: &[F; D]) -> Result<F> {
    let mut ax = [F::ZERO; D];
    linalg::quad_form(a.as_flattened(), x, &mut ax)
}

/// Sherman–Morrison rank-1 update `A⁻¹ ← (A + w·x·xᵀ)⁻¹` of a symmetric inverse, in place.
///
/// The scratch vector lives on the stack (`D` values). `a_inv` is untouched on error.
///
/// # Errors
/// [`NonFinite`](pilot_core::ErrorKind::NonFinite) for NaN/∞,
/// [`InvalidParameter`](pilot_core::ErrorKind::InvalidParameter) for `w < 0`,
/// [`NotPositiveDefinite`](pilot_core::ErrorKind::NotPositiveDefinite) when the denominator
/// `1 + w·xᵀA⁻¹x` is not safely positive.
pub fn sherman_morrison<F: Real, const D: usize>(
    a_inv: &mut [[F; D]; D],
    x: &[F; D],
    w: F,
) -> Result<()> {
    let mut scratch = [F::ZERO; D];
    linalg::sherman_morrison(a_inv.as_flattened_mut(), x, w, &mut scratch)
}

/// Cholesky factor `L` (lower triangular, upper part zero) with `A = L·Lᵀ`; reads the lower
/// triangle of `a`.
///
/// # Errors
/// [`NonFinite`](pilot_core::ErrorKind::NonFinite) for NaN/∞,
/// [`NotPositiveDefinite`](pilot_core::ErrorKind::NotPositiveDefinite) with the failing pivot.
pub fn cholesky<F: Real, const D: usize>(a: &[[F; D]; D]) -> Result<[[F; D]; D]> {
    let mut l = [[F::ZERO; D]; D];
    linalg::cholesky(a.as_flattened(), D, l.as_flattened_mut())?;
    Ok(l)
}

/// Solves `L·Lᵀ·x = b` from a factor made by [`cholesky`].
///
/// # Errors
/// [`NotPositiveDefinite`](pilot_core::ErrorKind::NotPositiveDefinite) for a zero on the
/// diagonal, [`NonFinite`](pilot_core::ErrorKind::NonFinite) for NaN/∞ in the result.
pub fn cholesky_solve<F: Real, const D: usize>(l: &[[F; D]; D], b: &[F; D]) -> Result<[F; D]> {
    let mut x = *b;
    linalg::cholesky_solve(l.as_flattened(), &mut x)?;
    Ok(x)
}

/// `L·z` for a lower-triangular `L`.
///
/// # Errors
/// [`NonFinite`](pilot_core::ErrorKind::NonFinite) for NaN/∞.
pub fn lower_mul<F: Real, const D: usize>(l: &[[F; D]; D], z: &[F; D]) -> Result<[F; D]> {
    let mut out = [F::ZERO; D];
    linalg::lower_mul(l.as_flattened(), z, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pilot_core::ErrorKind;

    #[test]
    fn fixed_forms_agree_with_slices() {
        let w = [[1.0f32, 2.0, 3.0], [0.0, -1.0, 0.5]];
        let x = [1.0f32, 1.0, 2.0];
        assert_eq!(project(&w, &x).unwrap(), [9.0, 0.0]);
        let mut a_inv = [[1.0f64, 0.0], [0.0, 1.0]];
        sherman_morrison(&mut a_inv, &[1.0, 2.0], 1.0).unwrap();
        let want = [[5.0 / 6.0, -2.0 / 6.0], [-2.0 / 6.0, 2.0 / 6.0]];
        for (g, w) in a_inv.as_flattened().iter().zip(want.as_flattened()) {
            assert!((g - w).abs() < 1e-12);
        }
        let l = cholesky(&[[4.0f64, 2.0], [2.0, 3.0]]).unwrap();
        assert_eq!(l[0], [2.0, 0.0]);
        let x = cholesky_solve(&l, &[2.0, 1.0]).unwrap();
        assert!((4.0 * x[0] + 2.0 * x[1] - 2.0).abs() < 1e-12);
    }

    #[test]
    fn fixed_forms_report_value_errors() {
        assert_eq!(
            cosine(&[0.0f32; 4], &[1.0; 4]).unwrap_err().kind(),
            ErrorKind::ZeroVector
        );
        assert_eq!(
            cholesky(&[[1.0f32, 2.0], [2.0, 1.0]]).unwrap_err().kind(),
            ErrorKind::NotPositiveDefinite
        );
        let mut v = [f64::NAN, 1.0];
        assert_eq!(normalize(&mut v).unwrap_err().kind(), ErrorKind::NonFinite);
    }
}
