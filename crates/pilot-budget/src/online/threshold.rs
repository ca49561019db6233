//! The online knapsack threshold policy of Zhou, Chakrabarty & Lukose (2008).
//!
//! With `z` the fraction of the (released) budget spent, an arm qualifies when its value per
//! unit cost is at least `ψ(z) = (U·e/L)^z · (L/e)`, where `[L, U]` bounds the value/cost
//! ratios. Among qualifying arms that fit, the most valuable wins; if none qualifies, the
//! cheapest arm that fits serves the query; if nothing fits, the budget is exhausted.

use pilot_core::{
    ArmId, ArmScore, BudgetState, Cost, CostPolicy, Decision, Error, ErrorKind, Real, Result,
    Snapshot,
};

use super::config::OnlineConfig;
use super::ledger::Ledger;

/// The bounds `[L, U]` on value/cost ratios that shape ψ.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ThresholdParams<F: Real = f32> {
    /// `U`: the largest value/cost ratio worth paying for at the end of the budget.
    pub upper: F,
    /// `L`: the smallest ratio worth considering (`ψ(0) = L/e`).
    pub lower: F,
}

impl<F: Real> ThresholdParams<F> {
    /// Checked bounds.
    ///
    /// # Errors
    /// [`InvalidParameter`](ErrorKind::InvalidParameter) unless `0 < lower <= upper`, finite.
    pub fn new(upper: F, lower: F) -> Result<Self> {
        if !(lower > F::ZERO) || !lower.is_finite() {
            return Err(Error::invalid_parameter(
                "ThresholdParams: lower (finite, > 0)",
                lower.to_f64(),
            ));
        }
        if !(upper >= lower) || !upper.is_finite() {
            return Err(Error::invalid_parameter(
                "ThresholdParams: upper (finite, >= lower)",
                upper.to_f64(),
            ));
        }
        Ok(Self { upper, lower })
    }

    /// `ψ(z)` for `z` in `[0, 1]`.
    pub fn psi(&self, z: F) -> F {
        let e = F::ONE.exp();
        (self.upper * e / self.lower).powf(z) * (self.lower / e)
    }
}

/// Estimates `(U, L)` from observed values and costs: the largest and smallest value/cost
/// ratio over the pairs with positive value and positive cost.
///
/// # Errors
/// [`DimensionMismatch`](ErrorKind::DimensionMismatch) for slices of different lengths,
/// [`Empty`](ErrorKind::Empty) when no pair has positive value and cost.
pub fn ratio_bounds<F: Real>(values: &[F], costs: &[F]) -> Result<ThresholdParams<F>> {
    pilot_core::check_len("ratio_bounds: costs (one per value)", costs, values.len())?;
    let mut bounds: Option<(F, F)> = None;
    for (&v, &c) in values.iter().zip(costs) {
        if v > F::ZERO && c > F::ZERO && v.is_finite() && c.is_finite() {
            let r = v / c;
            if !r.is_finite() {
                continue;
            }
            bounds = Some(match bounds {
                None => (r, r),
                Some((hi, lo)) => (hi.max(r), lo.min(r)),
            });
        }
    }
    match bounds {
        Some((upper, lower)) => ThresholdParams::new(upper, lower),
        None => Err(Error::new(
            ErrorKind::Empty,
            "ratio_bounds: no pair with positive value and positive cost",
        )),
    }
}

/// The Zhou–Chakrabarty–Lukose threshold policy, with spreading, reserve and cost caps from
/// its [`OnlineConfig`].
///
/// `z` is `spent / allowance`, the fraction of the budget released so far (the whole budget
/// without a spread, as in the paper). [`CostPolicy::charge`] adds the real cost, even when it
/// exceeds the estimate the choice was made on; keep a [`reserve`](OnlineConfig::reserve) for
/// such overruns.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ThresholdPolicy<F: Real = f32> {
    ledger: Ledger<F>,
    params: ThresholdParams<F>,
    /// `(z, ψ(z))` of the last choice, so `powf` runs only when `z` moves.
    cached: (F, F),
}

impl<F: Real> ThresholdPolicy<F> {
    /// A policy with a fresh budget.
    ///
    /// # Errors
    /// As [`OnlineConfig::check`].
    pub fn new(config: OnlineConfig<F>, params: ThresholdParams<F>) -> Result<Self> {
        Ok(Self {
            ledger: Ledger::new(config)?,
            params,
            cached: (F::ZERO, params.psi(F::ZERO)),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &OnlineConfig<F> {
        &self.ledger.config
    }

    /// The current threshold ψ(z).
    pub fn threshold(&self) -> F {
        self.params.psi(self.fraction())
    }

    /// Changes the reserve (the simulator may size it to the queries left).
    ///
    /// # Errors
    /// [`InvalidParameter`](ErrorKind::InvalidParameter) for a reserve outside `[0, budget]`.
    pub fn set_reserve(&mut self, reserve: F) -> Result<()> {
        self.ledger.set_reserve(reserve)
    }

    fn fraction(&self) -> F {
        let c = &self.ledger.config;
        let released = c.spread.allowance(c.budget, self.ledger.step).min(c.budget);
        if released > F::ZERO {
            (self.ledger.spent / released).max(F::ZERO).min(F::ONE)
        } else {
            F::ONE
        }
    }
}

impl<F: Real> CostPolicy<F> for ThresholdPolicy<F> {
    fn choose(&mut self, scores: &[ArmScore<F>], costs: &[F]) -> Result<Decision> {
        self.ledger.validate(scores, costs)?;
        let z = self.fraction();
        if z != self.cached.0 {
            self.cached = (z, self.params.psi(z));
        }
        let psi = self.cached.1;
        // `v >= ψ·c` is `v/c >= ψ` without dividing by a zero cost.
        Ok(self
            .ledger
            .route(scores, costs, |v, c| (v >= psi * c).then_some(v)))
    }

    fn charge(&mut self, arm: ArmId, cost: Cost<F>) -> Result<()> {
        self.ledger.charge(arm, cost)
    }

    fn state(&self) -> BudgetState<F> {
        self.ledger.state()
    }

    fn set_budget(&mut self, budget: F) -> Result<()> {
        self.ledger.set_budget(budget)
    }

    fn new_period(&mut self, budget: F) -> Result<()> {
        self.ledger.new_period(budget)
    }

    fn set_arm_count(&mut self, arms: usize) -> Result<()> {
        self.ledger.set_arm_count(arms)
    }
}

impl<F: Real> Snapshot for ThresholdPolicy<F> {
    fn snapshot_len(&self) -> usize {
        super::snapshot::len(2)
    }

    fn save(&self, out: &mut [u8]) -> Result<usize> {
        let extra = [
            self.cached.0.to_f64().to_bits(),
            self.cached.1.to_f64().to_bits(),
        ];
        super::snapshot::save(
            out,
            *b"PTHR",
            self.ledger.config.arms,
            self.ledger.dynamic(),
            &extra,
        )
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<()> {
        let (ledger, [z, psi]) =
            super::snapshot::open::<2>(bytes, *b"PTHR", self.ledger.config.arms)?;
        let mut next = *self;
        next.ledger.restore_dynamic(ledger)?;
        next.cached = (
            F::from_f64(f64::from_bits(z)),
            F::from_f64(f64::from_bits(psi)),
        );
        *self = next;
        Ok(())
    }
}
