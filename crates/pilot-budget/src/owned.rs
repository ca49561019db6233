//! Allocating conveniences: owned instances and solvers that size (and grow) their own scratch.

use alloc::vec;
use alloc::vec::Vec;

use pilot_core::{ErrorKind, MckpInstance, MckpSolution, MckpSolver, Result, RngCore};

use crate::mckp::{
    ClassSlot, CoreScratch, CoreSolver, DpScratch, DpSolver, GreedySolver, Increment, InstanceKind,
    ItemSlot, LpSolver, Record, Relaxation, Scratch, State, generate_into,
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

/// [`CoreSolver`] (exact) with its own scratch, doubled and retried when it runs out.
#[derive(Clone, Debug)]
pub struct Exact {
    buffers: HullBuffers,
    current: Vec<State>,
    next: Vec<State>,
    records: Vec<Record>,
    max_states: usize,
}

impl Default for Exact {
    fn default() -> Self {
        Self::new()
    }
}

impl Exact {
    /// A solver that may grow to 2²² states per list and 2²⁴ records (about 0.4 GB).
    pub fn new() -> Self {
        Self::with_limit(1 << 22)
    }

    /// A solver that grows to at most `max_states` states per list (and 4× as many records)
    /// before giving up with [`BufferTooSmall`](ErrorKind::BufferTooSmall).
    pub fn with_limit(max_states: usize) -> Self {
        Self {
            buffers: HullBuffers::default(),
            current: Vec::new(),
            next: Vec::new(),
            records: Vec::new(),
            max_states: max_states.max(1),
        }
    }
}

impl MckpSolver for Exact {
    fn solve(&mut self, instance: &MckpInstance<'_>, choice: &mut [usize]) -> Result<MckpSolution> {
        if self.current.is_empty() {
            // Start near what typical instances need and grow 8x on demand (each growth
            // restarts the solve); the buffers are kept for later calls.
            let states = instance
                .item_count()
                .saturating_mul(16)
                .clamp(256, 1 << 16)
                .min(self.max_states);
            self.current.resize(states, State::default());
            self.next.resize(states, State::default());
            self.records
                .resize((4 * states).min(4 * self.max_states), Record::default());
        }
        loop {
            let core = CoreScratch::new(&mut self.current, &mut self.next, &mut self.records);
            let result = CoreSolver::new(self.buffers.fit(instance), core).solve(instance, choice);
            match result {
                Err(e) if e.kind() == ErrorKind::BufferTooSmall => {
                    let states = self.current.len();
                    let records = self.records.len();
                    let grow_states = e.context().contains("state") && states < self.max_states;
                    let grow_records =
                        e.context().contains("records") && records < 4 * self.max_states;
                    if grow_states {
                        let n = (8 * states).min(self.max_states);
                        self.current.resize(n, State::default());
                        self.next.resize(n, State::default());
                    } else if grow_records {
                        self.records
                            .resize((8 * records).min(4 * self.max_states), Record::default());
                    } else {
                        return Err(e);
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
