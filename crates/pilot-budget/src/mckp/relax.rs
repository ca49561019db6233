//! Dominance reduction, upper convex hulls and the LP relaxation (the first phase of every solver).
//!
//! Per class: sort by weight, drop dominated items (heavier and not more profitable), then keep
//! the upper convex hull, whose consecutive "increments" have strictly decreasing efficiency
//! Δprofit/Δweight. Sorting all increments by efficiency and taking them while they fit solves
//! the LP relaxation (Sinha & Zoltners 1979): at most one increment, the break item, is taken
//! fractionally, and its efficiency λ is the optimal dual price of capacity.

use core::cmp::Ordering;

use pilot_core::{Detail, Error, ErrorKind, MckpInstance, Result};

use super::scratch::{ClassSlot, Increment, ItemSlot, Scratch};

/// The one class the LP relaxation splits between two items.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fractional {
    /// The class.
    pub class: usize,
    /// Its item taken with weight `1 - fraction` (index within the class).
    pub lower: usize,
    /// Its item taken with weight `fraction` (index within the class).
    pub upper: usize,
    /// Share of `upper` in `(0, 1)`.
    pub fraction: f64,
}

/// The LP relaxation of an instance.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Relaxation {
    /// The LP optimum: an upper bound on every integer solution.
    pub bound: f64,
    /// The optimal dual price of capacity: efficiency of the break increment (0 when every
    /// class's most profitable item fits).
    pub lambda: f64,
    /// The fractional class, if any.
    pub fractional: Option<Fractional>,
    /// Value of the integer part (every class at its lower LP item).
    pub integer_value: f64,
    /// Weight of the integer part.
    pub integer_weight: u64,
    /// Number of hull increments (stored first in the increment slots, sorted).
    pub(crate) increments: usize,
    /// Position of the break increment in the sorted increments (`increments` when none).
    pub(crate) break_at: usize,
    /// Sum over classes of the largest absolute profit: the scale for float tolerances.
    pub(crate) scale: f64,
    /// Every profit is a whole number (and the sums stay exact in f64).
    pub(crate) integral: bool,
}

impl Relaxation {
    /// Absolute tolerance for comparing objective values of this instance.
    pub(crate) fn tolerance(&self) -> f64 {
        1e-9 * (1.0 + self.scale)
    }

    /// Every solution is worth a whole number, exactly represented.
    pub(crate) fn whole(&self) -> bool {
        self.integral && self.scale < 1e15
    }

    /// How much a bound must exceed the incumbent for a strict improvement to be possible:
    /// with whole-number profits an improvement gains at least 1.
    pub(crate) fn margin(&self) -> f64 {
        if self.whole() {
            1.0 - self.tolerance()
        } else {
            self.tolerance()
        }
    }
}

fn need(context: &'static str, expected: usize, found: usize) -> Result<()> {
    if found < expected {
        Err(Error::new(ErrorKind::BufferTooSmall, context)
            .with_detail(Detail::Mismatch { expected, found }))
    } else {
        Ok(())
    }
}

/// Checks that `choice` has one entry per class.
pub(crate) fn check_choice(instance: &MckpInstance<'_>, choice: &[usize]) -> Result<()> {
    pilot_core::check_len("mckp solve: choice", choice, instance.class_count())
}

/// Reduces every class, builds the hulls and solves the LP relaxation in `scratch`.
///
/// Leaves in `scratch.classes[c].pick` the lower LP item of class `c` (classes in instance order).
///
/// # Errors
/// [`BufferTooSmall`](ErrorKind::BufferTooSmall) for short scratch,
/// [`OutOfRange`](ErrorKind::OutOfRange) when weights or profits are so large that their sums
/// overflow, [`Infeasible`](ErrorKind::Infeasible) when the lightest items exceed the capacity.
pub(crate) fn relax(instance: &MckpInstance<'_>, scratch: &mut Scratch<'_>) -> Result<Relaxation> {
    let n = instance.item_count();
    let m = instance.class_count();
    need("mckp scratch: item slots", n, scratch.items.len())?;
    need("mckp scratch: increment slots", n, scratch.increments.len())?;
    need("mckp scratch: class slots", m, scratch.classes.len())?;

    let (mut max_total, mut min_total, mut scale) = (0u64, 0u64, 0.0f64);
    let (mut base_value, mut increments) = (0.0f64, 0usize);
    let integral = instance
        .profits()
        .iter()
        .all(|&p| p.abs() < 9.0e15 && p == (p as i64) as f64);
    for c in 0..m {
        let range = instance.class_range(c);
        let start = range.start;
        let (weights, profits) = instance.class(c);
        let slots = &mut scratch.items[range.clone()];
        for (j, slot) in slots.iter_mut().enumerate() {
            *slot = ItemSlot {
                weight: weights[j],
                profit: profits[j],
                item: j,
                head: 0,
                up_at: 0,
                down_at: 0,
                head_weight: 0,
                head_profit: 0.0,
                head_reach: 0.0,
            };
        }
        slots.sort_unstable_by(|a, b| {
            a.weight
                .cmp(&b.weight)
                .then(b.profit.total_cmp(&a.profit))
                .then(a.item.cmp(&b.item))
        });
        let mut len = 0usize;
        let mut largest = 0.0f64;
        for k in 0..slots.len() {
            let slot = slots[k];
            largest = largest.max(pilot_core::Real::abs(slot.profit));
            if len == 0 || slot.profit > slots[len - 1].profit {
                slots[len] = slot;
                len += 1;
            }
        }
        scale += largest;
        let lightest = slots[0];
        let heaviest = slots[len - 1];
        min_total = min_total.checked_add(lightest.weight).ok_or(overflow())?;
        max_total = max_total.checked_add(heaviest.weight).ok_or(overflow())?;
        base_value += lightest.profit;

        let hull = hull(
            start,
            &scratch.items[start..start + len],
            c,
            &mut scratch.increments[range],
        );
        // Compact the increments to the front: `increments <= start` always holds.
        for k in 0..hull {
            scratch.increments[increments + k] = scratch.increments[start + k];
        }
        increments += hull;
        scratch.classes[c] = ClassSlot {
            class: c,
            start,
            len,
            pick: start,
            base: start,
            blocked: false,
            in_core: false,
        };
    }
    if !scale.is_finite() {
        return Err(Error::new(
            ErrorKind::OutOfRange,
            "mckp: profits too large (their sum overflows f64)",
        ));
    }
    let capacity = instance.capacity();
    if min_total > capacity {
        return Err(Error::new(
            ErrorKind::Infeasible,
            "mckp: the lightest item of every class together exceed the capacity",
        )
        .with_detail(Detail::Range {
            value: min_total as f64,
            min: 0.0,
            max: capacity as f64,
        }));
    }

    let incs = &mut scratch.increments[..increments];
    incs.sort_unstable_by(by_efficiency);
    let mut residual = capacity - min_total;
    let mut value = base_value;
    let mut break_at = increments;
    for (k, inc) in incs.iter().enumerate() {
        if inc.dw <= residual {
            residual -= inc.dw;
            value += inc.dp;
            scratch.classes[inc.class].pick = inc.to;
        } else {
            break_at = k;
            break;
        }
    }
    for class in scratch.classes[..m].iter_mut() {
        class.base = class.pick;
    }
    let (bound, lambda, fractional) = match incs.get(break_at) {
        Some(inc) => {
            let fraction = residual as f64 / inc.dw as f64;
            let fractional = (residual > 0).then(|| Fractional {
                class: inc.class,
                lower: scratch.items[inc.from].item,
                upper: scratch.items[inc.to].item,
                fraction,
            });
            (value + fraction * inc.dp, inc.eff, fractional)
        }
        None => (value, 0.0, None),
    };
    Ok(Relaxation {
        bound,
        lambda,
        fractional,
        integer_value: value,
        integer_weight: capacity - residual,
        increments,
        break_at,
        scale,
        integral,
    })
}

fn overflow() -> Error {
    Error::new(
        ErrorKind::OutOfRange,
        "mckp: weights too large (their sum overflows u64)",
    )
}

/// Decreasing efficiency; ties by class then weight so runs replay identically.
pub(crate) fn by_efficiency(a: &Increment, b: &Increment) -> Ordering {
    b.eff
        .total_cmp(&a.eff)
        .then(a.class.cmp(&b.class))
        .then(a.dw.cmp(&b.dw))
}

/// Writes the hull increments of one reduced class (slots at absolute offset `start`) into
/// `out`, returning how many. Consecutive increments have strictly decreasing computed
/// efficiency, which keeps a class's increments in hull order after the global sort.
fn hull(start: usize, items: &[ItemSlot], class: usize, out: &mut [Increment]) -> usize {
    let mut count = 0usize;
    for k in 1..items.len() {
        loop {
            let from = if count == 0 { start } else { out[count - 1].to };
            let candidate = increment(class, start, items, from, start + k);
            match count.checked_sub(1).map(|last| out[last].eff) {
                Some(previous) if candidate.eff >= previous => count -= 1,
                _ => {
                    out[count] = candidate;
                    count += 1;
                    break;
                }
            }
        }
    }
    count
}

fn increment(class: usize, start: usize, items: &[ItemSlot], from: usize, to: usize) -> Increment {
    let a = items[from - start];
    let b = items[to - start];
    let dw = b.weight - a.weight;
    let dp = b.profit - a.profit;
    Increment {
        class,
        from,
        to,
        dw,
        dp,
        eff: dp / dw as f64,
    }
}
