//! A pacing policy: a dual price on cost, raised when spending runs ahead of the target rate.
//!
//! Each query takes `argmax_a value_a − μ·cost_a` among the arms that fit; after each charge
//! the price moves multiplicatively with the spend error, `μ ← μ·exp(η·(c/ρ − 1))`, with `ρ`
//! the target spend per query (dual mirror descent, as in Balseiro, Lu & Mirrokni 2020),
//! clamped to `[min_price, max_price]`.

use pilot_core::{
    ArmId, ArmScore, BudgetState, Cost, CostPolicy, Decision, Error, ErrorKind, Real, Result,
};

use super::config::OnlineConfig;
use super::ledger::Ledger;

/// Parameters of the [`PacingPolicy`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PacingParams<F: Real = f32> {
    /// The starting price μ₀ (value per unit cost).
    pub initial_price: F,
    /// Step size η of the multiplicative update.
    pub step: F,
    /// Lower clamp of the price (> 0 so the multiplicative update can recover).
    pub min_price: F,
    /// Upper clamp of the price.
    pub max_price: F,
    /// Target spend per query ρ; `None` takes it from the config's spread.
    pub target: Option<F>,
}

impl<F: Real> PacingParams<F> {
    /// Starting price `initial_price`, step 0.05, clamps `[initial/1000, initial·1000]`, target
    /// from the spread.
    pub fn new(initial_price: F) -> Self {
        let k = F::from_f64(1000.0);
        Self {
            initial_price,
            step: F::from_f64(0.05),
            min_price: initial_price / k,
            max_price: initial_price * k,
            target: None,
        }
    }

    /// Sets the target spend per query.
    pub fn with_target(mut self, per_query: F) -> Self {
        self.target = Some(per_query);
        self
    }

    /// Sets the step size.
    pub fn with_step(mut self, step: F) -> Self {
        self.step = step;
        self
    }
}

/// The pacing policy. [`CostPolicy::charge`] adds the real cost and updates the price.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PacingPolicy<F: Real = f32> {
    ledger: Ledger<F>,
    params: PacingParams<F>,
    target: F,
    price: F,
}

impl<F: Real> PacingPolicy<F> {
    /// A policy with a fresh budget.
    ///
    /// # Errors
    /// As [`OnlineConfig::check`]; [`InvalidParameter`](ErrorKind::InvalidParameter) for a
    /// non-positive or non-finite price, clamp, step or target, or no target when the spread
    /// gives none.
    pub fn new(config: OnlineConfig<F>, params: PacingParams<F>) -> Result<Self> {
        let ledger = Ledger::new(config)?;
        for (context, v) in [
            ("PacingParams: initial_price (> 0)", params.initial_price),
            ("PacingParams: min_price (> 0)", params.min_price),
            ("PacingParams: step (> 0)", params.step),
        ] {
            if !(v > F::ZERO) || !v.is_finite() {
                return Err(Error::invalid_parameter(context, v.to_f64()));
            }
        }
        if !(params.max_price >= params.min_price) || !params.max_price.is_finite() {
            return Err(Error::invalid_parameter(
                "PacingParams: max_price (>= min_price)",
                params.max_price.to_f64(),
            ));
        }
        let target = params
            .target
            .or_else(|| config.spread.per_query(config.budget))
            .ok_or(Error::new(
                ErrorKind::InvalidParameter,
                "PacingParams: target (needed when the spread gives no per-query rate)",
            ))?;
        if !(target > F::ZERO) || !target.is_finite() {
            return Err(Error::invalid_parameter(
                "PacingParams: target (> 0)",
                target.to_f64(),
            ));
        }
        let price = params
            .initial_price
            .max(params.min_price)
            .min(params.max_price);
        Ok(Self {
            ledger,
            params,
            target,
            price,
        })
    }

    /// The current price μ.
    pub fn price(&self) -> F {
        self.price
    }

    /// The configuration.
    pub fn config(&self) -> &OnlineConfig<F> {
        &self.ledger.config
    }

    /// Changes the reserve.
    ///
    /// # Errors
    /// [`InvalidParameter`](ErrorKind::InvalidParameter) for a reserve outside `[0, budget]`.
    pub fn set_reserve(&mut self, reserve: F) -> Result<()> {
        self.ledger.set_reserve(reserve)
    }
}

impl<F: Real> CostPolicy<F> for PacingPolicy<F> {
    fn choose(&mut self, scores: &[ArmScore<F>], costs: &[F]) -> Result<Decision> {
        self.ledger.validate(scores, costs)?;
        let price = self.price;
        Ok(self.ledger.route(scores, costs, |v, c| Some(v - price * c)))
    }

    fn charge(&mut self, arm: ArmId, cost: Cost<F>) -> Result<()> {
        self.ledger.charge(arm, cost)?;
        let error = cost.get() / self.target - F::ONE;
        // The exponent is clamped so one huge real cost cannot overflow the price.
        let exponent = (self.params.step * error).min(F::from_f64(20.0));
        self.price = (self.price * exponent.exp())
            .max(self.params.min_price)
            .min(self.params.max_price);
        Ok(())
    }

    fn state(&self) -> BudgetState<F> {
        self.ledger.state()
    }

    /// Changes the budget and re-targets the pacing: the per-query spend target is scaled by
    /// how much what is left changed (a budget cut to half of what is left halves it), so the
    /// price re-settles at the new rate instead of chasing the old one. Without anything left
    /// before or after, the target is kept.
    fn set_budget(&mut self, budget: F) -> Result<()> {
        let old_left = self.ledger.config.budget - self.ledger.spent;
        self.ledger.set_budget(budget)?;
        let new_left = budget - self.ledger.spent;
        if old_left > F::ZERO && new_left > F::ZERO {
            let target = self.target * (new_left / old_left);
            if target > F::ZERO && target.is_finite() {
                self.target = target;
            }
        }
        Ok(())
    }

    fn new_period(&mut self, budget: F) -> Result<()> {
        self.ledger.new_period(budget)
    }

    fn set_arm_count(&mut self, arms: usize) -> Result<()> {
        self.ledger.set_arm_count(arms)
    }
}

impl<F: Real> pilot_core::Snapshot for PacingPolicy<F> {
    fn snapshot_len(&self) -> usize {
        super::snapshot::len(2)
    }

    fn save(&self, out: &mut [u8]) -> Result<usize> {
        let extra = [
            self.price.to_f64().to_bits(),
            self.target.to_f64().to_bits(),
        ];
        super::snapshot::save(
            out,
            *b"PPAC",
            self.ledger.config.arms,
            self.ledger.dynamic(),
            &extra,
        )
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<()> {
        let (ledger, [price, target]) =
            super::snapshot::open::<2>(bytes, *b"PPAC", self.ledger.config.arms)?;
        let price = F::from_f64(f64::from_bits(price));
        if !(price > F::ZERO) || !price.is_finite() {
            return Err(Error::new(ErrorKind::Corrupt, "pacing snapshot: price"));
        }
        let target = F::from_f64(f64::from_bits(target));
        if !(target > F::ZERO) || !target.is_finite() {
            return Err(Error::new(ErrorKind::Corrupt, "pacing snapshot: target"));
        }
        let mut next = *self;
        next.ledger.restore_dynamic(ledger)?;
        next.price = price;
        next.target = target;
        *self = next;
        Ok(())
    }
}
