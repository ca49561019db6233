//! The projection of the preference prior as a value: base vector `x` → policy context
//! `[normalize(W·x + offset), 1]`, on storage the caller chooses (borrowed slices without an
//! allocator, vectors with one).

use pilot_core::{Error, ErrorKind, Real, Result, check_finite, check_len};

use crate::linalg::{normalize, project};

/// An affine map into the shared space, then normalisation, then a constant 1 that carries the
/// bias term of each LLM's linear model.
///
/// `S` is the storage of the matrix and offset: `&[F]` on a microcontroller (the numbers live
/// in flash), `Vec<F>` where there is an allocator. `pilot-prior` produces it, the router, the
/// simulator and the firmware use it.
#[derive(Clone, Debug, PartialEq)]
pub struct Projection<S, F: Real = f32> {
    w: S,
    offset: S,
    d_in: usize,
    d: usize,
    _real: core::marker::PhantomData<F>,
}

impl<S: AsRef<[F]>, F: Real> Projection<S, F> {
    /// A projection with matrix `w` (`d × d_in`, row-major) and offset (`d` values).
    ///
    /// # Errors
    /// [`DimensionMismatch`](ErrorKind::DimensionMismatch) when `w` is not `offset.len() ×
    /// d_in` or either dimension is zero; [`NonFinite`](ErrorKind::NonFinite) for NaN/∞ in
    /// either.
    pub fn new(w: S, offset: S, d_in: usize) -> Result<Self> {
        let d = offset.as_ref().len();
        if d == 0 || d_in == 0 {
            return Err(Error::new(
                ErrorKind::DimensionMismatch,
                "Projection::new: dimensions must be positive",
            ));
        }
        check_len("Projection::new: matrix (d × d_in)", w.as_ref(), d * d_in)?;
        check_finite("Projection::new: matrix", w.as_ref())?;
        check_finite("Projection::new: offset", offset.as_ref())?;
        Ok(Self {
            w,
            offset,
            d_in,
            d,
            _real: core::marker::PhantomData,
        })
    }

    /// Dimension of the base vectors it takes.
    pub fn d_in(&self) -> usize {
        self.d_in
    }

    /// Dimension of the shared space.
    pub fn d(&self) -> usize {
        self.d
    }

    /// Dimension of the policy context it writes: `d + 1`.
    pub fn context_dim(&self) -> usize {
        self.d + 1
    }

    /// The matrix `W`, `d × d_in` row-major.
    pub fn matrix(&self) -> &[F] {
        self.w.as_ref()
    }

    /// The offset added after `W·x`.
    pub fn offset(&self) -> &[F] {
        self.offset.as_ref()
    }

    /// Writes the context of base vector `x` into `out`: `[normalize(W·x + offset), 1]`.
    ///
    /// # Errors
    /// [`DimensionMismatch`](ErrorKind::DimensionMismatch) when `x.len() != d_in` or
    /// `out.len() != d + 1`, [`NonFinite`](ErrorKind::NonFinite) for NaN/∞ in `x`,
    /// [`ZeroVector`](ErrorKind::ZeroVector) when `W·x + offset` is zero. `out` is unspecified
    /// on error.
    pub fn context(&self, x: &[F], out: &mut [F]) -> Result<()> {
        check_len("Projection::context: base vector", x, self.d_in)?;
        check_len("Projection::context: output (d + 1)", out, self.d + 1)?;
        let (z, one) = out.split_at_mut(self.d);
        project(self.w.as_ref(), x, z)
            .map_err(|e| Error::new(e.kind(), "Projection::context: base vector"))?;
        for (v, &b) in z.iter_mut().zip(self.offset.as_ref()) {
            *v += b;
        }
        normalize(z).map_err(|e| Error::new(e.kind(), "Projection::context: projected vector"))?;
        if let Some(c) = one.first_mut() {
            *c = F::ONE;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_is_unit_projection_then_one() {
        let w = [1.0f32, 0.0, 0.0, 2.0];
        let p = Projection::new(&w[..], &[0.0f32, 0.0][..], 2).unwrap();
        let mut out = [0.0f32; 3];
        p.context(&[3.0, 2.0], &mut out).unwrap();
        assert!((out[0] - 0.6).abs() < 1e-6 && (out[1] - 0.8).abs() < 1e-6);
        assert_eq!(out[2], 1.0);
    }

    #[test]
    fn bad_shapes_and_zero_vectors_are_refused() {
        let w = [1.0f32, 0.0];
        assert_eq!(
            Projection::new(&w[..], &[0.0f32, 0.0][..], 2)
                .unwrap_err()
                .kind(),
            ErrorKind::DimensionMismatch
        );
        let p = Projection::new(&w[..], &[0.0f32][..], 2).unwrap();
        let mut out = [0.0f32; 2];
        assert_eq!(
            p.context(&[0.0, 1.0], &mut out).unwrap_err().kind(),
            ErrorKind::ZeroVector
        );
        assert_eq!(
            p.context(&[f32::NAN, 1.0], &mut out).unwrap_err().kind(),
            ErrorKind::NonFinite
        );
    }
}
