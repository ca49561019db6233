//! The greedy solver (Sinha & Zoltners): the LP's integer part, then every later increment
//! that still fits, in decreasing efficiency.

use pilot_core::{MckpInstance, MckpSolution, MckpSolver, Result};

use super::relax::{Relaxation, check_choice, relax};
use super::scratch::Scratch;

/// Greedy over the incremental efficiencies of the classes' upper convex hulls.
///
/// Reports the LP bound with its solution. `O(n log n)` for `n` items.
#[derive(Debug)]
pub struct GreedySolver<'s> {
    scratch: Scratch<'s>,
}

impl<'s> GreedySolver<'s> {
    /// A solver working in `scratch`.
    pub fn new(scratch: Scratch<'s>) -> Self {
        Self { scratch }
    }
}

/// Runs the greedy walk after [`relax`], leaving each class's pick in `scratch.classes`.
/// Returns the weight of the greedy solution.
pub(crate) fn greedy_walk(
    relaxation: &Relaxation,
    capacity: u64,
    scratch: &mut Scratch<'_>,
) -> u64 {
    let mut residual = capacity - relaxation.integer_weight;
    let Some(rest) = scratch
        .increments
        .get(relaxation.break_at..relaxation.increments)
    else {
        return relaxation.integer_weight;
    };
    for inc in rest {
        let class = &mut scratch.classes[inc.class];
        // A class's increments must be taken in hull order: once one is skipped, the class is done.
        if class.blocked || class.pick != inc.from {
            class.blocked = true;
            continue;
        }
        if inc.dw <= residual {
            residual -= inc.dw;
            class.pick = inc.to;
        } else {
            class.blocked = true;
        }
    }
    capacity - residual
}

/// Writes the picks left in `scratch.classes` (in any order: each slot knows its class)
/// into `choice`.
pub(crate) fn write_picks(scratch: &Scratch<'_>, classes: usize, choice: &mut [usize]) {
    for slot in &scratch.classes[..classes] {
        choice[slot.class] = scratch.items[slot.pick].item;
    }
}

impl MckpSolver for GreedySolver<'_> {
    fn solve(&mut self, instance: &MckpInstance<'_>, choice: &mut [usize]) -> Result<MckpSolution> {
        check_choice(instance, choice)?;
        let relaxation = relax(instance, &mut self.scratch)?;
        greedy_walk(&relaxation, instance.capacity(), &mut self.scratch);
        write_picks(&self.scratch, instance.class_count(), choice);
        let (value, weight) = instance.evaluate(choice)?;
        Ok(MckpSolution {
            value,
            weight,
            bound: Some(relaxation.bound),
        })
    }
}
