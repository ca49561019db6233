//! Vector and matrix kernels on slices: products, norms, projection, rank-1 inverse updates and
//! Cholesky factorisation, each checking dimensions and finiteness.

use pilot_core::{Detail, Error, ErrorKind, Real, Result, check_len};

/// Norms below this (relative to 1) are treated as zero: no direction can be taken from them.
fn tiny<F: Real>() -> F {
    F::EPSILON * F::EPSILON
}

fn finite<F: Real>(context: &'static str, v: F) -> Result<F> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(Error::non_finite(context, v.to_f64()))
    }
}

/// Dot product `a·b`.
///
/// # Errors
/// [`DimensionMismatch`](ErrorKind::DimensionMismatch) when the lengths differ,
/// [`NonFinite`](ErrorKind::NonFinite) when the inputs hold NaN/∞ or the sum overflows.
pub fn dot<F: Real>(a: &[F], b: &[F]) -> Result<F> {
    check_len("dot: b", b, a.len())?;
    // Eight independent partial sums: the additions no longer wait on each other, so the
    // compiler can vectorise. The order is fixed, so results are the same on every platform.
    let mut lanes = [F::ZERO; LANES];
    let (a_blocks, b_blocks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (a_rest, b_rest) = (a_blocks.remainder(), b_blocks.remainder());
    for (xa, xb) in a_blocks.zip(b_blocks) {
        for ((lane, &x), &y) in lanes.iter_mut().zip(xa).zip(xb) {
            *lane += x * y;
        }
    }
    for ((lane, &x), &y) in lanes.iter_mut().zip(a_rest).zip(b_rest) {
        *lane += x * y;
    }
    let [l0, l1, l2, l3, l4, l5, l6, l7] = lanes;
    let sum = ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7));
    finite("dot", sum)
}

/// Number of partial sums in [`dot`].
const LANES: usize = 8;

/// Euclidean norm `‖a‖`.
///
/// # Errors
/// [`NonFinite`](ErrorKind::NonFinite) for NaN/∞ input or overflow.
pub fn norm<F: Real>(a: &[F]) -> Result<F> {
    Ok(dot(a, a)?.sqrt())
}

/// Cosine similarity `a·b / (‖a‖‖b‖)`, clamped to `[-1, 1]`.
///
/// # Errors
/// As [`dot`], plus [`ZeroVector`](ErrorKind::ZeroVector) when either vector has zero length.
pub fn cosine<F: Real>(a: &[F], b: &[F]) -> Result<F> {
    let ab = dot(a, b)?;
    let (na, nb) = (norm(a)?, norm(b)?);
    if !(na > tiny()) || !(nb > tiny()) {
        return Err(Error::new(ErrorKind::ZeroVector, "cosine"));
    }
    Ok((ab / (na * nb)).max(-F::ONE).min(F::ONE))
}

/// Scales `a` to unit length in place and returns its former norm; `a` is untouched on error.
///
/// # Errors
/// [`NonFinite`](ErrorKind::NonFinite) for NaN/∞ input, [`ZeroVector`](ErrorKind::ZeroVector)
/// for a vector of zero length.
pub fn normalize<F: Real>(a: &mut [F]) -> Result<F> {
    let n = norm(a)?;
    if !(n > tiny()) {
        return Err(Error::new(ErrorKind::ZeroVector, "normalize"));
    }
    for x in a.iter_mut() {
        *x /= n;
    }
    Ok(n)
}

/// Projection `out = W·x` with `W` row-major of `out.len() × x.len()`.
///
/// # Errors
/// [`DimensionMismatch`](ErrorKind::DimensionMismatch) when `w.len() != out.len() * x.len()`,
/// [`NonFinite`](ErrorKind::NonFinite) for NaN/∞ in `w` or `x` (then `out` is unspecified).
pub fn project<F: Real>(w: &[F], x: &[F], out: &mut [F]) -> Result<()> {
    let expected = out.len().saturating_mul(x.len());
    check_len("project: matrix (rows × cols)", w, expected)?;
    if x.is_empty() {
        out.iter_mut().for_each(|o| *o = F::ZERO);
        return Ok(());
    }
    for (row, o) in w.chunks_exact(x.len()).zip(out.iter_mut()) {
        *o = dot(row, x).map_err(|_| Error::new(ErrorKind::NonFinite, "project"))?;
    }
    Ok(())
}

/// Side of a square `d × d` matrix stored in `a`, checked against the vector length `d`.
fn square<F: Real>(context: &'static str, a: &[F], d: usize) -> Result<()> {
    let expected = d.saturating_mul(d);
    check_len(context, a, expected)
}

/// Quadratic form `xᵀAx` for a symmetric `A` (`d × d`); `ax` receives `A·x`.
///
/// # Errors
/// [`DimensionMismatch`](ErrorKind::DimensionMismatch) for shapes that do not fit,
/// [`NonFinite`](ErrorKind::NonFinite) for NaN/∞.
pub fn quad_form<F: Real>(a: &[F], x: &[F], ax: &mut [F]) -> Result<F> {
    square("quad_form: matrix (d × d)", a, x.len())?;
    check_len("quad_form: scratch", ax, x.len())?;
    project(a, x, ax)?;
    dot(x, ax)
}

/// Sherman–Morrison rank-1 update of an inverse: `A⁻¹ ← (A + w·x·xᵀ)⁻¹` for symmetric `A⁻¹`.
///
/// `A⁻¹ − u·uᵀ` with `u = A⁻¹x·√(w / (1 + w·xᵀA⁻¹x))`. Writing the update as `u·uᵀ` keeps a
/// symmetric `A⁻¹` exactly symmetric (`uᵢuⱼ = uⱼuᵢ`) while updating row by row, which is what
/// keeps large `d` cache-friendly. `scratch` (length `d`) is overwritten (it ends holding `u`).
/// O(d²).
///
/// # Errors
/// [`DimensionMismatch`](ErrorKind::DimensionMismatch) for shapes that do not fit,
/// [`NonFinite`](ErrorKind::NonFinite) for NaN/∞ in `x`, `w` or the matrix,
/// [`InvalidParameter`](ErrorKind::InvalidParameter) for `w < 0`,
/// [`NotPositiveDefinite`](ErrorKind::NotPositiveDefinite) when the denominator
/// `1 + w·xᵀA⁻¹x` is not safely positive (the matrix was not positive definite).
/// On error `a_inv` is untouched.
pub fn sherman_morrison<F: Real>(a_inv: &mut [F], x: &[F], w: F, scratch: &mut [F]) -> Result<()> {
    if !w.is_finite() {
        return Err(Error::non_finite("sherman_morrison: weight", w.to_f64()));
    }
    if w < F::ZERO {
        return Err(Error::invalid_parameter(
            "sherman_morrison: weight (must be ≥ 0)",
            w.to_f64(),
        ));
    }
    let q = quad_form(a_inv, x, scratch)?;
    let denom = F::ONE + w * q;
    // A positive definite A⁻¹ gives q ≥ 0; a denominator near zero means it has lost that.
    if !(denom > F::EPSILON.sqrt()) || !(q > -F::EPSILON.sqrt()) {
        return Err(Error::new(
            ErrorKind::NotPositiveDefinite,
            "sherman_morrison: 1 + w·xᵀA⁻¹x",
        )
        .with_detail(Detail::Value(denom.to_f64())));
    }
    let scale = (w / denom).sqrt();
    scratch.iter_mut().for_each(|s| *s *= scale);
    if x.is_empty() {
        return Ok(());
    }
    for (row, &ui) in a_inv.chunks_exact_mut(x.len()).zip(scratch.iter()) {
        for (a, &uj) in row.iter_mut().zip(scratch.iter()) {
            *a -= ui * uj;
        }
    }
    Ok(())
}

/// Cholesky factor: writes the lower-triangular `L` with `A = L·Lᵀ` into `l` (upper part zero).
///
/// Reads only the lower triangle of `a`. `l` is scratch: unspecified on error.
///
/// # Errors
/// [`DimensionMismatch`](ErrorKind::DimensionMismatch) when `a` and `l` are not both `d × d`,
/// [`NonFinite`](ErrorKind::NonFinite) for NaN/∞ entries,
/// [`NotPositiveDefinite`](ErrorKind::NotPositiveDefinite) (with the failing pivot's index).
pub fn cholesky<F: Real>(a: &[F], d: usize, l: &mut [F]) -> Result<()> {
    square("cholesky: matrix (d × d)", a, d)?;
    square("cholesky: factor (d × d)", l, d)?;
    for i in 0..d {
        for j in 0..=i {
            let mut s = a[i * d + j];
            for k in 0..j {
                s -= l[i * d + k] * l[j * d + k];
            }
            if !s.is_finite() {
                return Err(Error::non_finite("cholesky", s.to_f64()));
            }
            if i == j {
                if !(s > F::ZERO) {
                    return Err(
                        Error::new(ErrorKind::NotPositiveDefinite, "cholesky: pivot")
                            .with_detail(Detail::Index { index: i, len: d }),
                    );
                }
                l[i * d + i] = s.sqrt();
            } else {
                l[i * d + j] = s / l[j * d + j];
            }
        }
        for j in i + 1..d {
            l[i * d + j] = F::ZERO;
        }
    }
    Ok(())
}

/// Solves `L·Lᵀ·x = b` in place (`b` becomes `x`) from a factor made by [`cholesky`].
///
/// # Errors
/// [`DimensionMismatch`](ErrorKind::DimensionMismatch) for shapes that do not fit,
/// [`NotPositiveDefinite`](ErrorKind::NotPositiveDefinite) for a zero on the diagonal,
/// [`NonFinite`](ErrorKind::NonFinite) for NaN/∞ in the result.
pub fn cholesky_solve<F: Real>(l: &[F], b: &mut [F]) -> Result<()> {
    let d = b.len();
    square("cholesky_solve: factor (d × d)", l, d)?;
    if let Some(i) = (0..d).find(|&i| !(l[i * d + i] > F::ZERO)) {
        return Err(
            Error::new(ErrorKind::NotPositiveDefinite, "cholesky_solve: diagonal")
                .with_detail(Detail::Index { index: i, len: d }),
        );
    }
    for i in 0..d {
        let mut s = b[i];
        for k in 0..i {
            s -= l[i * d + k] * b[k];
        }
        b[i] = s / l[i * d + i];
    }
    for i in (0..d).rev() {
        let mut s = b[i];
        for k in i + 1..d {
            s -= l[k * d + i] * b[k];
        }
        b[i] = s / l[i * d + i];
    }
    match b.iter().find(|v| !v.is_finite()) {
        Some(v) => Err(Error::non_finite("cholesky_solve", v.to_f64())),
        None => Ok(()),
    }
}

/// `out = L·z` for a lower-triangular `L` (`d × d`): turns standard normal draws `z` into draws
/// with covariance `L·Lᵀ`.
///
/// # Errors
/// [`DimensionMismatch`](ErrorKind::DimensionMismatch) for shapes that do not fit,
/// [`NonFinite`](ErrorKind::NonFinite) for NaN/∞.
pub fn lower_mul<F: Real>(l: &[F], z: &[F], out: &mut [F]) -> Result<()> {
    let d = z.len();
    square("lower_mul: factor (d × d)", l, d)?;
    check_len("lower_mul: out", out, d)?;
    for i in 0..d {
        let mut s = F::ZERO;
        for k in 0..=i {
            s += l[i * d + k] * z[k];
        }
        out[i] = finite("lower_mul", s)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sherman_morrison_matches_direct_inverse_2x2() {
        // A = I, x = (1, 2): A + xxᵀ = [[2, 2], [2, 5]], inverse = [[5, -2], [-2, 2]] / 6.
        let mut a_inv = [1.0f64, 0.0, 0.0, 1.0];
        let mut s = [0.0; 2];
        sherman_morrison(&mut a_inv, &[1.0, 2.0], 1.0, &mut s).unwrap();
        let want = [5.0 / 6.0, -2.0 / 6.0, -2.0 / 6.0, 2.0 / 6.0];
        for (g, w) in a_inv.iter().zip(want) {
            assert!((g - w).abs() < 1e-12);
        }
    }

    #[test]
    fn cholesky_solves_and_rejects_indefinite() {
        let a = [4.0f32, 2.0, 2.0, 3.0];
        let mut l = [0.0; 4];
        cholesky(&a, 2, &mut l).unwrap();
        let mut b = [2.0, 1.0];
        cholesky_solve(&l, &mut b).unwrap();
        assert!((4.0 * b[0] + 2.0 * b[1] - 2.0).abs() < 1e-5);
        assert!((2.0 * b[0] + 3.0 * b[1] - 1.0).abs() < 1e-5);
        let bad = [1.0f32, 2.0, 2.0, 1.0];
        assert_eq!(
            cholesky(&bad, 2, &mut l).unwrap_err().kind(),
            ErrorKind::NotPositiveDefinite
        );
    }

    #[test]
    fn errors_name_the_problem() {
        assert_eq!(
            dot(&[1.0f32], &[1.0, 2.0]).unwrap_err().kind(),
            ErrorKind::DimensionMismatch
        );
        assert_eq!(
            dot(&[f32::NAN], &[1.0]).unwrap_err().kind(),
            ErrorKind::NonFinite
        );
        let mut z = [0.0f64; 3];
        assert_eq!(normalize(&mut z).unwrap_err().kind(), ErrorKind::ZeroVector);
        let mut out = [0.0f32; 2];
        assert_eq!(
            project(&[1.0; 5], &[1.0, 1.0, 1.0], &mut out)
                .unwrap_err()
                .kind(),
            ErrorKind::DimensionMismatch
        );
    }
}
