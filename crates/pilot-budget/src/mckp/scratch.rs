//! Scratch space the offline solvers work in, borrowed from the caller, with `const fn` sizing.

/// One item of a class after dominance reduction (weight ascending, profit strictly ascending).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ItemSlot {
    pub(crate) weight: u64,
    pub(crate) profit: f64,
    /// Index of the item within its class in the caller's instance.
    pub(crate) item: usize,
    /// The core solver's merge head into the state list.
    pub(crate) head: u32,
    /// The merge's cursors into the tables of the outside LP (up and down), moved as `head`
    /// advances (they fit in `head`'s padding).
    pub(crate) up_at: u8,
    pub(crate) down_at: u8,
    /// Weight of the state at `head` moved to this item (`u64::MAX`: none left / not a
    /// candidate), cached so the merge compares without reloading states.
    pub(crate) head_weight: u64,
    /// Profit of the state at `head` moved to this item.
    pub(crate) head_profit: f64,
    /// Its profit plus the LP of the classes outside the core, as the merge's filter computed
    /// it (`−∞` when the Lagrangian test already failed), so the merge does not compute it
    /// again.
    pub(crate) head_reach: f64,
}

/// One step along the upper convex hull of a class: from one hull vertex to the next.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Increment {
    pub(crate) class: usize,
    /// Absolute positions of the two vertices in the item slots.
    pub(crate) from: usize,
    pub(crate) to: usize,
    pub(crate) dw: u64,
    pub(crate) dp: f64,
    /// `dp / dw`, the efficiency the LP and the greedy walk rank increments by.
    pub(crate) eff: f64,
}

/// Per-class bookkeeping.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ClassSlot {
    pub(crate) class: usize,
    /// First item slot of the class (its flat start in the instance).
    pub(crate) start: usize,
    /// Number of undominated items, stored at `start..start + len`.
    pub(crate) len: usize,
    /// Absolute slot of the item the LP (integer part) / greedy walk picks.
    pub(crate) pick: usize,
    /// Absolute slot of the LP's integer-part item: the core solver's starting point.
    pub(crate) base: usize,
    /// Set once the greedy walk skipped an increment of this class.
    pub(crate) blocked: bool,
    /// Set once the core solver has added this class to its core.
    pub(crate) in_core: bool,
}

/// A partial solution of the core solver: classes added so far at some item, the rest at base.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct State {
    pub(crate) weight: u64,
    pub(crate) profit: f64,
    /// Last materialised choice record of this state's chain (`NO_RECORD` for none).
    pub(crate) record: u32,
    /// A choice in the class being added, not yet written as a record (`NO_ITEM` for base).
    pub(crate) pending: u32,
}

/// One non-base choice in the chain of a core-solver state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Record {
    pub(crate) parent: u32,
    pub(crate) class: u32,
    pub(crate) slot: u32,
    /// Mark and forwarding index while the records are compacted (unreachable ones dropped);
    /// `NO_RECORD` otherwise.
    pub(crate) forward: u32,
}

pub(crate) const NO_RECORD: u32 = u32::MAX;
pub(crate) const NO_ITEM: u32 = u32::MAX;

/// The scratch space of the LP and greedy solvers (and the first phase of the exact one).
///
/// Size it with [`Scratch::item_slots`] and [`Scratch::class_slots`]:
///
/// ```
/// use pilot_budget::{ClassSlot, Increment, ItemSlot, Scratch};
/// const M: usize = 4;
/// const N: usize = 12;
/// let mut items = [ItemSlot::default(); Scratch::item_slots(N)];
/// let mut incs = [Increment::default(); Scratch::item_slots(N)];
/// let mut classes = [ClassSlot::default(); Scratch::class_slots(M)];
/// let scratch = Scratch::new(&mut items, &mut incs, &mut classes);
/// # let _ = scratch;
/// ```
#[derive(Debug)]
pub struct Scratch<'s> {
    pub(crate) items: &'s mut [ItemSlot],
    pub(crate) increments: &'s mut [Increment],
    pub(crate) classes: &'s mut [ClassSlot],
}

impl<'s> Scratch<'s> {
    /// Item slots (and increment slots) needed for an instance of `items` items in all.
    pub const fn item_slots(items: usize) -> usize {
        items
    }

    /// Class slots needed for an instance of `classes` classes.
    pub const fn class_slots(classes: usize) -> usize {
        classes
    }

    /// Wraps the caller's buffers.
    pub fn new(
        items: &'s mut [ItemSlot],
        increments: &'s mut [Increment],
        classes: &'s mut [ClassSlot],
    ) -> Self {
        Self {
            items,
            increments,
            classes,
        }
    }
}

/// The extra scratch space of the exact core solver: two state lists and the choice records.
///
/// The number of states the core solver keeps depends on the instance (how far the optimum is
/// from the LP solution), so there is no exact a-priori size: [`CoreScratch::SUGGESTED_STATES`]
/// and [`CoreScratch::SUGGESTED_RECORDS`] solve the generated benchmark suites (see the crate
/// README for the states each kept), and a buffer that turns out too small gives
/// [`BufferTooSmall`](pilot_core::ErrorKind::BufferTooSmall) naming the size reached (the
/// `alloc` solver grows and retries within its caller's memory budget). Records no live state
/// reaches any more are collected when the record buffer fills, so it needs to hold the live
/// choice chains (a few per state), not the whole search; [`CoreScratch::bytes`] gives the size
/// of a scratch in bytes.
#[derive(Debug)]
pub struct CoreScratch<'s> {
    pub(crate) current: &'s mut [State],
    pub(crate) next: &'s mut [State],
    pub(crate) records: &'s mut [Record],
    /// Set while `current` is the slice passed as `next` (the lists swap once per class), so
    /// a resumed search finds its list again.
    pub(crate) flipped: bool,
}

impl<'s> CoreScratch<'s> {
    /// A starting size, 6 MB per list: enough for the uncorrelated, strongly correlated and
    /// most weakly correlated instances of the suite up to 1 000 × 50 (the crate README lists
    /// the peak states each instance kept; subset-sum-like ones need more).
    pub const SUGGESTED_STATES: usize = 1 << 18;
    /// Record slots to go with [`SUGGESTED_STATES`](Self::SUGGESTED_STATES) (32 MB).
    pub const SUGGESTED_RECORDS: usize = 1 << 21;

    /// Bytes taken by `states` slots per list (two lists) and `records` record slots.
    pub const fn bytes(states: usize, records: usize) -> usize {
        2 * states * core::mem::size_of::<State>() + records * core::mem::size_of::<Record>()
    }

    /// Wraps the caller's buffers: `current` and `next` hold state lists of equal capacity
    /// (the smaller of the two lengths is used).
    pub fn new(current: &'s mut [State], next: &'s mut [State], records: &'s mut [Record]) -> Self {
        Self {
            current,
            next,
            records,
            flipped: false,
        }
    }
}

/// Scratch space of the plain dynamic program over weights.
#[derive(Debug)]
pub struct DpScratch<'s> {
    pub(crate) values: &'s mut [f64],
    pub(crate) choices: &'s mut [u16],
}

impl<'s> DpScratch<'s> {
    /// Value slots needed for capacity `capacity` (two rows of `capacity + 1`).
    pub const fn value_slots(capacity: usize) -> usize {
        2 * (capacity + 1)
    }

    /// Choice slots needed for `classes` classes and capacity `capacity`.
    pub const fn choice_slots(classes: usize, capacity: usize) -> usize {
        classes * (capacity + 1)
    }

    /// Wraps the caller's buffers.
    pub fn new(values: &'s mut [f64], choices: &'s mut [u16]) -> Self {
        Self { values, choices }
    }
}
