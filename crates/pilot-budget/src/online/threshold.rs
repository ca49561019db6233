//! The online knapsack threshold policy of Zhou, Chakrabarty & Lukose (2008), in two forms.
//!
//! With `z` the fraction of the budget spent, an arm qualifies when its value per unit cost is
//! at least `ψ(z) = (U·e/L)^z · (L/e)`, where `[L, U]` bounds the value/cost ratios. Among
//! qualifying arms that fit, the most valuable wins.
//!
//! * [`ZclPolicy`] is the policy as published: `z` is spent / the whole budget, and when no arm
//!   qualifies (or none fits) the query is declined ([`Decision::BudgetExhausted`]), as ZCL
//!   rejects an item below the threshold. The caller decides what serves a declined query.
//! * [`ThresholdPolicy`] is this crate's adaptation: `z` counts against the budget released so
//!   far by its [`Spread`](super::Spread) (the whole budget without one), and when no arm
//!   qualifies the cheapest arm that fits the whole budget serves the query (ignoring the
//!   spread's limit); only when nothing fits is the budget exhausted.

use pilot_core::{
    ArmId, ArmScore, BudgetState, Cost, CostPolicy, Decision, Error, ErrorKind, Real, Result,
    Snapshot,
};

use super::config::OnlineConfig;
use super::ledger::Ledger;
use super::spread::Spread;

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

/// ψ with a one-entry cache of its last `(z, ψ(z))`, so `powf` runs only when `z` moves;
/// shared by both policies.
#[derive(Clone, Copy, Debug, PartialEq)]
struct CachedPsi<F: Real> {
    params: ThresholdParams<F>,
    last: (F, F),
}

impl<F: Real> CachedPsi<F> {
    fn new(params: ThresholdParams<F>) -> Self {
        Self {
            params,
            last: (F::ZERO, params.psi(F::ZERO)),
        }
    }

    /// `ψ(z)`, from the cache when `z` has not moved.
    fn at(&mut self, z: F) -> F {
        if z != self.last.0 {
            self.last = (z, self.params.psi(z));
        }
        self.last.1
    }

    /// The cache as two words for a snapshot.
    fn words(&self) -> [u64; 2] {
        [
            self.last.0.to_f64().to_bits(),
            self.last.1.to_f64().to_bits(),
        ]
    }

    /// The cache from a snapshot's two words.
    fn set_words(&mut self, [z, psi]: [u64; 2]) {
        self.last = (
            F::from_f64(f64::from_bits(z)),
            F::from_f64(f64::from_bits(psi)),
        );
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
    psi: CachedPsi<F>,
}

impl<F: Real> ThresholdPolicy<F> {
    /// A policy with a fresh budget.
    ///
    /// # Errors
    /// As [`OnlineConfig::check`].
    pub fn new(config: OnlineConfig<F>, params: ThresholdParams<F>) -> Result<Self> {
        Ok(Self {
            ledger: Ledger::new(config)?,
            psi: CachedPsi::new(params),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &OnlineConfig<F> {
        &self.ledger.config
    }

    /// The current threshold ψ(z).
    pub fn threshold(&self) -> F {
        self.psi.params.psi(self.fraction())
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
        let psi = self.psi.at(z);
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
        let extra = self.psi.words();
        super::snapshot::save(
            out,
            *b"PTHR",
            self.ledger.config.arms,
            self.ledger.dynamic(),
            &extra,
        )
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<()> {
        let (ledger, cache) = super::snapshot::open::<2>(bytes, *b"PTHR", self.ledger.config.arms)?;
        let mut next = *self;
        next.ledger.restore_dynamic(ledger)?;
        next.psi.set_words(cache);
        *self = next;
        Ok(())
    }
}

/// The Zhou–Chakrabarty–Lukose threshold policy exactly as published: `z = spent / budget`
/// over the whole budget, `ψ(z)` from the bounds as given (no scaling), an arm qualifies when
/// its value per unit cost is at least `ψ(z)` and it fits, the most valuable qualifying arm is
/// chosen, and a query with no qualifying arm is declined ([`Decision::BudgetExhausted`]).
///
/// The configuration's [`reserve`](OnlineConfig::reserve) and
/// [`max_cost`](OnlineConfig::max_cost) still bound what fits (both are off by default); a
/// [`Spread`] other than [`Spread::Whole`] is refused, since the published policy has none.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ZclPolicy<F: Real = f32> {
    ledger: Ledger<F>,
    psi: CachedPsi<F>,
}

impl<F: Real> ZclPolicy<F> {
    /// A policy with a fresh budget.
    ///
    /// # Errors
    /// As [`OnlineConfig::check`]; [`InvalidParameter`](ErrorKind::InvalidParameter) for a
    /// spread other than [`Spread::Whole`].
    pub fn new(config: OnlineConfig<F>, params: ThresholdParams<F>) -> Result<Self> {
        if config.spread != Spread::Whole {
            return Err(Error::new(
                ErrorKind::InvalidParameter,
                "ZclPolicy: spread (the published policy spends from the whole budget; use \
                 ThresholdPolicy to spread it)",
            ));
        }
        Ok(Self {
            ledger: Ledger::new(config)?,
            psi: CachedPsi::new(params),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &OnlineConfig<F> {
        &self.ledger.config
    }

    /// The current threshold ψ(z).
    pub fn threshold(&self) -> F {
        self.psi.params.psi(self.fraction())
    }

    /// `z`: the fraction of the whole budget spent, in `[0, 1]` (1 for a zero budget).
    fn fraction(&self) -> F {
        let budget = self.ledger.config.budget;
        if budget > F::ZERO {
            (self.ledger.spent / budget).max(F::ZERO).min(F::ONE)
        } else {
            F::ONE
        }
    }
}

impl<F: Real> CostPolicy<F> for ZclPolicy<F> {
    fn choose(&mut self, scores: &[ArmScore<F>], costs: &[F]) -> Result<Decision> {
        self.ledger.validate(scores, costs)?;
        let z = self.fraction();
        let psi = self.psi.at(z);
        // `v >= ψ·c` is `v/c >= ψ` without dividing by a zero cost.
        let pick = self
            .ledger
            .best(scores, costs, |v, c| (v >= psi * c).then_some(v));
        self.ledger.step += 1;
        Ok(match pick {
            Some(a) => Decision::Route(ArmId::new(a)),
            None => Decision::BudgetExhausted,
        })
    }

    fn charge(&mut self, arm: ArmId, cost: Cost<F>) -> Result<()> {
        self.ledger.charge(arm, cost)
    }

    fn state(&self) -> BudgetState<F> {
        self.ledger.state()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score(v: f64) -> ArmScore<f64> {
        ArmScore {
            estimate: v,
            width: 0.0,
            score: v,
        }
    }

    #[test]
    fn zcl_counts_z_over_the_whole_budget_and_declines_below_the_threshold() {
        // L = 1, U = 100: ψ(0) = 1/e, ψ(1/2) = √(100e) / e ≈ 6.07, ψ(1) = 100.
        let params = ThresholdParams::new(100.0, 1.0).unwrap();
        let config = OnlineConfig::new(2, 4.0);
        let mut zcl = ZclPolicy::new(config, params).unwrap();
        let scores = [score(1.0), score(0.5)];
        // Fresh budget: both qualify (ratios 0.5 and 5 ≥ 1/e); the more valuable arm 0 wins.
        let costs = [2.0, 0.1];
        assert_eq!(
            zcl.choose(&scores, &costs).unwrap(),
            Decision::Route(ArmId::new(0))
        );
        zcl.charge(ArmId::new(0), Cost::new(2.0).unwrap()).unwrap();
        // Half the whole budget spent: ψ ≈ 6.07, arm 0 (0.5) and arm 1 (5) are both below it.
        assert!(
            (zcl.threshold() - (100.0f64 * core::f64::consts::E).sqrt() / core::f64::consts::E)
                .abs()
                < 1e-9
        );
        assert_eq!(
            zcl.choose(&scores, &costs).unwrap(),
            Decision::BudgetExhausted
        );
        // A cheap enough arm qualifies again (ratio 50).
        assert_eq!(
            zcl.choose(&scores, &[5.0, 0.01]).unwrap(),
            Decision::Route(ArmId::new(1))
        );
    }

    #[test]
    fn the_adapted_policy_falls_back_where_zcl_declines() {
        let params = ThresholdParams::new(100.0, 1.0).unwrap();
        let config = OnlineConfig::new(2, 10.0);
        let mut adapted = ThresholdPolicy::new(config, params).unwrap();
        let mut zcl = ZclPolicy::new(config, params).unwrap();
        for p in [&mut adapted as &mut dyn CostPolicy<f64>, &mut zcl] {
            p.charge(ArmId::new(0), Cost::new(5.0).unwrap()).unwrap();
        }
        let scores = [score(1.0), score(0.5)];
        let costs = [5.0, 0.1];
        assert_eq!(
            adapted.choose(&scores, &costs).unwrap(),
            Decision::Route(ArmId::new(1))
        );
        assert_eq!(
            zcl.choose(&scores, &costs).unwrap(),
            Decision::BudgetExhausted
        );
    }

    #[test]
    fn zcl_refuses_a_spread_and_never_overspends_on_estimates() {
        let params = ThresholdParams::new(100.0, 1.0).unwrap();
        let spread = Spread::uniform(10, 2).unwrap();
        let err =
            ZclPolicy::new(OnlineConfig::new(2, 10.0).with_spread(spread), params).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidParameter);
        let mut zcl = ZclPolicy::new(
            OnlineConfig::new(2, 1.0),
            ThresholdParams::new(1e6, 1e-6).unwrap(),
        )
        .unwrap();
        for _ in 0..100 {
            if let Decision::Route(a) = zcl.choose(&[score(1.0), score(0.9)], &[0.3, 0.2]).unwrap()
            {
                let c = [0.3, 0.2][a.index()];
                zcl.charge(a, Cost::new(c).unwrap()).unwrap();
            }
        }
        assert!(zcl.state().spent <= 1.0, "{:?}", zcl.state());
    }
}
