//! The online cost-policy trait: spend a budget across queries that arrive one at a time.

use crate::{ArmId, ArmScore, Cost, Real, Result};

/// What an online cost policy decided for one query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Decision {
    /// Call this arm.
    Route(ArmId),
    /// No arm fits in what is left of the budget: the query cannot be served.
    BudgetExhausted,
}

/// How much of a budget is spent.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct BudgetState<F = f32> {
    /// The whole budget.
    pub budget: F,
    /// What has been charged so far.
    pub spent: F,
}

impl<F: Real> BudgetState<F> {
    /// Budget not yet spent (never negative).
    pub fn remaining(&self) -> F {
        (self.budget - self.spent).max(F::ZERO)
    }

    /// Fraction of the budget spent, in `[0, 1]` (1 for a zero budget).
    pub fn fraction_spent(&self) -> F {
        if self.budget > F::ZERO {
            (self.spent / self.budget).min(F::ONE)
        } else {
            F::ONE
        }
    }
}

/// An online budget policy: given the routing policy's per-arm scores and each arm's estimated
/// cost for this query, choose an arm (or none), then learn the real cost that was charged.
///
/// Implementations never choose an arm whose estimated cost exceeds what is left of the budget.
pub trait CostPolicy<F: Real = f32> {
    /// Chooses an arm for one query.
    ///
    /// `scores[a]` is the routing policy's view of arm `a` (estimate, width, score);
    /// `costs[a]` its estimated cost for this query.
    ///
    /// # Errors
    /// [`DimensionMismatch`](crate::ErrorKind::DimensionMismatch) when the slices differ in
    /// length, [`Empty`](crate::ErrorKind::Empty) for no arms,
    /// [`NonFinite`](crate::ErrorKind::NonFinite) or
    /// [`NegativeCost`](crate::ErrorKind::NegativeCost) for bad costs.
    fn choose(&mut self, scores: &[ArmScore<F>], costs: &[F]) -> Result<Decision>;

    /// Records the real cost of the call just made to `arm`.
    ///
    /// # Errors
    /// [`UnknownArm`](crate::ErrorKind::UnknownArm) for an arm outside the pool.
    fn charge(&mut self, arm: ArmId, cost: Cost<F>) -> Result<()>;

    /// The budget and what is spent of it.
    fn state(&self) -> BudgetState<F>;

    /// Changes the whole budget while running (the user raised it, cut it, or a new period
    /// began); what was learned and spent is kept.
    ///
    /// # Errors
    /// [`Unsupported`](crate::ErrorKind::Unsupported) by default;
    /// [`NegativeBudget`](crate::ErrorKind::NegativeBudget) /
    /// [`NonFinite`](crate::ErrorKind::NonFinite) for a bad value. Nothing changes on error.
    fn set_budget(&mut self, budget: F) -> Result<()> {
        let _ = budget;
        Err(crate::Error::new(
            crate::ErrorKind::Unsupported,
            "CostPolicy::set_budget: this cost policy cannot change its budget",
        ))
    }

    /// Starts a new budget period: `spent` returns to zero and the budget becomes `budget`.
    ///
    /// # Errors
    /// As [`set_budget`](CostPolicy::set_budget).
    fn new_period(&mut self, budget: F) -> Result<()> {
        let _ = budget;
        Err(crate::Error::new(
            crate::ErrorKind::Unsupported,
            "CostPolicy::new_period: this cost policy cannot start a new period",
        ))
    }

    /// Changes the number of arms (an LLM joined the pool while running); what was spent is
    /// kept.
    ///
    /// # Errors
    /// [`Unsupported`](crate::ErrorKind::Unsupported) by default, [`Empty`](crate::ErrorKind::Empty)
    /// for zero arms. Nothing changes on error.
    fn set_arm_count(&mut self, arms: usize) -> Result<()> {
        let _ = arms;
        Err(crate::Error::new(
            crate::ErrorKind::Unsupported,
            "CostPolicy::set_arm_count: this cost policy cannot change its pool",
        ))
    }
}

impl<F: Real, P: CostPolicy<F> + ?Sized> CostPolicy<F> for &mut P {
    fn choose(&mut self, scores: &[ArmScore<F>], costs: &[F]) -> Result<Decision> {
        (**self).choose(scores, costs)
    }
    fn charge(&mut self, arm: ArmId, cost: Cost<F>) -> Result<()> {
        (**self).charge(arm, cost)
    }
    fn state(&self) -> BudgetState<F> {
        (**self).state()
    }
    fn set_budget(&mut self, budget: F) -> Result<()> {
        (**self).set_budget(budget)
    }
    fn new_period(&mut self, budget: F) -> Result<()> {
        (**self).new_period(budget)
    }
    fn set_arm_count(&mut self, arms: usize) -> Result<()> {
        (**self).set_arm_count(arms)
    }
}

#[cfg(feature = "alloc")]
impl<F: Real, P: CostPolicy<F> + ?Sized> CostPolicy<F> for alloc::boxed::Box<P> {
    fn choose(&mut self, scores: &[ArmScore<F>], costs: &[F]) -> Result<Decision> {
        (**self).choose(scores, costs)
    }
    fn charge(&mut self, arm: ArmId, cost: Cost<F>) -> Result<()> {
        (**self).charge(arm, cost)
    }
    fn state(&self) -> BudgetState<F> {
        (**self).state()
    }
    fn set_budget(&mut self, budget: F) -> Result<()> {
        (**self).set_budget(budget)
    }
    fn new_period(&mut self, budget: F) -> Result<()> {
        (**self).new_period(budget)
    }
    fn set_arm_count(&mut self, arms: usize) -> Result<()> {
        (**self).set_arm_count(arms)
    }
}
