//! The scalar trait: the float operations the routing math needs, for `f32` and `f64`.

use core::fmt::{Debug, Display};
use core::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

/// A floating-point scalar (`f32` or `f64`).
///
/// The transcendental functions go through [`libm`], so results are the same on a
/// microcontroller without `std` as on a host, and no `f32::sqrt` (a `std` method) is needed.
/// `f32` is the default everywhere (embeddings are stored as `f32`, and Cortex-M4F has a
/// single-precision FPU); `f64` is there for replays that run millions of updates.
pub trait Real:
    Copy
    + Default
    + PartialOrd
    + Debug
    + Display
    + Send
    + Sync
    + 'static
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
{
    /// Zero.
    const ZERO: Self;
    /// One.
    const ONE: Self;
    /// Machine epsilon.
    const EPSILON: Self;
    /// Largest finite value.
    const MAX: Self;
    /// Number of bytes of one value in little-endian form.
    const BYTES: usize;

    /// Converts from `f64`, rounding to nearest.
    fn from_f64(v: f64) -> Self;
    /// Converts to `f64` exactly.
    fn to_f64(self) -> f64;
    /// Converts from `f32` exactly.
    fn from_f32(v: f32) -> Self;
    /// Converts to `f32`, rounding to nearest.
    fn to_f32(self) -> f32;
    /// Square root (NaN for negative input).
    fn sqrt(self) -> Self;
    /// Absolute value.
    fn abs(self) -> Self;
    /// `e^self`.
    fn exp(self) -> Self;
    /// Natural logarithm.
    fn ln(self) -> Self;
    /// `self^e`.
    fn powf(self, e: Self) -> Self;
    /// Neither NaN nor infinite.
    fn is_finite(self) -> bool;
    /// The larger of two values; NaN loses.
    fn max(self, other: Self) -> Self;
    /// The smaller of two values; NaN loses.
    fn min(self, other: Self) -> Self;
}

macro_rules! impl_real {
    ($t:ty, $sqrt:path, $fabs:path, $exp:path, $log:path, $pow:path, $fmax:path, $fmin:path) => {
        impl Real for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const EPSILON: Self = <$t>::EPSILON;
            const MAX: Self = <$t>::MAX;
            const BYTES: usize = core::mem::size_of::<$t>();

            #[inline]
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            #[inline]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline]
            fn from_f32(v: f32) -> Self {
                v as $t
            }
            #[inline]
            fn to_f32(self) -> f32 {
                self as f32
            }
            #[inline]
            fn sqrt(self) -> Self {
                $sqrt(self)
            }
            #[inline]
            fn abs(self) -> Self {
                $fabs(self)
            }
            #[inline]
            fn exp(self) -> Self {
                $exp(self)
            }
            #[inline]
            fn ln(self) -> Self {
                $log(self)
            }
            #[inline]
            fn powf(self, e: Self) -> Self {
                $pow(self, e)
            }
            #[inline]
            fn is_finite(self) -> bool {
                <$t>::is_finite(self)
            }
            #[inline]
            fn max(self, other: Self) -> Self {
                $fmax(self, other)
            }
            #[inline]
            fn min(self, other: Self) -> Self {
                $fmin(self, other)
            }
        }
    };
}

impl_real!(
    f32,
    libm::sqrtf,
    libm::fabsf,
    libm::expf,
    libm::logf,
    libm::powf,
    libm::fmaxf,
    libm::fminf
);
impl_real!(
    f64,
    libm::sqrt,
    libm::fabs,
    libm::exp,
    libm::log,
    libm::pow,
    libm::fmax,
    libm::fmin
);

#[cfg(test)]
mod tests {
    use super::Real;

    fn roundtrip<F: Real>() {
        assert_eq!(F::from_f64(4.0).sqrt().to_f64(), 2.0);
        assert_eq!(F::from_f64(-3.5).abs().to_f64(), 3.5);
        assert!(!F::from_f64(f64::NAN).is_finite());
        assert_eq!(F::from_f64(f64::NAN).max(F::ONE).to_f64(), 1.0);
        assert!((F::ONE.exp().ln().to_f64() - 1.0).abs() < 1e-6);
    }

    #[test]
    fn both_widths_behave() {
        roundtrip::<f32>();
        roundtrip::<f64>();
    }
}
