//! The multiple-choice knapsack: one item per class, total weight within a capacity.

use crate::{Detail, Error, ErrorKind, Result};

/// A multiple-choice knapsack instance, borrowed from the caller's storage.
///
/// Items are stored flat: class `i` owns items `class_ends[i-1]..class_ends[i]` (with
/// `class_ends[-1] = 0`) of `weights` and `profits`. In routing, a class is a query, an item an
/// LLM, its weight the (integer-scaled) cost and its profit the expected quality.
#[derive(Clone, Copy, Debug)]
pub struct MckpInstance<'a> {
    capacity: u64,
    weights: &'a [u64],
    profits: &'a [f64],
    class_ends: &'a [usize],
}

impl<'a> MckpInstance<'a> {
    /// Checks and wraps an instance.
    ///
    /// # Errors
    /// [`Empty`](ErrorKind::Empty) for no classes or an empty class,
    /// [`DimensionMismatch`](ErrorKind::DimensionMismatch) when `weights` and `profits` differ in
    /// length or `class_ends` does not end at their length,
    /// [`Malformed`](ErrorKind::Malformed) when `class_ends` decreases,
    /// [`NonFinite`](ErrorKind::NonFinite) for NaN or infinite profits.
    pub fn new(
        capacity: u64,
        weights: &'a [u64],
        profits: &'a [f64],
        class_ends: &'a [usize],
    ) -> Result<Self> {
        if class_ends.is_empty() {
            return Err(Error::new(ErrorKind::Empty, "MckpInstance: no classes"));
        }
        if weights.len() != profits.len() {
            return Err(Error::dimension(
                "MckpInstance: profits (one per weight)",
                weights.len(),
                profits.len(),
            ));
        }
        let mut start = 0;
        for (class, &end) in class_ends.iter().enumerate() {
            if end < start {
                return Err(
                    Error::new(ErrorKind::Malformed, "MckpInstance: class_ends decreases")
                        .with_detail(Detail::Index {
                            index: class,
                            len: class_ends.len(),
                        }),
                );
            }
            if end == start {
                return Err(
                    Error::new(ErrorKind::Empty, "MckpInstance: class with no items").with_detail(
                        Detail::Index {
                            index: class,
                            len: class_ends.len(),
                        },
                    ),
                );
            }
            start = end;
        }
        if start != weights.len() {
            return Err(Error::dimension(
                "MckpInstance: last class end (number of items)",
                weights.len(),
                start,
            ));
        }
        crate::check_finite("MckpInstance: profits", profits)?;
        Ok(Self {
            capacity,
            weights,
            profits,
            class_ends,
        })
    }

    /// The capacity (budget).
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Number of classes.
    pub fn class_count(&self) -> usize {
        self.class_ends.len()
    }

    /// Total number of items over all classes.
    pub fn item_count(&self) -> usize {
        self.weights.len()
    }

    /// The largest number of items in one class.
    pub fn max_class_len(&self) -> usize {
        (0..self.class_count())
            .map(|c| self.class_range(c).len())
            .max()
            .unwrap_or(0)
    }

    /// The flat item range of class `class` (panics never: out-of-range classes give `0..0`).
    pub fn class_range(&self, class: usize) -> core::ops::Range<usize> {
        let start = if class == 0 {
            0
        } else {
            self.class_ends.get(class - 1).copied().unwrap_or(0)
        };
        let end = self.class_ends.get(class).copied().unwrap_or(start);
        start..end
    }

    /// Weights and profits of class `class`.
    pub fn class(&self, class: usize) -> (&'a [u64], &'a [f64]) {
        let r = self.class_range(class);
        (&self.weights[r.clone()], &self.profits[r])
    }

    /// All weights, flat.
    pub fn weights(&self) -> &'a [u64] {
        self.weights
    }

    /// All profits, flat.
    pub fn profits(&self) -> &'a [f64] {
        self.profits
    }

    /// The end offsets of the classes in the flat arrays.
    pub fn class_ends(&self) -> &'a [usize] {
        self.class_ends
    }

    /// Value and weight of a choice (item index within each class), checking it is valid.
    ///
    /// # Errors
    /// [`DimensionMismatch`](ErrorKind::DimensionMismatch) for a choice of the wrong length,
    /// [`UnknownArm`](ErrorKind::UnknownArm) for an item index outside its class.
    pub fn evaluate(&self, choice: &[usize]) -> Result<(f64, u64)> {
        crate::check_len("MckpInstance::evaluate: choice", choice, self.class_count())?;
        let (mut value, mut weight) = (0.0, 0u64);
        for (class, &item) in choice.iter().enumerate() {
            let (w, p) = self.class(class);
            if item >= w.len() {
                return Err(Error::unknown_arm(
                    "MckpInstance::evaluate: item",
                    item,
                    w.len(),
                ));
            }
            value += p[item];
            weight = weight.saturating_add(w[item]);
        }
        Ok((value, weight))
    }
}

/// The outcome of a knapsack solver.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MckpSolution {
    /// Total profit of the choice written by the solver.
    pub value: f64,
    /// Total weight of that choice (≤ capacity).
    pub weight: u64,
    /// An upper bound on the optimum, when the solver has one (the LP relaxation's value).
    pub bound: Option<f64>,
}

/// An offline solver for [`MckpInstance`]s.
///
/// Solvers own their scratch space (borrowed from the caller in `no_std`, or allocated by
/// their `alloc` wrappers), so the trait stays object safe.
pub trait MckpSolver {
    /// Writes one item index per class into `choice` and reports its value and weight.
    ///
    /// # Errors
    /// [`Infeasible`](ErrorKind::Infeasible) when even the lightest item of every class exceeds
    /// the capacity, [`DimensionMismatch`](ErrorKind::DimensionMismatch) when `choice` is not one
    /// per class, [`BufferTooSmall`](ErrorKind::BufferTooSmall) when the solver's scratch space
    /// cannot hold the instance.
    fn solve(&mut self, instance: &MckpInstance<'_>, choice: &mut [usize]) -> Result<MckpSolution>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_checks_shape() {
        let w = [1, 2, 3];
        let p = [1.0, 2.0, 3.0];
        let inst = MckpInstance::new(4, &w, &p, &[2, 3]).unwrap();
        assert_eq!(inst.class(0), (&w[..2], &p[..2]));
        assert_eq!(inst.evaluate(&[1, 0]).unwrap(), (5.0, 5));
        assert_eq!(
            inst.evaluate(&[2, 0]).unwrap_err().kind(),
            ErrorKind::UnknownArm
        );
        assert_eq!(
            MckpInstance::new(4, &w, &p, &[2, 2, 3]).unwrap_err().kind(),
            ErrorKind::Empty
        );
        assert_eq!(
            MckpInstance::new(4, &w, &p[..2], &[3]).unwrap_err().kind(),
            ErrorKind::DimensionMismatch
        );
        assert_eq!(
            MckpInstance::new(4, &w, &[1.0, f64::NAN, 0.0], &[3])
                .unwrap_err()
                .kind(),
            ErrorKind::NonFinite
        );
    }
}
