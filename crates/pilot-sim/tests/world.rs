//! World scenarios on a small synthetic problem: each change happens at its step (and only
//! there), and no scenario overspends its budget.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use pilot_embed::HashingEmbedder;
use pilot_prior::{FitParams, Prior};
use pilot_sim::experiment::{Experiment, ExperimentConfig, LEARNING_PRIOR};
use pilot_sim::priors::{fit_prior, prior_source, synthetic_dataset};
use pilot_sim::synthetic::{Synthetic, SyntheticConfig, generate};
use pilot_sim::world::{
    Change, World, add_discounted_pilots, add_trusting_pilots, expand, run_worlds,
};
use pilot_sim::{
    Changes, CostModel, Episode, Neighbours, Scenario, deployment_order, run_episode_with,
};

/// The synthetic scenario (seed 7) and the learning prior fitted on its learning rows, with
/// the fit settings used.
fn synthetic_with_prior() -> (Synthetic, Prior, FitParams) {
    let mut embedder = HashingEmbedder::new(64).unwrap();
    let config = SyntheticConfig {
        learning: 400,
        deployment: 300,
        seed: 7,
    };
    let synthetic = generate(&config, &mut embedder).unwrap();
    let (dataset, embeddings, learning) = synthetic_dataset(&synthetic).unwrap();
    let params = FitParams {
        dim: 8,
        embedder_id: "hash".into(),
        contrastive_epochs: 2,
        bt_max_epochs: 60,
        ..FitParams::default()
    };
    let (prior, _) = fit_prior(&dataset, &embeddings, &learning, &params, 0.2).unwrap();
    (synthetic, prior, params)
}

fn experiment() -> Experiment {
    let (synthetic, prior, _) = synthetic_with_prior();
    let source = prior_source(LEARNING_PRIOR, &prior, &synthetic.problem).unwrap();
    let config = ExperimentConfig {
        budgets: vec![0.25],
        seeds: 2,
        scenarios: vec![Scenario::Standard],
        threads: 1,
        ..ExperimentConfig::default()
    };
    let base = source.contexts.clone();
    Experiment::new(synthetic.problem, base, vec![source], config).unwrap()
}

#[test]
fn each_change_happens_at_its_step_and_only_there() {
    let e = experiment();
    let p = e.problem();
    let k = p.arm_count();
    let order = deployment_order(p, Scenario::Standard, 0);
    let n = order.len();
    let base = World::new(p, &order, Change::None, 0);
    let names: Vec<String> = ["new-llm", "price-change", "drift", "budget-change"]
        .map(String::from)
        .to_vec();
    for sc in expand(&names, p).unwrap() {
        let w = World::new(p, &order, sc.change, 0);
        let step = sc.change.step(n);
        match sc.change {
            Change::NewLlm { arm } => {
                assert_eq!(step, n / 3);
                for t in 0..n {
                    assert_eq!(w.absent[t * k + arm], t < step, "{} at {t}", sc.name);
                }
            }
            Change::Price { arm, factor } => {
                for t in 0..n {
                    let want = base.cost[t * k + arm] * if t >= step { factor } else { 1.0 };
                    assert!((w.cost[t * k + arm] - want).abs() <= 1e-15 * want.max(1.0));
                }
            }
            Change::Drift { arm, task } => {
                let (mut correct, mut flipped) = (0, 0);
                for (t, &i) in order.iter().enumerate() {
                    for a in 0..k {
                        let (q0, q1) = (base.quality[t * k + a], w.quality[t * k + a]);
                        let hit = t >= step && a == arm && p.deployment().task[i] == task;
                        if !hit {
                            assert_eq!(q0, q1, "{}: only the drifted cells change", sc.name);
                        } else if q0 >= 0.5 {
                            correct += 1;
                            flipped += usize::from(q1 == 0.0);
                        }
                    }
                }
                assert!(
                    correct > 0,
                    "{}: the drifted LLM has correct answers",
                    sc.name
                );
                assert!(
                    flipped > 0 && flipped < correct,
                    "{flipped} of {correct} flipped"
                );
            }
            Change::Budget { .. } | Change::None => assert_eq!(w.quality, base.quality),
        }
    }
}

/// The offline knapsack over a value table: over the real qualities it is the hindsight
/// optimum; over any other table (a prediction) it gets no more real quality, and both keep
/// to the budget.
#[test]
fn the_knapsack_over_predictions_never_beats_hindsight() {
    let e = experiment();
    let p = e.problem();
    let k = p.arm_count();
    let order = deployment_order(p, Scenario::Standard, 0);
    let n = order.len();
    let world = World::new(p, &order, Change::None, 0);
    let budget = 0.25 * e.grid().reference_cost() * 0.5;
    let hindsight = world.offline(k, n / 2..n, budget).unwrap();
    assert_eq!(
        world
            .offline_by(k, n / 2..n, budget, &world.quality)
            .unwrap(),
        hindsight
    );
    // A prediction that ranks every LLM backwards (1 − quality), and a constant one.
    let backwards: Vec<f32> = world.quality.iter().map(|q| 1.0 - q).collect();
    for value in [backwards, vec![0.5; world.quality.len()]] {
        let (quality, cost) = world.offline_by(k, n / 2..n, budget, &value).unwrap();
        assert!(quality <= hindsight.0 + 1e-9, "{quality} > {}", hindsight.0);
        assert!(cost <= budget * (1.0 + 1e-9));
    }
    assert!(world.offline_by(k, 0..n, budget, &[0.5]).is_err());
}

#[test]
fn every_scenario_holds_its_budget_and_reports_the_change() {
    let mut e = experiment();
    let added = add_discounted_pilots(&mut e, 0.99).unwrap();
    assert_eq!(added, vec!["pilot-γ".to_owned()]);
    let added = add_trusting_pilots(&mut e).unwrap();
    assert_eq!(added, vec!["pilot-trust".to_owned()]);
    let names: Vec<String> = ["new-llm", "price-change", "drift", "budget-change"]
        .map(String::from)
        .to_vec();
    let scenarios = expand(&names, e.problem()).unwrap();
    assert_eq!(scenarios[0].change, Change::None);
    let runs: Vec<_> = scenarios.iter().cloned().map(|s| (s, 0)).collect();
    let rows = run_worlds(&[e.grid()], &runs, 0.25, &|_, _| {}).unwrap();
    for r in &rows {
        assert!(r.budget_held, "{} / {} overspent", r.scenario, r.policy);
    }
    // New LLM: PILOT calls it after its addition in at least one seed (adoption measured).
    let new_llm: Vec<_> = rows
        .iter()
        .filter(|r| r.scenario.starts_with("new-llm") && r.policy == "pilot")
        .collect();
    assert_eq!(new_llm.len(), 2);
    assert!(new_llm.iter().any(|r| r.reached > 0));
    // Budget cut: spend after the change stays within what is left of the new budget; budget
    // doubled: more is spent after the change than under the cut.
    let spend = |name: &str| {
        rows.iter()
            .find(|r| r.scenario == name && r.policy == "pilot")
            .map(|r| r.spend_after)
            .unwrap()
    };
    assert!(spend("budget-change:half") <= 1.0 + 1e-9);
    let cost_after = |name: &str| {
        let r = rows
            .iter()
            .find(|r| r.scenario == name && r.policy == "pilot")
            .unwrap();
        r.spend_after * if name.ends_with("half") { 0.5 } else { 2.0 }
    };
    assert!(cost_after("budget-change:double") > cost_after("budget-change:half"));
    // The references are there for every scenario.
    for sc in &scenarios {
        assert!(
            rows.iter()
                .any(|r| r.scenario == sc.name && r.policy == "oracle")
        );
    }
}

/// New LLM: every policy of the line-up is made for the pool without the LLM and grows when it
/// joins through `Router::add_arm` at a third of the stream (started at the policy's vector for
/// it, neutral without a prior); it is never called before, and called after by PILOT.
#[test]
fn a_new_llm_joins_through_the_router() {
    let mut e = experiment();
    add_trusting_pilots(&mut e).unwrap();
    let grid = e.grid();
    let problem = grid.problem;
    let k = problem.arm_count();
    let arm = problem.best_single_llm();
    let order = deployment_order(problem, Scenario::Standard, 0);
    let world = World::new(problem, &order, Change::NewLlm { arm }, 0);
    let pool = world.pool(k);
    assert_eq!(pool.len(), k - 1);
    assert!(!pool.contains(&arm));
    let budget = 0.25 * grid.reference_cost();
    for spec in grid.policies {
        let mut policy = (spec.make)(0, &pool).unwrap();
        assert_eq!(policy.arm_count(), k - 1, "{}", spec.name);
        let mut cost = (grid.cost_policies[0].make)(&spec.name, budget, order.len()).unwrap();
        let start = spec.starts.as_deref().map(|v| v[arm].as_slice());
        assert_eq!(
            start.is_some(),
            spec.name.starts_with("pilot") || spec.name.starts_with("prior-only"),
            "{}",
            spec.name
        );
        let events = world.events(start);
        let oracle = world.oracle(k);
        let changes = Changes {
            events: &events,
            quality: &world.quality,
            cost: &world.cost,
            oracle: &oracle,
        };
        let episode = Episode {
            problem,
            contexts: &grid.contexts[spec.context],
            costs: grid.costs,
            order: &order,
            budget,
            seed: 0,
            log: true,
            exploration: pilot_router::Exploration::Argmax,
        };
        let o = run_episode_with(&episode, Some(&changes), policy.as_mut(), cost.as_mut())
            .unwrap_or_else(|e| panic!("{}: {e}", spec.name));
        assert!(o.budget_held, "{}", spec.name);
        let added: Vec<_> = o
            .events
            .iter()
            .filter_map(|r| match &r.event {
                pilot_router::Event::ArmAdded { name, start: s, .. } => Some((r.at, name, s)),
                _ => None,
            })
            .collect();
        assert_eq!(added.len(), 1, "{}", spec.name);
        let (at, name, s) = added[0];
        assert_eq!(at as usize, world.step, "{}", spec.name);
        assert_eq!(name, &problem.llms()[arm]);
        assert_eq!(s.as_deref(), start, "{}", spec.name);
        assert!(
            o.choices[..world.step].iter().all(|c| *c != Some(arm)),
            "{} called the LLM before it joined",
            spec.name
        );
        if spec.name == "pilot-trust" || spec.name == "knn-full-info" {
            assert!(
                o.choices[world.step..].contains(&Some(arm)),
                "{} never called the new LLM",
                spec.name
            );
        }
    }
}

/// Domain shift: each task held out of the learning rows in turn. The guard's holds must bound
/// every real cost even though no learning row is of the deployed task (its answers can cost
/// more than any neighbour's), so no policy overspends.
#[test]
fn holds_bound_the_real_costs_when_the_task_is_held_out() {
    let mut embedder = HashingEmbedder::new(64).unwrap();
    let config = SyntheticConfig {
        learning: 400,
        deployment: 300,
        seed: 11,
    };
    let synthetic = generate(&config, &mut embedder).unwrap();
    let (dataset, embeddings, learning) = synthetic_dataset(&synthetic).unwrap();
    let is_learning: std::collections::HashSet<usize> = learning.iter().copied().collect();
    let params = FitParams {
        dim: 8,
        embedder_id: "hash".into(),
        contrastive_epochs: 1,
        bt_max_epochs: 30,
        ..FitParams::default()
    };
    for task in dataset.tasks() {
        let fit: Vec<usize> = learning
            .iter()
            .copied()
            .filter(|&i| dataset.rows[i].task != task)
            .collect();
        let deploy: Vec<usize> = (0..dataset.rows.len())
            .filter(|&i| !is_learning.contains(&i) && dataset.rows[i].task == task)
            .collect();
        let problem =
            pilot_sim::data::problem_from_rows(&dataset, &embeddings, &fit, &deploy).unwrap();
        let near = Neighbours::find(&problem, 10).unwrap();
        let costs = CostModel::from_neighbours(&problem, &near).unwrap();
        assert!(costs.bounds(&problem), "{task}: a real cost above its hold");
        let (prior, _) = fit_prior(&dataset, &embeddings, &fit, &params, 0.2).unwrap();
        let source = prior_source(LEARNING_PRIOR, &prior, &problem).unwrap();
        let config = ExperimentConfig {
            budgets: vec![0.1, 0.25],
            seeds: 2,
            scenarios: vec![Scenario::Standard],
            threads: 1,
            ..ExperimentConfig::default()
        };
        let base = source.contexts.clone();
        let mut e = Experiment::new(problem, base, vec![source], config).unwrap();
        add_trusting_pilots(&mut e).unwrap();
        let report = e.run(&|_, _| {}).unwrap();
        for row in &report.rows {
            assert_ne!(
                row.budget_held,
                Some(false),
                "{task}: {} at {:?} overspent",
                row.policy,
                row.budget_frac
            );
        }
    }
}

/// The start of an LLM that joins without learning data, from judge scores elsewhere: fitted
/// in the learning prior's space (here: judge scores made from the deployment rows' qualities),
/// it orders the LLM against the best single LLM on those rows at least about as well as the
/// prior's own vector, fitted on the learning rows, does (measured: within 0.04 or better for
/// every LLM, 0.66–0.89).
#[test]
fn a_joining_llm_gets_its_vector_from_judge_scores() {
    let (synthetic, prior, params) = synthetic_with_prior();
    let problem = &synthetic.problem;
    let (k, dim) = (problem.arm_count(), problem.dim());
    let deployment = problem.deployment();
    let judge = pilot_data::JudgeDataset {
        source: "synthetic-judge.jsonl".into(),
        models: problem.llms().to_vec(),
        rows: (0..deployment.len())
            .map(|i| pilot_data::JudgeRow {
                id: format!("p{i}"),
                prompt: String::new(),
                scores: deployment
                    .quality_row(i, k)
                    .iter()
                    .map(|&q| Some(1.0 + 9.0 * f64::from(q)))
                    .collect(),
                answer_chars: vec![None; k],
            })
            .collect(),
    };
    let vectors: Vec<f32> = (0..deployment.len())
        .flat_map(|i| deployment.base_row(i, dim).to_vec())
        .collect();
    let judge_emb = pilot_data::Embeddings::from_vec(vectors, dim, "judge.f32").unwrap();
    let joining = pilot_sim::priors::joining_vectors(
        &prior,
        problem.llms(),
        &judge,
        &judge_emb,
        &FitParams {
            bt_max_epochs: 300,
            ..params
        },
        0.2,
    )
    .unwrap();
    assert_eq!(joining.len(), k);
    let source = prior_source(LEARNING_PRIOR, &prior, problem).unwrap();
    let best = problem.best_single_llm();
    let dot = |t: &[f32], c: &[f32]| t.iter().zip(c).map(|(a, b)| a * b).sum::<f32>();
    // How often a vector orders LLM a against the best single LLM as the qualities do, on
    // the queries where they differ.
    let accuracy = |a: usize, v: &[f32]| {
        let reference = source.vectors[best].as_ref().unwrap();
        let (mut right, mut differ) = (0usize, 0usize);
        for i in 0..deployment.len() {
            let q = deployment.quality_row(i, k);
            if q[a] == q[best] {
                continue;
            }
            let c = source.contexts.row(i);
            differ += 1;
            right += usize::from((dot(v, c) > dot(reference, c)) == (q[a] > q[best]));
        }
        right as f64 / differ.max(1) as f64
    };
    for (a, v) in joining.iter().enumerate().filter(|&(a, _)| a != best) {
        let joined = accuracy(a, v.as_ref().unwrap());
        let own = accuracy(a, source.vectors[a].as_ref().unwrap());
        assert!(
            joined >= 0.6 && joined >= own - 0.05,
            "{}: joined {joined:.3}, own {own:.3}",
            problem.llms()[a]
        );
    }
}
