//! The bookkeeping every online policy shares: input checks, limits, the fallback, charging.
//!
//! Fit tests are written `spent + cost <= limit` — the same float sum `charge` performs — so
//! charging a chosen arm at its estimated cost can never push `spent` past the budget.

use pilot_core::{
    ArmId, ArmScore, BudgetState, Cost, Decision, Detail, Error, ErrorKind, Real, Result,
};

use super::config::OnlineConfig;

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Ledger<F: Real> {
    pub(crate) config: OnlineConfig<F>,
    pub(crate) spent: F,
    /// Queries seen so far (choose calls that passed validation).
    pub(crate) step: u64,
}

impl<F: Real> Ledger<F> {
    pub(crate) fn new(config: OnlineConfig<F>) -> Result<Self> {
        Ok(Self {
            config: config.check()?,
            spent: F::ZERO,
            step: 0,
        })
    }

    /// Checks one query's inputs (state is untouched on error).
    #[inline]
    pub(crate) fn validate(&self, scores: &[ArmScore<F>], costs: &[F]) -> Result<()> {
        if scores.is_empty() {
            return Err(Error::new(ErrorKind::Empty, "CostPolicy::choose: scores"));
        }
        pilot_core::check_len(
            "CostPolicy::choose: scores (one per arm)",
            scores,
            self.config.arms,
        )?;
        pilot_core::check_len(
            "CostPolicy::choose: costs (one per arm)",
            costs,
            self.config.arms,
        )?;
        for (a, (s, &c)) in scores.iter().zip(costs).enumerate() {
            if !c.is_finite() {
                return Err(Error::non_finite("CostPolicy::choose: cost", c.to_f64()));
            }
            if c < F::ZERO {
                return Err(
                    Error::new(ErrorKind::NegativeCost, "CostPolicy::choose: cost").with_detail(
                        Detail::Index {
                            index: a,
                            len: costs.len(),
                        },
                    ),
                );
            }
            let v = self.config.value.of(s);
            if !v.is_finite() {
                return Err(Error::non_finite(
                    "CostPolicy::choose: arm value",
                    v.to_f64(),
                ));
            }
        }
        Ok(())
    }

    /// Cumulative spend allowed for ordinary choices at this step (spread, minus the reserve).
    #[inline]
    pub(crate) fn ordinary_limit(&self) -> F {
        let c = &self.config;
        c.spread.allowance(c.budget, self.step).min(c.budget) - c.reserve
    }

    #[inline]
    pub(crate) fn under_cap(&self, cost: F) -> bool {
        self.config.max_cost.is_none_or(|cap| cost <= cap)
    }

    /// The cheapest arm under the cap that fits in the whole budget (reserve included);
    /// ties go to the higher value, then the lower index.
    pub(crate) fn cheapest(&self, scores: &[ArmScore<F>], costs: &[F]) -> Option<usize> {
        let mut best: Option<(usize, F, F)> = None;
        for (a, (s, &c)) in scores.iter().zip(costs).enumerate() {
            if !self.under_cap(c) || !(self.spent + c <= self.config.budget) {
                continue;
            }
            let v = self.config.value.of(s);
            match best {
                Some((_, bc, bv)) if c > bc || (c == bc && v <= bv) => {}
                _ => best = Some((a, c, v)),
            }
        }
        best.map(|(a, _, _)| a)
    }

    /// Routes one query: among the arms that fit under the ordinary limit and the cap, the one
    /// with the highest `rank(value, cost)` (`None` = not eligible; ties to the lowest index),
    /// else the cheapest arm that fits at all, else [`Decision::BudgetExhausted`]. Counts the
    /// step. The policies differ only in `rank`.
    pub(crate) fn route(
        &mut self,
        scores: &[ArmScore<F>],
        costs: &[F],
        rank: impl Fn(F, F) -> Option<F>,
    ) -> Decision {
        let pick = self
            .best(scores, costs, rank)
            .or_else(|| self.cheapest(scores, costs));
        self.step += 1;
        match pick {
            Some(a) => Decision::Route(ArmId::new(a)),
            None => Decision::BudgetExhausted,
        }
    }

    /// Among the arms that fit under the ordinary limit and the cap, the one with the highest
    /// `rank(value, cost)` (`None` = not eligible; ties to the lowest index). No fallback and
    /// no step counted: [`route`](Self::route) adds both.
    pub(crate) fn best(
        &self,
        scores: &[ArmScore<F>],
        costs: &[F],
        rank: impl Fn(F, F) -> Option<F>,
    ) -> Option<usize> {
        let limit = self.ordinary_limit();
        let mut best: Option<(usize, F)> = None;
        for (a, (s, &c)) in scores.iter().zip(costs).enumerate() {
            if !(self.spent + c <= limit && self.under_cap(c)) {
                continue;
            }
            if let Some(r) = rank(self.config.value.of(s), c) {
                match best {
                    Some((_, br)) if r <= br => {}
                    _ => best = Some((a, r)),
                }
            }
        }
        best.map(|(a, _)| a)
    }

    /// Records the real cost of a call: `spent` grows by it, even past the budget when the real
    /// cost exceeds the estimate (then nothing fits any more until the budget is raised).
    pub(crate) fn charge(&mut self, arm: ArmId, cost: Cost<F>) -> Result<()> {
        if arm.index() >= self.config.arms {
            return Err(Error::unknown_arm(
                "CostPolicy::charge: arm",
                arm.index(),
                self.config.arms,
            ));
        }
        self.spent += cost.get();
        Ok(())
    }

    pub(crate) fn state(&self) -> BudgetState<F> {
        BudgetState {
            budget: self.config.budget,
            spent: self.spent,
        }
    }

    pub(crate) fn set_reserve(&mut self, reserve: F) -> Result<()> {
        let config = self.config.with_reserve(reserve).check()?;
        self.config = config;
        Ok(())
    }

    /// Changes the whole budget; `spent` is kept. A reserve above the new budget shrinks to it.
    pub(crate) fn set_budget(&mut self, budget: F) -> Result<()> {
        let reserve = self.config.reserve.min(budget.max(F::ZERO));
        let config = OnlineConfig {
            budget,
            reserve,
            ..self.config
        }
        .check()?;
        self.config = config;
        Ok(())
    }

    /// A new period: the budget becomes `budget` and nothing of it is spent yet.
    pub(crate) fn new_period(&mut self, budget: F) -> Result<()> {
        self.set_budget(budget)?;
        self.spent = F::ZERO;
        self.step = 0;
        Ok(())
    }

    /// Changes the pool size.
    pub(crate) fn set_arm_count(&mut self, arms: usize) -> Result<()> {
        let config = OnlineConfig {
            arms,
            ..self.config
        }
        .check()?;
        self.config = config;
        Ok(())
    }

    /// The dynamic part of the state, for snapshots: budget, reserve, spent, step.
    pub(crate) fn dynamic(&self) -> [u64; 4] {
        [
            self.config.budget.to_f64().to_bits(),
            self.config.reserve.to_f64().to_bits(),
            self.spent.to_f64().to_bits(),
            self.step,
        ]
    }

    /// Restores [`dynamic`](Self::dynamic) (checked first; unchanged on error).
    pub(crate) fn restore_dynamic(&mut self, words: [u64; 4]) -> Result<()> {
        let [budget, reserve, spent, step] = words;
        let config = OnlineConfig {
            budget: F::from_f64(f64::from_bits(budget)),
            reserve: F::from_f64(f64::from_bits(reserve)),
            ..self.config
        }
        .check()
        .map_err(|e| Error::new(ErrorKind::Corrupt, e.context()))?;
        let spent = F::from_f64(f64::from_bits(spent));
        if !spent.is_finite() {
            return Err(Error::new(
                ErrorKind::Corrupt,
                "cost policy snapshot: spent",
            ));
        }
        self.config = config;
        self.spent = spent;
        self.step = step;
        Ok(())
    }
}
