//! The core search's rank-aware bound on the classes outside the core (see `count` for the
//! structure it uses): where profits are `λ'·w + ν'·rank` plus a constant per class (up to a
//! small spread), with `ν' < 0`, what the outside classes can add to a state is bounded by
//! their exact rank knapsacks rather than by their LP.
//!
//! The LP of those classes lets each of them stop part-way along a hull chord; on inverse
//! strongly correlated classes (convex in rank, so the hull is one chord) that leaves the LP
//! bound dozens above the optimum, and a search that must prove there is no better solution
//! keeps every state within that distance (77 million of them on the suite's inverse 1 000 ×
//! 50 at ratio 0.75).
//!
//! Every outside class sits at its lightest or its heaviest item (else the tables are not
//! built), so it can only move up in rank (and weight) or only down. Two tables per stage:
//! - `G(t)`, the most weight the outside classes add while their ranks change by exactly `t`,
//!   for `|t| ≤ L`: a dynamic program over `t`, one class at a time. It is exact for every
//!   choice that moves at most `L` ranks up and at most `L` down in all: the ranks moved up
//!   so far, and those moved down, only grow as classes are added, so the partial sums never
//!   leave the window on the way. Shifts that leave it are dropped;
//! - the least reduced-cost loss, at the LP's dual price, of moving more than `L` ranks up
//!   (or down) in all: a dynamic program over ranks saturated at `L + 1`, plus the least loss
//!   of the other side.
//!
//! A state of weight `W` and profit `P` then reaches at most the larger of
//! `P + slack + max_t λ'·min(G(t), C − W) + ν'·t` (`slack` sums the outside classes'
//! reduced-profit room above their base items: 0 on the generated correlated kinds) and, for
//! the choices past the window, its Lagrangian bound `P + dual·(C − W)` less that loss.
//!
//! The tables are built once per solve, one class at a time in reverse join order, so every
//! stage of the search has its own.

use alloc::vec;
use alloc::vec::Vec;

use pilot_core::MckpInstance;

use super::core::OutsideBound;

/// Ranks tabulated on each side at most: on the suite's inverse 1 000 × 50 at 0.75 (before the
/// first phase also ran the greedy solution's exchanges), 600 left 6.9 million states (2.0 s),
/// 800 1.6 million (0.85 s), 1 100 68 000 (0.25–0.32 s), 1 500 50 000 (0.38 s, the tables
/// costing more than they save).
const WINDOW: usize = 1100;
/// Table entries (stages × window) at most (64 MB), fewer under a memory budget.
const MAX_ENTRIES: usize = 1 << 22;
/// Bytes per table entry (a weight and a score).
const ENTRY_BYTES: usize = 16;
/// Below this window the tables are not worth building.
const MIN_WINDOW: usize = 16;
/// Stands for "no choice" (`−∞`) in the weight tables; far from overflow when shifted.
const NONE: i64 = i64::MIN / 4;

/// The outside classes' exact rank knapsacks, one table per stage of the core search.
#[derive(Clone, Debug)]
pub(crate) struct RankBound {
    /// The fit `λ'·w + ν'·rank` and the LP's dual price.
    lambda: f64,
    nu: f64,
    dual: f64,
    capacity: i64,
    /// `L`.
    window: usize,
    /// Each class's position in the join order (`usize::MAX`: it never joins).
    position: Vec<usize>,
    stages: Vec<Stage>,
    /// Per stage, `2L + 1` long over `t = −L..=L`: the prefix maximum of `G` and of
    /// `λ'·G(t) + ν'·t`.
    g_max: Vec<i64>,
    score_max: Vec<f64>,
}

/// What one stage (the classes outside the core after some class joined) needs besides its
/// tables.
#[derive(Clone, Copy, Debug, Default)]
struct Stage {
    /// Reduced-profit room above the base items (for the fit).
    slack: f64,
    /// The least loss (at the dual price) of moving more than `L` ranks up, or down, in all.
    far_loss: f64,
}

/// The least losses of one side (the classes that move up, or those that move down) while
/// classes are added.
struct Side {
    /// Least loss with `a` ranks moved, the last slot for `L + 1` or more.
    loss: Vec<f64>,
    /// Least loss of any choice.
    any_loss: f64,
}

impl Side {
    fn new(window: usize) -> Self {
        let mut loss = vec![f64::INFINITY; window + 2];
        loss[0] = 0.0;
        Self {
            loss,
            any_loss: 0.0,
        }
    }

    /// Adds a class whose choices move `(ranks, weight change, loss)` from its base.
    fn add(&mut self, moves: &[(i64, i64, f64)], loss: &mut [f64]) {
        let last = self.loss.len() - 1;
        loss.fill(f64::INFINITY);
        let mut least = f64::INFINITY;
        for &(r, _, dl) in moves {
            least = least.min(dl);
            let r = r.unsigned_abs() as usize;
            for (a, &from) in self.loss.iter().enumerate() {
                let to = (a + r).min(last);
                if from + dl < loss[to] {
                    loss[to] = from + dl;
                }
            }
        }
        self.any_loss += least;
        self.loss.copy_from_slice(loss);
    }

    /// The least loss of moving more than `L` ranks.
    fn far_loss(&self) -> f64 {
        self.loss[self.loss.len() - 1]
    }
}

impl RankBound {
    /// The tables for `instance` whose items have ranks `rank` and fit `λ'·w + ν'·rank` (per
    /// class constant aside), with the LP's dual price `dual`, for a search that adds the
    /// classes in `order` with every class at `base[class]` until it joins. `None` where the
    /// bound does not apply (`ν' ≥ 0`, a base item neither lightest nor heaviest in its class)
    /// or the tables would be too small to help (their bytes stay within `max_bytes`).
    pub(crate) fn new(
        instance: &MckpInstance<'_>,
        rank: &[u64],
        (lambda, nu): (f64, f64),
        dual: f64,
        order: &[usize],
        base: &[usize],
        max_bytes: Option<usize>,
    ) -> Option<Self> {
        // `λ' ≥ 0` keeps `λ'·ΔW ≤ λ'·min(G, C − W)` an upper bound.
        if !(nu < 0.0 && lambda >= 0.0 && dual >= 0.0) {
            return None;
        }
        let m = instance.class_count();
        let stages = order.len() + 1;
        let entries = max_bytes.map_or(MAX_ENTRIES, |b| MAX_ENTRIES.min(b / ENTRY_BYTES));
        let window = WINDOW.min((entries / stages).saturating_sub(1) / 2);
        if window < MIN_WINDOW {
            return None;
        }
        let width = 2 * window + 1;
        let capacity = i64::try_from(instance.capacity()).ok()?;
        let mut position = vec![usize::MAX; m];
        for (k, &class) in order.iter().enumerate() {
            position[class] = k;
        }
        let mut out = Self {
            lambda,
            nu,
            dual,
            capacity,
            window,
            position,
            stages: vec![Stage::default(); stages],
            g_max: vec![NONE; stages * width],
            score_max: vec![f64::NEG_INFINITY; stages * width],
        };
        let (mut up, mut down) = (Side::new(window), Side::new(window));
        let mut loss = vec![0.0; window + 2];
        let mut moves: Vec<(i64, i64, f64)> = Vec::new();
        let mut slack = 0.0;
        // `G(t)` over `t = −L..=L`: no class yet, so 0 at `t = 0`.
        let mut g = vec![NONE; width];
        let mut next = vec![NONE; width];
        g[window] = 0;
        let mut add =
            |class: usize, up: &mut Side, down: &mut Side, g: &mut Vec<i64>, slack: &mut f64| {
                let range = instance.class_range(class);
                let (w, p) = instance.class(class);
                let rank = &rank[range];
                let b = base[class];
                let top = w.len() as u64 - 1;
                let rising = rank[b] == 0;
                if !rising && rank[b] != top {
                    return None;
                }
                let reduced = |i: usize| p[i] - lambda * w[i] as f64 - nu * rank[i] as f64;
                let at_dual = |i: usize| p[i] - dual * w[i] as f64;
                moves.clear();
                let mut best = f64::NEG_INFINITY;
                for i in 0..w.len() {
                    best = best.max(reduced(i));
                    let dw = i64::try_from(w[i]).ok()? - i64::try_from(w[b]).ok()?;
                    let dr = i64::try_from(rank[i]).ok()? - i64::try_from(rank[b]).ok()?;
                    moves.push((dr, dw, at_dual(b) - at_dual(i)));
                }
                *slack += best - reduced(b);
                let side = if rising { up } else { down };
                side.add(&moves, &mut loss);
                // `G` with this class: every move shifts it; what leaves the window is a choice
                // moving more than `L` ranks up or down (partial sums of each side only grow),
                // which the far loss bounds.
                next.fill(NONE);
                for &(dr, dw, _) in &moves {
                    let shift = dr.unsigned_abs() as usize;
                    let (from, to) = if dr >= 0 {
                        (
                            &g[..width - shift.min(width)],
                            &mut next[shift.min(width)..],
                        )
                    } else {
                        (
                            &g[shift.min(width)..],
                            &mut next[..width - shift.min(width)],
                        )
                    };
                    for (slot, &x) in to.iter_mut().zip(from) {
                        if x != NONE && x + dw > *slot {
                            *slot = x + dw;
                        }
                    }
                }
                core::mem::swap(g, &mut next);
                Some(())
            };
        // The classes that never join are outside at every stage.
        for class in (0..m).filter(|&c| out.position[c] == usize::MAX) {
            add(class, &mut up, &mut down, &mut g, &mut slack)?;
        }
        out.store(order.len(), slack, &up, &down, &g);
        for k in (0..order.len()).rev() {
            add(order[k], &mut up, &mut down, &mut g, &mut slack)?;
            out.store(k, slack, &up, &down, &g);
        }
        Some(out)
    }

    /// Keeps stage `k`'s tables: the prefix maxima of `G`, the far loss.
    fn store(&mut self, k: usize, slack: f64, up: &Side, down: &Side, g: &[i64]) {
        let l = self.window;
        let width = g.len();
        let (mut running, mut score) = (NONE, f64::NEG_INFINITY);
        for (j, &x) in g.iter().enumerate() {
            running = running.max(x);
            if x != NONE {
                score = score.max(self.lambda * x as f64 + self.nu * (j as f64 - l as f64));
            }
            self.g_max[k * width + j] = running;
            self.score_max[k * width + j] = score;
        }
        self.stages[k] = Stage {
            slack,
            far_loss: (up.far_loss() + down.any_loss).min(down.far_loss() + up.any_loss),
        };
    }
}

impl OutsideBound for RankBound {
    fn reach(&self, class: usize, weight: u64, profit: f64) -> f64 {
        let Some(&k) = self.position.get(class) else {
            return f64::INFINITY;
        };
        if k == usize::MAX {
            return f64::INFINITY;
        }
        // After `class` joined: the stage of the classes after it.
        let k = k + 1;
        let stage = &self.stages[k];
        let width = 2 * self.window + 1;
        let g_max = &self.g_max[k * width..(k + 1) * width];
        let score_max = &self.score_max[k * width..(k + 1) * width];
        let d = i64::try_from(weight).map_or(i64::MIN / 2, |w| self.capacity - w);
        let d_f = d as f64;
        // The first `t` whose `G` (so far) reaches `d` caps the weight at `d` (fewer ranks
        // are worth more); below it the weight is `G` itself.
        let at = g_max.partition_point(|&g| g < d);
        let mut near = if at < width {
            self.lambda * d_f + self.nu * (at as f64 - self.window as f64)
        } else {
            f64::NEG_INFINITY
        };
        if at > 0 {
            near = near.max(score_max[at - 1]);
        }
        let far = profit + self.dual * d_f - stage.far_loss;
        (profit + stage.slack + near).max(far)
    }
}
