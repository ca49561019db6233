//! The LP relaxation solver: the bound, the fractional class, and the integer part as a choice.

use pilot_core::{MckpInstance, MckpSolution, MckpSolver, Result};

use super::greedy::write_picks;
use super::relax::{Relaxation, check_choice, relax};
use super::scratch::Scratch;

/// Solves the LP relaxation through the classes' upper convex hulls, `O(n log n)`.
///
/// As an [`MckpSolver`] it writes the LP's integer part (every class at its lower LP item) as
/// the choice and reports the LP optimum as the bound; [`LpSolver::relax`] also gives the
/// fractional class.
#[derive(Debug)]
pub struct LpSolver<'s> {
    scratch: Scratch<'s>,
}

impl<'s> LpSolver<'s> {
    /// A solver working in `scratch`.
    pub fn new(scratch: Scratch<'s>) -> Self {
        Self { scratch }
    }

    /// The LP relaxation of `instance`; `choice` receives the integer part.
    ///
    /// # Errors
    /// As [`MckpSolver::solve`].
    pub fn relax(
        &mut self,
        instance: &MckpInstance<'_>,
        choice: &mut [usize],
    ) -> Result<Relaxation> {
        check_choice(instance, choice)?;
        let relaxation = relax(instance, &mut self.scratch)?;
        write_picks(&self.scratch, instance.class_count(), choice);
        Ok(relaxation)
    }
}

impl MckpSolver for LpSolver<'_> {
    fn solve(&mut self, instance: &MckpInstance<'_>, choice: &mut [usize]) -> Result<MckpSolution> {
        let relaxation = self.relax(instance, choice)?;
        let (value, weight) = instance.evaluate(choice)?;
        Ok(MckpSolution {
            value,
            weight,
            bound: Some(relaxation.bound),
        })
    }
}
