//! The exact solver: an expanding-core dynamic program over (weight, profit) states, pruned by
//! the Lagrangian bound at the LP's dual price — in the spirit of Pisinger's `mcknap` (1995).
//!
//! Start from the LP's integer part (every class at its "base" item). With λ the LP's dual
//! price, every solution x satisfies `profit(x) ≤ profit(x) + λ(C − weight(x))
//! = U0 − Σ_c d_c(x_c)`, where `U0` is the bound at the base and `d_c(j) ≥ 0` is the
//! reduced-profit loss of moving class `c` from its base to item `j` (the base maximises
//! `p − λw` in each class). So only moves whose losses sum to at most `U0 − incumbent` can
//! improve on the incumbent. Classes are added to the "core" in increasing order of their
//! smallest loss; each is expanded into a Pareto list of states (weight ascending, profit
//! strictly ascending), states whose bound falls below the incumbent are dropped, and the
//! expansion stops as soon as the next class's smallest loss exceeds the remaining gap: every
//! class left out is provably at an optimal item already. Feasible states improve the incumbent
//! as they appear, which is what keeps the gap (and the state lists) small.
//!
//! Dominated items are dropped (never needed for an optimum); LP-dominated ones are kept, since
//! an integer optimum may use them.

use pilot_core::{Detail, Error, ErrorKind, MckpInstance, MckpSolution, MckpSolver, Result};

use super::greedy::{greedy_walk, write_picks};
use super::relax::{check_choice, relax};
use super::scratch::{CoreScratch, Increment, NO_ITEM, NO_RECORD, Record, Scratch, State};

/// The exact multiple-choice knapsack solver (expanding core, Lagrangian bounds).
///
/// Exact up to floating-point rounding of the profits (states within `1e-9 ×` the profit scale
/// of the incumbent are kept). Reports the LP bound.
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
    /// Set when a core state beat the greedy solution: its record chain and pending choice.
    chain: Option<(u32, u32, u32)>,
}

impl MckpSolver for CoreSolver<'_> {
    fn solve(&mut self, instance: &MckpInstance<'_>, choice: &mut [usize]) -> Result<MckpSolution> {
        check_choice(instance, choice)?;
        let scratch = &mut self.scratch;
        let relaxation = relax(instance, scratch)?;
        let capacity = instance.capacity();
        let m = instance.class_count();
        greedy_walk(&relaxation, capacity, scratch);
        let greedy_value: f64 = scratch.classes[..m]
            .iter()
            .map(|c| scratch.items[c.pick].profit)
            .sum();
        let tol = relaxation.tolerance();
        let lambda = relaxation.lambda;
        let mut best = Incumbent {
            value: greedy_value,
            chain: None,
        };
        if greedy_value < relaxation.bound - tol {
            best = expand(
                scratch,
                &mut self.core,
                m,
                capacity,
                lambda,
                tol,
                relaxation.integer_weight,
                relaxation.integer_value,
                best,
            )?;
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

/// Runs the core expansion; returns the improved incumbent (or the one it was given).
#[allow(clippy::too_many_arguments)]
fn expand(
    scratch: &mut Scratch<'_>,
    lists: &mut CoreScratch<'_>,
    m: usize,
    capacity: u64,
    lambda: f64,
    tol: f64,
    base_weight: u64,
    base_profit: f64,
    mut best: Incumbent,
) -> Result<Incumbent> {
    let state_cap = lists.current.len().min(lists.next.len());
    let record_cap = lists.records.len().min(NO_RECORD as usize);
    if state_cap == 0 {
        return Err(too_small("CoreSolver scratch: state lists", 0));
    }
    let cap_f = capacity as f64;
    let bound_of = |w: u64, p: f64| p + lambda * (cap_f - w as f64);

    // Order classes by the smallest loss of leaving their base item.
    for slot in scratch.classes[..m].iter_mut() {
        let b = scratch.items[slot.base];
        let mut key = f64::INFINITY;
        for j in slot.start..slot.start + slot.len {
            if j != slot.base {
                key = key.min(loss(b.weight, b.profit, &scratch.items[j], lambda));
            }
        }
        slot.key = key;
    }
    scratch.classes[..m]
        .sort_unstable_by(|a, b| a.key.total_cmp(&b.key).then(a.class.cmp(&b.class)));

    lists.current[0] = State {
        weight: base_weight,
        profit: base_profit,
        record: NO_RECORD,
        pending: NO_ITEM,
    };
    let mut len = 1usize;
    let mut records = 0usize;
    let mut max_bound = bound_of(base_weight, base_profit);

    for k in 0..m {
        let slot = scratch.classes[k];
        let gap = max_bound - best.value;
        if gap < -tol || slot.key > gap + tol {
            break;
        }
        let b = scratch.items[slot.base];
        // Candidate moves, kept in the (now free) increment slots: `from` = item slot,
        // `dw` = its weight, `dp` = profit change, `to` = merge head into `current`.
        let mut candidates = 0usize;
        for j in slot.start..slot.start + slot.len {
            let item = scratch.items[j];
            if j == slot.base || loss(b.weight, b.profit, &item, lambda) <= gap + tol {
                scratch.increments[candidates] = Increment {
                    class: slot.class,
                    from: j,
                    to: 0,
                    dw: item.weight,
                    dp: item.profit - b.profit,
                    eff: 0.0,
                };
                candidates += 1;
            }
        }
        let cands = &mut scratch.increments[..candidates];
        let current = &lists.current[..len];
        let mut out = 0usize;
        let mut last_profit = f64::NEG_INFINITY;
        let mut next_max = f64::NEG_INFINITY;
        loop {
            // k-way merge of the shifted lists by (weight ascending, profit descending).
            let mut pick: Option<(usize, u64, f64)> = None;
            for (c, cand) in cands.iter().enumerate() {
                if let Some(s) = current.get(cand.to) {
                    // `s.weight` includes this class's base weight, so this never underflows.
                    let w = s.weight - b.weight + cand.dw;
                    let p = s.profit + cand.dp;
                    let better = match pick {
                        None => true,
                        Some((_, bw, bp)) => w < bw || (w == bw && p > bp),
                    };
                    if better {
                        pick = Some((c, w, p));
                    }
                }
            }
            let Some((c, weight, profit)) = pick else {
                break;
            };
            let parent = current[cands[c].to];
            cands[c].to += 1;
            if profit <= last_profit {
                continue;
            }
            let bound = bound_of(weight, profit);
            if bound < best.value - tol {
                continue;
            }
            let pending = if cands[c].from == slot.base {
                NO_ITEM
            } else {
                cands[c].from as u32
            };
            if weight <= capacity && profit > best.value {
                best = Incumbent {
                    value: profit,
                    chain: Some((parent.record, pending, slot.class as u32)),
                };
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
            last_profit = profit;
            next_max = next_max.max(bound);
        }
        for s in lists.next[..out].iter_mut() {
            if s.pending != NO_ITEM {
                if records == record_cap {
                    return Err(too_small("CoreSolver scratch: records", record_cap));
                }
                lists.records[records] = Record {
                    parent: s.record,
                    class: slot.class as u32,
                    slot: s.pending,
                };
                s.record = records as u32;
                s.pending = NO_ITEM;
                records += 1;
            }
        }
        core::mem::swap(&mut lists.current, &mut lists.next);
        len = out;
        max_bound = next_max;
        if len == 0 {
            break;
        }
    }
    Ok(best)
}

/// Reduced-profit loss `(p_b − λ w_b) − (p_j − λ w_j) ≥ 0` of moving from base `b` to `item`.
fn loss(base_weight: u64, base_profit: f64, item: &super::scratch::ItemSlot, lambda: f64) -> f64 {
    let dw = item.weight as f64 - base_weight as f64;
    (base_profit - item.profit) + lambda * dw
}
