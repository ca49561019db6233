//! Worlds that move: scenarios where something changes mid-stream (a new LLM, a price, a
//! silently worse LLM, the budget), replayed through the router with the change told live
//! where a real deployment would be told it, and measured before and after the change.
//!
//! There is one episode loop: a world is a [`Changes`] schedule of
//! [`run_episode_with`] (the grid's `run_episode` with no changes) — the changed world's
//! qualities and costs per position, its oracle, and the router events of [`World::events`].
//!
//! A scenario is the standard stream order plus one [`Change`] at a step:
//!
//! - [`Change::NewLlm`]: the LLM is not in the pool until a third of the stream has passed,
//!   then joins it live through `Router::add_arm`: each policy is made for the pool without it
//!   and grows ([`GrowPool`](pilot_core::GrowPool)), the new arm started at the policy's prior
//!   vector for it ([`PolicySpec::starts`](crate::grid::PolicySpec::starts): for a prior
//!   without learning data on it, the vector fitted from judge scores where the run has them,
//!   `PriorSource::joining`, else the mean of the others; neutral for the policies without a
//!   prior). PILOT with learned trust starts an added arm as a stand-in (small prior weight);
//!   the kNN read-out grows into the LLM's offline predictions.
//! - [`Change::Price`]: from halfway on, the LLM's real cost and the router's estimates and
//!   worst cases (the quotes) are multiplied by a factor; `Router::set_price` records it.
//! - [`Change::Drift`]: from halfway on, a seeded half of the LLM's correct answers (quality
//!   ≥ 0.5) on one task become wrong (quality 0). Nobody is told; only feedback shows it.
//! - [`Change::Budget`]: halfway, `Router::set_budget(spent + factor × left)`.
//! - [`Change::None`]: the stationary control.
//!
//! References per scenario: the per-query oracle of the changed world, and the offline
//! knapsack optimum of the part after the change in the changed world and in the unchanged
//! one, each with the budget an evenly paced run has left at the change (times the factor for
//! a budget change): their difference is the quality change the new world makes available.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use pilot_budget::owned::Exact;
use pilot_core::{CostPolicy, MckpInstance, MckpSolver};
use pilot_router::{Exploration, RoutingPolicy};
use rand_core::RngCore;

use crate::engine::{Changes, Event, run_episode_with};
use crate::grid::Grid;
use crate::offline::KNAPSACK_RESOLUTION;
use crate::stream::rng_for;
use crate::{Episode, Problem, Result, Scenario, SimError, deployment_order};

/// What changes, and when (as a fraction of the stream).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Change {
    /// Nothing (the stationary control).
    None,
    /// The LLM joins the pool after a third of the stream.
    NewLlm {
        /// The arm withheld.
        arm: usize,
    },
    /// The LLM's price is multiplied by `factor` from halfway on (told to the router).
    Price {
        /// The arm.
        arm: usize,
        /// Price multiplier.
        factor: f64,
    },
    /// A seeded half of the LLM's correct answers on `task` become wrong from halfway on
    /// (not told).
    Drift {
        /// The arm.
        arm: usize,
        /// The task index.
        task: usize,
    },
    /// Halfway, the budget becomes spent + `factor` × what is left.
    Budget {
        /// Multiplier of what is left.
        factor: f64,
    },
}

impl Change {
    /// The step at which the change happens in a stream of `n` queries.
    pub fn step(&self, n: usize) -> usize {
        match self {
            Self::None => n / 2,
            Self::NewLlm { .. } => n / 3,
            _ => n / 2,
        }
    }
}

/// A named world scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct WorldScenario {
    /// Name in reports (`new-llm:gpt-4`, `price-change:mixtral×5`, …).
    pub name: String,
    /// What changes.
    pub change: Change,
}

/// Names `--scenario` accepts for world scenarios.
/// (`domain-shift` changes the problem and the prior, not the stream: the CLI runs it as one
/// experiment per held-out task, and [`expand`] skips it.)
pub const WORLD_NAMES: [&str; 6] = [
    "stationary",
    "new-llm",
    "price-change",
    "drift",
    "budget-change",
    "domain-shift",
];

/// Whether the world scenarios `names` include one where an LLM joins the pool live
/// (`new-llm`).
pub fn adds_an_llm(names: &[String]) -> bool {
    names.iter().any(|n| n == "new-llm")
}

/// The strong LLM of the pool (best mean deployment quality) and a cheap good one: the
/// cheapest LLM whose mean quality is at least the pool's median, other than the strong one.
pub fn strong_and_cheap(problem: &Problem) -> (usize, usize) {
    let k = problem.arm_count();
    let strong = problem.best_single_llm();
    let stats: Vec<(f64, f64)> = (0..k).map(|a| problem.single_llm(a)).collect();
    let mut qualities: Vec<f64> = stats.iter().map(|s| s.0).collect();
    qualities.sort_by(f64::total_cmp);
    let median = qualities.get(k / 2).copied().unwrap_or(0.0);
    let cheap = (0..k)
        .filter(|&a| a != strong && stats[a].0 >= median)
        .min_by(|&a, &b| stats[a].1.total_cmp(&stats[b].1))
        .unwrap_or(strong);
    (strong, cheap)
}

/// The task on which `arm` has the most correct answers in the deployment split.
fn busiest_task(problem: &Problem, arm: usize) -> usize {
    let k = problem.arm_count();
    let d = problem.deployment();
    let mut count = vec![0usize; problem.tasks().len()];
    for i in 0..d.len() {
        if d.quality[i * k + arm] >= 0.5
            && let Some(c) = count.get_mut(d.task[i])
        {
            *c += 1;
        }
    }
    (0..count.len()).max_by_key(|&t| count[t]).unwrap_or(0)
}

fn short(problem: &Problem, arm: usize) -> String {
    let name = &problem.llms()[arm];
    name.rsplit('/').next().unwrap_or(name).to_owned()
}

/// Expands scenario names (see [`WORLD_NAMES`]) into concrete scenarios on `problem`:
/// `new-llm` and `price-change` run once for the strong LLM and once for the cheap good one
/// ([`strong_and_cheap`]); `drift` hits the cheap good LLM on its busiest task;
/// `budget-change` halves and doubles what is left. `stationary` is always run first (every
/// other scenario is compared with it).
///
/// # Errors
/// [`SimError::Invalid`] for an unknown name.
pub fn expand(names: &[String], problem: &Problem) -> Result<Vec<WorldScenario>> {
    let (strong, cheap) = strong_and_cheap(problem);
    let mut out = vec![WorldScenario {
        name: "stationary".into(),
        change: Change::None,
    }];
    let mut push = |name: String, change: Change| {
        if !out.iter().any(|s| s.name == name) {
            out.push(WorldScenario { name, change });
        }
    };
    for name in names {
        match name.as_str() {
            "stationary" | "domain-shift" => {}
            "new-llm" => {
                for arm in [strong, cheap] {
                    push(
                        format!("new-llm:{}", short(problem, arm)),
                        Change::NewLlm { arm },
                    );
                }
            }
            "price-change" => {
                push(
                    format!("price-change:{}/3", short(problem, strong)),
                    Change::Price {
                        arm: strong,
                        factor: 1.0 / 3.0,
                    },
                );
                push(
                    format!("price-change:{}*5", short(problem, cheap)),
                    Change::Price {
                        arm: cheap,
                        factor: 5.0,
                    },
                );
            }
            "drift" => {
                let task = busiest_task(problem, cheap);
                push(
                    format!(
                        "drift:{}@{}",
                        short(problem, cheap),
                        problem.tasks().get(task).map_or("?", String::as_str)
                    ),
                    Change::Drift { arm: cheap, task },
                );
            }
            "budget-change" => {
                push("budget-change:half".into(), Change::Budget { factor: 0.5 });
                push(
                    "budget-change:double".into(),
                    Change::Budget { factor: 2.0 },
                );
            }
            other => {
                return Err(SimError::invalid(format!(
                    "unknown world scenario '{other}' (expected one of {})",
                    WORLD_NAMES.join(", ")
                )));
            }
        }
    }
    Ok(out)
}

/// The world one episode sees, in arrival order: position `t` holds query `order[t]` with
/// its qualities and real costs as they are at that step.
#[derive(Clone, Debug)]
pub struct World {
    /// The step of the change.
    pub step: usize,
    /// What changes.
    pub change: Change,
    /// Qualities per position (`n × K`).
    pub quality: Vec<f32>,
    /// Real costs per position (`n × K`).
    pub cost: Vec<f64>,
    /// Arms unavailable per position (`n × K`, the withheld LLM before its addition).
    pub absent: Vec<bool>,
}

impl World {
    /// Builds the changed world for `order` (drift's coin flips seeded by `seed`).
    pub fn new(problem: &Problem, order: &[usize], change: Change, seed: u64) -> Self {
        let k = problem.arm_count();
        let d = problem.deployment();
        let n = order.len();
        let step = change.step(n);
        let mut quality = Vec::with_capacity(n * k);
        let mut cost = Vec::with_capacity(n * k);
        let mut absent = vec![false; n * k];
        let mut rng = rng_for(seed, 40);
        for (t, &i) in order.iter().enumerate() {
            let after = t >= step;
            for a in 0..k {
                let mut q = d.quality[i * k + a];
                let mut c = d.cost[i * k + a];
                match change {
                    Change::NewLlm { arm } if a == arm && !after => absent[t * k + a] = true,
                    Change::Price { arm, factor } if a == arm && after => c *= factor,
                    // A fair coin per affected correct answer (the world is fixed per seed,
                    // whatever the policy does).
                    Change::Drift { arm, task }
                        if a == arm
                            && after
                            && d.task[i] == task
                            && q >= 0.5
                            && rng.next_u64() & 1 == 1 =>
                    {
                        q = 0.0;
                    }
                    _ => {}
                }
                quality.push(q);
                cost.push(c);
            }
        }
        Self {
            step,
            change,
            quality,
            cost,
            absent,
        }
    }

    /// What the router is told, and when: the new LLM joins at the step (started at `start`,
    /// the policy's vector for it), the price factor or the budget change at the step; nothing
    /// for drift (only feedback shows it) or the stationary control.
    pub fn events<'a>(&self, start: Option<&'a [f32]>) -> Vec<(usize, Event<'a>)> {
        match self.change {
            Change::NewLlm { arm } => vec![(self.step, Event::Joins { llm: arm, start })],
            Change::Price { arm, factor } => vec![(self.step, Event::Price { llm: arm, factor })],
            Change::Budget { factor } => vec![(self.step, Event::BudgetLeft { factor })],
            Change::None | Change::Drift { .. } => Vec::new(),
        }
    }

    /// The LLMs in the pool at the start, in the router's arm order (the new LLM joins later).
    pub fn pool(&self, k: usize) -> Vec<usize> {
        crate::engine::starting_pool(k, &self.events(None))
    }

    /// Best available quality at each position (the per-query oracle of the changed world).
    pub fn oracle(&self, k: usize) -> Vec<f32> {
        (0..self.quality.len() / k.max(1))
            .map(|t| {
                (0..k)
                    .filter(|&a| !self.absent[t * k + a])
                    .map(|a| self.quality[t * k + a])
                    .fold(0.0f32, f32::max)
            })
            .collect()
    }

    /// The offline knapsack optimum over positions `range` with `budget`: (total quality,
    /// total cost). Withheld arms are left out.
    ///
    /// # Errors
    /// [`SimError::Invalid`] for a non-positive budget; the solver's error (e.g. infeasible).
    pub fn offline(
        &self,
        k: usize,
        range: std::ops::Range<usize>,
        budget: f64,
    ) -> Result<(f64, f64)> {
        self.offline_by(k, range, budget, &self.quality)
    }

    /// The offline knapsack that maximises `value` (per position, `n × K`: a prediction of
    /// the quality, say) within `budget` of real costs over positions `range`, scored by the
    /// real qualities it gets: (total quality, total cost). With `value` = the real qualities
    /// it is [`offline`](Self::offline), the optimum in hindsight.
    ///
    /// # Errors
    /// As [`offline`](Self::offline), plus [`SimError::Invalid`] for a `value` table of
    /// another shape.
    pub fn offline_by(
        &self,
        k: usize,
        range: std::ops::Range<usize>,
        budget: f64,
        value: &[f32],
    ) -> Result<(f64, f64)> {
        if value.len() != self.quality.len() {
            return Err(SimError::invalid(format!(
                "offline knapsack: {} values for {} qualities",
                value.len(),
                self.quality.len()
            )));
        }
        if !budget.is_finite() || budget <= 0.0 {
            return Err(SimError::invalid(format!(
                "offline optimum: budget {budget} must be finite and > 0"
            )));
        }
        let unit = budget / KNAPSACK_RESOLUTION as f64;
        let (mut weights, mut profits, mut arms, mut ends) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for t in range.clone() {
            let row = t * k..(t + 1) * k;
            let q = &value[row.clone()];
            let c = &self.cost[row.clone()];
            let gone = &self.absent[row];
            let w: Vec<u64> = c
                .iter()
                .map(|&c| ((c / unit).ceil()).min(u64::MAX as f64 / 4.0) as u64)
                .collect();
            for a in (0..k).filter(|&a| !gone[a]) {
                let dominated = (0..k).any(|b| {
                    b != a
                        && !gone[b]
                        && w[b] <= w[a]
                        && q[b] >= q[a]
                        && (w[b] < w[a] || q[b] > q[a] || b < a)
                });
                if !dominated {
                    weights.push(w[a]);
                    profits.push(f64::from(q[a]));
                    arms.push(a);
                }
            }
            ends.push(weights.len());
        }
        let instance = MckpInstance::new(KNAPSACK_RESOLUTION, &weights, &profits, &ends)
            .map_err(|e| SimError::core("world offline optimum: instance", e))?;
        let mut choice = vec![0usize; ends.len()];
        Exact::new()
            .solve(&instance, &mut choice)
            .map_err(|e| SimError::core("world offline optimum: solver", e))?;
        let (mut quality, mut cost) = (0.0, 0.0);
        for (j, (&item, t)) in choice.iter().zip(range).enumerate() {
            let flat = instance.class_range(j).start + item;
            let a = *arms.get(flat).ok_or_else(|| {
                SimError::invalid(format!("world offline optimum: bad item {item}"))
            })?;
            quality += f64::from(self.quality[t * k + a]);
            cost += self.cost[t * k + a];
        }
        Ok((quality, cost))
    }
}

/// What one world episode did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WorldOutcome {
    /// Quality summed over the positions before / from the change.
    pub quality: [f64; 2],
    /// Real cost summed before / from the change.
    pub cost: [f64; 2],
    /// Queries not served.
    pub unserved: usize,
    /// The budget at the end (after a budget change).
    pub final_budget: f64,
    /// Whether the real spend stayed within the budget in force at every step.
    pub budget_held: bool,
    /// The arm called at each position.
    pub choices: Vec<Option<usize>>,
    /// The real cost at each position.
    pub costs: Vec<f64>,
    /// The quality obtained at each position (0 unserved).
    pub qualities: Vec<f32>,
    /// Cumulative regret against the changed world's per-query oracle after each step.
    pub regret: Vec<f32>,
    /// Queries where the budget guard replaced the cost policy's decision.
    pub overridden: usize,
}

/// The inputs of one world episode.
#[derive(Clone, Copy)]
pub struct WorldEpisode<'a> {
    /// The problem (for the contexts' indices and the pool's names).
    pub problem: &'a Problem,
    /// The policy's contexts, one row per deployment query.
    pub contexts: &'a crate::ContextTable,
    /// Cost estimates of the unchanged world.
    pub costs: &'a crate::CostModel,
    /// Arrival order.
    pub order: &'a [usize],
    /// The world, in arrival order.
    pub world: &'a World,
    /// The budget at the start (USD).
    pub budget: f64,
    /// Seed of the policy's random draws.
    pub seed: u64,
    /// The policy's starting vector per LLM when one joins the pool
    /// ([`PolicySpec::starts`](crate::grid::PolicySpec::starts); `None`: neutral).
    pub starts: Option<&'a [Vec<f32>]>,
}

/// Runs one episode in a changing world: [`run_episode_with`]
/// (the one episode loop: route → settle → feedback per query through a router) with the
/// world's qualities and costs and its change told as events ([`World::events`]; drift is
/// never told).
///
/// # Errors
/// [`SimError::Core`] naming the step when the router refuses an input.
pub fn run_world_episode(
    ep: &WorldEpisode<'_>,
    policy: &mut dyn RoutingPolicy,
    cost_policy: &mut dyn CostPolicy<f64>,
) -> Result<WorldOutcome> {
    let k = ep.problem.arm_count();
    let n = ep.order.len();
    let world = ep.world;
    if world.quality.len() != n * k {
        return Err(SimError::invalid(
            "world episode: the world and the order do not match",
        ));
    }
    let start = match world.change {
        Change::NewLlm { arm } => ep.starts.and_then(|v| v.get(arm)).map(Vec::as_slice),
        _ => None,
    };
    let events = world.events(start);
    let oracle = world.oracle(k);
    let changes = Changes {
        events: &events,
        quality: &world.quality,
        cost: &world.cost,
        oracle: &oracle,
    };
    let episode = Episode {
        problem: ep.problem,
        contexts: ep.contexts,
        costs: ep.costs,
        order: ep.order,
        budget: ep.budget,
        seed: ep.seed,
        log: false,
        exploration: Exploration::Argmax,
    };
    let o = run_episode_with(&episode, Some(&changes), policy, cost_policy)?;
    let mut out = WorldOutcome {
        unserved: o.unserved,
        final_budget: o.final_budget,
        budget_held: o.budget_held,
        choices: o.choices,
        costs: o.costs,
        qualities: o.qualities,
        regret: o.regret,
        overridden: o.overridden,
        ..WorldOutcome::default()
    };
    for (t, (&q, &c)) in out.qualities.iter().zip(&out.costs).enumerate() {
        let part = usize::from(t >= world.step);
        out.quality[part] += f64::from(q);
        out.cost[part] += c;
    }
    Ok(out)
}

/// One row of the scenario report: means over seeds.
#[derive(Clone, Debug, PartialEq)]
pub struct WorldRow {
    /// Scenario name.
    pub scenario: String,
    /// Policy (or `oracle` / `offline-mckp` / `offline-mckp-predicted` for the references).
    pub policy: String,
    /// Budget as a fraction of the reference LLM's cost.
    pub budget_frac: f64,
    /// The change step.
    pub change_step: usize,
    /// Whether the world changes there (false for the stationary control and domain shift,
    /// whose before / after columns split the stream there all the same).
    pub changed: bool,
    /// Quality in % of the reference LLM's (unchanged) quality over the same queries:
    /// whole stream, before and after the change.
    pub quality_pct: f64,
    /// Before the change.
    pub quality_before_pct: f64,
    /// From the change on.
    pub quality_after_pct: f64,
    /// Spend before the change as a fraction of the starting budget.
    pub spend_before: f64,
    /// Spend from the change on as a fraction of the budget left at the change.
    pub spend_after: f64,
    /// Queries after the change until spend re-settles (budget and price changes; mean over
    /// the seeds where it did; `None` when it never did).
    pub settle_steps: Option<f64>,
    /// Queries after the addition until adoption (new-llm; mean over the seeds where it was
    /// reached; `None` when never).
    pub adoption_steps: Option<f64>,
    /// Seeds (of all) where adoption or re-settling was reached.
    pub reached: usize,
    /// New LLM: its share of the decisions after the addition step in the stationary
    /// (full-pool) run, mean over seeds: what adoption is measured against.
    pub full_pool_share: Option<f64>,
    /// After-change quality change against the stationary run, in points of the reference
    /// LLM's quality.
    pub delta_after: f64,
    /// That change as a share of the offline optimum's change (`None` without a reference).
    pub captured: Option<f64>,
    /// That change as a share of the change of the offline knapsack over the kNN router's
    /// predictions (what can be known before a call; `None` without a reference): the
    /// hindsight optimum can see no change where it already gets the per-query oracle's
    /// quality on both sides.
    pub captured_predicted: Option<f64>,
    /// Whether every seed stayed within its budget.
    pub budget_held: bool,
    /// Seeds.
    pub seeds: u64,
    /// Mean per-query quality over the whole stream (mean over seeds).
    pub quality_mean: f64,
    /// Standard deviation over seeds of the per-seed mean quality.
    pub quality_std: f64,
    /// Real spend in % of always calling the reference LLM (unchanged prices).
    pub cost_pct: f64,
    /// Final cumulative regret against the changed world's oracle (mean over seeds).
    pub regret_final: f64,
    /// Regret after 100 queries.
    pub regret_100: Option<f64>,
    /// Regret after 300 queries.
    pub regret_300: Option<f64>,
    /// Mean unserved queries.
    pub unserved_mean: f64,
    /// Mean guard overrides.
    pub overridden_mean: f64,
    /// Mean cumulative regret after each step (over seeds; empty for the reference rows).
    pub regret_curve: Vec<f64>,
}

/// The window (queries) over which the new LLM's share is measured for adoption.
pub const ADOPTION_WINDOW: usize = 25;
/// The window (queries) over which the spend rate is measured for re-settling.
pub const SETTLE_WINDOW: usize = 50;
/// How close the windowed spend rate must come to the target rate to count as settled.
pub const SETTLE_TOLERANCE: f64 = 0.25;

/// Queries after `step` until the share of `arm` among the last [`ADOPTION_WINDOW`] decisions
/// since `step` (fewer at first, at least 10) reaches `0.8 × target_share`. `Some(0)` when the
/// target share is 0.
pub fn adoption_steps(
    choices: &[Option<usize>],
    step: usize,
    arm: usize,
    target_share: f64,
) -> Option<usize> {
    if target_share <= 0.0 {
        return Some(0);
    }
    let after = choices.get(step..)?;
    (0..after.len()).find(|&s| {
        let lo = (s + 1).saturating_sub(ADOPTION_WINDOW);
        let window = &after[lo..=s];
        window.len() >= 10
            && window.iter().filter(|c| **c == Some(arm)).count() as f64
                >= 0.8 * target_share * window.len() as f64
    })
}

/// Queries after `step` until the mean spend over a [`SETTLE_WINDOW`] starting there is
/// within [`SETTLE_TOLERANCE`] of `target` per query.
pub fn settle_steps(costs: &[f64], step: usize, target: f64) -> Option<usize> {
    let after = costs.get(step..)?;
    if after.len() < SETTLE_WINDOW || target <= 0.0 {
        return None;
    }
    (0..=after.len() - SETTLE_WINDOW).find(|&s| {
        let mean = after[s..s + SETTLE_WINDOW].iter().sum::<f64>() / SETTLE_WINDOW as f64;
        (mean - target).abs() <= SETTLE_TOLERANCE * target
    })
}

struct Job {
    grid: usize,
    scenario: usize,
    policy: usize,
    seed: u64,
}

/// Runs every scenario × policy of its grid (the grid's first cost policy) × seed at budget
/// fraction `frac`, and aggregates rows, plus the oracle and offline references per scenario.
///
/// `scenarios[j].1` indexes `grids`: a scenario may run on its own line-up (a new LLM's runs
/// start from a learning prior that has no vector for it), but every grid must hold the same
/// problem, policy names, seeds and costs as `grids[0]`, and the control — the first
/// scenario, stationary — runs on `grids[0]`.
///
/// # Errors
/// [`SimError::Invalid`] for a bad budget, an empty line-up, grids that differ or a missing
/// control; the first episode's error.
pub fn run_worlds(
    grids: &[Grid<'_>],
    scenarios: &[(WorldScenario, usize)],
    frac: f64,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Vec<WorldRow>> {
    let grid = grids
        .first()
        .ok_or_else(|| SimError::invalid("world runs need a grid"))?;
    for (sc, g) in scenarios {
        let other = grids
            .get(*g)
            .ok_or_else(|| SimError::invalid(format!("scenario {}: no grid {g}", sc.name)))?;
        let names = |g: &Grid<'_>| {
            g.policies
                .iter()
                .map(|p| p.name.clone())
                .collect::<Vec<_>>()
        };
        if names(other) != names(grid)
            || other.seeds != grid.seeds
            || other.problem.deployment().len() != grid.problem.deployment().len()
        {
            return Err(SimError::invalid(format!(
                "scenario {}: its grid differs from the control's",
                sc.name
            )));
        }
    }
    if scenarios.first().map(|s| (s.0.change, s.1)) != Some((Change::None, 0)) {
        return Err(SimError::invalid(
            "world runs need the stationary control first, on the first grid",
        ));
    }
    if !frac.is_finite() || frac <= 0.0 {
        return Err(SimError::invalid(format!(
            "budget fraction {frac} must be finite and > 0"
        )));
    }
    if grid.policies.is_empty() {
        return Err(SimError::invalid("world runs need policies"));
    }
    let problem = grid.problem;
    let k = problem.arm_count();
    let budget = frac * grid.reference_cost();
    let orders: Vec<Vec<usize>> = (0..grid.seeds)
        .map(|s| deployment_order(problem, Scenario::Standard, s))
        .collect();
    let worlds: Vec<Vec<World>> = scenarios
        .iter()
        .map(|(sc, _)| {
            orders
                .iter()
                .enumerate()
                .map(|(s, o)| World::new(problem, o, sc.change, s as u64))
                .collect()
        })
        .collect();
    let mut jobs = Vec::new();
    for (scenario, (_, grid_index)) in scenarios.iter().enumerate() {
        for policy in 0..grid.policies.len() {
            for seed in 0..grid.seeds {
                jobs.push(Job {
                    grid: *grid_index,
                    scenario,
                    policy,
                    seed,
                });
            }
        }
    }
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let slots: Mutex<Vec<Option<Result<WorldOutcome>>>> =
        Mutex::new((0..jobs.len()).map(|_| None).collect());
    let worker = || {
        loop {
            let j = next.fetch_add(1, Ordering::Relaxed);
            let Some(job) = jobs.get(j) else { break };
            let grid = &grids[job.grid];
            let spec = &grid.policies[job.policy];
            let order = &orders[job.seed as usize];
            let result = (|| {
                let cost_spec = grid
                    .cost_policies
                    .first()
                    .ok_or_else(|| SimError::invalid("no cost policy"))?;
                let world = &worlds[job.scenario][job.seed as usize];
                let pool = world.pool(k);
                let mut policy = (spec.make)(job.seed, &pool)?;
                let mut cost = (cost_spec.make)(&spec.name, budget, order.len())?;
                let contexts = grid.contexts.get(spec.context).ok_or_else(|| {
                    SimError::invalid(format!("policy '{}': no context table", spec.name))
                })?;
                let ep = WorldEpisode {
                    problem,
                    contexts,
                    costs: grid.costs,
                    order,
                    world,
                    budget,
                    seed: job.seed,
                    starts: spec.starts.as_deref().map(Vec::as_slice),
                };
                run_world_episode(&ep, policy.as_mut(), cost.as_mut()).map_err(|e| {
                    SimError::invalid(format!(
                        "{} / {} / seed {}: {e}",
                        scenarios[job.scenario].0.name, spec.name, job.seed
                    ))
                })
            })();
            let failed = result.is_err();
            if let Ok(mut s) = slots.lock() {
                s[j] = Some(result);
            }
            if failed {
                next.store(jobs.len(), Ordering::Relaxed);
            }
            progress(done.fetch_add(1, Ordering::Relaxed) + 1, jobs.len());
        }
    };
    std::thread::scope(|scope| {
        for _ in 0..grid.threads.clamp(1, 64) {
            scope.spawn(worker);
        }
    });
    let slots = slots
        .into_inner()
        .map_err(|_| SimError::invalid("a worker thread panicked"))?;
    let mut outcomes = Vec::with_capacity(slots.len());
    for slot in slots {
        match slot {
            Some(Ok(o)) => outcomes.push(o),
            Some(Err(e)) => return Err(e),
            None => return Err(SimError::invalid("a world episode did not finish")),
        }
    }
    let per_policy = grid.seeds as usize;
    let per_scenario = grid.policies.len() * per_policy;
    let at = |scenario: usize, policy: usize, seed: usize| {
        &outcomes[scenario * per_scenario + policy * per_policy + seed]
    };
    // The reference LLM's quality over `range` of a world.
    let reference = |world: &World, range: std::ops::Range<usize>| -> f64 {
        range
            .map(|t| f64::from(world.quality[t * k + grid.reference_arm]))
            .sum::<f64>()
            .max(1e-12)
    };
    // The kNN router's per-LLM quality predictions in each seed's order (`n × K`): what can
    // be known of a query before any call, for the offline knapsack over predictions.
    let predicted: Option<Vec<Vec<f32>>> = grid
        .policies
        .iter()
        .find(|p| p.name == "knn-full-info")
        .and_then(|p| grid.contexts.get(p.context))
        .filter(|table| table.dim() == k)
        .map(|table| {
            orders
                .iter()
                .map(|o| {
                    o.iter()
                        .flat_map(|&i| table.row(i).iter().copied())
                        .collect()
                })
                .collect()
        });
    let mut rows = Vec::new();
    for (si, (sc, _)) in scenarios.iter().enumerate() {
        let n = orders.first().map_or(0, Vec::len);
        let step = sc.change.step(n);
        let base_world = |seed: usize| &worlds[0][seed];
        // Offline references for the part after the change, with the budget an evenly paced
        // run has left there.
        let left = budget * (n - step) as f64 / n.max(1) as f64;
        let changed_left = match sc.change {
            Change::Budget { factor } => left * factor,
            _ => left,
        };
        let mut hindsight = OfflineSum::default();
        let mut over_predictions = OfflineSum {
            failed: predicted.is_none(),
            ..OfflineSum::default()
        };
        let mut oracle_pct = [0.0f64; 3];
        for (seed, world) in worlds[si].iter().enumerate() {
            let base = base_world(seed);
            let r_after = reference(base, step..n);
            hindsight.add(
                world.offline(k, step..n, changed_left),
                base.offline(k, step..n, left),
                r_after,
            );
            if let Some(value) = predicted.as_ref().and_then(|p| p.get(seed)) {
                over_predictions.add(
                    world.offline_by(k, step..n, changed_left, value),
                    base.offline_by(k, step..n, left, value),
                    r_after,
                );
            }
            let oracle = world.oracle(k);
            let sum = |r: std::ops::Range<usize>| r.map(|t| f64::from(oracle[t])).sum::<f64>();
            oracle_pct[0] += 100.0 * sum(0..n) / reference(base, 0..n);
            oracle_pct[1] += 100.0 * sum(0..step) / reference(base, 0..step);
            oracle_pct[2] += 100.0 * sum(step..n) / r_after;
        }
        let s = per_policy as f64;
        for (pi, spec) in grid.policies.iter().enumerate() {
            let mut row = WorldRow {
                scenario: sc.name.clone(),
                policy: spec.name.clone(),
                budget_frac: frac,
                change_step: step,
                changed: sc.change != Change::None,
                quality_pct: 0.0,
                quality_before_pct: 0.0,
                quality_after_pct: 0.0,
                spend_before: 0.0,
                spend_after: 0.0,
                settle_steps: None,
                adoption_steps: None,
                reached: 0,
                full_pool_share: None,
                delta_after: 0.0,
                captured: None,
                captured_predicted: None,
                budget_held: true,
                seeds: grid.seeds,
                quality_mean: 0.0,
                quality_std: 0.0,
                cost_pct: 0.0,
                regret_final: 0.0,
                regret_100: None,
                regret_300: None,
                unserved_mean: 0.0,
                overridden_mean: 0.0,
                regret_curve: vec![0.0; n],
            };
            let (mut adopt_sum, mut settle_sum, mut share_sum) = (0.0, 0.0, 0.0);
            let mut per_seed = Vec::with_capacity(per_policy);
            let (mut r100, mut r300) = (0.0, 0.0);
            for seed in 0..per_policy {
                let o = at(si, pi, seed);
                let base = base_world(seed);
                per_seed.push((o.quality[0] + o.quality[1]) / n.max(1) as f64);
                let reference_cost: f64 =
                    (0..n).map(|t| base.cost[t * k + grid.reference_arm]).sum();
                row.cost_pct += 100.0 * (o.cost[0] + o.cost[1]) / reference_cost.max(1e-300) / s;
                row.regret_final += o.regret.last().map_or(0.0, |&r| f64::from(r)) / s;
                for (m, &r) in row.regret_curve.iter_mut().zip(&o.regret) {
                    *m += f64::from(r) / s;
                }
                r100 += o.regret.get(99).map_or(f64::NAN, |&r| f64::from(r)) / s;
                r300 += o.regret.get(299).map_or(f64::NAN, |&r| f64::from(r)) / s;
                row.unserved_mean += o.unserved as f64 / s;
                row.overridden_mean += o.overridden as f64 / s;
            }
            (row.quality_mean, row.quality_std) = crate::summary::mean_std(&per_seed);
            row.regret_100 = r100.is_finite().then_some(r100);
            row.regret_300 = r300.is_finite().then_some(r300);
            for seed in 0..per_policy {
                let o = at(si, pi, seed);
                let control = at(0, pi, seed);
                let base = base_world(seed);
                let (r0, r1) = (reference(base, 0..step), reference(base, step..n));
                row.quality_pct +=
                    100.0 * (o.quality[0] + o.quality[1]) / reference(base, 0..n) / s;
                row.quality_before_pct += 100.0 * o.quality[0] / r0 / s;
                row.quality_after_pct += 100.0 * o.quality[1] / r1 / s;
                let after = |x: &WorldOutcome| {
                    x.qualities[step..]
                        .iter()
                        .map(|&q| f64::from(q))
                        .sum::<f64>()
                };
                row.delta_after += 100.0 * (after(o) - after(control)) / r1 / s;
                row.spend_before += o.cost[0] / budget / s;
                let left_here = (o.final_budget - o.cost[0]).max(1e-12);
                row.spend_after += o.cost[1] / left_here / s;
                row.budget_held &= o.budget_held;
                match sc.change {
                    Change::NewLlm { arm } => {
                        let share = control.choices[step..]
                            .iter()
                            .filter(|c| **c == Some(arm))
                            .count() as f64
                            / (n - step).max(1) as f64;
                        share_sum += share / s;
                        row.full_pool_share = Some(share_sum);
                        if let Some(a) = adoption_steps(&o.choices, step, arm, share) {
                            adopt_sum += a as f64;
                            row.reached += 1;
                        }
                    }
                    Change::Budget { .. } | Change::Price { .. } => {
                        let target = left_here / (n - step).max(1) as f64;
                        if let Some(a) = settle_steps(&o.costs, step, target) {
                            settle_sum += a as f64;
                            row.reached += 1;
                        }
                    }
                    Change::None | Change::Drift { .. } => {}
                }
            }
            if row.reached > 0 {
                match sc.change {
                    Change::NewLlm { .. } => {
                        row.adoption_steps = Some(adopt_sum / row.reached as f64);
                    }
                    _ => row.settle_steps = Some(settle_sum / row.reached as f64),
                }
            }
            if si > 0 {
                row.captured = hindsight.captured(row.delta_after, s);
                row.captured_predicted = over_predictions.captured(row.delta_after, s);
            }
            rows.push(row);
        }
        let reference_row = |policy: &str, pct: [f64; 3], delta: f64| WorldRow {
            scenario: sc.name.clone(),
            policy: policy.to_owned(),
            budget_frac: frac,
            change_step: step,
            changed: sc.change != Change::None,
            quality_pct: pct[0],
            quality_before_pct: pct[1],
            quality_after_pct: pct[2],
            spend_before: f64::NAN,
            spend_after: f64::NAN,
            settle_steps: None,
            adoption_steps: None,
            reached: 0,
            full_pool_share: None,
            delta_after: delta,
            captured: None,
            captured_predicted: None,
            budget_held: true,
            seeds: grid.seeds,
            quality_mean: f64::NAN,
            quality_std: f64::NAN,
            cost_pct: f64::NAN,
            regret_final: f64::NAN,
            regret_100: None,
            regret_300: None,
            unserved_mean: f64::NAN,
            overridden_mean: f64::NAN,
            regret_curve: Vec::new(),
        };
        rows.push(reference_row(
            "oracle",
            [oracle_pct[0] / s, oracle_pct[1] / s, oracle_pct[2] / s],
            f64::NAN,
        ));
        for (name, sum) in [
            ("offline-mckp(after)", &hindsight),
            ("offline-mckp-predicted(after)", &over_predictions),
        ] {
            if !sum.failed {
                rows.push(reference_row(
                    name,
                    [f64::NAN, f64::NAN, sum.after / s],
                    sum.delta / s,
                ));
            }
        }
    }
    Ok(rows)
}

/// An offline reference's part after the change, summed over the seeds (points of the
/// reference LLM's quality): its quality in the changed world and its change from the
/// unchanged one; `failed` once a seed's knapsack could not be solved.
#[derive(Default)]
struct OfflineSum {
    delta: f64,
    after: f64,
    failed: bool,
}

impl OfflineSum {
    /// Adds one seed: the reference's (quality, cost) in the changed and the unchanged world,
    /// and the reference LLM's quality over the same part.
    fn add(&mut self, changed: Result<(f64, f64)>, unchanged: Result<(f64, f64)>, per: f64) {
        match (changed, unchanged) {
            (Ok((q1, _)), Ok((q0, _))) => {
                self.delta += 100.0 * (q1 - q0) / per;
                self.after += 100.0 * q1 / per;
            }
            _ => self.failed = true,
        }
    }

    /// `delta_after` as a share of the reference's mean change over `seeds` (`None` when it
    /// failed or changed by less than half a point).
    fn captured(&self, delta_after: f64, seeds: f64) -> Option<f64> {
        let available = self.delta / seeds;
        (!self.failed && available.abs() >= 0.5).then(|| delta_after / available)
    }
}

fn opt(v: Option<f64>) -> String {
    v.map_or_else(String::new, |v| format!("{v:.1}"))
}

/// The rows as CSV (`scenarios.csv`).
pub fn world_csv(rows: &[WorldRow]) -> String {
    let mut out = String::from(
        "scenario,policy,budget_frac,seeds,change_step,quality_pct,quality_before_pct,\
         quality_after_pct,spend_before,spend_after,delta_after,captured,captured_predicted,\
         adoption_steps,full_pool_share,settle_steps,reached,budget_held\n",
    );
    for r in rows {
        out.push_str(&format!(
            "{},{},{},{},{},{:.3},{:.3},{:.3},{:.4},{:.4},{:.3},{},{},{},{},{},{},{}\n",
            r.scenario,
            r.policy,
            r.budget_frac,
            r.seeds,
            r.change_step,
            r.quality_pct,
            r.quality_before_pct,
            r.quality_after_pct,
            r.spend_before,
            r.spend_after,
            r.delta_after,
            r.captured.map_or_else(String::new, |v| format!("{v:.3}")),
            r.captured_predicted
                .map_or_else(String::new, |v| format!("{v:.3}")),
            opt(r.adoption_steps),
            r.full_pool_share
                .map_or_else(String::new, |v| format!("{v:.4}")),
            opt(r.settle_steps),
            r.reached,
            r.budget_held
        ));
    }
    out
}

/// The rows as `summary.csv` rows ([`crate::summary::SummaryRow`]): the scenario name in the
/// `scenario` column, the whole-stream figures in the usual columns (quality in % of the
/// reference LLM's unchanged quality) and the change's values — change step, quality before
/// and after, Δafter, adoption and re-settle steps — in the world columns. `cost_policy` names
/// the cost policy the runs used.
pub fn world_summary_rows(rows: &[WorldRow], cost_policy: &str) -> Vec<crate::summary::SummaryRow> {
    rows.iter()
        .map(|r| {
            let reference = r.policy == "oracle" || r.policy.starts_with("offline-mckp");
            crate::summary::SummaryRow {
                scenario: r.scenario.clone(),
                policy: r.policy.clone(),
                cost_policy: if reference {
                    "offline".to_owned()
                } else {
                    cost_policy.to_owned()
                },
                budget_frac: Some(r.budget_frac),
                seeds: r.seeds as usize,
                quality_mean: r.quality_mean,
                quality_std: r.quality_std,
                quality_pct_of_best: r.quality_pct,
                cost_pct_of_best: r.cost_pct,
                regret_final: r.regret_final,
                regret_100: r.regret_100,
                regret_300: r.regret_300,
                unserved_mean: r.unserved_mean,
                overridden_mean: r.overridden_mean,
                budget_held: (!reference).then_some(r.budget_held),
                world: Some(crate::summary::WorldColumns {
                    change_step: r.change_step,
                    quality_before_pct: r.quality_before_pct,
                    quality_after_pct: r.quality_after_pct,
                    delta_after: r.delta_after,
                    adoption_steps: r.adoption_steps,
                    settle_steps: r.settle_steps,
                }),
            }
        })
        .collect()
}

/// The policies' mean regret curves, each carrying its scenario's change step (none for the
/// stationary control) so the plot marks it.
pub fn world_curves(rows: &[WorldRow], cost_policy: &str) -> Vec<crate::summary::RegretCurve> {
    rows.iter()
        .filter(|r| !r.regret_curve.is_empty())
        .map(|r| crate::summary::RegretCurve {
            scenario: r.scenario.clone(),
            policy: r.policy.clone(),
            cost_policy: cost_policy.to_owned(),
            budget_frac: r.budget_frac,
            mean: r.regret_curve.clone(),
            change_step: r.changed.then_some(r.change_step),
        })
        .collect()
}

/// Writes a world run's `scenarios.csv` (every column of [`WorldRow`]), `summary.csv` (the
/// standard columns plus the world columns, [`world_summary_rows`]), and the regret curves
/// against the changed world's oracle, `regret.csv` and `regret.svg` (the change step marked),
/// into `dir`.
///
/// # Errors
/// [`SimError::Io`](crate::SimError) when a file cannot be written; [`SimError::Plot`] when the
/// plot cannot be drawn.
pub fn write_outputs(dir: &std::path::Path, rows: &[WorldRow], cost_policy: &str) -> Result<()> {
    crate::report::write_text(&dir.join("scenarios.csv"), &world_csv(rows))?;
    crate::report::write_text(
        &dir.join("summary.csv"),
        &crate::report::summary_csv(&world_summary_rows(rows, cost_policy)),
    )?;
    let curves = world_curves(rows, cost_policy);
    let longest = curves.iter().map(|c| c.mean.len()).max().unwrap_or(0);
    crate::report::write_text(
        &dir.join("regret.csv"),
        &crate::report::regret_csv(&curves, (longest / 200).max(1)),
    )?;
    match rows.first() {
        Some(r) => crate::plot::regret_svg(&dir.join("regret.svg"), &curves, r.budget_frac),
        None => Ok(()),
    }
}

/// The rows as a text table.
pub fn world_table(rows: &[WorldRow]) -> String {
    let mut out = format!(
        "{:<28} {:<20} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>4}\n",
        "scenario",
        "policy",
        "q%",
        "before",
        "after",
        "Δafter",
        "capt",
        "capt~",
        "adopt",
        "settle",
        "spend↑",
        "held"
    );
    for r in rows {
        out.push_str(&format!(
            "{:<28} {:<20} {:>7.1} {:>7.1} {:>7.1} {:>7.2} {:>7} {:>7} {:>7} {:>7} {:>7.2} {:>4}\n",
            r.scenario,
            r.policy,
            r.quality_pct,
            r.quality_before_pct,
            r.quality_after_pct,
            r.delta_after,
            r.captured
                .map_or_else(String::new, |v| format!("{:.0}%", 100.0 * v)),
            r.captured_predicted
                .map_or_else(String::new, |v| format!("{:.0}%", 100.0 * v)),
            opt(r.adoption_steps),
            opt(r.settle_steps),
            r.spend_after,
            if r.budget_held { "yes" } else { "NO" }
        ));
    }
    out
}

/// Adds, next to every PILOT policy of `experiment` (`pilot`, `pilot[arena]`, …), the same
/// policy with the ridge discount γ (old feedback fades with a half-life of ln 2 / (1 − γ)
/// updates of an arm, the prior is kept; see pilot-bandit's `ridge`), named `pilot-γ…`, on
/// the same contexts and cost-policy settings. Returns the names added.
///
/// # Errors
/// [`SimError::Invalid`] for γ outside (0, 1]; the bandit's error for bad settings.
pub fn add_discounted_pilots(
    experiment: &mut crate::experiment::Experiment,
    gamma: f32,
) -> Result<Vec<String>> {
    if !(gamma > 0.0 && gamma <= 1.0) {
        return Err(SimError::invalid(format!(
            "discount γ = {gamma}, expected a value in (0, 1]"
        )));
    }
    add_pilot_variants(experiment, "pilot-γ", |h| h.discount = gamma)
}

/// Adds, next to every PILOT policy of `experiment`, the same policy learning how far to trust
/// its prior per LLM ([`Hyper::trust`](crate::hyper::Hyper::trust)), named `pilot-trust…`;
/// LLMs its prior has no vector for start at a small prior weight. Returns the names added.
///
/// # Errors
/// The bandit's error for bad settings.
pub fn add_trusting_pilots(experiment: &mut crate::experiment::Experiment) -> Result<Vec<String>> {
    add_pilot_variants(experiment, "pilot-trust", |h| {
        h.trust = true;
        h.discount = 1.0;
    })
}

/// Adds, next to every PILOT policy of `experiment`, the same policy learning one reward level
/// shared by every LLM ([`Hyper::shared_level`](crate::hyper::Hyper::shared_level)), named
/// `pilot-shared…`, and that policy with learned trust too, `pilot-trust-shared…`. Returns
/// the names added.
///
/// # Errors
/// The bandit's error for bad settings.
pub fn add_shared_level_pilots(
    experiment: &mut crate::experiment::Experiment,
) -> Result<Vec<String>> {
    let mut added = add_pilot_variants(experiment, "pilot-shared", |h| h.shared_level = true)?;
    added.extend(add_pilot_variants(experiment, "pilot-trust-shared", |h| {
        h.shared_level = true;
        h.trust = true;
        h.discount = 1.0;
    })?);
    Ok(added)
}

/// Adds a variant of every plain PILOT policy (`pilot`, `pilot[x]`; not the variants), built
/// through the line-up ([`make_policy_fresh`](crate::lineup::make_policy_fresh)) from the same
/// prior, with its settings changed by `change`, named with `name` in place of `pilot`.
fn add_pilot_variants(
    experiment: &mut crate::experiment::Experiment,
    name: &str,
    change: impl Fn(&mut crate::hyper::Hyper),
) -> Result<Vec<String>> {
    use crate::hyper::Family;
    use crate::lineup::{make_policy_fresh, make_policy_over};
    let pilots: Vec<String> = experiment
        .policy_names()
        .into_iter()
        .filter(|n| n == "pilot" || n.starts_with("pilot["))
        .collect();
    let k = experiment.problem().arm_count();
    let mut added = Vec::new();
    for base in pilots {
        let Some(setup) = experiment.pilot_setup(&base).cloned() else {
            continue;
        };
        let mut h = setup.hyper;
        change(&mut h);
        h.check(name)?;
        let (vectors, dim, fresh) = (setup.vectors, setup.dim, setup.fresh);
        // Build one now so bad settings fail here, not in a worker.
        make_policy_fresh(Family::Pilot, &h, k, dim, Some(&vectors), &fresh)?;
        let make: crate::grid::PolicyFactory = Box::new(move |_, pool| {
            make_policy_over(Family::Pilot, &h, pool, dim, Some(&vectors), &fresh)
        });
        let new_name = base.replacen("pilot", name, 1);
        experiment.add_policy_like(&new_name, make, &base)?;
        added.push(new_name);
    }
    Ok(added)
}
