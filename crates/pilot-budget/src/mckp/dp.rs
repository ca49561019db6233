//! The plain dynamic program over integer weights: `O(m · C · n)` time, `m · (C + 1)` choices.
//!
//! Slow for large capacities but simple enough to trust: the reference the core solver is
//! checked against on medium instances.

use pilot_core::{Detail, Error, ErrorKind, MckpInstance, MckpSolution, MckpSolver, Result};

use super::relax::check_choice;
use super::scratch::DpScratch;

/// Dynamic programming over every capacity `0..=C` (classes of at most 65 535 items).
#[derive(Debug)]
pub struct DpSolver<'s> {
    scratch: DpScratch<'s>,
}

impl<'s> DpSolver<'s> {
    /// A solver working in `scratch` (see [`DpScratch::value_slots`] and
    /// [`DpScratch::choice_slots`]).
    pub fn new(scratch: DpScratch<'s>) -> Self {
        Self { scratch }
    }
}

impl MckpSolver for DpSolver<'_> {
    fn solve(&mut self, instance: &MckpInstance<'_>, choice: &mut [usize]) -> Result<MckpSolution> {
        check_choice(instance, choice)?;
        let m = instance.class_count();
        let width = usize::try_from(instance.capacity())
            .ok()
            .and_then(|c| c.checked_add(1))
            .ok_or(Error::new(
                ErrorKind::BufferTooSmall,
                "DpSolver: capacity does not fit in memory",
            ))?;
        let values_needed = width.checked_mul(2);
        let choices_needed = width.checked_mul(m);
        for (context, needed, found) in [
            (
                "DpSolver scratch: values",
                values_needed,
                self.scratch.values.len(),
            ),
            (
                "DpSolver scratch: choices",
                choices_needed,
                self.scratch.choices.len(),
            ),
        ] {
            match needed {
                Some(needed) if needed <= found => {}
                _ => {
                    return Err(Error::new(ErrorKind::BufferTooSmall, context).with_detail(
                        Detail::Mismatch {
                            expected: needed.unwrap_or(usize::MAX),
                            found,
                        },
                    ));
                }
            }
        }
        if instance.max_class_len() > usize::from(u16::MAX) {
            return Err(Error::new(
                ErrorKind::InvalidParameter,
                "DpSolver: a class has more than 65535 items",
            ));
        }
        let (previous, current) = self.scratch.values[..2 * width].split_at_mut(width);
        let (mut previous, mut current) = (previous, current);
        previous.fill(0.0);
        for c in 0..m {
            let (weights, profits) = instance.class(c);
            let row = &mut self.scratch.choices[c * width..(c + 1) * width];
            for cap in 0..width {
                let mut best = f64::NEG_INFINITY;
                let mut best_item = 0u16;
                for (j, (&w, &p)) in weights.iter().zip(profits).enumerate() {
                    if let Some(rest) = (cap as u64).checked_sub(w) {
                        let v = previous[rest as usize] + p;
                        if v > best {
                            best = v;
                            best_item = j as u16;
                        }
                    }
                }
                current[cap] = best;
                row[cap] = best_item;
            }
            core::mem::swap(&mut previous, &mut current);
        }
        if previous[width - 1] == f64::NEG_INFINITY {
            return Err(Error::new(
                ErrorKind::Infeasible,
                "DpSolver: the lightest item of every class together exceed the capacity",
            ));
        }
        let mut cap = width - 1;
        for c in (0..m).rev() {
            let item = usize::from(self.scratch.choices[c * width + cap]);
            choice[c] = item;
            cap -= instance.class(c).0[item] as usize;
        }
        let (value, weight) = instance.evaluate(choice)?;
        Ok(MckpSolution {
            value,
            weight,
            bound: None,
        })
    }
}
