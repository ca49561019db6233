//! The budget guard: one ledger of three integers (budget, spent, reserved) around any online
//! [`CostPolicy`], reserving a worst-case cost before each call and settling the real cost after.
//!
//! A call may hold `r` only if `spent + reserved + r ≤ budget`; settling moves `r` out of
//! `reserved` and the real cost into `spent`. So **if every real cost is at most its
//! reservation, `spent` never exceeds the budget**, however many calls are outstanding. A real
//! cost above its reservation is still charged (the money is gone), counted as an overrun, and
//! shrinks what later calls may hold. Amounts are integer units (`units_per_currency` of them
//! per currency unit, rounded up), so many holders adding to one counter never drift.

use pilot_core::{
    ArmId, ArmScore, Cost, CostPolicy, Decision, Detail, Error, ErrorKind, Real, Result,
};

/// The three numbers of a budget, in integer units.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct BudgetLedger {
    /// The whole budget.
    pub budget: u64,
    /// Settled real costs (and expired reservations, charged in full).
    pub spent: u64,
    /// Open worst-case holds of calls not yet settled.
    pub reserved: u64,
}

impl BudgetLedger {
    /// What a new hold may still take: `budget − spent − reserved`, never negative.
    pub fn available(&self) -> u64 {
        self.budget
            .saturating_sub(self.spent)
            .saturating_sub(self.reserved)
    }

    /// Holds `units` if they fit.
    ///
    /// # Errors
    /// [`OverBudget`](ErrorKind::OverBudget) when `spent + reserved + units > budget`; nothing
    /// changes then.
    pub fn reserve(&mut self, units: u64) -> Result<()> {
        if units > self.available() {
            return Err(Error::new(
                ErrorKind::OverBudget,
                "BudgetLedger::reserve: spent + reserved + hold exceeds the budget",
            )
            .with_detail(Detail::Mismatch {
                expected: usize::try_from(self.available()).unwrap_or(usize::MAX),
                found: usize::try_from(units).unwrap_or(usize::MAX),
            }));
        }
        self.reserved += units;
        Ok(())
    }

    /// Ends a hold of `held` units, charging `charged` units of real cost.
    ///
    /// # Errors
    /// [`OutOfRange`](ErrorKind::OutOfRange) when fewer than `held` units are reserved (a hold
    /// settled twice); nothing changes then.
    pub fn settle(&mut self, held: u64, charged: u64) -> Result<()> {
        let reserved = self.reserved.checked_sub(held).ok_or_else(|| {
            Error::out_of_range(
                "BudgetLedger::settle: hold larger than what is reserved",
                held as f64,
                0.0,
                self.reserved as f64,
            )
        })?;
        self.reserved = reserved;
        self.spent = self.spent.saturating_add(charged);
        Ok(())
    }

    /// Whether the spend is within the budget.
    pub fn held(&self) -> bool {
        self.spent <= self.budget
    }
}

/// Converts an amount in currency to units, rounding up, so a bound stays a bound.
///
/// # Errors
/// [`NonFinite`](ErrorKind::NonFinite), [`NegativeCost`](ErrorKind::NegativeCost), or
/// [`OutOfRange`](ErrorKind::OutOfRange) when the amount does not fit in `u64` units.
pub fn to_units(amount: f64, units_per_currency: f64, what: &'static str) -> Result<u64> {
    if !amount.is_finite() {
        return Err(Error::non_finite(what, amount));
    }
    if amount < 0.0 {
        return Err(Error::new(ErrorKind::NegativeCost, what).with_detail(Detail::Value(amount)));
    }
    let v = amount * units_per_currency;
    // 2^64 as f64; anything at or above it does not fit.
    if !(v < 18_446_744_073_709_551_616.0) {
        return Err(Error::out_of_range(
            what,
            amount,
            0.0,
            u64::MAX as f64 / units_per_currency,
        ));
    }
    let t = v as u64;
    Ok(if (t as f64) < v { t + 1 } else { t })
}

/// What the guard decided for one call.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Guarded {
    /// The arm to call, or `None` when nothing fits.
    pub arm: Option<ArmId>,
    /// What the wrapped cost policy proposed.
    pub proposed: Decision,
    /// Whether the guard replaced the proposal.
    pub overridden: bool,
    /// The units held for the call (0 when `arm` is `None`). The hold is **not** taken yet:
    /// [`Guard::hold`] takes it (the router does so once exploration has drawn the arm).
    pub hold: u64,
}

/// Why an arm cannot be called now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fit {
    /// Its worst case fits beside the amount kept aside for later calls.
    Ordinary,
    /// It fits only by using the amount kept aside (the last-resort fallback).
    Reserve,
    /// Its worst case does not fit in what is available.
    OverBudget,
    /// The caller excluded it (a disabled LLM).
    Excluded,
}

/// The budget guard around a cost policy `C`: the one budget object of the router and the
/// simulator.
///
/// Per call: the wrapped policy proposes an arm from estimated costs; the guard accepts it if
/// its **worst-case** cost fits in `available − keep_aside` (`keep_aside` is what the caller
/// keeps for calls still to come), else takes the best estimate that fits there, else the
/// cheapest worst case that fits in `available`, else nothing. The chosen worst case is then
/// held until [`settle`](Guard::settle) (real cost), [`release`](Guard::release) (the call
/// failed, nothing was spent) or [`expire`](Guard::expire) (never settled: charged in full).
#[derive(Clone, Debug)]
pub struct Guard<C, F: Real = f64> {
    inner: C,
    ledger: BudgetLedger,
    units_per_currency: f64,
    keep_aside: u64,
    overruns: u64,
    overrun_units: u64,
    _real: core::marker::PhantomData<F>,
}

impl<C: CostPolicy<F>, F: Real> Guard<C, F> {
    /// Wraps `inner` with a budget of `budget` currency, counted in units of
    /// `1 / units_per_currency` (1e9: nano-dollars for a USD budget).
    ///
    /// # Errors
    /// [`InvalidParameter`](ErrorKind::InvalidParameter) for a non-positive or non-finite
    /// `units_per_currency`; as [`to_units`] for the budget.
    pub fn new(inner: C, budget: f64, units_per_currency: f64) -> Result<Self> {
        if !(units_per_currency > 0.0) || !units_per_currency.is_finite() {
            return Err(Error::invalid_parameter(
                "Guard: units_per_currency (finite, > 0)",
                units_per_currency,
            ));
        }
        let budget = to_units(budget, units_per_currency, "Guard: budget")?;
        Ok(Self {
            inner,
            ledger: BudgetLedger {
                budget,
                ..BudgetLedger::default()
            },
            units_per_currency,
            keep_aside: 0,
            overruns: 0,
            overrun_units: 0,
            _real: core::marker::PhantomData,
        })
    }

    /// The wrapped cost policy.
    pub fn inner(&self) -> &C {
        &self.inner
    }

    /// The wrapped cost policy, mutably (its own settings; never its budget: use
    /// [`set_budget`](Self::set_budget)).
    pub fn inner_mut(&mut self) -> &mut C {
        &mut self.inner
    }

    /// The ledger.
    pub fn ledger(&self) -> BudgetLedger {
        self.ledger
    }

    /// Units per currency unit.
    pub fn units_per_currency(&self) -> f64 {
        self.units_per_currency
    }

    /// Converts units back to currency (for reports).
    pub fn to_currency(&self, units: u64) -> f64 {
        units as f64 / self.units_per_currency
    }

    /// Converts currency to units, rounding up.
    ///
    /// # Errors
    /// As [`to_units`].
    pub fn units(&self, amount: f64, what: &'static str) -> Result<u64> {
        to_units(amount, self.units_per_currency, what)
    }

    /// Settled calls whose real cost exceeded their hold, and the units above the holds.
    pub fn overruns(&self) -> (u64, u64) {
        (self.overruns, self.overrun_units)
    }

    /// Units kept aside for calls still to come.
    pub fn keep_aside(&self) -> u64 {
        self.keep_aside
    }

    /// Keeps `units` aside for calls still to come: ordinary choices leave them untouched, only
    /// the last-resort fallback (the cheapest arm) may use them.
    pub fn set_keep_aside(&mut self, units: u64) {
        self.keep_aside = units;
    }

    /// How arm `a` with worst case `worst_units` fits now.
    pub fn fit(&self, worst_units: u64) -> Fit {
        let available = self.ledger.available();
        if worst_units <= available.saturating_sub(self.keep_aside) {
            Fit::Ordinary
        } else if worst_units <= available {
            Fit::Reserve
        } else {
            Fit::OverBudget
        }
    }

    /// Chooses an arm: the wrapped policy proposes from `scores` and `estimates` (arms with
    /// `excluded[a]` are shown to it at a cost above the whole budget, so it never picks them),
    /// then the guard checks the proposal's worst case `worst[a]` (units) as described on
    /// [`Guard`]. Takes no hold: call [`hold`](Self::hold) with the arm finally called.
    ///
    /// # Errors
    /// [`DimensionMismatch`](ErrorKind::DimensionMismatch) for slices of different lengths;
    /// whatever the wrapped policy reports. State is unchanged on error.
    pub fn choose(
        &mut self,
        scores: &[ArmScore<F>],
        estimates: &mut [F],
        worst: &[u64],
        excluded: &[bool],
    ) -> Result<Guarded> {
        let k = scores.len();
        pilot_core::check_len("Guard::choose: estimates (one per arm)", estimates, k)?;
        pilot_core::check_len("Guard::choose: worst (one per arm)", worst, k)?;
        pilot_core::check_len("Guard::choose: excluded (one per arm)", excluded, k)?;
        let above_all = F::from_f64(self.to_currency(self.ledger.budget) * 2.0 + 1.0);
        for (e, &x) in estimates.iter_mut().zip(excluded) {
            if x {
                *e = above_all;
            }
        }
        let proposed = self.inner.choose(scores, estimates)?;
        Ok(self.check(proposed, scores, worst, excluded))
    }

    /// The guard's rule, on a proposal already made (also used when replaying a log).
    pub fn check(
        &self,
        proposed: Decision,
        scores: &[ArmScore<F>],
        worst: &[u64],
        excluded: &[bool],
    ) -> Guarded {
        let available = self.ledger.available();
        let ordinary = available.saturating_sub(self.keep_aside);
        let usable = |a: usize| !excluded.get(a).copied().unwrap_or(true);
        // Fits beside what is kept aside (`limit = ordinary`) or at all (`limit = available`).
        let fits = |a: usize, limit: u64| usable(a) && worst.get(a).is_some_and(|&w| w <= limit);
        let done = |arm: Option<usize>, overridden: bool| Guarded {
            arm: arm.map(ArmId::new),
            proposed,
            overridden,
            hold: arm.and_then(|a| worst.get(a).copied()).unwrap_or(0),
        };
        if let Decision::Route(a) = proposed {
            if fits(a.index(), ordinary) {
                return done(Some(a.index()), false);
            }
            let best = (0..worst.len())
                .filter(|&b| fits(b, ordinary))
                .max_by(|&x, &y| {
                    let (sx, sy) = (scores[x].estimate, scores[y].estimate);
                    sx.partial_cmp(&sy)
                        .unwrap_or(core::cmp::Ordering::Equal)
                        .then(y.cmp(&x))
                });
            if best.is_some() {
                return done(best, true);
            }
        }
        let cheapest = (0..worst.len())
            .filter(|&b| fits(b, available))
            .min_by(|&x, &y| worst[x].cmp(&worst[y]).then(x.cmp(&y)));
        let overridden = cheapest != decision_arm(proposed);
        done(cheapest, overridden)
    }

    /// Takes a hold of `units` for a call about to be made.
    ///
    /// # Errors
    /// [`OverBudget`](ErrorKind::OverBudget) when it does not fit; nothing changes then.
    pub fn hold(&mut self, units: u64) -> Result<()> {
        self.ledger.reserve(units)
    }

    /// Takes a hold without checking that it fits: replaying a log in which it was taken.
    pub fn hold_unchecked(&mut self, units: u64) {
        self.ledger.reserved = self.ledger.reserved.saturating_add(units);
    }

    /// The call to `arm` holding `held` units finished and cost `real` (currency): the hold
    /// becomes the real cost, which the wrapped policy is charged too. Returns whether the real
    /// cost overran its hold.
    ///
    /// # Errors
    /// As [`to_units`] for a bad cost, [`OutOfRange`](ErrorKind::OutOfRange) for a hold that is
    /// not open, or the wrapped policy's error; nothing changes then.
    pub fn settle(&mut self, arm: ArmId, held: u64, real: F) -> Result<bool> {
        let charged = self.units(real.to_f64(), "Guard::settle: real cost")?;
        let cost = Cost::new(real)?;
        let mut ledger = self.ledger;
        ledger.settle(held, charged)?;
        self.inner.charge(arm, cost)?;
        self.ledger = ledger;
        let overrun = charged > held;
        if overrun {
            self.overruns += 1;
            self.overrun_units = self.overrun_units.saturating_add(charged - held);
        }
        Ok(overrun)
    }

    /// The call failed before any cost was incurred (refused connection, 429): the hold is
    /// returned.
    ///
    /// # Errors
    /// [`OutOfRange`](ErrorKind::OutOfRange) for a hold that is not open.
    pub fn release(&mut self, held: u64) -> Result<()> {
        self.ledger.settle(held, 0)
    }

    /// The call was never settled in time: it is charged its whole hold (the conservative
    /// assumption), and so is the wrapped policy.
    ///
    /// # Errors
    /// As [`settle`](Self::settle).
    pub fn expire(&mut self, arm: ArmId, held: u64) -> Result<()> {
        let cost = Cost::new(F::from_f64(self.to_currency(held)))?;
        let mut ledger = self.ledger;
        ledger.settle(held, held)?;
        self.inner.charge(arm, cost)?;
        self.ledger = ledger;
        Ok(())
    }

    /// Changes the budget to `budget` (currency) without forgetting what is spent or held.
    ///
    /// # Errors
    /// [`OverBudget`](ErrorKind::OverBudget) for a budget below `spent + reserved` (nothing
    /// changes: cut to at least that, or start a new period); as [`to_units`]; the wrapped
    /// policy's error.
    pub fn set_budget(&mut self, budget: f64) -> Result<()> {
        let units = self.check_budget(budget)?;
        self.inner.set_budget(F::from_f64(budget))?;
        self.ledger.budget = units;
        Ok(())
    }

    /// Starts a new period with `budget` (currency): `spent` restarts at zero; holds still open
    /// stay reserved against the new period.
    ///
    /// # Errors
    /// As [`set_budget`](Self::set_budget).
    pub fn new_period(&mut self, budget: f64) -> Result<()> {
        let units = self.check_period(budget)?;
        self.inner.new_period(F::from_f64(budget))?;
        self.ledger.budget = units;
        self.ledger.spent = 0;
        Ok(())
    }

    /// Checks a budget change without making it: the new budget in units.
    ///
    /// # Errors
    /// As [`set_budget`](Self::set_budget), except the wrapped policy's.
    pub fn check_budget(&self, budget: f64) -> Result<u64> {
        let units = self.units(budget, "Guard::set_budget: budget")?;
        let floor = self.ledger.spent.saturating_add(self.ledger.reserved);
        if units < floor {
            return Err(Error::new(
                ErrorKind::OverBudget,
                "Guard::set_budget: new budget below what is already spent and reserved",
            )
            .with_detail(Detail::Range {
                value: budget,
                min: self.to_currency(floor),
                max: f64::INFINITY,
            }));
        }
        Ok(units)
    }

    /// Checks a new period without starting it: its budget in units.
    ///
    /// # Errors
    /// As [`new_period`](Self::new_period), except the wrapped policy's.
    pub fn check_period(&self, budget: f64) -> Result<u64> {
        let units = self.units(budget, "Guard::new_period: budget")?;
        if units < self.ledger.reserved {
            return Err(Error::new(
                ErrorKind::OverBudget,
                "Guard::new_period: new budget below what open calls still hold",
            )
            .with_detail(Detail::Range {
                value: budget,
                min: self.to_currency(self.ledger.reserved),
                max: f64::INFINITY,
            }));
        }
        Ok(units)
    }

    /// Grows (or shrinks) the wrapped policy's pool.
    ///
    /// # Errors
    /// The wrapped policy's error.
    pub fn set_arm_count(&mut self, arms: usize) -> Result<()> {
        self.inner.set_arm_count(arms)
    }

    /// The guard's own state words (ledger, keep-aside, overruns), for snapshots.
    pub fn words(&self) -> [u64; 6] {
        [
            self.ledger.budget,
            self.ledger.spent,
            self.ledger.reserved,
            self.keep_aside,
            self.overruns,
            self.overrun_units,
        ]
    }

    /// Restores [`words`](Self::words).
    pub fn restore_words(&mut self, words: [u64; 6]) {
        let [budget, spent, reserved, keep_aside, overruns, overrun_units] = words;
        self.ledger = BudgetLedger {
            budget,
            spent,
            reserved,
        };
        self.keep_aside = keep_aside;
        self.overruns = overruns;
        self.overrun_units = overrun_units;
    }
}

fn decision_arm(decision: Decision) -> Option<usize> {
    match decision {
        Decision::Route(a) => Some(a.index()),
        Decision::BudgetExhausted => None,
    }
}
