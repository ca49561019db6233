//! The exact solver: an expanding-core dynamic program over (weight, profit) states, after
//! Pisinger's `mcknap` ("A minimal algorithm for the multiple-choice knapsack problem", 1995).
//!
//! Start from the LP's integer part: every class at its "base" item, total weight ≤ C. The
//! core is a set of classes whose choice is enumerated; every other class stays at its base.
//! Classes join the core in the order their hull increments are met walking outwards from the
//! LP's break increment (the fractional class first) in the efficiency-sorted list, always
//! taking the side whose next increment is closer in efficiency to the dual price λ: the
//! classes most likely to differ from the LP solution join first and the core stays small.
//!
//! Each class added expands the state list (weight ascending, profit strictly ascending: a
//! Pareto front, so dominated states go) and every feasible state updates the incumbent. A
//! state of weight `W` and profit `P` is kept only if its upper bound beats the incumbent:
//! `P` plus the LP relaxation of the classes *outside* the core with residual capacity
//! `C − W`. Outside classes sit at their LP base, so that LP is a walk along the sorted
//! increments from the break: up (adding the next outside increments while they fit, the last
//! one fractionally) when `W ≤ C`, down (removing the cheapest-to-lose ones) when `W > C`, and
//! `−∞` when even removing every removable increment does not fit. The first
//! [`BOUND_STEPS`] outside increments on each side are tabulated once per class added (the
//! table shrinks as the core grows, so the bounds tighten incrementally); beyond the table the
//! next efficiency bounds the rest, which keeps the bound valid.
//!
//! Per class, before merging: dominated items are gone (from the relaxation); an item is tried
//! only if its reduced-profit loss `(p_b − λ w_b) − (p_j − λ w_j)` against the base does not
//! exceed the gap between the best Lagrangian bound of the current states and the incumbent
//! (LP-dominated items are kept otherwise, since an integer optimum may use them). The search
//! ends when the list is empty (no state can improve) or every class with a choice has joined.
//!
//! A class joins through a k-way merge of its items' shifted state lists, or, when the window
//! of weights the new states can take is at most [`DENSE`] times the shifted states, through a
//! table indexed by weight in `next`, a block of the window at a time past the states kept so
//! far: each shifted state lands at its weight (the most profitable kept) and one sweep in
//! weight order drops the dominated ones and bounds the rest. Both give the same list; the
//! table avoids the merge's comparisons where the states fill the window (subset-sum-like
//! classes, and the later classes of the correlated kinds). The merge skips, before they reach
//! its heap, the shifted states whose bounds miss the threshold the class started with.
//!
//! A caller may add a second bound on the outside classes ([`OutsideBound`]; `owned::Exact`
//! passes the rank-aware one of `mckp::ranks` where the instance has the structure): a state
//! then goes on only if both bounds reach the threshold.
//!
//! Choices are kept as a forest of records (one per state that moved its class off base);
//! when the record buffer fills, records no live state reaches are dropped and the rest
//! compacted, so memory follows the live chains rather than the whole search.

use pilot_core::{Detail, Error, ErrorKind, MckpInstance, MckpSolution, MckpSolver, Result};

use super::greedy::{greedy_walk, write_picks};
use super::relax::{Relaxation, check_choice, relax};
use super::scratch::{
    ClassSlot, CoreScratch, Increment, ItemSlot, NO_ITEM, NO_RECORD, Record, Scratch, State,
};

/// Outside increments tabulated per side for the state bounds.
pub(crate) const BOUND_STEPS: usize = 32;

/// What the last exact solve did: how many classes joined the core and how many states it
/// kept (the figures the benchmark suite reports).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CoreStats {
    /// Classes added to the core.
    pub classes_added: usize,
    /// Largest state list kept after adding a class.
    pub peak_states: usize,
    /// States kept, summed over the classes added.
    pub states_kept: u64,
    /// Most record slots in use at once.
    pub peak_records: usize,
    /// Times the records were compacted.
    pub collections: usize,
    /// Passes of the search (each aiming at a lower value until one finds it).
    pub passes: usize,
    /// Items merged into the states, summed over the classes added.
    pub items_tried: u64,
    /// States the second bound on the outside classes dropped after their LP kept them (the
    /// rank-aware bound of `owned::Exact`; 0 without one).
    pub outside_cuts: u64,
}

/// The exact multiple-choice knapsack solver (expanding core with bounds).
///
/// Exact up to floating-point rounding of the profits: a state is dropped only when its bound
/// is within `1e-9 ×` the instance's profit scale of the incumbent or below; with whole-number
/// profits (sum below 10¹⁵), when it is below the incumbent + 1, which keeps the result exact.
/// Reports the LP bound, or the caller's [`Hint`] bound when that is tighter.
#[derive(Debug)]
pub struct CoreSolver<'s> {
    scratch: Scratch<'s>,
    core: CoreScratch<'s>,
    stats: CoreStats,
    /// Where to go on from (set by a search that ran out of state slots, taken by the next).
    resume: Option<Resume>,
    /// What the caller already knows about the optimum.
    hint: Option<Hint>,
    /// A second bound on what the classes outside the core can add to a state.
    outside: Option<&'s dyn OutsideBound>,
}

/// A bound on what the classes outside the core can still add to a state, checked besides
/// their LP: a state is kept only if both reach the threshold. Implementations know the
/// classes' join order (see [`join_order`]): when `class` joins, the outside classes are the
/// ones after it, each at its base item.
pub(crate) trait OutsideBound: core::fmt::Debug {
    /// An upper bound on the value of every solution that agrees with a state of `weight` and
    /// `profit` on the classes up to `class` in the join order (and `+∞` when it has none).
    fn reach(&self, class: usize, weight: u64, profit: f64) -> f64;
}

/// Calls `f(class)` for each class in the order the core search adds it after `relax` (and
/// the greedy walk) wrote `scratch` (the search adds fewer when it ends early).
#[cfg(feature = "alloc")]
pub(crate) fn join_order(
    scratch: &mut Scratch<'_>,
    relaxation: &Relaxation,
    m: usize,
    mut f: impl FnMut(usize),
) {
    let incs = &scratch.increments[..relaxation.increments];
    let classes = &mut scratch.classes[..m];
    for slot in classes.iter_mut() {
        slot.in_core = false;
    }
    let mut walk = Walk {
        up: relaxation.break_at,
        down: relaxation.break_at,
    };
    while let Some(class) = walk.next_class(incs, relaxation.lambda) {
        classes[class].in_core = true;
        walk.skip_core(incs, classes);
        f(class);
    }
    for slot in classes.iter_mut() {
        slot.in_core = false;
    }
}

/// What a caller already knows when it asks for the optimum: a solution (already in the
/// `choice` it passes to [`solve`](MckpSolver::solve)) and an upper bound it proved. The search
/// starts from that incumbent when it beats the greedy one, aims its passes below the tighter
/// of the two bounds and stops as soon as the incumbent reaches it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hint {
    /// The value of the solution in `choice` on entry.
    pub value: f64,
    /// An upper bound on every solution's value (it must be one: a wrong bound gives a wrong
    /// answer).
    pub upper_bound: f64,
}

/// Where a search that ran out of state slots stopped: with the same instance, the same hull
/// scratch and the state lists and records grown with their contents kept, the next solve
/// goes on from the class whose states did not fit instead of starting over (the passes
/// before it and the classes before it in its pass are not repeated).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Resume {
    relaxation: Relaxation,
    /// The pass loop's incumbent value and distance below the bound.
    best_value: f64,
    d: f64,
    at: Checkpoint,
}

/// The expansion just before a class joined the core.
#[derive(Clone, Copy, Debug)]
struct Checkpoint {
    up: usize,
    down: usize,
    class: usize,
    len: usize,
    records: usize,
    best: Incumbent,
    max_lagrangian: f64,
    flipped: bool,
    stats: CoreStats,
}

impl<'s> CoreSolver<'s> {
    /// A solver working in `scratch` and `core`.
    pub fn new(scratch: Scratch<'s>, core: CoreScratch<'s>) -> Self {
        Self {
            scratch,
            core,
            stats: CoreStats::default(),
            resume: None,
            hint: None,
            outside: None,
        }
    }

    /// Checks every state against `outside` too (see [`OutsideBound`]).
    #[cfg(feature = "alloc")]
    pub(crate) fn bounded_outside(mut self, outside: Option<&'s dyn OutsideBound>) -> Self {
        self.outside = outside;
        self
    }

    /// Starts the next solves from `hint` (see [`Hint`]).
    pub fn hinted(mut self, hint: Option<Hint>) -> Self {
        self.hint = hint;
        self
    }

    /// Goes on from `resume` (taken from a solver of the same instance whose scratch has been
    /// grown with its contents kept) at the next solve.
    #[cfg(feature = "alloc")]
    pub(crate) fn resuming(mut self, resume: Option<Resume>) -> Self {
        self.resume = resume;
        self
    }

    /// Where the last solve stopped when it ran out of state slots.
    #[cfg(feature = "alloc")]
    pub(crate) fn take_resume(&mut self) -> Option<Resume> {
        self.resume.take()
    }

    /// What the last call of [`solve`](MckpSolver::solve) did (also when it failed for want of
    /// scratch: then how far it got).
    pub fn stats(&self) -> CoreStats {
        self.stats
    }
}

/// The best solution found so far by the state expansion.
#[derive(Clone, Copy, Debug)]
struct Incumbent {
    value: f64,
    /// Set when a core state beat the greedy solution: its record chain, pending choice slot
    /// and the class of that choice.
    chain: Option<(u32, u32, u32)>,
}

impl MckpSolver for CoreSolver<'_> {
    fn solve(&mut self, instance: &MckpInstance<'_>, choice: &mut [usize]) -> Result<MckpSolution> {
        check_choice(instance, choice)?;
        self.stats = CoreStats::default();
        if instance.item_count() >= NO_ITEM as usize {
            return Err(Error::new(
                ErrorKind::InvalidParameter,
                "CoreSolver: more than 2^32 - 1 items",
            ));
        }
        let scratch = &mut self.scratch;
        let capacity = instance.capacity();
        let m = instance.class_count();
        let (relaxation, mut best_value, mut d, mut from) = match self.resume.take() {
            Some(r) => (r.relaxation, r.best_value, r.d, Some(r.at)),
            None => {
                let relaxation = relax(instance, scratch)?;
                greedy_walk(&relaxation, capacity, scratch);
                let mut best_value: f64 = scratch.classes[..m]
                    .iter()
                    .map(|c| scratch.items[c.pick].profit)
                    .sum();
                match self.hint {
                    // The caller's solution, already in `choice`, is the better start.
                    Some(hint) if hint.value > best_value => best_value = hint.value,
                    _ => write_picks(scratch, m, choice),
                }
                let bound = tighter_bound(self.hint, &relaxation);
                let d = if relaxation.whole() {
                    0.0
                } else {
                    (bound - best_value) / 1024.0
                };
                (relaxation, best_value, d, None)
            }
        };
        let tol = relaxation.tolerance();
        let bound = tighter_bound(self.hint, &relaxation);
        while bound - best_value >= relaxation.margin() {
            // Aim high first: a pass keeps only states that can reach `target`, few when the
            // target is near the bound; it either finds a solution worth at least `target`
            // (and then continues as the plain exact search, so that one is optimal) or
            // proves there is none, and the next pass aims lower. The last aims at the
            // incumbent itself.
            let target = if relaxation.whole() {
                floor(bound + tol) - d
            } else {
                bound - d
            };
            // Aiming at `best + margin` or below is the plain exact search.
            let last = target - tol <= best_value + relaxation.margin();
            let floor = if last {
                f64::NEG_INFINITY
            } else {
                target - tol
            };
            let found = expand(
                scratch,
                &mut self.core,
                m,
                capacity,
                &relaxation,
                Incumbent {
                    value: best_value,
                    chain: None,
                },
                floor,
                bound,
                self.outside,
                &mut self.stats,
                &mut from,
            );
            let found = match found {
                Ok(found) => found,
                Err(e) => {
                    self.resume = from.map(|at| Resume {
                        relaxation,
                        best_value,
                        d,
                        at,
                    });
                    return Err(e);
                }
            };
            self.stats.passes += 1;
            if let Some(chain) = found.chain {
                write_chain(scratch, self.core.records, m, chain, choice);
            }
            best_value = found.value;
            // The pass proved that nothing reaches `target`: optimal once the incumbent is
            // within the margin of it (in particular when the pass found `target` or more).
            if last || target - tol <= best_value + relaxation.margin() {
                break;
            }
            // Where the caller's bound is much nearer the incumbent than the LP's (a
            // cardinality bound), the passes between them keep nearly the states the last one
            // does (inverse 1 000 × 50: 2.3M, 2.5M, 2.7M, then 3.2M): after the pass aimed at
            // the bound itself, the last follows.
            let near = self.hint.is_some()
                && NEAR_BOUND * (bound - best_value) <= relaxation.bound - best_value;
            d = if near {
                bound - best_value
            } else if d == 0.0 {
                1.0
            } else {
                2.0 * d
            };
        }
        let (value, weight) = instance.evaluate(choice)?;
        Ok(MckpSolution {
            value,
            weight,
            bound: Some(bound),
        })
    }
}

/// How many times nearer the incumbent than the LP bound the caller's bound must be for the
/// search to go from the pass aimed at the bound straight to the last (on the inverse
/// instances of 1 000 × 50, 20 seeds × 3 ratios: any factor from 2 to 8 keeps 45.7M states
/// against 56.8M with every pass; 16 and up is every pass; 1 would also skip them where the
/// caller's bound is the LP's, which costs the weakly correlated instances up to 5× the
/// states).
const NEAR_BOUND: f64 = 4.0;

/// The LP bound, or the caller's when that is tighter.
fn tighter_bound(hint: Option<Hint>, relaxation: &Relaxation) -> f64 {
    hint.map_or(relaxation.bound, |h| h.upper_bound.min(relaxation.bound))
}

/// Writes the incumbent `(record, pending, class)`: every class at its base, then the choices
/// along the record chain.
fn write_chain(
    scratch: &Scratch<'_>,
    records: &[Record],
    m: usize,
    (record, pending, class): (u32, u32, u32),
    choice: &mut [usize],
) {
    for slot in &scratch.classes[..m] {
        choice[slot.class] = scratch.items[slot.base].item;
    }
    if pending != NO_ITEM {
        choice[class as usize] = scratch.items[pending as usize].item;
    }
    let mut r = record;
    while r != NO_RECORD {
        let rec = records[r as usize];
        choice[rec.class as usize] = scratch.items[rec.slot as usize].item;
        r = rec.parent;
    }
}

/// `⌊x⌋` for `|x| < 2⁶³` (no_std has no `f64::floor`).
pub(crate) fn floor(x: f64) -> f64 {
    let t = x as i64 as f64;
    if t > x { t - 1.0 } else { t }
}

fn too_small(context: &'static str, found: usize) -> Error {
    Error::new(ErrorKind::BufferTooSmall, context).with_detail(Detail::Mismatch {
        expected: found.saturating_add(1),
        found,
    })
}

/// The walk over the efficiency-sorted increments that picks the next core class.
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

/// The LP of the classes outside the core along one side of the break: cumulative weight and
/// profit of its first increments, in the order the LP takes (up) or gives them up (down).
struct Side {
    /// `weight[k]`, `profit[k]`: totals of the first `k` increments (`k ≤ len`).
    weight: [u64; BOUND_STEPS + 1],
    profit: [f64; BOUND_STEPS + 1],
    /// `eff[k]`: efficiency of increment `k`; `eff[len]` that of the first one past the table
    /// (when not `exhausted`).
    eff: [f64; BOUND_STEPS + 1],
    len: usize,
    /// No outside increment beyond the table.
    exhausted: bool,
}

impl Side {
    fn build(
        incs: &[Increment],
        classes: &[ClassSlot],
        mut next: impl FnMut() -> Option<usize>,
    ) -> Self {
        let mut side = Side {
            weight: [0; BOUND_STEPS + 1],
            profit: [0.0; BOUND_STEPS + 1],
            eff: [0.0; BOUND_STEPS + 1],
            len: 0,
            exhausted: true,
        };
        while let Some(i) = next() {
            let inc = &incs[i];
            if classes[inc.class].in_core {
                continue;
            }
            let k = side.len;
            side.eff[k] = inc.eff;
            if k == BOUND_STEPS {
                side.exhausted = false;
                break;
            }
            side.weight[k + 1] = side.weight[k].saturating_add(inc.dw);
            side.profit[k + 1] = side.profit[k] + inc.dp;
            side.len += 1;
        }
        side
    }

    /// Most profit the outside classes can gain with `r` more units of capacity; `k` is a
    /// cursor into the table (start at `len`), moved as `r` decreases from call to call.
    #[inline]
    fn gain(&self, r: u64, k: &mut usize) -> f64 {
        while self.weight[*k] > r {
            *k -= 1;
        }
        let k = *k;
        if k == self.len && self.exhausted {
            self.profit[k]
        } else {
            self.profit[k] + (r - self.weight[k]) as f64 * self.eff[k]
        }
    }

    /// Least profit the outside classes lose giving up `x > 0` units of weight (`None`: they
    /// cannot give up that much); `k` is a cursor into the table (start at 0), moved as `x`
    /// increases from call to call.
    #[inline]
    fn loss(&self, x: u64, k: &mut usize) -> Option<f64> {
        while *k < self.len && self.weight[*k + 1] < x {
            *k += 1;
        }
        let k = *k;
        if k == self.len && self.exhausted {
            None
        } else {
            Some(self.profit[k] + (x - self.weight[k]) as f64 * self.eff[k])
        }
    }
}

/// Runs the core expansion; returns the improved incumbent (or the one it was given).
// The two scratches, the instance's figures, the incumbent, the pass's floor and the stats: a
// struct would only rename them.
#[allow(clippy::too_many_arguments)]
fn expand(
    scratch: &mut Scratch<'_>,
    lists: &mut CoreScratch<'_>,
    m: usize,
    capacity: u64,
    relaxation: &Relaxation,
    mut best: Incumbent,
    floor: f64,
    bound: f64,
    outside: Option<&dyn OutsideBound>,
    stats: &mut CoreStats,
    resume: &mut Option<Checkpoint>,
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

    let mut walk = Walk {
        up: relaxation.break_at,
        down: relaxation.break_at,
    };
    let mut len = 1usize;
    let mut records = 0usize;
    let mut max_lagrangian = lagrangian(relaxation.integer_weight, relaxation.integer_value);
    if let Some(at) = resume.take() {
        // Back to just before `at.class` joined: its states did not fit, the rest (the list
        // in `current`, the records, the other classes) is as it was then.
        if at.flipped != lists.flipped {
            core::mem::swap(&mut lists.current, &mut lists.next);
            lists.flipped = !lists.flipped;
        }
        classes[at.class].in_core = false;
        walk = Walk {
            up: at.up,
            down: at.down,
        };
        (len, records, best) = (at.len, at.records, at.best);
        max_lagrangian = at.max_lagrangian;
        *stats = at.stats;
    } else {
        for slot in classes.iter_mut() {
            slot.in_core = false;
        }
        lists.current[0] = State {
            weight: relaxation.integer_weight,
            profit: relaxation.integer_value,
            record: NO_RECORD,
            pending: NO_ITEM,
        };
    }

    // A state is kept only if its bound reaches this (and the incumbent's value + margin).
    let threshold = |best: &Incumbent| (best.value + margin).max(floor);
    while let Some(class) = walk.next_class(incs, lambda) {
        // Nothing can beat an incumbent this close to the bound (the caller's may be tighter
        // than the LP's).
        if bound - best.value < margin {
            break;
        }
        let gap = max_lagrangian - threshold(&best);
        if gap < 0.0 {
            break;
        }
        let at = Checkpoint {
            up: walk.up,
            down: walk.down,
            class,
            len,
            records,
            best,
            max_lagrangian,
            flipped: lists.flipped,
            stats: *stats,
        };
        classes[class].in_core = true;
        walk.skip_core(incs, classes);
        let up = {
            let mut i = walk.up;
            Side::build(incs, classes, || {
                let here = (i < incs.len()).then_some(i);
                i += 1;
                here
            })
        };
        let down = {
            let mut i = walk.down;
            Side::build(incs, classes, || {
                i = i.checked_sub(1)?;
                Some(i)
            })
        };
        let slot = classes[class];
        let b = items[slot.base];
        let members = &mut items[slot.start..slot.start + slot.len];
        // Move the items worth trying to the front (the base among them), so the merge scans
        // only those; `base` and `pick` follow their items.
        let (mut base_at, mut pick_at) = (slot.base - slot.start, slot.pick - slot.start);
        let mut tried = 0usize;
        for k in 0..members.len() {
            if k == base_at || loss(&b, &members[k], lambda) <= gap + tol {
                members.swap(tried, k);
                for at in [&mut base_at, &mut pick_at] {
                    if *at == k {
                        *at = tried;
                    } else if *at == tried {
                        *at = k;
                    }
                }
                tried += 1;
            }
        }
        classes[class].base = slot.start + base_at;
        classes[class].pick = slot.start + pick_at;
        let members = &mut members[..tried];
        stats.items_tried += tried as u64;
        let current = &lists.current[..len];
        // The merge's Lagrangian filter (a moved state goes on only if its Lagrangian bound
        // reaches the threshold, the LP bound being tighter, or it improves the incumbent);
        // `least` only grows while the class is added, so its starting value is safe to
        // filter with.
        let need = threshold(&best) - lambda * cap_f - tol;
        // The merge's LP filter: `admit` computes the same reach (the cursors do not change
        // the value); the `tol` below its threshold keeps states rounding could order
        // otherwise.
        let least_start = threshold(&best) - tol;
        let best_before = best.value;
        let mut out = 0usize;
        let (mut up_at, mut down_at) = (up.len, 0usize);
        // Every new state, from the table or the merge, in increasing weight: it becomes the
        // incumbent if it fits and beats it, and is kept (its Lagrangian bound returned) only
        // if both bounds reach the threshold: the Lagrangian first (looser but cheaper), then
        // the LP of the classes outside the core. States come by increasing weight, so the LP
        // cursors only move one way.
        // `known`: the reach the merge's filter computed (the same value, the cursors do not
        // change it).
        // `threshold(&best)`, kept up to date as the incumbent improves.
        let mut least = threshold(&best);
        let mut cuts = 0u64;
        let mut admit = |weight: u64,
                         profit: f64,
                         record: u32,
                         pending: u32,
                         known: Option<f64>|
         -> Option<f64> {
            if weight <= capacity && profit > best.value {
                best = Incumbent {
                    value: profit,
                    chain: Some((record, pending, class as u32)),
                };
                least = threshold(&best);
            }
            let lagrange = lagrangian(weight, profit);
            if lagrange < least {
                return None;
            }
            let reach = match known {
                Some(reach) => reach,
                None if weight <= capacity => profit + up.gain(capacity - weight, &mut up_at),
                None => profit - down.loss(weight - capacity, &mut down_at)?,
            };
            if reach < least {
                return None;
            }
            match outside {
                Some(o) if o.reach(class, weight, profit) < least - tol => {
                    cuts += 1;
                    None
                }
                _ => Some(lagrange),
            }
        };
        let mut last_profit = f64::NEG_INFINITY;
        let mut next_max = f64::NEG_INFINITY;
        for item in members.iter_mut() {
            item.head = 0;
        }
        // The weights the new states can take: a window over the states' weights moved by the
        // lightest and the heaviest item tried (every state weight includes the base's).
        let (lightest, heaviest) = members.iter().fold((u64::MAX, 0u64), |(lo, hi), i| {
            (lo.min(i.weight), hi.max(i.weight))
        });
        let w_lo = current[0].weight - b.weight + lightest;
        let width = (current[len - 1].weight - b.weight + heaviest - w_lo).saturating_add(1);
        let dense = width
            <= DENSE
                .saturating_mul(tried as u64)
                .saturating_mul(len as u64);
        if dense {
            // Dense: the states fill most weights of the window, so a table indexed by weight
            // replaces the merge: every item's moved states land at their weight, the most
            // profitable kept; one sweep in weight order then drops the dominated ones and
            // bounds the rest, as the merge does. The table covers a block of the window at a
            // time (at most `DENSE_BLOCK` weights, and the free slots of `next`), just past
            // the states kept so far (the sweep compacts them to the front), so it needs no
            // more room than the list it builds, and the block stays in cache while the items
            // land in it (each item's next states start at its `head`; each weight still sees
            // the items in the same order).
            let mut lo = 0u64;
            while lo < width {
                let start = out;
                let room = state_cap - start;
                if room == 0 {
                    *resume = Some(at);
                    return Err(too_small("CoreSolver scratch: state lists", state_cap));
                }
                let hi = lo + (width - lo).min(room as u64).min(DENSE_BLOCK);
                let block = &mut lists.next[start..start + (hi - lo) as usize];
                for w in block.iter_mut() {
                    w.profit = f64::NEG_INFINITY;
                }
                for (k, item) in members.iter_mut().enumerate() {
                    let dw = item.weight.wrapping_sub(b.weight);
                    let dp = item.profit - b.profit;
                    let pending = if k == base_at {
                        NO_ITEM
                    } else {
                        (slot.start + k) as u32
                    };
                    // `s.weight + dw − w_lo` is a moved state's place in the window (no wrap
                    // overall: every state weight includes the base's).
                    let at_window = dw.wrapping_sub(w_lo);
                    let from = item.head as usize;
                    let to = from
                        + current[from..]
                            .partition_point(|s| s.weight.wrapping_add(at_window) < hi);
                    item.head = to as u32;
                    // Every moved state lands, unfiltered: a bound test here cost more than
                    // the landings it saved (even where half the states fail it), and a state
                    // `admit` then rejects only hides, in the sweep, states of more weight and
                    // no more profit, whose bounds are lower (and which improve the incumbent
                    // no more than it does).
                    let moved = Moved {
                        dw,
                        dp,
                        shift: at_window.wrapping_sub(lo),
                        pending,
                    };
                    moved.land(&current[from..to], block);
                }
                for j in start..start + (hi - lo) as usize {
                    let state = lists.next[j];
                    if state.profit <= last_profit {
                        continue;
                    }
                    last_profit = state.profit;
                    let Some(lagrange) = admit(
                        state.weight,
                        state.profit,
                        state.record,
                        state.pending,
                        None,
                    ) else {
                        continue;
                    };
                    // `out ≤ j`: the kept states compact to the front.
                    lists.next[out] = state;
                    out += 1;
                    if lagrange > next_max {
                        next_max = lagrange;
                    }
                }
                lo = hi;
            }
        } else {
            let skip = Skip {
                need,
                least: least_start,
                lambda,
                capacity,
                best: best_before,
                up: &up,
                down: &down,
            };
            for item in members.iter_mut() {
                item.up_at = up.len as u8;
                item.down_at = 0;
                load_head(item, &b, current, &skip);
            }
            // k-way merge of the shifted lists by (weight ascending, profit descending): through a
            // binary heap of the items when there are many, a scan when few (or too many for the
            // heap, which lives on the stack).
            let mut heap = [0u16; HEAP];
            let use_heap = members.len() > SCAN && members.len() <= HEAP;
            let mut heap_len = 0usize;
            if use_heap {
                for (k, item) in members.iter().enumerate() {
                    if item.head_weight != u64::MAX {
                        heap[heap_len] = k as u16;
                        heap_len += 1;
                    }
                }
                for i in (0..heap_len / 2).rev() {
                    sift_down(&mut heap[..heap_len], i, members);
                }
            }
            loop {
                let k = if use_heap {
                    if heap_len == 0 {
                        break;
                    }
                    usize::from(heap[0])
                } else {
                    let mut pick: Option<usize> = None;
                    let (mut pw, mut pp) = (u64::MAX, f64::NEG_INFINITY);
                    for (k, item) in members.iter().enumerate() {
                        if item.head_weight < pw
                            || (item.head_weight == pw && item.head_profit > pp)
                        {
                            (pw, pp) = (item.head_weight, item.head_profit);
                            pick = Some(k);
                        }
                    }
                    match pick {
                        Some(k) => k,
                        None => break,
                    }
                };
                let (weight, profit) = (members[k].head_weight, members[k].head_profit);
                let reach = members[k].head_reach;
                let parent = current[members[k].head as usize];
                members[k].head += 1;
                load_head(&mut members[k], &b, current, &skip);
                if use_heap {
                    if members[k].head_weight == u64::MAX {
                        heap_len -= 1;
                        heap[0] = heap[heap_len];
                    }
                    sift_down(&mut heap[..heap_len], 0, members);
                }
                if profit <= last_profit {
                    continue;
                }
                last_profit = profit;
                let pending = if k == base_at {
                    NO_ITEM
                } else {
                    (slot.start + k) as u32
                };
                let Some(lagrange) = admit(weight, profit, parent.record, pending, Some(reach))
                else {
                    continue;
                };
                if out == state_cap {
                    *resume = Some(at);
                    return Err(too_small("CoreSolver scratch: state lists", state_cap));
                }
                lists.next[out] = State {
                    weight,
                    profit,
                    record: parent.record,
                    pending,
                };
                out += 1;
                // (Comparisons rather than `f64::max`: no NaN here, and this is per state.)
                if lagrange > next_max {
                    next_max = lagrange;
                }
            }
        }
        stats.outside_cuts += cuts;
        // Give every state that moved this class off its base a record.
        for i in 0..out {
            if lists.next[i].pending == NO_ITEM {
                continue;
            }
            if records == record_cap {
                records = collect(lists, out, &mut best, records, stats);
                // Collecting again soon would cost more than it frees: ask for more room.
                if records == record_cap || records > record_cap / 2 {
                    return Err(too_small("CoreSolver scratch: records", record_cap));
                }
            }
            let s = &mut lists.next[i];
            lists.records[records] = Record {
                parent: s.record,
                class: class as u32,
                slot: s.pending,
                forward: NO_RECORD,
            };
            s.record = records as u32;
            s.pending = NO_ITEM;
            records += 1;
        }
        core::mem::swap(&mut lists.current, &mut lists.next);
        lists.flipped = !lists.flipped;
        len = out;
        max_lagrangian = next_max;
        stats.classes_added += 1;
        stats.peak_states = stats.peak_states.max(len);
        stats.states_kept += len as u64;
        stats.peak_records = stats.peak_records.max(records);
        if len == 0 {
            break;
        }
    }
    Ok(best)
}

/// One item's move of the states into the weight table.
struct Moved {
    dw: u64,
    dp: f64,
    /// Added to a state's weight: its slot in the table.
    shift: u64,
    pending: u32,
}

impl Moved {
    /// Enters every moved state at its weight in `window`, unless a more profitable one is
    /// there.
    #[inline]
    fn land(&self, current: &[State], window: &mut [State]) {
        for s in current {
            let weight = s.weight.wrapping_add(self.dw);
            let profit = s.profit + self.dp;
            let at = &mut window[s.weight.wrapping_add(self.shift) as usize];
            if profit > at.profit {
                *at = State {
                    weight,
                    profit,
                    record: s.record,
                    pending: self.pending,
                };
            }
        }
    }
}

/// Drops the records no state in `lists.next[..live]` nor the incumbent reaches and compacts
/// the rest to the front (parents keep lower indices than their children), rewriting the
/// references; returns the number of records kept.
///
/// Every record in `..used` comes with `forward == NO_RECORD` (as records are made, and as
/// this leaves them), so the marks need no clearing pass first; the record buffer is larger
/// than the caches, so each pass over it counts.
fn collect(
    lists: &mut CoreScratch<'_>,
    live: usize,
    best: &mut Incumbent,
    used: usize,
    stats: &mut CoreStats,
) -> usize {
    const MARKED: u32 = NO_RECORD - 1;
    let records = &mut lists.records[..used];
    let roots = lists.next[..live]
        .iter()
        .map(|s| s.record)
        .chain(best.chain.map(|c| c.0));
    for root in roots {
        let mut r = root;
        while r != NO_RECORD && records[r as usize].forward == NO_RECORD {
            records[r as usize].forward = MARKED;
            r = records[r as usize].parent;
        }
    }
    // New places in order; a marked record's parent is marked and comes first, so its new
    // place is already known.
    let mut kept = 0u32;
    for i in 0..used {
        if records[i].forward == MARKED {
            records[i].forward = kept;
            kept += 1;
            let parent = records[i].parent;
            if parent != NO_RECORD {
                records[i].parent = records[parent as usize].forward;
            }
        }
    }
    let forward = |r: u32| {
        if r == NO_RECORD {
            r
        } else {
            records[r as usize].forward
        }
    };
    for s in lists.next[..live].iter_mut() {
        s.record = forward(s.record);
    }
    if let Some(chain) = best.chain.as_mut() {
        chain.0 = forward(chain.0);
    }
    // Every place below `kept` receives its record (`to ≤ i`), unmarked again.
    for i in 0..used {
        let rec = records[i];
        if rec.forward != NO_RECORD {
            records[rec.forward as usize] = Record {
                forward: NO_RECORD,
                ..rec
            };
        }
    }
    stats.collections += 1;
    kept as usize
}

/// A class is added through a table over the window of new weights (instead of the merge)
/// when the window is at most this many times the shifted states.
const DENSE: u64 = 4;
/// Weights of the window the table covers at a time (768 KiB of states: within a core's L2).
const DENSE_BLOCK: u64 = 1 << 15;

/// Items merged by a linear scan up to this many; a heap above.
const SCAN: usize = 6;
/// Largest heap of items (on the stack); classes with more items to try fall back to the scan.
const HEAP: usize = 256;

/// `a` comes before `b` in the merge: lighter, or as heavy and more profitable.
#[inline]
fn before(a: &ItemSlot, b: &ItemSlot) -> bool {
    a.head_weight < b.head_weight
        || (a.head_weight == b.head_weight && a.head_profit > b.head_profit)
}

/// Restores the heap order below position `i` of `heap` (indices into `members`).
#[inline]
fn sift_down(heap: &mut [u16], mut i: usize, members: &[ItemSlot]) {
    let len = heap.len();
    loop {
        let left = 2 * i + 1;
        if left >= len {
            return;
        }
        let mut child = left;
        let right = left + 1;
        if right < len
            && before(
                &members[usize::from(heap[right])],
                &members[usize::from(heap[left])],
            )
        {
            child = right;
        }
        if before(
            &members[usize::from(heap[child])],
            &members[usize::from(heap[i])],
        ) {
            heap.swap(i, child);
            i = child;
        } else {
            return;
        }
    }
}

/// What the merge skips before a moved state reaches the heap: those whose bounds (the
/// Lagrangian, then the LP of the outside classes, as in `admit`) are below the class's
/// starting threshold and that do not improve the incumbent the class started with. `admit`
/// would reject them anyway, and any state they dominate has lower bounds and no more profit,
/// so the list kept and the incumbents found are the same; the merge just stops ordering
/// states that go nowhere (most of them in the correlated kinds).
struct Skip<'a> {
    /// The Lagrangian test: `profit − λ weight ≥ need`.
    need: f64,
    /// The LP test: profit plus the outside LP at the residual capacity `≥ least`.
    least: f64,
    lambda: f64,
    capacity: u64,
    best: f64,
    up: &'a Side,
    down: &'a Side,
}

/// Caches the first state from `item.head` on that `skip` lets through, moved from base `b`
/// to `item` (or marks the list done). Each item's moved states come by increasing weight, so
/// its LP cursors only move one way, as `admit`'s do.
#[inline]
fn load_head(item: &mut ItemSlot, b: &ItemSlot, current: &[State], skip: &Skip<'_>) {
    let (dw, dp) = (item.weight.wrapping_sub(b.weight), item.profit - b.profit);
    let (mut up_at, mut down_at) = (usize::from(item.up_at), usize::from(item.down_at));
    let mut head = item.head as usize;
    while let Some(s) = current.get(head) {
        // `s.weight` includes this class's base weight, so this never wraps overall.
        let weight = s.weight.wrapping_add(dw);
        let profit = s.profit + dp;
        // Failing the Lagrangian test (with `tol` to spare) fails `admit`'s too: no reach.
        let reach = if profit - skip.lambda * (weight as f64) < skip.need {
            f64::NEG_INFINITY
        } else if weight <= skip.capacity {
            profit + skip.up.gain(skip.capacity - weight, &mut up_at)
        } else {
            match skip.down.loss(weight - skip.capacity, &mut down_at) {
                Some(loss) => profit - loss,
                None => f64::NEG_INFINITY,
            }
        };
        if reach >= skip.least || (weight <= skip.capacity && profit > skip.best) {
            item.head = head as u32;
            item.head_weight = weight;
            item.head_profit = profit;
            item.head_reach = reach;
            item.up_at = up_at as u8;
            item.down_at = down_at as u8;
            return;
        }
        head += 1;
    }
    item.head = head as u32;
    item.head_weight = u64::MAX;
    item.head_profit = f64::NEG_INFINITY;
}

/// Reduced-profit loss `(p_b − λ w_b) − (p_j − λ w_j) ≥ 0` of moving from base `b` to `item`.
fn loss(base: &ItemSlot, item: &ItemSlot, lambda: f64) -> f64 {
    let dw = item.weight as f64 - base.weight as f64;
    (base.profit - item.profit) + lambda * dw
}
