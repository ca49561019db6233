//! The order in which deployment queries arrive: shuffled per seed, or task by task.

use rand_core::{RngCore, SeedableRng};
use rand_pcg::Pcg64;

use crate::Problem;

/// How the deployment stream is ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scenario {
    /// The deployment split in a random order per seed (the learning → deployment setting).
    Standard,
    /// Distribution shift: one task after another (task order and the order within each task
    /// random per seed), so the query mix changes abruptly mid-stream.
    TaskShift,
}

impl Scenario {
    /// The name used in reports and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Standard => "standard",
            Self::TaskShift => "task-shift",
        }
    }

    /// Parses a scenario name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "standard" => Some(Self::Standard),
            "task-shift" | "shift" => Some(Self::TaskShift),
            _ => None,
        }
    }
}

/// A seeded generator for one purpose of one seed: streams derived this way never overlap,
/// so changing how many numbers a policy draws leaves the stream order unchanged.
pub fn rng_for(seed: u64, purpose: u64) -> Pcg64 {
    Pcg64::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ purpose)
}

/// A uniform index in `0..n` (`n > 0`), without modulo bias.
pub fn uniform_index(rng: &mut dyn RngCore, n: usize) -> usize {
    let n = n as u64;
    if n <= 1 {
        return 0;
    }
    let zone = u64::MAX - (u64::MAX % n);
    loop {
        let v = rng.next_u64();
        if v < zone {
            return (v % n) as usize;
        }
    }
}

/// Shuffles `items` in place (Fisher–Yates).
pub fn shuffle<T>(items: &mut [T], rng: &mut dyn RngCore) {
    for i in (1..items.len()).rev() {
        let j = uniform_index(rng, i + 1);
        items.swap(i, j);
    }
}

/// The deployment order (indices into the deployment split) for `scenario` and `seed`.
pub fn deployment_order(problem: &Problem, scenario: Scenario, seed: u64) -> Vec<usize> {
    let mut rng = rng_for(seed, 1);
    let n = problem.deployment().len();
    let mut order: Vec<usize> = (0..n).collect();
    shuffle(&mut order, &mut rng);
    if scenario == Scenario::TaskShift {
        let mut tasks: Vec<usize> = (0..problem.tasks().len()).collect();
        shuffle(&mut tasks, &mut rng);
        let mut rank = vec![0usize; tasks.len()];
        for (r, &t) in tasks.iter().enumerate() {
            rank[t] = r;
        }
        let task = &problem.deployment().task;
        // A stable sort keeps the shuffled order within each task.
        order.sort_by_key(|&i| rank.get(task[i]).copied().unwrap_or(usize::MAX));
    }
    order
}
