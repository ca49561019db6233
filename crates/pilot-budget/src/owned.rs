//! Allocating conveniences: owned instances and solvers that size (and grow) their own scratch.

use alloc::vec;
use alloc::vec::Vec;

use pilot_core::{Detail, ErrorKind, MckpInstance, MckpSolution, MckpSolver, Result, RngCore};

use crate::mckp::core::{OutsideBound, floor, join_order};
use crate::mckp::greedy::{greedy_walk, write_picks};
use crate::mckp::ranks::RankBound;
use crate::mckp::relax::{check_choice, relax};
use crate::mckp::{
    ClassSlot, CoreScratch, CoreSolver, CoreStats, DpScratch, DpSolver, GreedySolver, Hint,
    Increment, InstanceKind, ItemSlot, LpSolver, Record, Relaxation, Scratch, State, capacity_at,
    count, exchange, generate_into,
};

/// An instance that owns its arrays.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OwnedInstance {
    /// The capacity.
    pub capacity: u64,
    /// Weights, flat.
    pub weights: Vec<u64>,
    /// Profits, flat.
    pub profits: Vec<f64>,
    /// End offset of each class in the flat arrays.
    pub class_ends: Vec<usize>,
}

impl OwnedInstance {
    /// An instance from one `(weights, profits)` pair of lists per class.
    pub fn from_classes(capacity: u64, classes: &[(Vec<u64>, Vec<f64>)]) -> Self {
        let mut out = Self {
            capacity,
            ..Self::default()
        };
        for (w, p) in classes {
            out.weights.extend_from_slice(w);
            out.profits.extend_from_slice(p);
            out.class_ends.push(out.weights.len());
        }
        out
    }

    /// A generated instance (see [`generate_into`]).
    ///
    /// # Errors
    /// As [`generate_into`].
    pub fn generate(
        kind: InstanceKind,
        classes: usize,
        items: usize,
        range: u64,
        rng: &mut dyn RngCore,
    ) -> Result<Self> {
        let total = classes.checked_mul(items).ok_or(pilot_core::Error::new(
            ErrorKind::InvalidParameter,
            "generate: classes × items overflows",
        ))?;
        let mut weights = vec![0; total];
        let mut profits = vec![0.0; total];
        let mut class_ends = vec![0; classes];
        let capacity = generate_into(
            kind,
            classes,
            items,
            range,
            rng,
            &mut weights,
            &mut profits,
            &mut class_ends,
        )?;
        Ok(Self {
            capacity,
            weights,
            profits,
            class_ends,
        })
    }

    /// Moves the capacity to `ratio` of the way from the lightest choice of every class to the
    /// heaviest (see [`capacity_at`]).
    ///
    /// # Errors
    /// As [`capacity_at`].
    pub fn set_capacity_ratio(&mut self, ratio: f64) -> Result<()> {
        self.capacity = capacity_at(ratio, &self.weights, &self.class_ends)?;
        Ok(())
    }

    /// The checked borrowed view the solvers take.
    ///
    /// # Errors
    /// As [`MckpInstance::new`].
    pub fn view(&self) -> Result<MckpInstance<'_>> {
        MckpInstance::new(
            self.capacity,
            &self.weights,
            &self.profits,
            &self.class_ends,
        )
    }
}

/// Scratch vectors for the hull-based phases, grown to fit each instance.
#[derive(Clone, Debug, Default)]
struct HullBuffers {
    items: Vec<ItemSlot>,
    increments: Vec<Increment>,
    classes: Vec<ClassSlot>,
}

impl HullBuffers {
    fn fit(&mut self, instance: &MckpInstance<'_>) -> Scratch<'_> {
        let n = Scratch::item_slots(instance.item_count());
        let m = Scratch::class_slots(instance.class_count());
        if self.items.len() < n {
            self.items.resize(n, ItemSlot::default());
            self.increments.resize(n, Increment::default());
        }
        if self.classes.len() < m {
            self.classes.resize(m, ClassSlot::default());
        }
        Scratch::new(&mut self.items, &mut self.increments, &mut self.classes)
    }
}

/// [`LpSolver`] with its own scratch.
#[derive(Clone, Debug, Default)]
pub struct Lp {
    buffers: HullBuffers,
}

impl Lp {
    /// A solver with empty scratch.
    pub fn new() -> Self {
        Self::default()
    }

    /// The LP relaxation (see [`LpSolver::relax`]).
    ///
    /// # Errors
    /// As [`MckpSolver::solve`].
    pub fn relax(
        &mut self,
        instance: &MckpInstance<'_>,
        choice: &mut [usize],
    ) -> Result<Relaxation> {
        LpSolver::new(self.buffers.fit(instance)).relax(instance, choice)
    }
}

impl MckpSolver for Lp {
    fn solve(&mut self, instance: &MckpInstance<'_>, choice: &mut [usize]) -> Result<MckpSolution> {
        LpSolver::new(self.buffers.fit(instance)).solve(instance, choice)
    }
}

/// [`GreedySolver`] with its own scratch.
#[derive(Clone, Debug, Default)]
pub struct Greedy {
    buffers: HullBuffers,
}

impl Greedy {
    /// A solver with empty scratch.
    pub fn new() -> Self {
        Self::default()
    }
}

impl MckpSolver for Greedy {
    fn solve(&mut self, instance: &MckpInstance<'_>, choice: &mut [usize]) -> Result<MckpSolution> {
        GreedySolver::new(self.buffers.fit(instance)).solve(instance, choice)
    }
}

/// [`CoreSolver`] (exact) with its own scratch, grown and retried when it runs out, within
/// a memory budget its caller sets.
#[derive(Clone, Debug)]
pub struct Exact {
    buffers: HullBuffers,
    current: Vec<State>,
    next: Vec<State>,
    records: Vec<Record>,
    budget: Option<usize>,
    stats: CoreStats,
    /// Whether to try the cardinality bound first (off for its own rank knapsacks).
    cardinality: bool,
    /// Whether the first phase re-solves a neighbourhood (off for the neighbourhood's own
    /// solve).
    neighbourhood: bool,
    /// What the last solve's first phase did.
    start: StartStats,
    /// The rank-aware bound on the classes outside the core, when the instance has one.
    outside: Option<RankBound>,
}

/// What [`Exact`]'s first phase did: the cardinality bound, the exchanges (of one to four
/// classes' items) and the neighbourhood solve that try to settle the instance before the core
/// search.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StartStats {
    /// The cardinality bound, when the instance has one tighter than the LP's.
    pub cardinality_bound: Option<f64>,
    /// The greedy solution's value.
    pub greedy: f64,
    /// The best of the rank knapsacks' optima that fits the capacity (each is a choice of the
    /// instance), when it beats the greedy solution: the exchanges start from it.
    pub rank_choice: Option<f64>,
    /// The value after the exchanges.
    pub exchanged: f64,
    /// The exchange rounds that gained.
    pub exchange_rounds: usize,
    /// The value after re-solving the neighbourhood (the [`NEIGHBOURHOOD`] classes nearest to
    /// changing item, the others fixed), when that gained.
    pub neighbourhood: Option<f64>,
    /// Whether the first phase reached the bound (the cardinality bound, else the LP's; its
    /// floor when profits are whole numbers), so the core search did not run.
    pub settled: bool,
}

/// How the first phase leaves the solve.
enum Start {
    /// Search on, from this hint.
    Search(Hint),
    /// Solved: the solution in `choice` reaches the bound.
    Done(MckpSolution),
}

/// Classes the first phase re-solves together when the exchanges stop short of the bound (on
/// the instances of `mckp_suite --sweep 20` where the optimum is the bound and the exchanges
/// stopped 1–10 short, 50 reached it in each, in 3–150 ms; 100 did too, once in 4 s).
const NEIGHBOURHOOD: usize = 50;

/// Rounds of exchanges at most (each gains; the suite's instances gain in 0–5).
const EXCHANGE_ROUNDS: usize = 16;

impl Default for Exact {
    fn default() -> Self {
        Self::new()
    }
}

/// State slots per list the solver starts with (and grows from).
const FIRST_STATES: usize = 1 << 12;
/// Record slots per state slot the solver starts with.
const FIRST_RECORDS_PER_STATE: usize = 16;
/// Growth factor of the records when they ran out (growing them restarts the search).
const GROWTH: usize = 4;
/// Growth of the state lists when they ran out, in halves: the search resumes where it
/// stopped, so growing in smaller steps costs little and keeps the lists nearer the need.
const STATE_GROWTH_HALVES: usize = 3;

impl Exact {
    /// A solver with no memory budget: its state lists and records grow as the instance needs,
    /// until an allocation fails (reported as [`BufferTooSmall`](ErrorKind::BufferTooSmall)).
    pub fn new() -> Self {
        Self {
            buffers: HullBuffers::default(),
            current: Vec::new(),
            next: Vec::new(),
            records: Vec::new(),
            budget: None,
            stats: CoreStats::default(),
            cardinality: true,
            neighbourhood: true,
            start: StartStats::default(),
            outside: None,
        }
    }

    /// A solver whose state lists and records together stay within `bytes` bytes (see
    /// [`CoreScratch::bytes`]; the hull scratch and the first phase's lists of moves,
    /// proportional to the instance, come on top; the first phase's rank knapsacks and
    /// neighbourhood solve and the core search's rank tables keep to the same budget, each on
    /// its own).
    /// An instance that needs more fails with [`BufferTooSmall`](ErrorKind::BufferTooSmall),
    /// whose detail gives the bytes the next growth needed (`expected`) and the budget
    /// (`found`).
    pub fn with_memory_budget(bytes: usize) -> Self {
        Self {
            budget: Some(bytes),
            ..Self::new()
        }
    }

    /// The memory budget in bytes, if any.
    pub fn memory_budget(&self) -> Option<usize> {
        self.budget
    }

    /// Bytes held by the state lists and records now (they are kept for later calls).
    pub fn memory_bytes(&self) -> usize {
        CoreScratch::bytes(self.current.len(), self.records.len())
    }

    /// What the last solve's core search did (see [`CoreStats`]; all zero when the first
    /// phase settled the instance).
    pub fn stats(&self) -> CoreStats {
        self.stats
    }

    /// What the last solve's first phase did (see [`StartStats`]).
    pub fn start_stats(&self) -> StartStats {
        self.start
    }

    /// The first phase: the greedy solution into `choice`, the cardinality bound when the
    /// instance has one tighter than the LP's (see `mckp::count`), then exchanges towards the
    /// tighter bound (see `mckp::exchange`) and, where they stop short, the neighbourhood
    /// solve. Done when they reach it.
    fn start(&mut self, instance: &MckpInstance<'_>, choice: &mut [usize]) -> Result<Start> {
        self.start = StartStats::default();
        check_choice(instance, choice)?;
        let (greedy, lp, slope, whole) = {
            let mut scratch = self.buffers.fit(instance);
            let relaxation = relax(instance, &mut scratch)?;
            greedy_walk(&relaxation, instance.capacity(), &mut scratch);
            write_picks(&scratch, instance.class_count(), choice);
            let value = instance.evaluate(choice)?.0;
            (
                value,
                relaxation.bound,
                relaxation.lambda,
                relaxation.whole(),
            )
        };
        self.start.greedy = greedy;
        self.start.exchanged = greedy;
        // The rank knapsacks are solved by an exact solver of their own, without this phase
        // and within the same memory budget; one that does not fit leaves the instance
        // without this bound (the core search still answers).
        let mut nested = Self {
            cardinality: false,
            budget: self.budget,
            ..Self::new()
        };
        // Each rank knapsack's optimum is a choice of this instance too (the same classes and
        // items): one that fits is a candidate. Where the bound's best rank sum has its
        // largest weight below the capacity, that choice reaches the bound: it is optimal.
        let mut picks = vec![0; instance.class_count()];
        let mut found = (greedy, None::<Vec<usize>>);
        let mut solve = |count: &MckpInstance<'_>| -> Result<f64> {
            let value = nested.solve(count, &mut picks)?.value;
            let (profit, weight) = instance.evaluate(&picks)?;
            if weight <= instance.capacity() && profit > found.0 {
                found = (profit, Some(picks.clone()));
            }
            Ok(value)
        };
        let cb = match count::upper_bound(instance, lp, greedy, &mut solve) {
            Err(e) if e.kind() == ErrorKind::BufferTooSmall => None,
            other => other?,
        };
        // The greedy solution, kept when the exchanges start from a rank knapsack's choice.
        let mut greedy_choice = None;
        if let (value, Some(best)) = found {
            greedy_choice = Some(choice.to_vec());
            choice.copy_from_slice(&best);
            self.start.rank_choice = Some(value);
        }
        self.start.cardinality_bound = cb;
        let bound = cb.unwrap_or(lp);
        // With whole profits (and exact sums) a solution worth the bound's floor is optimal.
        // (Not the core search's `margin`: its tolerance grows with the sum of the profits, to
        // about 1 at 10⁹, where both bounds are exact to 10⁻⁶: the LP's is a whole sum plus
        // one fraction, the cardinality bound carries its own rounding slack.)
        let tol = 1e-9 * (1.0 + bound.abs());
        let enough = if whole {
            floor(bound + 1e-12 * (1.0 + bound.abs())) - 0.5
        } else {
            bound - tol
        };
        let (mut value, mut rounds) =
            exchange::improve(instance, choice, enough, EXCHANGE_ROUNDS, slope, tol);
        // Short of the bound from the rank knapsack's choice: the exchanges from the greedy
        // solution may reach it (or end higher), which spares the search (or a pass of it).
        if let Some(mut other) = greedy_choice.filter(|_| value < enough) {
            let (v, r) =
                exchange::improve(instance, &mut other, enough, EXCHANGE_ROUNDS, slope, tol);
            if v > value {
                (value, rounds) = (v, r);
                choice.copy_from_slice(&other);
            }
        }
        (self.start.exchanged, self.start.exchange_rounds) = (value, rounds);
        if value < enough
            && self.neighbourhood
            && let Some(better) = self.resolve_neighbourhood(instance, choice, slope, value)?
        {
            value = better;
            self.start.neighbourhood = Some(better);
        }
        if value >= enough {
            self.start.settled = true;
            let (value, weight) = instance.evaluate(choice)?;
            return Ok(Start::Done(MckpSolution {
                value,
                weight,
                bound: Some(bound),
            }));
        }
        if cb.is_some() {
            self.outside = self.rank_bound(instance);
        }
        Ok(Start::Search(Hint {
            value,
            upper_bound: bound,
        }))
    }

    /// Re-solves exactly the [`NEIGHBOURHOOD`] classes whose other items come nearest the
    /// current one in reduced profit (at the LP's dual price `slope`), the other classes fixed
    /// at their items in `choice`; writes the result into `choice` and returns its value when
    /// it beats `value`. The exchanges change at most four classes; where the bound is reached
    /// only by changing more (inverse instances: no class's item can move without many others
    /// making up its weight), this finds it at a fraction of the core search's cost (weak
    /// 10 000 × 20 at 0.25, seed 17: 20 ms against 7.5 s). The nested solve keeps to the
    /// memory budget; one that does not fit leaves `choice` as it was.
    fn resolve_neighbourhood(
        &mut self,
        instance: &MckpInstance<'_>,
        choice: &mut [usize],
        slope: f64,
        value: f64,
    ) -> Result<Option<f64>> {
        let m = instance.class_count();
        // A neighbourhood of every class would be the core search itself.
        if m <= NEIGHBOURHOOD {
            return Ok(None);
        }
        // The least reduced-profit loss of moving each class off its item (ties by class).
        let mut near: Vec<(f64, usize)> = (0..m)
            .map(|c| {
                let (w, p) = instance.class(c);
                let reduced = |j: usize| p[j] - slope * w[j] as f64;
                let loss = (0..w.len())
                    .filter(|&j| j != choice[c])
                    .map(|j| reduced(choice[c]) - reduced(j))
                    .fold(f64::INFINITY, f64::min);
                (loss, c)
            })
            .collect();
        let k = NEIGHBOURHOOD;
        near.select_nth_unstable_by(k - 1, |a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let mut free: Vec<usize> = near[..k].iter().map(|&(_, c)| c).collect();
        free.sort_unstable();
        let (mut fixed_weight, mut fixed_profit) = (0u64, 0.0);
        let mut at = 0;
        for (c, &item) in choice.iter().enumerate() {
            if free.get(at) == Some(&c) {
                at += 1;
            } else {
                let (w, p) = instance.class(c);
                fixed_weight += w[item];
                fixed_profit += p[item];
            }
        }
        let classes: Vec<(Vec<u64>, Vec<f64>)> = free
            .iter()
            .map(|&c| {
                let (w, p) = instance.class(c);
                (w.to_vec(), p.to_vec())
            })
            .collect();
        let sub =
            OwnedInstance::from_classes(instance.capacity().saturating_sub(fixed_weight), &classes);
        let view = sub.view()?;
        let mut picks: Vec<usize> = free.iter().map(|&c| choice[c]).collect();
        let mut nested = Self {
            neighbourhood: false,
            budget: self.budget,
            ..Self::new()
        };
        let solved = match nested.solve(&view, &mut picks) {
            Err(e) if e.kind() == ErrorKind::BufferTooSmall => return Ok(None),
            other => other?,
        };
        // A gain within rounding is none (the current items are a choice of the neighbourhood).
        if fixed_profit + solved.value <= value + 1e-9 * (1.0 + value.abs()) {
            return Ok(None);
        }
        for (&c, &item) in free.iter().zip(&picks) {
            choice[c] = item;
        }
        Ok(Some(instance.evaluate(choice)?.0))
    }

    /// The rank-aware bound on the classes outside the core (see `mckp::ranks`), for the
    /// join order the core search will follow.
    fn rank_bound(&mut self, instance: &MckpInstance<'_>) -> Option<RankBound> {
        let (_, rank) = count::ranks(instance);
        let fit = count::fit(instance, &rank)?;
        let m = instance.class_count();
        let mut scratch = self.buffers.fit(instance);
        let relaxation = relax(instance, &mut scratch).ok()?;
        greedy_walk(&relaxation, instance.capacity(), &mut scratch);
        let base: Vec<usize> = scratch.classes[..m]
            .iter()
            .map(|slot| scratch.items[slot.base].item)
            .collect();
        let mut order = Vec::new();
        join_order(&mut scratch, &relaxation, m, |class| order.push(class));
        RankBound::new(
            instance,
            &rank,
            fit,
            relaxation.lambda,
            &order,
            &base,
            self.budget,
        )
    }

    /// Grows the lists to `states` slots and the records to `records` slots; past the budget,
    /// to as much as fits (an error when nothing more does).
    fn resize(&mut self, states: usize, records: usize) -> Result<()> {
        let (had_states, had_records) = (self.current.len(), self.records.len());
        let mut states = states.max(had_states);
        let mut records = records.max(had_records);
        let wanted = CoreScratch::bytes(states, records);
        if let Some(budget) = self.budget
            && wanted > budget
        {
            let state_bytes = CoreScratch::bytes(1, 0);
            let record_bytes = CoreScratch::bytes(0, 1);
            if states > had_states {
                states = budget.saturating_sub(CoreScratch::bytes(0, records)) / state_bytes;
            }
            if records > had_records {
                records = budget.saturating_sub(CoreScratch::bytes(states, 0)) / record_bytes;
            }
            if states <= had_states && records <= had_records {
                return Err(pilot_core::Error::new(
                    ErrorKind::BufferTooSmall,
                    "owned::Exact: memory budget (bytes) too small for the core solver's \
                     state lists and records (expected: bytes the next growth needed, found: \
                     the budget)",
                )
                .with_detail(Detail::Mismatch {
                    expected: wanted,
                    found: budget,
                }));
            }
        }
        grow(&mut self.current, states)?;
        grow(&mut self.next, states)?;
        grow(&mut self.records, records)
    }
}

/// Grows `v` to `len` default slots, reporting an allocation failure as an error.
fn grow<T: Clone + Default>(v: &mut Vec<T>, len: usize) -> Result<()> {
    if len > v.len() {
        v.try_reserve_exact(len - v.len()).map_err(|_| {
            pilot_core::Error::new(
                ErrorKind::BufferTooSmall,
                "owned::Exact: allocation failed growing the core solver's scratch",
            )
            .with_detail(Detail::Mismatch {
                expected: len,
                found: v.len(),
            })
        })?;
        v.resize(len, T::default());
    }
    Ok(())
}

impl MckpSolver for Exact {
    fn solve(&mut self, instance: &MckpInstance<'_>, choice: &mut [usize]) -> Result<MckpSolution> {
        if self.current.is_empty() {
            // Start small (within the budget) and grow on demand; the buffers are kept for
            // later calls. Growing the records restarts the search, so the records (a few per
            // live state) start at `FIRST_RECORDS_PER_STATE` per state slot.
            let mut states = instance.item_count().clamp(FIRST_STATES, 1 << 16);
            while states > 1
                && self.budget.is_some_and(|b| {
                    CoreScratch::bytes(states, FIRST_RECORDS_PER_STATE * states) > b
                })
            {
                states /= 2;
            }
            self.resize(states, FIRST_RECORDS_PER_STATE * states)?;
        }
        self.stats = CoreStats::default();
        self.outside = None;
        let hint = if self.cardinality {
            match self.start(instance, choice)? {
                Start::Done(solution) => return Ok(solution),
                Start::Search(hint) => Some(hint),
            }
        } else {
            None
        };
        // A search that ran out of state slots goes on where it stopped once the lists have
        // grown (they keep their contents); one out of records starts over (collecting them
        // rewrote the references of the list it was building only) from the best solution in
        // `choice`.
        let mut resume = None;
        loop {
            let hint = match hint {
                Some(h) if resume.is_none() => Some(Hint {
                    value: instance.evaluate(choice)?.0,
                    ..h
                }),
                other => other,
            };
            let core = CoreScratch::new(&mut self.current, &mut self.next, &mut self.records);
            let outside = self.outside.as_ref().map(|o| o as &dyn OutsideBound);
            let mut solver = CoreSolver::new(self.buffers.fit(instance), core)
                .resuming(resume)
                .hinted(hint)
                .bounded_outside(outside);
            let result = solver.solve(instance, choice);
            self.stats = solver.stats();
            resume = solver.take_resume();
            match result {
                Err(e)
                    if e.kind() == ErrorKind::BufferTooSmall
                        && e.context().starts_with("CoreSolver scratch") =>
                {
                    let (states, records) = (self.current.len(), self.records.len());
                    if e.context().contains("state") {
                        // A record per state slot at least (when the budget allows): the live
                        // chains need about one per state when most states differ in the last
                        // classes (subset-sum), and records running out means starting over.
                        // (At least one more slot: a list of one slot must grow too.)
                        let states = (states.saturating_mul(STATE_GROWTH_HALVES) / 2)
                            .max(states.saturating_add(1));
                        let more = records.max(states);
                        let records = if self
                            .budget
                            .is_none_or(|b| CoreScratch::bytes(states, more) <= b)
                        {
                            more
                        } else {
                            records
                        };
                        self.resize(states, records)?;
                    } else {
                        resume = None;
                        self.resize(states, records.saturating_mul(GROWTH))?;
                    }
                }
                other => return other,
            }
        }
    }
}

/// [`DpSolver`] (plain DP over weights) with its own scratch.
#[derive(Clone, Debug, Default)]
pub struct WeightDp {
    values: Vec<f64>,
    choices: Vec<u16>,
}

impl WeightDp {
    /// A solver with empty scratch.
    pub fn new() -> Self {
        Self::default()
    }
}

impl MckpSolver for WeightDp {
    fn solve(&mut self, instance: &MckpInstance<'_>, choice: &mut [usize]) -> Result<MckpSolution> {
        let capacity = usize::try_from(instance.capacity()).unwrap_or(usize::MAX - 1);
        let values = DpScratch::value_slots(capacity.min(usize::MAX / 4));
        let choices = instance
            .class_count()
            .saturating_mul(capacity.saturating_add(1));
        if values > self.values.len() {
            self.values.resize(values, 0.0);
        }
        if choices > self.choices.len() {
            self.choices
                .try_reserve(choices - self.choices.len())
                .map_err(|_| {
                    pilot_core::Error::new(
                        ErrorKind::BufferTooSmall,
                        "WeightDp: choice table does not fit in memory",
                    )
                })?;
            self.choices.resize(choices, 0);
        }
        DpSolver::new(DpScratch::new(&mut self.values, &mut self.choices)).solve(instance, choice)
    }
}
