//! The experiment grid: scenarios × policies × cost policies × budgets × seeds, run on a few
//! threads, each cell an independent [`run_episode`].

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use pilot_core::CostPolicy;
use pilot_router::RoutingPolicy;

use crate::{
    ContextTable, CostModel, Episode, Outcome, Problem, Result, Scenario, SimError,
    deployment_order, run_episode,
};

/// Builds a fresh policy for one episode from the episode's seed and the LLMs its pool starts
/// with (indices into the problem's LLMs, in the router's arm order: every LLM in order,
/// except in a world where one joins later through `Router::add_arm`).
pub type PolicyFactory = Box<dyn Fn(u64, &[usize]) -> Result<Box<dyn RoutingPolicy>> + Sync>;

/// Builds a fresh cost policy for one episode from the name of the routing policy it serves
/// (so each policy can have its own tuned cost settings), the budget (USD) and the stream
/// length.
pub type CostPolicyFactory =
    Box<dyn Fn(&str, f64, usize) -> Result<Box<dyn CostPolicy<f64>>> + Sync>;

/// An isolated policy that failed: its index in [`Grid::policies`] and its first error.
pub type PolicyFailure = (usize, SimError);

/// A routing policy in the grid.
pub struct PolicySpec {
    /// Name in reports.
    pub name: String,
    /// Index of its context table in [`Grid::contexts`].
    pub context: usize,
    /// Makes a fresh instance.
    pub make: PolicyFactory,
    /// The vector each LLM of the problem starts from when it joins the pool live
    /// (`Router::add_arm`): the policy's prior vectors; `None` for a policy without a prior,
    /// whose new arms start neutral.
    pub starts: Option<std::sync::Arc<Vec<Vec<f32>>>>,
}

/// An online cost policy in the grid.
pub struct CostPolicySpec {
    /// Name in reports.
    pub name: String,
    /// Makes a fresh instance.
    pub make: CostPolicyFactory,
}

/// What to run.
pub struct Grid<'a> {
    /// The problem.
    pub problem: &'a Problem,
    /// Context tables the policies read.
    pub contexts: &'a [ContextTable],
    /// Cost estimates.
    pub costs: &'a CostModel,
    /// Routing policies.
    pub policies: &'a [PolicySpec],
    /// Online cost policies.
    pub cost_policies: &'a [CostPolicySpec],
    /// Budgets as fractions of the reference LLM's total deployment cost.
    pub budget_fracs: &'a [f64],
    /// The LLM whose always-on cost defines a budget fraction of 1.
    pub reference_arm: usize,
    /// Seeds `0..seeds`.
    pub seeds: u64,
    /// Stream orders to run.
    pub scenarios: &'a [Scenario],
    /// Worker threads (1 runs on the caller's thread).
    pub threads: usize,
}

/// One cell of the grid and its outcome.
#[derive(Clone, Debug)]
pub struct CellResult {
    /// Stream order.
    pub scenario: Scenario,
    /// Index into [`Grid::policies`].
    pub policy: usize,
    /// Index into [`Grid::cost_policies`].
    pub cost_policy: usize,
    /// Index into [`Grid::budget_fracs`].
    pub budget: usize,
    /// The seed.
    pub seed: u64,
    /// The budget in USD.
    pub budget_usd: f64,
    /// What happened.
    pub outcome: Outcome,
}

#[derive(Clone, Copy)]
struct Job {
    scenario: usize,
    policy: usize,
    cost_policy: usize,
    budget: usize,
    seed: u64,
}

impl Grid<'_> {
    /// Total cost of always calling the reference LLM on the deployment split.
    pub fn reference_cost(&self) -> f64 {
        let (_, mean) = self.problem.single_llm(self.reference_arm);
        mean * self.problem.deployment().len() as f64
    }

    /// Number of episodes the grid runs.
    pub fn cell_count(&self) -> usize {
        self.scenarios.len()
            * self.policies.len()
            * self.cost_policies.len()
            * self.budget_fracs.len()
            * self.seeds as usize
    }

    /// Runs every cell; `progress(done, total)` is called after each one.
    ///
    /// # Errors
    /// [`SimError::Invalid`] for an empty grid, a bad budget fraction or a policy pointing at
    /// a missing context table; the first episode error otherwise (naming the cell).
    pub fn run(&self, progress: &(dyn Fn(usize, usize) + Sync)) -> Result<Vec<CellResult>> {
        self.run_isolating(&[], progress).map(|(cells, _)| cells)
    }

    /// [`run`](Self::run), except that an episode error of a policy in `isolate` (indices into
    /// [`Grid::policies`]) stops only that policy: its remaining cells are skipped, every cell
    /// it ran is left out, and the other policies run to the end. Returns the cells of the
    /// policies that finished and, per isolated policy that failed, its first error.
    ///
    /// # Errors
    /// As [`run`](Self::run) for the policies not in `isolate`.
    pub fn run_isolating(
        &self,
        isolate: &[usize],
        progress: &(dyn Fn(usize, usize) + Sync),
    ) -> Result<(Vec<CellResult>, Vec<PolicyFailure>)> {
        self.check()?;
        let orders: Vec<Vec<Vec<usize>>> = self
            .scenarios
            .iter()
            .map(|&s| {
                (0..self.seeds)
                    .map(|seed| deployment_order(self.problem, s, seed))
                    .collect()
            })
            .collect();
        let mut jobs = Vec::with_capacity(self.cell_count());
        for scenario in 0..self.scenarios.len() {
            for policy in 0..self.policies.len() {
                for cost_policy in 0..self.cost_policies.len() {
                    for budget in 0..self.budget_fracs.len() {
                        for seed in 0..self.seeds {
                            jobs.push(Job {
                                scenario,
                                policy,
                                cost_policy,
                                budget,
                                seed,
                            });
                        }
                    }
                }
            }
        }
        let next = AtomicUsize::new(0);
        let done = AtomicUsize::new(0);
        let stopped: Vec<AtomicBool> = self
            .policies
            .iter()
            .map(|_| AtomicBool::new(false))
            .collect();
        let results: Mutex<Vec<Option<Result<CellResult>>>> =
            Mutex::new((0..jobs.len()).map(|_| None).collect());
        let worker = || {
            loop {
                let j = next.fetch_add(1, Ordering::Relaxed);
                let Some(&job) = jobs.get(j) else { break };
                if stopped[job.policy].load(Ordering::Relaxed) {
                    progress(done.fetch_add(1, Ordering::Relaxed) + 1, jobs.len());
                    continue;
                }
                let result = self.run_job(job, &orders);
                let failed = result.is_err();
                if let Ok(mut slots) = results.lock() {
                    slots[j] = Some(result);
                }
                if failed {
                    if isolate.contains(&job.policy) {
                        stopped[job.policy].store(true, Ordering::Relaxed);
                    } else {
                        // Stop handing out work: the first error is reported.
                        next.store(jobs.len(), Ordering::Relaxed);
                    }
                }
                progress(done.fetch_add(1, Ordering::Relaxed) + 1, jobs.len());
            }
        };
        let threads = self.threads.clamp(1, 64);
        if threads == 1 {
            worker();
        } else {
            std::thread::scope(|scope| {
                for _ in 0..threads {
                    scope.spawn(worker);
                }
            });
        }
        let slots = results
            .into_inner()
            .map_err(|_| SimError::invalid("a worker thread panicked"))?;
        let mut out = Vec::with_capacity(slots.len());
        let mut failures: Vec<PolicyFailure> = Vec::new();
        let mut expected = 0;
        for (slot, job) in slots.into_iter().zip(&jobs) {
            if stopped[job.policy].load(Ordering::Relaxed) {
                // An isolated policy that failed: its first error (in grid order), no cells.
                if let Some(Err(e)) = slot
                    && !failures.iter().any(|(p, _)| *p == job.policy)
                {
                    failures.push((job.policy, e));
                }
                continue;
            }
            expected += 1;
            match slot {
                Some(Ok(cell)) => out.push(cell),
                Some(Err(e)) => return Err(e),
                None => {}
            }
        }
        if out.len() != expected {
            return Err(SimError::invalid(format!(
                "only {} of {} cells finished",
                out.len(),
                expected
            )));
        }
        Ok((out, failures))
    }

    fn check(&self) -> Result<()> {
        if self.cell_count() == 0 {
            return Err(SimError::invalid(
                "empty grid: need at least one scenario, policy, cost policy, budget and seed",
            ));
        }
        if let Some(f) = self
            .budget_fracs
            .iter()
            .find(|f| !f.is_finite() || **f <= 0.0)
        {
            return Err(SimError::invalid(format!(
                "budget fraction {f} must be finite and > 0"
            )));
        }
        if self.reference_arm >= self.problem.arm_count() {
            return Err(SimError::invalid(format!(
                "reference LLM index {} but the pool has {} LLMs",
                self.reference_arm,
                self.problem.arm_count()
            )));
        }
        for p in self.policies {
            if p.context >= self.contexts.len() {
                return Err(SimError::invalid(format!(
                    "policy '{}' reads context table {} but there are {}",
                    p.name,
                    p.context,
                    self.contexts.len()
                )));
            }
        }
        Ok(())
    }

    fn run_job(&self, job: Job, orders: &[Vec<Vec<usize>>]) -> Result<CellResult> {
        let spec = &self.policies[job.policy];
        let cost_spec = &self.cost_policies[job.cost_policy];
        let frac = self.budget_fracs[job.budget];
        let budget_usd = frac * self.reference_cost();
        let order = &orders[job.scenario][job.seed as usize];
        let scenario = self.scenarios[job.scenario];
        let label = || {
            format!(
                "{} / {} / budget {frac} / {} / seed {}",
                spec.name,
                cost_spec.name,
                scenario.name(),
                job.seed
            )
        };
        let pool: Vec<usize> = (0..self.problem.arm_count()).collect();
        let mut policy = (spec.make)(job.seed, &pool).map_err(|e| prefix(label(), e))?;
        let mut cost_policy = (cost_spec.make)(&spec.name, budget_usd, order.len())
            .map_err(|e| prefix(label(), e))?;
        let episode = Episode {
            problem: self.problem,
            contexts: &self.contexts[spec.context],
            costs: self.costs,
            order,
            budget: budget_usd,
            seed: job.seed,
            log: false,
            exploration: pilot_router::Exploration::Argmax,
        };
        let outcome = run_episode(&episode, policy.as_mut(), cost_policy.as_mut())
            .map_err(|e| prefix(label(), e))?;
        Ok(CellResult {
            scenario,
            policy: job.policy,
            cost_policy: job.cost_policy,
            budget: job.budget,
            seed: job.seed,
            budget_usd,
            outcome,
        })
    }
}

fn prefix(label: String, e: SimError) -> SimError {
    match e {
        SimError::Core { what, source } => SimError::Core {
            what: format!("{label}: {what}"),
            source,
        },
        SimError::Invalid(m) => SimError::Invalid(format!("{label}: {m}")),
        other => other,
    }
}
