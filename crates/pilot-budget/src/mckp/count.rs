//! An upper bound that sees integrality through the items' ranks (a cardinality bound).
//!
//! Number each class's items 0, 1, … by weight (the item's rank `c`) and let `J(x)` be the
//! sum of the ranks a solution `x` chooses. For any `λ ≥ 0` and any `ν`, with reduced profits
//! `r = p − λ·w − ν·c` and `K = Σ_classes max r`, every solution satisfies
//!
//! `P(x) = λ·W(x) + ν·J(x) + Σ r(x) ≤ K + λ·W(x) + ν·J(x)`,
//!
//! and `W(x) ≤ C`, `W_min(J) ≤ W(x) ≤ W_max(J)` where `W_max(J)` (`W_min(J)`) is the largest
//! (smallest) total weight of a choice whose ranks sum to at most (at least) `J`. Those are two
//! knapsacks whose weights are the ranks, small integers, which the exact solver settles in
//! milliseconds. Hence
//! - `ν > 0`: `P ≤ K + λ·C + ν·J_hi`, `J_hi` the largest `J` with `W_min(J) ≤ C`;
//! - `ν < 0`: `P ≤ K + max_J (λ·min(C, W_max(J)) + ν·J)`.
//!
//! `λ` and `ν` come from a least-squares fit of the profits on the weights and ranks within
//! each class. Where profits are an affine function of both, as in the strongly correlated
//! instances (`p = w + 10·(c + 1)`) and the inverse ones (`p = w − 10·(c + 1)`), `K` takes the
//! rest exactly and the bound lands on the optimum or next to it, where the LP bound lies above
//! it by up to 10 per unit of fractional rank (strongly correlated) or by the chords of whole
//! classes (inverse). Cardinality bounds of this kind are what makes Martello, Pisinger & Toth's
//! `combo` fast on strongly correlated 0-1 knapsacks. Elsewhere the fit leaves reduced profits
//! spread over more than the gap to close, and the bound is not computed.

use alloc::vec;
use alloc::vec::Vec;
use core::cmp::Ordering;

use pilot_core::{MckpInstance, Result};

/// The most exact count-space solves one side of a bound may take (the windows measured on
/// the suite are under 12 wide).
const MAX_SOLVES: u64 = 48;

/// A step along a class's hull in (rank, weight) space.
#[derive(Clone, Copy, Debug)]
struct Step {
    ranks: u64,
    weight: u64,
}

impl Step {
    /// Orders by weight per rank, descending (`descending`) or ascending.
    fn cmp_slope(&self, other: &Self, descending: bool) -> Ordering {
        let a = u128::from(self.weight) * u128::from(other.ranks);
        let b = u128::from(other.weight) * u128::from(self.ranks);
        if descending { b.cmp(&a) } else { a.cmp(&b) }
    }
}

/// The LP relaxation of `W_max` (upper hulls, `descending`) or `W_min` (lower hulls) as a
/// function of the rank sum: concave (convex), piecewise linear from the lightest choice.
struct Curve {
    base: u64,
    steps: Vec<Step>,
}

impl Curve {
    fn new(sorted: &[Vec<u64>], upper: bool) -> Self {
        let mut steps = Vec::new();
        let mut hull: Vec<(u64, u64)> = Vec::new();
        let mut base = 0u64;
        for w in sorted {
            base = base.saturating_add(w[0]);
            hull.clear();
            for (c, &wc) in w.iter().enumerate() {
                let p = (c as u64, wc);
                // Pop while the last point is not strictly outside the chord (cross product).
                while hull.len() >= 2 {
                    let (a, b) = (hull[hull.len() - 2], hull[hull.len() - 1]);
                    let lhs = i128::from(b.1 as i64 - a.1 as i64) * i128::from((p.0 - a.0) as i64);
                    let rhs = i128::from(p.1 as i64 - a.1 as i64) * i128::from((b.0 - a.0) as i64);
                    let keep = if upper { lhs > rhs } else { lhs < rhs };
                    if keep {
                        break;
                    }
                    hull.pop();
                }
                hull.push(p);
            }
            for pair in hull.windows(2) {
                steps.push(Step {
                    ranks: pair[1].0 - pair[0].0,
                    weight: pair[1].1 - pair[0].1,
                });
            }
        }
        steps.sort_unstable_by(|a, b| a.cmp_slope(b, upper));
        Self { base, steps }
    }

    /// The curve at rank sum `j` (the LP value).
    fn at(&self, j: u64) -> f64 {
        let (mut w, mut left) = (self.base as f64, j);
        for s in &self.steps {
            if left >= s.ranks {
                w += s.weight as f64;
                left -= s.ranks;
            } else {
                return w + s.weight as f64 * left as f64 / s.ranks as f64;
            }
        }
        w
    }

    /// The smallest rank sum at which the (concave) curve reaches `target`, if any.
    fn first_reaching(&self, target: u64) -> Option<u64> {
        let (mut w, mut j) = (self.base, 0u64);
        if w >= target {
            return Some(0);
        }
        for s in &self.steps {
            if w + s.weight >= target {
                let need = u128::from(target - w) * u128::from(s.ranks);
                return Some(j + need.div_ceil(u128::from(s.weight)) as u64);
            }
            w += s.weight;
            j += s.ranks;
        }
        None
    }

    /// The largest rank sum at which the (convex) curve stays within `cap`.
    fn last_within(&self, cap: u64) -> u64 {
        let (mut w, mut j) = (self.base, 0u64);
        for s in &self.steps {
            if w + s.weight > cap {
                let room = u128::from(cap - w) * u128::from(s.ranks);
                return j + (room / u128::from(s.weight)) as u64;
            }
            w += s.weight;
            j += s.ranks;
        }
        j
    }
}

/// The cardinality bound of `instance` (see the module), or `None` when the fit leaves
/// reduced profits spread over more than `lp_bound − incumbent` or the bound is no tighter
/// than `lp_bound`. `exact` solves a knapsack exactly and returns its optimum (the bound's own
/// knapsacks are over ranks: call a solver that does not compute this bound again).
///
/// # Errors
/// What `exact` returns.
pub(crate) fn upper_bound(
    instance: &MckpInstance<'_>,
    lp_bound: f64,
    incumbent: f64,
    exact: &mut dyn FnMut(&MckpInstance<'_>) -> Result<f64>,
) -> Result<Option<f64>> {
    let capacity = instance.capacity();
    let m = instance.class_count();
    let (sorted, rank) = ranks(instance);
    let Some((lambda, nu)) = fit(instance, &rank) else {
        return Ok(None);
    };
    // K and the spread of the reduced profits: where they differ little within classes, the
    // bound can close the gap.
    let (mut k, mut k_abs, mut spread) = (0.0, 0.0, 0.0);
    for class in 0..m {
        let range = instance.class_range(class);
        let (w, p) = instance.class(class);
        let (mut hi, mut lo) = (f64::NEG_INFINITY, f64::INFINITY);
        for i in 0..w.len() {
            let r = p[i] - lambda * w[i] as f64 - nu * rank[range.start + i] as f64;
            hi = hi.max(r);
            lo = lo.min(r);
        }
        k += hi;
        k_abs += hi.abs();
        spread += hi - lo;
    }
    if nu == 0.0 || spread >= lp_bound - incumbent {
        return Ok(None);
    }
    let cap_f = capacity as f64;
    // The largest rank sum.
    let total: u64 = sorted.iter().map(|w| w.len() as u64 - 1).sum();
    let best = if nu > 0.0 {
        // Rank sums above J_hi cannot fit: find J_hi from the LP curve down.
        let curve = Curve::new(&sorted, false);
        let heaviest: u64 = sorted.iter().map(|w| w[w.len() - 1]).sum();
        // W_min(J) = Σ heaviest − (max Σ (heaviest − w) over reversed ranks ≤ total − J).
        let weights: Vec<u64> = rank_weights(instance, &rank, &sorted, true);
        let profits: Vec<f64> = reversed_profits(instance, &sorted);
        let mut j = curve.last_within(capacity).min(total);
        let mut solves = 0;
        loop {
            let count = MckpInstance::new(total - j, &weights, &profits, instance.class_ends())?;
            let w_min = heaviest as f64 - exact(&count)?;
            if w_min <= cap_f {
                break k + lambda * cap_f + nu * j as f64;
            }
            solves += 1;
            if j == 0 || solves >= MAX_SOLVES {
                return Ok(None);
            }
            j -= 1;
        }
    } else {
        // Below J_0 (the least rank sum whose LP reaches C) the weight cannot reach C; at and
        // above the first J whose exact W_max does, λ·C + ν·J only falls. Both sides are
        // solved exactly: the LP curve alone at J_0 − 1 can lie a whole rank step's worth
        // above (18 on the suite's inverse 1 000 × 50 at 0.5, where the exact value is the
        // optimum).
        let curve = Curve::new(&sorted, true);
        let Some(j0) = curve.first_reaching(capacity) else {
            return Ok(None);
        };
        let weights: Vec<u64> = rank_weights(instance, &rank, &sorted, false);
        let profits: Vec<f64> = instance.weights().iter().map(|&w| w as f64).collect();
        // What a rank sum `j` with largest weight `w` can be worth.
        let score = |j: u64, w: f64| lambda * w.min(cap_f) + nu * j as f64;
        let h = |j: u64| score(j, curve.at(j));
        let mut exact_at = |j: u64| -> Result<f64> {
            let count = MckpInstance::new(j, &weights, &profits, instance.class_ends())?;
            exact(&count)
        };
        // At and above J_0: W_max is nondecreasing in J, so the first J* whose exact W_max
        // reaches C is found by interpolation (W_max grows about linearly here), and above it
        // λ·C + ν·J only falls.
        let mut solves = 0;
        let mut at = |j: u64| -> Result<Option<f64>> {
            if solves >= MAX_SOLVES {
                return Ok(None);
            }
            solves += 1;
            exact_at(j).map(Some)
        };
        let Some(w0) = at(j0)? else {
            return Ok(None);
        };
        // The rank sums tried; the largest whose W_max stays below C, and the least that
        // reaches it.
        let mut known: Vec<(u64, f64)> = vec![(j0, w0)];
        let (mut lo, mut w_lo) = (j0, w0);
        let mut reach: Option<(u64, f64)> = (w0 >= cap_f).then_some((j0, w0));
        let mut slope = (curve.at(j0 + 1) - curve.at(j0)).max(1.0);
        let hi = loop {
            let next = match reach {
                Some((h, _)) if h <= lo + 1 => break h,
                Some((h, w_h)) => {
                    let guess = (cap_f - w_lo) * (h - lo) as f64 / (w_h - w_lo).max(1.0);
                    lo + (guess.max(1.0) as u64).clamp(1, h - lo - 1)
                }
                None if lo >= total => return Ok(None),
                None => lo + (((cap_f - w_lo) / slope).max(1.0) as u64).min(total - lo),
            };
            let Some(w) = at(next)? else {
                return Ok(None);
            };
            known.push((next, w));
            if w >= cap_f {
                reach = Some((next, w));
            } else {
                slope = ((w - w_lo) / (next - lo) as f64).max(1.0);
                (lo, w_lo) = (next, w);
            }
        };
        // Between J_0 and J*: every J lies between two rank sums tried, a < J < b, where
        // W_max(J) ≤ W_max(b) (nondecreasing) bounds λ·W_max(J) + ν·J by λ·W_max(b) +
        // ν·(a + 1). Intervals whose bound does not beat the best are done; the others are
        // split at their middle.
        known.retain(|&(j, _)| j <= hi);
        known.sort_unstable_by_key(|&(j, _)| j);
        let mut best = known
            .iter()
            .map(|&(j, w)| score(j, w))
            .fold(f64::NEG_INFINITY, f64::max);
        let mut open: Vec<(u64, (u64, f64))> = known.windows(2).map(|p| (p[0].0, p[1])).collect();
        while let Some((a, (b, w_b))) = open.pop() {
            if b - a < 2 || score(a + 1, w_b) <= best {
                continue;
            }
            let mid = a + (b - a) / 2;
            let Some(w) = at(mid)? else {
                return Ok(None);
            };
            best = best.max(score(mid, w));
            open.push((a, (mid, w)));
            open.push((mid, (b, w_b)));
        }
        // Below J_0 the LP curve is concave and rises (else give up): the exact W_max from
        // J_0 − 1 down, while the curve itself still lies above the best found (on the suite
        // it seldom does: the side above usually settles it).
        if j0 >= 2 && h(j0 - 1) < h(j0 - 2) {
            return Ok(None);
        }
        let mut j = j0;
        let mut solves = 0;
        while j > 0 && h(j - 1) > best {
            if solves >= MAX_SOLVES {
                best = h(j - 1);
                break;
            }
            j -= 1;
            solves += 1;
            best = best.max(score(j, exact_at(j)?));
        }
        k + best
    };
    // Room for rounding in the sums above (`K` sums one rounded term per class, the rest are
    // products of whole numbers below 2⁵³ with the fitted multipliers).
    let bound = best + 1e-12 * (1.0 + k_abs + lambda * cap_f + nu.abs() * total as f64);
    Ok((bound < lp_bound).then_some(bound))
}

/// Each class's weights in rank order (ascending weight, ties by index), and each item's
/// rank (flat, as the instance's items).
pub(crate) fn ranks(instance: &MckpInstance<'_>) -> (Vec<Vec<u64>>, Vec<u64>) {
    let mut sorted: Vec<Vec<u64>> = Vec::with_capacity(instance.class_count());
    let mut rank = vec![0u64; instance.item_count()];
    let mut order: Vec<usize> = Vec::new();
    for class in 0..instance.class_count() {
        let (w, _) = instance.class(class);
        let start = instance.class_range(class).start;
        order.clear();
        order.extend(0..w.len());
        order.sort_unstable_by_key(|&i| (w[i], i));
        for (c, &i) in order.iter().enumerate() {
            rank[start + i] = c as u64;
        }
        sorted.push(order.iter().map(|&i| w[i]).collect());
    }
    (sorted, rank)
}

/// The item weights of the rank knapsacks: the ranks (`reversed`: counted from the heaviest).
fn rank_weights(
    instance: &MckpInstance<'_>,
    rank: &[u64],
    sorted: &[Vec<u64>],
    reversed: bool,
) -> Vec<u64> {
    let mut out = Vec::with_capacity(rank.len());
    for (class, w) in sorted.iter().enumerate() {
        for i in instance.class_range(class) {
            out.push(if reversed {
                w.len() as u64 - 1 - rank[i]
            } else {
                rank[i]
            });
        }
    }
    out
}

/// The profits of the `W_min` knapsack: how much lighter than its class's heaviest item each
/// item is.
fn reversed_profits(instance: &MckpInstance<'_>, sorted: &[Vec<u64>]) -> Vec<f64> {
    let mut out = Vec::with_capacity(instance.item_count());
    for (class, w) in sorted.iter().enumerate() {
        let heaviest = w[w.len() - 1];
        let (weights, _) = instance.class(class);
        out.extend(weights.iter().map(|&x| (heaviest - x) as f64));
    }
    out
}

/// Least squares of the profits on weights and ranks within classes: `(λ, ν)`, or `None` when
/// the two do not separate or `λ` comes out negative.
pub(crate) fn fit(instance: &MckpInstance<'_>, rank: &[u64]) -> Option<(f64, f64)> {
    let (mut sww, mut swc, mut scc, mut spw, mut spc) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for class in 0..instance.class_count() {
        let range = instance.class_range(class);
        let (w, p) = instance.class(class);
        let n = w.len() as f64;
        let c = &rank[range];
        let mw = w.iter().map(|&x| x as f64).sum::<f64>() / n;
        let mc = c.iter().map(|&x| x as f64).sum::<f64>() / n;
        let mp = p.iter().sum::<f64>() / n;
        for i in 0..w.len() {
            let (dw, dc, dp) = (w[i] as f64 - mw, c[i] as f64 - mc, p[i] - mp);
            sww += dw * dw;
            swc += dw * dc;
            scc += dc * dc;
            spw += dp * dw;
            spc += dp * dc;
        }
    }
    let det = sww * scc - swc * swc;
    if !(det > 1e-9 * sww * scc) {
        return None;
    }
    let lambda = snap((spw * scc - spc * swc) / det);
    let nu = snap((spc * sww - spw * swc) / det);
    (lambda.is_finite() && nu.is_finite() && lambda >= 0.0).then_some((lambda, nu))
}

/// `x` rounded to a whole number when it is one up to rounding (the exact fits of the
/// correlated instances), so that their reduced profits come out exactly equal.
fn snap(x: f64) -> f64 {
    // Truncation toward zero: the nearest whole number is this or a neighbour.
    let t = x as i64 as f64;
    [t - 1.0, t, t + 1.0]
        .into_iter()
        .find(|r| (x - r).abs() <= 1e-9 * (1.0 + x.abs()))
        .unwrap_or(x)
}
