//! Shared setup of the pilot-ope tests: the RouterBench problem and prior, a logging router run
//! through `pilot_router::Router`, target policies and their true values.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use pilot_bandit::{LinUcb, LinUcbVec};
use pilot_budget::{OnlineConfig, PacingParams, PacingPolicy, ValueOf};
use pilot_core::{ArmId, ArmScore, Policy, Reward};
use pilot_ope::{Log, Target};
use pilot_prior::FitParams;
use pilot_router::{Arm, Exploration, Input, Price, Quote, Router, RouterConfig, Versions};
use pilot_sim::data::{SplitNames, problem_from_dataset};
use pilot_sim::priors::{fit_prior, prior_source};
use pilot_sim::stream::{deployment_order, rng_for};
use pilot_sim::{CostModel, Neighbours, Problem, Scenario};

/// `shared/data` with RouterBench-3k: `$PILOT_DATA_DIR`, else the first `shared/data` found
/// above this crate. `None` (reason printed) when missing, a panic instead under `CI=true` or
/// `PILOT_REQUIRE_DATA=1`.
pub fn data_dir() -> Option<PathBuf> {
    let found = std::env::var_os("PILOT_DATA_DIR")
        .map(PathBuf::from)
        .into_iter()
        .chain(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .ancestors()
                .map(|a| a.join("shared/data")),
        )
        .find(|d| {
            d.join("routerbench-3k.jsonl").is_file()
                && d.join("routerbench-3k.minilm.f32").is_file()
        });
    if found.is_none() {
        let why = "routerbench-3k.jsonl / .minilm.f32 not found (set PILOT_DATA_DIR or put \
                   shared/data beside the checkout)";
        let required = std::env::var("CI").is_ok_and(|v| v == "true")
            || std::env::var("PILOT_REQUIRE_DATA").is_ok_and(|v| v == "1");
        assert!(!required, "CI=true / PILOT_REQUIRE_DATA=1 but {why}");
        eprintln!("skipping: {why}");
    }
    found
}

/// The problem, the prior's contexts and vectors, cost estimates and learning-split contexts.
pub struct Setup {
    pub problem: Problem,
    /// The prior fitted on the learning split (d = 16, seed 0).
    pub prior: pilot_prior::Prior,
    pub dim: usize,
    /// Deployment contexts under the prior's map, row i = deployment query i.
    pub contexts: Vec<f32>,
    /// Learning contexts, row j = learning query j.
    pub learning: Vec<f32>,
    /// One prior vector per LLM (missing ones at the mean of the others).
    pub vectors: Vec<Vec<f32>>,
    pub costs: CostModel,
    /// Budget fraction 1: always calling the best LLM on the deployment split.
    pub reference_cost: f64,
}

impl Setup {
    pub fn load(dir: &std::path::Path) -> Self {
        let data = pilot_data::RoutingDataset::load(dir.join("routerbench-3k.jsonl")).unwrap();
        let emb = pilot_data::Embeddings::load(dir.join("routerbench-3k.minilm.f32"), 384).unwrap();
        let problem = problem_from_dataset(&data, &emb, &SplitNames::default()).unwrap();
        let rows = data.split_indices("train");
        let params = FitParams {
            dim: 16,
            seed: 0,
            ..FitParams::default()
        };
        let (prior, _) = fit_prior(&data, &emb, &rows, &params, 0.2).unwrap();
        let source = prior_source("learning", &prior, &problem).unwrap();
        let dim = prior.context_dim();
        let present: Vec<&Vec<f32>> = source.vectors.iter().flatten().collect();
        let mut mean = vec![0.0f32; dim];
        for v in &present {
            for (m, x) in mean.iter_mut().zip(v.iter()) {
                *m += x / present.len() as f32;
            }
        }
        let vectors = source
            .vectors
            .iter()
            .map(|v| v.clone().unwrap_or_else(|| mean.clone()))
            .collect();
        let d = problem.deployment();
        let mut contexts = vec![0.0f32; d.len() * dim];
        for (i, out) in contexts.chunks_exact_mut(dim).enumerate() {
            prior.context(d.base_row(i, problem.dim()), out).unwrap();
        }
        let l = problem.learning();
        let mut learning = vec![0.0f32; l.len() * dim];
        for (j, out) in learning.chunks_exact_mut(dim).enumerate() {
            prior.context(l.base_row(j, problem.dim()), out).unwrap();
        }
        let neighbours = Neighbours::find(&problem, 10).unwrap();
        let costs = CostModel::from_neighbours(&problem, &neighbours).unwrap();
        let best = problem.best_single_llm();
        let k = problem.arm_count();
        let reference_cost = (0..d.len()).map(|i| d.cost[i * k + best]).sum();
        Self {
            problem,
            prior,
            dim,
            contexts,
            learning,
            vectors,
            costs,
            reference_cost,
        }
    }

    pub fn context(&self, i: usize) -> &[f32] {
        &self.contexts[i * self.dim..(i + 1) * self.dim]
    }

    /// PILOT started from the prior at (α, λ).
    pub fn pilot(&self, alpha: f32, lambda: f32) -> LinUcbVec<f32> {
        let params = LinUcb::params()
            .alpha(alpha)
            .lambda(lambda)
            .reward_range(0.0, 1.0)
            .check()
            .unwrap();
        let refs: Vec<Option<&[f32]>> = self.vectors.iter().map(|v| Some(v.as_slice())).collect();
        LinUcbVec::with_priors(params, &refs, self.dim).unwrap()
    }

    /// LinUCB from zero at (α, λ).
    pub fn linucb(&self, alpha: f32, lambda: f32) -> LinUcbVec<f32> {
        let params = LinUcb::params()
            .alpha(alpha)
            .lambda(lambda)
            .reward_range(0.0, 1.0)
            .check()
            .unwrap();
        LinUcbVec::new(params, self.problem.arm_count(), self.dim).unwrap()
    }

    /// Warms `policy` up with bandit feedback on the learning split (its own argmax choices,
    /// the real quality of the LLM it chose), then returns it: a snapshot to evaluate frozen.
    pub fn warm<P: Policy<f32>>(&self, mut policy: P) -> P {
        let l = self.problem.learning();
        let k = self.problem.arm_count();
        let mut order: Vec<usize> = (0..l.len()).collect();
        let mut rng = rng_for(1234, 7);
        pilot_sim::stream::shuffle(&mut order, &mut rng);
        let mut scores = vec![ArmScore::<f32>::default(); k];
        for j in order {
            let x = &self.learning[j * self.dim..(j + 1) * self.dim];
            let a = policy.select(x, &mut rng, &mut scores).unwrap();
            let q = l.quality[j * k + a.index()];
            policy.update(a, x, Reward::new(q).unwrap()).unwrap();
        }
        policy
    }

    /// Logs one stream (seed) with an ε-greedy PILOT through the Router: Quote::PerArm from the
    /// cost model, settle with the real cost, feedback with the real quality. Returns the log as
    /// the JSON lines `to_line` writes.
    pub fn log_stream(&self, seed: u64, epsilon: f64, budget_fraction: f64) -> Vec<u8> {
        let k = self.problem.arm_count();
        let d = self.problem.deployment();
        let order = deployment_order(&self.problem, Scenario::Standard, seed);
        let budget = budget_fraction * self.reference_cost;
        let per_query = budget / order.len() as f64;
        let cost = PacingPolicy::new(
            OnlineConfig::new(k, budget).with_value(ValueOf::Score),
            PacingParams::new(0.1 / per_query)
                .with_target(per_query)
                .with_step(0.1),
        )
        .unwrap();
        let arms = self
            .problem
            .llms()
            .iter()
            .map(|n| Arm::new(n.clone(), Price::default()))
            .collect();
        let config = RouterConfig {
            exploration: Exploration::EpsilonMix { epsilon },
            ..RouterConfig::new(budget)
        };
        let mut router = Router::new(self.pilot(0.05, 64.0), cost, arms, config).unwrap();
        router
            .set_versions(
                Versions {
                    router: "pilot-ope test".into(),
                    policy: format!("pilot alpha=0.05 lambda=64 epsilon={epsilon}"),
                    prior: "learning (dim 16, seed 0)".into(),
                    embedder: "all-MiniLM-L6-v2".into(),
                },
                0,
            )
            .unwrap();
        let mut rng = rng_for(seed, 99);
        let mut out = Vec::new();
        for (t, &i) in order.iter().enumerate() {
            let now = t as u64;
            let left = (order.len() - t - 1) as f64;
            router
                .set_keep_aside(self.costs.reserve_per_query() * left)
                .unwrap();
            let decision = router
                .route(
                    i as u64,
                    Input::Context(self.context(i)),
                    Quote::PerArm {
                        estimate: self.costs.estimate(i),
                        worst: self.costs.upper(i),
                    },
                    now,
                    &mut rng,
                )
                .unwrap();
            if let Some(a) = decision.arm {
                router
                    .settle(i as u64, d.cost[i * k + a.index()], now)
                    .unwrap();
                router
                    .feedback(i as u64, d.quality[i * k + a.index()], now)
                    .unwrap();
            }
            for r in router.drain_events() {
                out.extend_from_slice(pilot_router::log::to_line(&r).unwrap().as_bytes());
            }
        }
        out
    }

    /// The frozen target's true mean reward and spend on the logged decisions (every LLM's
    /// outcome is known).
    pub fn truth(&self, log: &Log, target: &mut dyn Target) -> (f64, f64) {
        let k = self.problem.arm_count();
        let d = self.problem.deployment();
        let (mut r, mut c) = (0.0, 0.0);
        for e in &log.decisions {
            let i = e.request as usize;
            let mut p = vec![0.0; e.arms.len()];
            target.probabilities(&e.context, &e.arms, &mut p).unwrap();
            for (a, &pa) in p.iter().enumerate() {
                r += pa * f64::from(d.quality[i * k + a]);
                c += pa * d.cost[i * k + a];
            }
        }
        let n = log.decisions.len() as f64;
        (r / n, c / n)
    }

    /// A learning target's true mean reward over its first `m` decisions when it runs on the
    /// logged decisions in order (same candidate sets) with its own bandit feedback.
    pub fn learning_truth<P: Policy<f32>>(&self, log: &Log, mut policy: P, m: usize) -> f64 {
        let k = self.problem.arm_count();
        let d = self.problem.deployment();
        let mut scores = vec![ArmScore::<f32>::default(); k];
        let mut rng = rng_for(0, 1);
        let mut total = 0.0;
        for e in log.decisions.iter().take(m) {
            let i = e.request as usize;
            policy.select(&e.context, &mut rng, &mut scores).unwrap();
            let a = (0..k)
                .filter(|&a| e.is_candidate(a))
                .max_by(|&a, &b| scores[a].score.total_cmp(&scores[b].score))
                .unwrap();
            let q = d.quality[i * k + a];
            total += f64::from(q);
            policy
                .update(ArmId::new(a), &e.context, Reward::new(q).unwrap())
                .unwrap();
        }
        total / m.max(1) as f64
    }
}
