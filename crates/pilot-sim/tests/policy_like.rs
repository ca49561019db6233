//! `Experiment::add_policy_like` and `pilot_setup`: a policy started from PILOT's setup and run
//! like PILOT gets PILOT's row exactly (what `pilot simulate --plugin-prior` relies on).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use pilot_bandit::{LinUcb, LinUcbVec};
use pilot_embed::HashingEmbedder;
use pilot_prior::FitParams;
use pilot_sim::SimError;
use pilot_sim::experiment::{Experiment, ExperimentConfig, LEARNING_PRIOR};
use pilot_sim::priors::{fit_prior, prior_source, synthetic_dataset};
use pilot_sim::summary::SummaryRow;
use pilot_sim::synthetic::{SyntheticConfig, generate};

fn experiment() -> Experiment {
    let mut embedder = HashingEmbedder::new(64).unwrap();
    let synthetic = generate(&SyntheticConfig::default(), &mut embedder).unwrap();
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
        budgets: vec![0.25, 1.0],
        seeds: 1,
        scenarios: vec![pilot_sim::Scenario::Standard],
        ..ExperimentConfig::default()
    };
    let base = source.contexts.clone();
    Experiment::new(synthetic.problem, base, vec![source], config).unwrap()
}

fn rows_of<'a>(rows: &'a [SummaryRow], policy: &str) -> Vec<&'a SummaryRow> {
    rows.iter().filter(|r| r.policy == policy).collect()
}

#[test]
fn a_copy_of_pilot_started_from_its_setup_gets_its_rows() {
    let mut experiment = experiment();
    let setup = experiment
        .pilot_setup("pilot")
        .expect("pilot in the grid")
        .clone();
    assert_eq!(setup.vectors.len(), experiment.problem().arm_count());
    assert!(setup.vectors.iter().all(|v| v.len() == setup.dim));
    let params = LinUcb::params()
        .alpha(setup.hyper.alpha)
        .lambda(setup.hyper.lambda)
        .reward_range(0.0, 1.0)
        .check()
        .unwrap();
    let vectors = setup.vectors.clone();
    let dim = setup.dim;
    experiment
        .add_policy_like(
            "copy",
            Box::new(move |_, _| {
                let refs: Vec<Option<&[f32]>> =
                    vectors.iter().map(|v| Some(v.as_slice())).collect();
                let p = LinUcbVec::with_priors(params, &refs, dim)
                    .map_err(|e| SimError::core("copy", e))?;
                Ok(Box::new(p) as Box<dyn pilot_router::RoutingPolicy>)
            }),
            "pilot",
        )
        .unwrap();
    let report = experiment.run(&|_, _| {}).unwrap();
    let (pilot, copy) = (
        rows_of(&report.rows, "pilot"),
        rows_of(&report.rows, "copy"),
    );
    assert_eq!(pilot.len(), 2);
    assert_eq!(copy.len(), 2);
    for (p, c) in pilot.iter().zip(&copy) {
        assert_eq!(p.budget_frac, c.budget_frac);
        assert_eq!(p.quality_mean.to_bits(), c.quality_mean.to_bits());
        assert_eq!(p.cost_pct_of_best.to_bits(), c.cost_pct_of_best.to_bits());
        assert_eq!(p.regret_final.to_bits(), c.regret_final.to_bits());
    }
}

#[test]
fn add_policy_like_names_what_is_wrong() {
    let mut experiment = experiment();
    assert!(experiment.pilot_setup("linucb").is_none());
    let never = || -> pilot_sim::grid::PolicyFactory {
        Box::new(|_, _| Err(SimError::invalid("not called".to_owned())))
    };
    let err = experiment
        .add_policy_like("x", never(), "nope")
        .unwrap_err()
        .to_string();
    assert!(err.contains("no policy 'nope'"), "{err}");
    let err = experiment
        .add_policy_like("linucb", never(), "pilot")
        .unwrap_err()
        .to_string();
    assert!(err.contains("two policies are named 'linucb'"), "{err}");
    assert!(!experiment.policy_names().contains(&"x".to_owned()));
}
