//! Off-policy estimates against the truth on RouterBench-3k: an ε-greedy PILOT logs 20 streams
//! through the Router; frozen targets are estimated from each log and compared with their true
//! value on the same decisions (every LLM's outcome is known). Prints bias, RMSE and coverage
//! per estimator (the table in docs/ope.md) and asserts DR's coverage.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use pilot_ope::{Estimator, OpeConfig, PolicyTarget, Target, Verdict, evaluate, read_log};
use pilot_router::Exploration;
use pilot_sim::stream::rng_for;

const SEEDS: u64 = 20;
const EPSILON: f64 = 0.2;
const BUDGET: f64 = 0.3;

#[derive(Default, Clone)]
struct Tally {
    n: usize,
    err: f64,
    sq: f64,
    covered: usize,
    refused: usize,
    ess: f64,
    width: f64,
    spend_err: f64,
}

impl Tally {
    fn add(&mut self, v: &Verdict, truth: (f64, f64)) {
        match v {
            Verdict::Estimate {
                value,
                low,
                high,
                ess,
                spend,
                ..
            } => {
                self.n += 1;
                self.err += value - truth.0;
                self.sq += (value - truth.0).powi(2);
                self.covered += usize::from(*low <= truth.0 && truth.0 <= *high);
                self.ess += ess;
                self.width += high - low;
                self.spend_err += (spend - truth.1) / truth.1.max(1e-12);
            }
            Verdict::Refused(_) => self.refused += 1,
        }
    }
}

type MakeTarget<'a> = Box<dyn Fn() -> Box<dyn Target> + 'a>;

#[test]
fn estimates_match_the_truth_on_routerbench() {
    let Some(dir) = common::data_dir() else {
        return;
    };
    let setup = common::Setup::load(&dir);
    let warm_pilot = setup.warm(setup.pilot(0.1, 4.0));
    let warm_linucb = setup.warm(setup.linucb(0.1, 0.0625));
    let frozen = |p, x| -> Box<dyn Target> { Box::new(PolicyTarget::frozen(p, x).unwrap()) };
    let targets: Vec<(&str, MakeTarget<'_>)> = vec![
        (
            "prior-only",
            Box::new(|| frozen(setup.pilot(0.0, 1.0), Exploration::Argmax)),
        ),
        (
            "prior-only, cost weight 50",
            Box::new(|| {
                Box::new(
                    PolicyTarget::frozen(setup.pilot(0.0, 1.0), Exploration::Argmax)
                        .unwrap()
                        .with_cost_weight(50.0)
                        .unwrap(),
                )
            }),
        ),
        (
            "pilot α 0.1 λ 4, warmed",
            Box::new(|| frozen(warm_pilot.clone(), Exploration::Argmax)),
        ),
        (
            "pilot warmed, softmax T 0.05",
            Box::new(|| {
                frozen(
                    warm_pilot.clone(),
                    Exploration::Softmax { temperature: 0.05 },
                )
            }),
        ),
        (
            "linucb α 0.1 λ 1/16, warmed",
            Box::new(|| frozen(warm_linucb.clone(), Exploration::Argmax)),
        ),
        (
            "uniform over candidates",
            Box::new(|| {
                frozen(
                    setup.pilot(0.0, 1.0),
                    Exploration::EpsilonMix { epsilon: 1.0 },
                )
            }),
        ),
    ];
    let estimators = [
        Estimator::Ips,
        Estimator::Snips,
        Estimator::Dm,
        Estimator::Dr,
        Estimator::SwitchDr,
        Estimator::Replay,
    ];
    // OPE_BOOTSTRAP=N measures bootstrap intervals (N resamples) instead of the variance ones.
    let interval = match std::env::var("OPE_BOOTSTRAP")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        Some(resamples) => pilot_ope::IntervalMethod::Bootstrap { resamples },
        None => pilot_ope::IntervalMethod::Variance,
    };
    println!("intervals: {interval:?}");
    let config = OpeConfig {
        estimators: estimators.to_vec(),
        interval,
        ..OpeConfig::default()
    };
    let mut tallies = vec![vec![Tally::default(); estimators.len()]; targets.len()];
    let mut truths = vec![(0.0, 0.0); targets.len()];
    let mut logged = (0.0, 0.0, 0usize);
    let mut learning = (0.0f64, 0.0f64, 0usize, 0usize);
    for seed in 0..SEEDS {
        let bytes = setup.log_stream(seed, EPSILON, BUDGET);
        let log = read_log(&bytes).unwrap();
        assert!(
            log.decisions.len() > 800,
            "{} decisions",
            log.decisions.len()
        );
        logged.0 += log
            .decisions
            .iter()
            .map(|d| f64::from(d.reward.unwrap_or(0.0)))
            .sum::<f64>()
            / log.decisions.len() as f64;
        logged.1 +=
            log.decisions.iter().map(|d| d.chosen_cost()).sum::<f64>() / log.decisions.len() as f64;
        logged.2 += log.decisions.len();
        for (t, (_, make)) in targets.iter().enumerate() {
            let truth = setup.truth(&log, &mut *make());
            truths[t].0 += truth.0;
            truths[t].1 += truth.1;
            let mut target = make();
            let mut rng = rng_for(seed, 1000 + t as u64);
            let report = evaluate(&log, &mut *target, None, &config, &mut rng).unwrap();
            for (e, row) in report.rows.iter().enumerate() {
                tallies[t][e].add(&row.verdict, truth);
            }
        }
        // The learning case: LinUCB from zero, replayed while it learns.
        let mut frozen_start =
            PolicyTarget::frozen(setup.linucb(0.1, 0.0625), Exploration::Argmax).unwrap();
        let mut learner =
            PolicyTarget::learning(setup.linucb(0.1, 0.0625), Exploration::Argmax).unwrap();
        let replay_only = OpeConfig {
            estimators: vec![Estimator::Replay],
            ..OpeConfig::default()
        };
        let mut rng = rng_for(seed, 2000);
        let report = evaluate(
            &log,
            &mut frozen_start,
            Some(&mut learner),
            &replay_only,
            &mut rng,
        )
        .unwrap();
        if let Verdict::Estimate { value, ess, .. } = report.rows[0].verdict {
            let m = ess as usize;
            let truth = setup.learning_truth(&log, setup.linucb(0.1, 0.0625), m);
            learning.0 += value - truth;
            learning.1 += (value - truth).powi(2);
            learning.2 += 1;
            learning.3 += m;
        }
    }
    let s = SEEDS as f64;
    println!(
        "logging policy: PILOT α 0.05 λ 64, ε-mix ε = {EPSILON}, budget {BUDGET} × always-best; \
         {SEEDS} seeds, {:.0} rewarded decisions per log; logged mean reward {:.4}, spend \
         {:.3e} USD/query",
        logged.2 as f64 / s,
        logged.0 / s,
        logged.1 / s
    );
    println!();
    println!(
        "| target | true reward | true spend | estimator | bias | RMSE | coverage | mean width | mean ESS | spend rel. bias |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let mut dr_cover = (0usize, 0usize);
    for (t, (name, _)) in targets.iter().enumerate() {
        for (e, est) in estimators.iter().enumerate() {
            let x = &tallies[t][e];
            if x.n == 0 {
                println!(
                    "| {name} | {:.4} | {:.3e} | {} | refused ({}×) | | | | | |",
                    truths[t].0 / s,
                    truths[t].1 / s,
                    est.name(),
                    x.refused
                );
                continue;
            }
            let n = x.n as f64;
            println!(
                "| {name} | {:.4} | {:.3e} | {} | {:+.4} | {:.4} | {}/{} | {:.3} | {:.0} | {:+.1} % |",
                truths[t].0 / s,
                truths[t].1 / s,
                est.name(),
                x.err / n,
                (x.sq / n).sqrt(),
                x.covered,
                x.n,
                x.width / n,
                x.ess / n,
                100.0 * x.spend_err / n
            );
            if *est == Estimator::Dr {
                dr_cover.0 += x.covered;
                dr_cover.1 += x.n;
            }
        }
    }
    println!();
    println!("summary over targets: | estimator | bias | RMSE | coverage | mean width |");
    for (e, est) in estimators.iter().enumerate() {
        let (mut n, mut err, mut sq, mut cov, mut width) = (0usize, 0.0, 0.0, 0usize, 0.0);
        for row in &tallies {
            n += row[e].n;
            err += row[e].err;
            sq += row[e].sq;
            cov += row[e].covered;
            width += row[e].width;
        }
        let nf = n.max(1) as f64;
        println!(
            "| {} | {:+.4} | {:.4} | {:.1} % | {:.3} |",
            est.name(),
            err / nf,
            (sq / nf).sqrt(),
            100.0 * cov as f64 / nf,
            width / nf
        );
    }
    if learning.2 > 0 {
        let n = learning.2 as f64;
        println!(
            "learning LinUCB (replay, {} seeds, {:.0} accepted decisions on average): bias \
             {:+.4}, RMSE {:.4} against its true mean reward over as many decisions",
            learning.2,
            learning.3 as f64 / n,
            learning.0 / n,
            (learning.1 / n).sqrt()
        );
    }
    let coverage = dr_cover.0 as f64 / dr_cover.1.max(1) as f64;
    println!(
        "DR coverage: {}/{} = {:.1} %",
        dr_cover.0,
        dr_cover.1,
        100.0 * coverage
    );
    assert_eq!(
        dr_cover.1,
        targets.len() * SEEDS as usize,
        "DR refused somewhere"
    );
    assert!(
        coverage >= 0.9,
        "DR covered the truth in {:.1} % of cases",
        100.0 * coverage
    );
}
