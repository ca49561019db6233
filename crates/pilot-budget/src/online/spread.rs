//! Spreading a budget over time: bins of a known horizon with carry-over, or a spend rate.

use pilot_core::{Error, ErrorKind, Real, Result};

/// Most bins a [`Spread::shares`] schedule can have (stored inline, no allocator).
pub const MAX_BINS: usize = 32;

/// How much of the budget may be spent by a given query.
///
/// The allowance is cumulative, so whatever a bin leaves unspent carries over to the next.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Spread<F: Real = f32> {
    /// The whole budget is available from the first query.
    Whole,
    /// A known horizon of `horizon` queries split into bins: by the end of bin `b`, at most
    /// `cumulative[b]` (a fraction) of the budget may be spent.
    Bins {
        /// Number of queries expected.
        horizon: u64,
        /// Number of bins in use (`1..=MAX_BINS`).
        bins: usize,
        /// Cumulative budget fraction at the end of each bin; the last is 1.
        cumulative: [F; MAX_BINS],
    },
    /// Unknown horizon: `burst + per_query × (queries so far + 1)`, capped at the budget.
    Rate {
        /// Budget released per query.
        per_query: F,
        /// Budget available up front.
        burst: F,
    },
}

impl<F: Real> Spread<F> {
    /// `bins` bins of equal share over `horizon` queries.
    ///
    /// # Errors
    /// [`InvalidParameter`](ErrorKind::InvalidParameter) for a zero horizon or bins outside
    /// `1..=MAX_BINS`.
    pub fn uniform(horizon: u64, bins: usize) -> Result<Self> {
        if bins == 0 || bins > MAX_BINS {
            return Err(Error::invalid_parameter(
                "Spread::uniform: bins (1..=32)",
                bins as f64,
            ));
        }
        let ones = [F::ONE; MAX_BINS];
        Self::shares(horizon, &ones[..bins])
    }

    /// Bins with the given relative shares over `horizon` queries (normalised to sum to 1).
    ///
    /// # Errors
    /// [`InvalidParameter`](ErrorKind::InvalidParameter) for a zero horizon, no shares or more
    /// than [`MAX_BINS`], a negative or non-finite share, or shares summing to zero.
    pub fn shares(horizon: u64, shares: &[F]) -> Result<Self> {
        if horizon == 0 {
            return Err(Error::new(
                ErrorKind::InvalidParameter,
                "Spread: horizon must be positive",
            ));
        }
        if shares.is_empty() || shares.len() > MAX_BINS {
            return Err(Error::invalid_parameter(
                "Spread::shares: number of shares (1..=32)",
                shares.len() as f64,
            ));
        }
        let mut total = F::ZERO;
        for &s in shares {
            if !s.is_finite() || s < F::ZERO {
                return Err(Error::invalid_parameter(
                    "Spread::shares: share (finite, >= 0)",
                    s.to_f64(),
                ));
            }
            total += s;
        }
        if !(total > F::ZERO) || !total.is_finite() {
            return Err(Error::invalid_parameter(
                "Spread::shares: sum of shares",
                total.to_f64(),
            ));
        }
        let mut cumulative = [F::ONE; MAX_BINS];
        let mut running = F::ZERO;
        for (c, &s) in cumulative.iter_mut().zip(shares) {
            running += s;
            *c = (running / total).min(F::ONE);
        }
        cumulative[shares.len() - 1] = F::ONE;
        Ok(Self::Bins {
            horizon,
            bins: shares.len(),
            cumulative,
        })
    }

    /// A spend rate for an unknown horizon.
    ///
    /// # Errors
    /// [`InvalidParameter`](ErrorKind::InvalidParameter) for a rate that is not positive and
    /// finite, or a negative or non-finite burst.
    pub fn rate(per_query: F, burst: F) -> Result<Self> {
        if !(per_query > F::ZERO) || !per_query.is_finite() {
            return Err(Error::invalid_parameter(
                "Spread::rate: per_query (> 0)",
                per_query.to_f64(),
            ));
        }
        if !(burst >= F::ZERO) || !burst.is_finite() {
            return Err(Error::invalid_parameter(
                "Spread::rate: burst (>= 0)",
                burst.to_f64(),
            ));
        }
        Ok(Self::Rate { per_query, burst })
    }

    /// The cumulative spend allowed once query number `step` (0-based) is served.
    pub fn allowance(&self, budget: F, step: u64) -> F {
        match *self {
            Self::Whole => budget,
            Self::Bins {
                horizon,
                bins,
                cumulative,
            } => {
                if step >= horizon {
                    return budget;
                }
                let bin = (u128::from(step) * bins as u128 / u128::from(horizon)) as usize;
                budget * cumulative[bin.min(bins - 1)]
            }
            Self::Rate { per_query, burst } => {
                (burst + per_query * F::from_f64(step as f64 + 1.0)).min(budget)
            }
        }
    }

    /// The target spend per query, when the schedule implies one.
    pub fn per_query(&self, budget: F) -> Option<F> {
        match *self {
            Self::Whole => None,
            Self::Bins { horizon, .. } => Some(budget / F::from_f64(horizon as f64)),
            Self::Rate { per_query, .. } => Some(per_query),
        }
    }
}
