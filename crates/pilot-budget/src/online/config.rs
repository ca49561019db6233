//! What every online policy is configured with: budget, reserve, cost cap, value source, spread.

use pilot_core::{ArmScore, Error, ErrorKind, Real, Result};

use super::spread::Spread;

/// Which number of the routing policy's [`ArmScore`] counts as an arm's value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ValueOf<F: Real = f32> {
    /// The mean estimate μ.
    Estimate,
    /// The policy's ranking score (μ + α·w for LinUCB, a sample for Thompson sampling).
    Score,
    /// `estimate + κ · width`: optimism chosen by the budget layer.
    Optimistic(F),
}

impl<F: Real> ValueOf<F> {
    /// The value of one arm.
    #[inline]
    pub fn of(&self, score: &ArmScore<F>) -> F {
        match *self {
            Self::Estimate => score.estimate,
            Self::Score => score.score,
            Self::Optimistic(kappa) => score.estimate + kappa * score.width,
        }
    }
}

/// Configuration shared by the online policies. Build with [`OnlineConfig::new`] and the
/// `with_*` methods; the policies check it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OnlineConfig<F: Real = f32> {
    /// Number of arms in the pool.
    pub arms: usize,
    /// The whole budget.
    pub budget: F,
    /// Budget held back from ordinary choices so the cheapest arm can still serve the
    /// remaining queries (and to absorb real costs above the estimates); only the fallback to
    /// the cheapest arm may spend it.
    pub reserve: F,
    /// Arms whose cost for a query exceeds this are never chosen for it.
    pub max_cost: Option<F>,
    /// Which score counts as value.
    pub value: ValueOf<F>,
    /// How the budget is released over time.
    pub spread: Spread<F>,
}

impl<F: Real> OnlineConfig<F> {
    /// A pool of `arms` arms sharing `budget`, no reserve, no cap, values = estimates, the
    /// whole budget available at once.
    pub fn new(arms: usize, budget: F) -> Self {
        Self {
            arms,
            budget,
            reserve: F::ZERO,
            max_cost: None,
            value: ValueOf::Estimate,
            spread: Spread::Whole,
        }
    }

    /// Sets the reserve.
    pub fn with_reserve(mut self, reserve: F) -> Self {
        self.reserve = reserve;
        self
    }

    /// Sets a per-query cost cap.
    pub fn with_max_cost(mut self, max_cost: F) -> Self {
        self.max_cost = Some(max_cost);
        self
    }

    /// Sets the value source.
    pub fn with_value(mut self, value: ValueOf<F>) -> Self {
        self.value = value;
        self
    }

    /// Sets the spread schedule.
    pub fn with_spread(mut self, spread: Spread<F>) -> Self {
        self.spread = spread;
        self
    }

    /// Checks every field.
    ///
    /// # Errors
    /// [`Empty`](ErrorKind::Empty) for no arms, [`NegativeBudget`](ErrorKind::NegativeBudget)
    /// for a negative budget, [`NonFinite`](ErrorKind::NonFinite) for a NaN/infinite one,
    /// [`InvalidParameter`](ErrorKind::InvalidParameter) for a reserve outside `[0, budget]`, a
    /// negative or non-finite cost cap or κ.
    pub fn check(self) -> Result<Self> {
        if self.arms == 0 {
            return Err(Error::new(ErrorKind::Empty, "OnlineConfig: arms"));
        }
        if !self.budget.is_finite() {
            return Err(Error::non_finite(
                "OnlineConfig: budget",
                self.budget.to_f64(),
            ));
        }
        if self.budget < F::ZERO {
            return Err(
                Error::new(ErrorKind::NegativeBudget, "OnlineConfig: budget")
                    .with_detail(pilot_core::Detail::Value(self.budget.to_f64())),
            );
        }
        if !(self.reserve >= F::ZERO) || !(self.reserve <= self.budget) {
            return Err(Error::out_of_range(
                "OnlineConfig: reserve (0..=budget)",
                self.reserve.to_f64(),
                0.0,
                self.budget.to_f64(),
            ));
        }
        if let Some(cap) = self.max_cost
            && (!(cap >= F::ZERO) || !cap.is_finite())
        {
            return Err(Error::invalid_parameter(
                "OnlineConfig: max_cost (finite, >= 0)",
                cap.to_f64(),
            ));
        }
        if let ValueOf::Optimistic(kappa) = self.value
            && !kappa.is_finite()
        {
            return Err(Error::invalid_parameter(
                "OnlineConfig: value kappa (finite)",
                kappa.to_f64(),
            ));
        }
        Ok(self)
    }
}
