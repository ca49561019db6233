//! The exact solver: an expanding-core dynamic program over (weight, profit) states, after
//! Pisinger's `mcknap` ("A minimal algorithm for the multiple-choice knapsack problem", 1995).
//!
//! Start from the LP's integer part: every class at its "base" item, total weight ≤ C. The
//! core is a set of classes whose choice is enumerated; every other class stays at its base.
//! Classes join the core in the order their hull increments are met walking outwards from the
//! LP's break increment in the efficiency-sorted list, so that after each step
//! - every class outside the core gains at most `e_out` profit per unit of weight added (the
//!   next increment up the walk) and loses at least `e_in` per unit removed (the next one
//!   down), by concavity of its hull; hence a state of weight `W` and profit `P` can reach at
//!   most `P + e_out (C − W)` if `W ≤ C`, and `P − e_in (W − C)` otherwise;
//! - with λ the LP dual price, `P + λ (C − W) = U₀ − Σ losses` also bounds it, and items whose
//!   reduced-profit loss `(p_b − λ w_b) − (p_j − λ w_j)` exceeds the gap to the incumbent are
//!   never tried.
//!
//! Each class added expands the state list (weight ascending, profit strictly ascending: a
//! Pareto front, so dominated states go), drops states whose bound cannot beat the incumbent,
//! and every feasible state updates the incumbent. The search ends when the list is empty (no
//! state can improve) or every class with a choice has joined. Dominated items are dropped up
//! front (never needed for an optimum); LP-dominated ones are kept, since an integer optimum
//! may use them.

use pilot_core::{Detail, Error, ErrorKind, MckpInstance, MckpSolution, MckpSolver, Result};

use super::greedy::{greedy_walk, write_picks};
use super::relax::{Relaxation, check_choice, relax};
use super::scratch::{
    ClassSlot, CoreScratch, Increment, ItemSlot, NO_ITEM, NO_RECORD, Record, Scratch, State,
};

/// The exact multiple-choice knapsack solver (expanding core with bounds).
///
/// Exact up to floating-point rounding of the profits: a state is dropped only when its bound
/// is within `1e-9 ×` the instance's profit scale of the incumbent or below; with whole-number
/// profits (sum below 10¹⁵), when it is below the incumbent + 1, which keeps the result exact.
/// Reports the LP bound.
#[derive(Debug)]
pub struct CoreSolver<'s> {
    scratch: Scratch<'s>,
    core: CoreScratch<'s>,
}

impl<'s> CoreSolver<'s> {
    /// A solver working in `scratch` and `core`.
    pub fn new(scratch: Scratch<'s>, core: CoreScratch<'s>) -> Self {
        Self { scratch, core }
    }
}

/// The best solution found so far by the state expansion.
struct Incumbent {
    value: f64,
    /// Set when a core state beat the greedy solution: its record chain, pending choice slot
    /// and the class of that choice.
    chain: Option<(u32, u32, u32)>,
}

impl MckpSolver for CoreSolver<'_> {
    fn solve(&mut self, instance: &MckpInstance<'_>, choice: &mut [usize]) -> Result<MckpSolution> {
        check_choice(instance, choice)?;
        if instance.item_count() >= NO_ITEM as usize {
            return Err(Error::new(
                ErrorKind::InvalidParameter,
                "CoreSolver: more than 2^32 - 1 items",
            ));
        }
        let scratch = &mut self.scratch;
        let relaxation = relax(instance, scratch)?;
        let capacity = instance.capacity();
        let m = instance.class_count();
        greedy_walk(&relaxation, capacity, scratch);
        let greedy_value: f64 = scratch.classes[..m]
            .iter()
            .map(|c| scratch.items[c.pick].profit)
            .sum();
        let mut best = Incumbent {
            value: greedy_value,
            chain: None,
        };
        if relaxation.bound - greedy_value >= relaxation.margin() {
            best = expand(scratch, &mut self.core, m, capacity, &relaxation, best)?;
        }
        match best.chain {
            None => write_picks(scratch, m, choice),
            Some((record, pending, class)) => {
                for slot in &scratch.classes[..m] {
                    choice[slot.class] = scratch.items[slot.base].item;
                }
                if pending != NO_ITEM {
                    choice[class as usize] = scratch.items[pending as usize].item;
                }
                let mut r = record;
                while r != NO_RECORD {
                    let rec = self.core.records[r as usize];
                    choice[rec.class as usize] = scratch.items[rec.slot as usize].item;
                    r = rec.parent;
                }
            }
        }
        let (value, weight) = instance.evaluate(choice)?;
        Ok(MckpSolution {
            value,
            weight,
            bound: Some(relaxation.bound),
        })
    }
}

fn too_small(context: &'static str, found: usize) -> Error {
    Error::new(ErrorKind::BufferTooSmall, context).with_detail(Detail::Mismatch {
        expected: found.saturating_add(1),
        found,
    })
}

/// The walk over the efficiency-sorted increments that picks the next core class and gives
/// the efficiencies bounding every class outside the core.
struct Walk {
    /// Next increment up (index ≥ break) of a class outside the core.
    up: usize,
    /// One past the next increment down (index < break) of a class outside the core.
    down: usize,
}

impl Walk {
    fn skip_core(&mut self, incs: &[Increment], classes: &[ClassSlot]) {
        while self.up < incs.len() && classes[incs[self.up].class].in_core {
            self.up += 1;
        }
        while self.down > 0 && classes[incs[self.down - 1].class].in_core {
            self.down -= 1;
        }
    }

    /// `(e_out, e_in)`: at most `e_out` gained per unit of weight added outside the core, at
    /// least `e_in` lost per unit removed.
    fn efficiencies(&self, incs: &[Increment]) -> (f64, f64) {
        let e_out = incs.get(self.up).map_or(0.0, |i| i.eff);
        let e_in = match self.down {
            0 => f64::INFINITY,
            d => incs[d - 1].eff,
        };
        (e_out, e_in)
    }

    /// The class whose next increment is closest in efficiency to λ.
    fn next_class(&self, incs: &[Increment], lambda: f64) -> Option<usize> {
        let up = incs.get(self.up);
        let down = self.down.checked_sub(1).map(|d| &incs[d]);
        match (up, down) {
            (Some(u), Some(d)) => Some(if (u.eff - lambda).abs() <= (d.eff - lambda).abs() {
                u.class
            } else {
                d.class
            }),
            (Some(u), None) => Some(u.class),
            (None, Some(d)) => Some(d.class),
            (None, None) => None,
        }
    }
}

/// Runs the core expansion; returns the improved incumbent (or the one it was given).
fn expand(
    scratch: &mut Scratch<'_>,
    lists: &mut CoreScratch<'_>,
    m: usize,
    capacity: u64,
    relaxation: &Relaxation,
    mut best: Incumbent,
) -> Result<Incumbent> {
    let state_cap = lists.current.len().min(lists.next.len());
    let record_cap = lists.records.len().min(NO_RECORD as usize);
    if state_cap == 0 {
        return Err(too_small("CoreSolver scratch: state lists", 0));
    }
    let Scratch {
        items,
        increments,
        classes,
    } = scratch;
    let incs = &increments[..relaxation.increments];
    let classes = &mut classes[..m];
    let (lambda, tol) = (relaxation.lambda, relaxation.tolerance());
    let margin = relaxation.margin();
    let cap_f = capacity as f64;
    let lagrangian = |w: u64, p: f64| p + lambda * (cap_f - w as f64);

    for slot in classes.iter_mut() {
        slot.in_core = false;
    }
    let mut walk = Walk {
        up: relaxation.break_at,
        down: relaxation.break_at,
    };
    lists.current[0] = State {
        weight: relaxation.integer_weight,
        profit: relaxation.integer_value,
        record: NO_RECORD,
        pending: NO_ITEM,
    };
    let mut len = 1usize;
    let mut records = 0usize;
    let mut max_lagrangian = lagrangian(relaxation.integer_weight, relaxation.integer_value);

    while let Some(class) = walk.next_class(incs, lambda) {
        let gap = max_lagrangian - best.value;
        if gap < margin {
            break;
        }
        classes[class].in_core = true;
        walk.skip_core(incs, classes);
        let (e_out, e_in) = walk.efficiencies(incs);
        let slot = classes[class];
        let b = items[slot.base];
        let members = &mut items[slot.start..slot.start + slot.len];
        let current = &lists.current[..len];
        for (k, item) in members.iter_mut().enumerate() {
            let is_base = slot.start + k == slot.base;
            item.head = 0;
            item.head_weight = u64::MAX;
            item.head_profit = f64::NEG_INFINITY;
            if is_base || loss(&b, item, lambda) <= gap + tol {
                load_head(item, &b, current);
            }
        }
        let mut out = 0usize;
        let mut last_profit = f64::NEG_INFINITY;
        let mut next_max = f64::NEG_INFINITY;
        loop {
            // k-way merge of the shifted lists by (weight ascending, profit descending).
            let mut pick: Option<usize> = None;
            let (mut pw, mut pp) = (u64::MAX, f64::NEG_INFINITY);
            for (k, item) in members.iter().enumerate() {
                if item.head_weight < pw || (item.head_weight == pw && item.head_profit > pp) {
                    (pw, pp) = (item.head_weight, item.head_profit);
                    pick = Some(k);
                }
            }
            let Some(k) = pick else {
                break;
            };
            let (weight, profit) = (pw, pp);
            let parent = current[members[k].head as usize];
            members[k].head += 1;
            load_head(&mut members[k], &b, current);
            if profit <= last_profit {
                continue;
            }
            last_profit = profit;
            let pending = if slot.start + k == slot.base {
                NO_ITEM
            } else {
                (slot.start + k) as u32
            };
            if weight <= capacity && profit > best.value {
                best = Incumbent {
                    value: profit,
                    chain: Some((parent.record, pending, class as u32)),
                };
            }
            let reach = if weight <= capacity {
                profit + e_out * (cap_f - weight as f64)
            } else {
                profit - e_in * (weight as f64 - cap_f)
            };
            let lagrange = lagrangian(weight, profit);
            if reach.min(lagrange) < best.value + margin {
                continue;
            }
            if out == state_cap {
                return Err(too_small("CoreSolver scratch: state lists", state_cap));
            }
            lists.next[out] = State {
                weight,
                profit,
                record: parent.record,
                pending,
            };
            out += 1;
            next_max = next_max.max(lagrange);
        }
        for s in lists.next[..out].iter_mut() {
            if s.pending != NO_ITEM {
                if records == record_cap {
                    return Err(too_small("CoreSolver scratch: records", record_cap));
                }
                lists.records[records] = Record {
                    parent: s.record,
                    class: class as u32,
                    slot: s.pending,
                };
                s.record = records as u32;
                s.pending = NO_ITEM;
                records += 1;
            }
        }
        core::mem::swap(&mut lists.current, &mut lists.next);
        len = out;
        max_lagrangian = next_max;
        #[cfg(feature = "std")]
        if std::env::var_os("PROBE").is_some() {
            std::eprintln!(
                "class {class} states {len} best {} maxL {max_lagrangian} e_out {e_out} e_in {e_in} records {records}",
                best.value
            );
        }
        if len == 0 {
            break;
        }
    }
    Ok(best)
}

/// Caches the state at `item.head` moved from base `b` to `item` (or marks the list done).
#[inline]
fn load_head(item: &mut ItemSlot, b: &ItemSlot, current: &[State]) {
    match current.get(item.head as usize) {
        // `s.weight` includes this class's base weight, so this never underflows.
        Some(s) => {
            item.head_weight = s.weight - b.weight + item.weight;
            item.head_profit = s.profit + (item.profit - b.profit);
        }
        None => {
            item.head_weight = u64::MAX;
            item.head_profit = f64::NEG_INFINITY;
        }
    }
}

/// Reduced-profit loss `(p_b − λ w_b) − (p_j − λ w_j) ≥ 0` of moving from base `b` to `item`.
fn loss(base: &ItemSlot, item: &ItemSlot, lambda: f64) -> f64 {
    let dw = item.weight as f64 - base.weight as f64;
    (base.profit - item.profit) + lambda * dw
}
