//! Validated values: rewards and costs that are known to be finite (and, for costs, ≥ 0).

use crate::{Error, ErrorKind, Real, Result};

/// Checks that every value in `values` is finite; the error names `context` and the value.
pub fn check_finite<F: Real>(context: &'static str, values: &[F]) -> Result<()> {
    match values.iter().find(|v| !v.is_finite()) {
        Some(v) => Err(Error::non_finite(context, v.to_f64())),
        None => Ok(()),
    }
}

/// Checks that `values.len() == expected`.
pub fn check_len<T>(context: &'static str, values: &[T], expected: usize) -> Result<()> {
    if values.len() == expected {
        Ok(())
    } else {
        Err(Error::dimension(context, expected, values.len()))
    }
}

/// Observed feedback for one answer: a finite number (quality in `[0, 1]` for RouterBench).
///
/// Policies may further require a configured range; this type only guarantees finiteness.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Reward<F = f32>(F);

impl<F: Real> Reward<F> {
    /// A reward, or [`ErrorKind::NonFinite`].
    pub fn new(value: F) -> Result<Self> {
        if value.is_finite() {
            Ok(Self(value))
        } else {
            Err(Error::non_finite("reward", value.to_f64()))
        }
    }

    /// The value.
    pub fn get(self) -> F {
        self.0
    }
}

/// The price of one call: finite and non-negative (USD for RouterBench).
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Cost<F = f32>(F);

impl<F: Real> Cost<F> {
    /// Zero cost.
    pub const ZERO: Self = Self(F::ZERO);

    /// A cost, or [`ErrorKind::NonFinite`] / [`ErrorKind::NegativeCost`].
    pub fn new(value: F) -> Result<Self> {
        if !value.is_finite() {
            Err(Error::non_finite("cost", value.to_f64()))
        } else if value < F::ZERO {
            Err(Error::new(ErrorKind::NegativeCost, "cost")
                .with_detail(crate::Detail::Value(value.to_f64())))
        } else {
            Ok(Self(value))
        }
    }

    /// The value.
    pub fn get(self) -> F {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_validated() {
        assert!(Reward::new(0.5f32).is_ok());
        assert_eq!(
            Reward::new(f32::NAN).unwrap_err().kind(),
            ErrorKind::NonFinite
        );
        assert_eq!(
            Cost::new(-1.0f64).unwrap_err().kind(),
            ErrorKind::NegativeCost
        );
        assert_eq!(
            Cost::new(f64::INFINITY).unwrap_err().kind(),
            ErrorKind::NonFinite
        );
        assert_eq!(Cost::new(0.0f32).unwrap().get(), 0.0);
        assert_eq!(
            check_len("x", &[1, 2], 3).unwrap_err().kind(),
            ErrorKind::DimensionMismatch
        );
        assert!(check_finite("x", &[1.0f32, f32::INFINITY]).is_err());
    }
}
