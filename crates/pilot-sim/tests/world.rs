//! World scenarios on a small synthetic problem: each change happens at its step (and only
//! there), and no scenario overspends its budget.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use pilot_embed::HashingEmbedder;
use pilot_prior::FitParams;
use pilot_sim::experiment::{Experiment, ExperimentConfig, LEARNING_PRIOR};
use pilot_sim::priors::{fit_prior, prior_source, synthetic_dataset};
use pilot_sim::synthetic::{SyntheticConfig, generate};
use pilot_sim::world::{Change, World, add_discounted_pilots, expand, run_worlds};
use pilot_sim::{Scenario, deployment_order};

fn experiment() -> Experiment {
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

#[test]
fn every_scenario_holds_its_budget_and_reports_the_change() {
    let mut e = experiment();
    let added = add_discounted_pilots(&mut e, 0.99).unwrap();
    assert_eq!(added, vec!["pilot-γ".to_owned()]);
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
