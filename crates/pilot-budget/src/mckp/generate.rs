//! Seeded instance generators for the standard MCKP classes (Sinha & Zoltners; Pisinger 1995).
//!
//! With `R` the coefficient range and `u[a, b]` a uniform integer:
//! - uncorrelated: `w, p ~ u[1, R]`;
//! - weakly correlated: `w ~ u[1, R]`, `p ~ u[w − 10, w + 10]` (at least 1);
//! - strongly correlated: `n` pairs `w' ~ u[1, 2R/n]`, `p' = w' + 10`, sorted by `w'`, and
//!   the class's items are their prefix sums (every item lies on the class's convex hull, the
//!   hard case for LP-based methods); the range `2R/n` (as in Pisinger's `mcknap` generator)
//!   keeps the weights below about `R`;
//! - inverse strongly correlated: the same with the roles swapped, `n` pairs
//!   `p' ~ u[1, 2R/n]`, `w' = p' + 10`, sorted by `p'`, prefix sums;
//! - subset-sum: `w ~ u[1, R]`, `p = w`.
//!
//! The capacity is `½ Σ_c (min_j w_cj + max_j w_cj)`; [`capacity_at`] gives it at another
//! point between the lightest and the heaviest choice.

use pilot_core::{Error, ErrorKind, Result, RngCore};

/// The correlation between weights and profits of a generated instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InstanceKind {
    /// Weights and profits independent.
    Uncorrelated,
    /// Profit within ±10 of the weight.
    WeaklyCorrelated,
    /// Prefix sums of items (weights up to `2R/n`) whose profit is their weight plus 10.
    StronglyCorrelated,
    /// Prefix sums of items (profits up to `2R/n`) whose weight is their profit plus 10.
    InverseStronglyCorrelated,
    /// Profit equals weight.
    SubsetSum,
}

impl InstanceKind {
    /// Every kind, for loops over the suite.
    pub const ALL: [Self; 5] = [
        Self::Uncorrelated,
        Self::WeaklyCorrelated,
        Self::StronglyCorrelated,
        Self::InverseStronglyCorrelated,
        Self::SubsetSum,
    ];

    /// A short lowercase name (`uncorrelated`, `weak`, `strong`, `inverse-strong`,
    /// `subset-sum`).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Uncorrelated => "uncorrelated",
            Self::WeaklyCorrelated => "weak",
            Self::StronglyCorrelated => "strong",
            Self::InverseStronglyCorrelated => "inverse-strong",
            Self::SubsetSum => "subset-sum",
        }
    }
}

/// A uniform integer in `[lo, hi]` (rejection sampling, no modulo bias).
pub(crate) fn uniform(rng: &mut dyn RngCore, lo: u64, hi: u64) -> u64 {
    let span = hi - lo + 1;
    if span == 0 {
        return rng.next_u64();
    }
    let zone = u64::MAX - (u64::MAX - span + 1) % span;
    loop {
        let x = rng.next_u64();
        if x <= zone {
            return lo + x % span;
        }
    }
}

/// Fills `weights`, `profits` (length `classes × items`) and `class_ends` (length `classes`)
/// with a generated instance of `classes` classes of `items` items each and coefficients up to
/// `range`, and returns its capacity.
///
/// # Errors
/// [`InvalidParameter`](ErrorKind::InvalidParameter) for zero classes, items or range, or a
/// range above 2³²; [`DimensionMismatch`](ErrorKind::DimensionMismatch) for buffers of the wrong
/// length.
// The caller's three output buffers plus the four knobs: a struct would only rename them.
#[allow(clippy::too_many_arguments)]
pub fn generate_into(
    kind: InstanceKind,
    classes: usize,
    items: usize,
    range: u64,
    rng: &mut dyn RngCore,
    weights: &mut [u64],
    profits: &mut [f64],
    class_ends: &mut [usize],
) -> Result<u64> {
    if classes == 0 || items == 0 {
        return Err(Error::new(
            ErrorKind::InvalidParameter,
            "generate: classes and items must be positive",
        ));
    }
    if range == 0 || range > 1 << 32 {
        return Err(Error::invalid_parameter(
            "generate: range must be in 1..=2^32",
            range as f64,
        ));
    }
    let total = classes.checked_mul(items).ok_or(Error::new(
        ErrorKind::InvalidParameter,
        "generate: classes × items overflows",
    ))?;
    pilot_core::check_len("generate: weights", weights, total)?;
    pilot_core::check_len("generate: profits", profits, total)?;
    pilot_core::check_len("generate: class_ends", class_ends, classes)?;
    // The range of each summand of the prefix-sum kinds (saturates: `items ≥ 1`).
    let prefix_range = (range.saturating_mul(2) / items as u64).max(1);
    let mut capacity = 0u64;
    for c in 0..classes {
        let w = &mut weights[c * items..(c + 1) * items];
        let p = &mut profits[c * items..(c + 1) * items];
        match kind {
            InstanceKind::Uncorrelated => {
                for (w, p) in w.iter_mut().zip(p.iter_mut()) {
                    *w = uniform(rng, 1, range);
                    *p = uniform(rng, 1, range) as f64;
                }
            }
            InstanceKind::WeaklyCorrelated => {
                for (w, p) in w.iter_mut().zip(p.iter_mut()) {
                    *w = uniform(rng, 1, range);
                    *p = uniform(rng, w.saturating_sub(10).max(1), *w + 10) as f64;
                }
            }
            InstanceKind::StronglyCorrelated => {
                for w in w.iter_mut() {
                    *w = uniform(rng, 1, prefix_range);
                }
                w.sort_unstable();
                let (mut sum_w, mut sum_p) = (0u64, 0u64);
                for (w, p) in w.iter_mut().zip(p.iter_mut()) {
                    sum_w = sum_w.saturating_add(*w);
                    sum_p = sum_p.saturating_add(*w + 10);
                    *w = sum_w;
                    *p = sum_p as f64;
                }
            }
            InstanceKind::InverseStronglyCorrelated => {
                for p in p.iter_mut() {
                    *p = uniform(rng, 1, prefix_range) as f64;
                }
                p.sort_unstable_by(f64::total_cmp);
                let (mut sum_w, mut sum_p) = (0u64, 0u64);
                for (w, p) in w.iter_mut().zip(p.iter_mut()) {
                    // Whole numbers up to 2^32: exact in f64.
                    let q = *p as u64;
                    sum_w = sum_w.saturating_add(q + 10);
                    sum_p = sum_p.saturating_add(q);
                    *w = sum_w;
                    *p = sum_p as f64;
                }
            }
            InstanceKind::SubsetSum => {
                for (w, p) in w.iter_mut().zip(p.iter_mut()) {
                    *w = uniform(rng, 1, range);
                    *p = *w as f64;
                }
            }
        }
        let lo = w.iter().copied().min().unwrap_or(0);
        let hi = w.iter().copied().max().unwrap_or(0);
        capacity = capacity.saturating_add(lo / 2 + hi / 2 + (lo % 2 + hi % 2) / 2);
        class_ends[c] = (c + 1) * items;
    }
    Ok(capacity)
}

/// The capacity `Σ_c min_j w_cj + ratio · (Σ_c max_j w_cj − Σ_c min_j w_cj)` of the classes
/// ending at `class_ends` in `weights`: `ratio` 0 fits only the lightest choice of every class,
/// 1 the heaviest, ½ is the generators' default.
///
/// # Errors
/// [`InvalidParameter`](ErrorKind::InvalidParameter) for a ratio outside `[0, 1]`, an empty
/// class or class ends out of order or past `weights`; [`OutOfRange`](ErrorKind::OutOfRange)
/// when the sums overflow.
pub fn capacity_at(ratio: f64, weights: &[u64], class_ends: &[usize]) -> Result<u64> {
    if !(0.0..=1.0).contains(&ratio) {
        return Err(Error::invalid_parameter(
            "capacity_at: ratio must be in [0, 1]",
            ratio,
        ));
    }
    let (mut lo, mut hi, mut start) = (0u64, 0u64, 0usize);
    for &end in class_ends {
        let class = weights
            .get(start..end)
            .filter(|c| !c.is_empty())
            .ok_or(Error::new(
                ErrorKind::InvalidParameter,
                "capacity_at: empty class or class ends out of order",
            ))?;
        let overflow = || Error::new(ErrorKind::OutOfRange, "capacity_at: weights overflow u64");
        lo = lo
            .checked_add(class.iter().copied().min().unwrap_or(0))
            .ok_or_else(overflow)?;
        hi = hi
            .checked_add(class.iter().copied().max().unwrap_or(0))
            .ok_or_else(overflow)?;
        start = end;
    }
    Ok(lo + (((hi - lo) as f64 * ratio) as u64).min(hi - lo))
}
