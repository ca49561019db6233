//! Allocating conveniences: owned instances and solvers that size (and grow) their own scratch.

use alloc::vec;
use alloc::vec::Vec;

use pilot_core::{Detail, ErrorKind, MckpInstance, MckpSolution, MckpSolver, Result, RngCore};

use crate::mckp::{
    ClassSlot, CoreScratch, CoreSolver, CoreStats, DpScratch, DpSolver, GreedySolver, Increment,
    InstanceKind, ItemSlot, LpSolver, Record, Relaxation, Scratch, State, capacity_at,
    generate_into,
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
}

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
        }
    }

    /// A solver whose state lists and records together stay within `bytes` bytes (see
    /// [`CoreScratch::bytes`]; the hull scratch, proportional to the instance, comes on top).
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

    /// What the last solve did (see [`CoreStats`]).
    pub fn stats(&self) -> CoreStats {
        self.stats
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
        // A search that ran out of state slots goes on where it stopped once the lists have
        // grown (they keep their contents); one out of records starts over (collecting them
        // rewrote the references of the list it was building only).
        let mut resume = None;
        loop {
            let core = CoreScratch::new(&mut self.current, &mut self.next, &mut self.records);
            let mut solver = CoreSolver::new(self.buffers.fit(instance), core).resuming(resume);
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
