//! Hyperparameter tuning on the learning split only: the learning rows are split into a fit
//! part and a validation part (per task, seeded), the prior is fitted on the fit part, the
//! validation part is replayed as the deployment stream, and every policy family gets the
//! same search — a small grid over its own parameters, then over its cost policy's, then its
//! own again (coordinate ascent) — scored by mean quality over the budgets and seeds.
//!
//! The deployment split is never read here, so the chosen values can be reported on it.

use pilot_data::{Embeddings, RoutingDataset};
use pilot_prior::Prior;

use crate::data::problem_from_rows;
use crate::experiment::{
    Candidate, CostPolicyKind, Experiment, ExperimentConfig, LEARNING_PRIOR, PriorSource,
    standard_candidates,
};
use crate::hyper::{Family, FamilyParams, Hyper};
use crate::priors::prior_source;
use crate::stream::{rng_for, shuffle};
use crate::{Problem, Result, Scenario, SimError};

/// The values each family's parameters are searched over.
#[derive(Clone, Debug, PartialEq)]
pub struct TuneGrid {
    /// α of PILOT and LinUCB.
    pub alphas: Vec<f32>,
    /// λ of PILOT (the weight of its prior).
    pub pilot_lambdas: Vec<f32>,
    /// λ of LinUCB, LinTS and ε-greedy.
    pub lambdas: Vec<f32>,
    /// LinTS posterior scales.
    pub ts_scales: Vec<f32>,
    /// ε-greedy rates.
    pub epsilons: Vec<f32>,
    /// Pacing starting prices (× 1 / budget per query).
    pub pacing_prices: Vec<f64>,
    /// Pacing steps.
    pub pacing_steps: Vec<f64>,
    /// Threshold-bound scales.
    pub threshold_scales: Vec<f64>,
    /// PILOT's ridge discounts γ (1: none), searched at the current α and λ.
    pub discounts: Vec<f32>,
}

impl Default for TuneGrid {
    fn default() -> Self {
        Self {
            alphas: vec![0.0, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0],
            pilot_lambdas: vec![1.0, 4.0, 16.0, 64.0, 256.0, 1024.0],
            lambdas: vec![0.015625, 0.0625, 0.25, 1.0, 4.0, 16.0],
            ts_scales: vec![0.02, 0.05, 0.1, 0.2, 0.5, 1.0],
            epsilons: vec![0.01, 0.02, 0.05, 0.1, 0.2],
            pacing_prices: vec![0.01, 0.03, 0.1, 0.3, 1.0],
            pacing_steps: vec![0.01, 0.02, 0.05, 0.1, 0.2, 0.5],
            threshold_scales: vec![1e-4, 1e-3, 1e-2, 0.1, 1.0],
            discounts: vec![1.0, 0.999, 0.995, 0.99, 0.98],
        }
    }
}

/// How to tune.
#[derive(Clone, Debug)]
pub struct TuneConfig {
    /// Fraction of each task's learning rows the prior is fitted on; the rest is replayed.
    pub fit_fraction: f64,
    /// Seed of the fit / validation split.
    pub split_seed: u64,
    /// Seeds (stream orders) per candidate.
    pub seeds: u64,
    /// Budgets as fractions of the reference LLM's validation cost; the score averages them.
    pub budgets: Vec<f64>,
    /// Cost policies to tune for: pacing tunes policy and pacing settings; threshold then
    /// tunes its bound scale at the policy settings chosen under pacing.
    pub cost_policies: Vec<CostPolicyKind>,
    /// Where the search starts (every family's values before tuning).
    pub start: FamilyParams,
    /// The search grid.
    pub grid: TuneGrid,
    /// Worker threads.
    pub threads: usize,
    /// Neighbours of the kNN router and the cost estimator.
    pub knn_k: usize,
    /// Reference LLM (`None`: best mean quality on the validation part).
    pub reference_llm: Option<String>,
    /// Dimension of the random contexts without a prior (as the run's `--context-dim`).
    pub context_dim: usize,
}

impl Default for TuneConfig {
    fn default() -> Self {
        Self {
            fit_fraction: 0.7,
            split_seed: 0,
            seeds: 3,
            budgets: vec![0.1, 0.25, 0.5, 1.0],
            cost_policies: vec![CostPolicyKind::Pacing],
            start: FamilyParams::untuned(),
            grid: TuneGrid::default(),
            threads: 2,
            knn_k: 10,
            reference_llm: None,
            context_dim: crate::experiment::DEFAULT_CONTEXT_DIM,
        }
    }
}

/// One evaluated candidate.
#[derive(Clone, Debug, PartialEq)]
pub struct TuneRow {
    /// Stage: `policy-1`, `pacing`, `policy-2`, `threshold`.
    pub stage: String,
    /// The policy it is a setting of (`pilot`, `pilot[arena]`, `linucb`, …).
    pub policy: String,
    /// The cost policy it ran with.
    pub cost_policy: String,
    /// The settings, as `name=value` pairs.
    pub settings: String,
    /// Mean validation quality over budgets and seeds.
    pub score: f64,
    /// Whether it is the stage's choice for its policy.
    pub chosen: bool,
}

/// What tuning found.
#[derive(Clone, Debug)]
pub struct TuneReport {
    /// The chosen settings per policy.
    pub params: FamilyParams,
    /// Every candidate evaluated.
    pub rows: Vec<TuneRow>,
    /// Per policy: validation score at the starting values and at the chosen ones (pacing).
    pub gains: Vec<(String, f64, f64)>,
    /// Sizes of the split and other facts.
    pub notes: Vec<String>,
}

/// Fits the learning prior on the given rows of the dataset (the fit part).
pub type FitPrior<'a> = dyn Fn(&[usize]) -> Result<Prior> + 'a;

/// A prior besides the one fitted on the fit part (e.g. from arena judge scores); it never
/// sees the learning rows, so it is used as is.
pub struct ExtraPrior<'a> {
    /// Name (`arena`); its policies are `pilot[name]` and `prior-only[name]`.
    pub name: String,
    /// The prior.
    pub prior: &'a Prior,
}

/// Splits `rows` (indices into `dataset.rows`) per task into a fit part (`fraction` of each
/// task's rows, rounded) and a validation part, shuffled by `seed`. Both parts are sorted.
///
/// # Errors
/// [`SimError::Invalid`] for a fraction outside (0, 1) or a part that would be empty.
pub fn split_rows(
    dataset: &RoutingDataset,
    rows: &[usize],
    fraction: f64,
    seed: u64,
) -> Result<(Vec<usize>, Vec<usize>)> {
    if !(fraction > 0.0 && fraction < 1.0) {
        return Err(SimError::invalid(format!(
            "fit fraction {fraction} must be in (0, 1)"
        )));
    }
    let tasks = dataset.tasks();
    let mut rng = rng_for(seed, 30);
    let (mut fit, mut valid) = (Vec::new(), Vec::new());
    for task in &tasks {
        let mut mine: Vec<usize> = rows
            .iter()
            .copied()
            .filter(|&i| dataset.rows.get(i).is_some_and(|r| &r.task == task))
            .collect();
        shuffle(&mut mine, &mut rng);
        let cut = ((mine.len() as f64) * fraction).round() as usize;
        fit.extend_from_slice(&mine[..cut.min(mine.len())]);
        valid.extend_from_slice(&mine[cut.min(mine.len())..]);
    }
    if fit.is_empty() || valid.is_empty() {
        return Err(SimError::invalid(format!(
            "splitting {} learning rows at {fraction} leaves an empty fit or validation part",
            rows.len()
        )));
    }
    fit.sort_unstable();
    valid.sort_unstable();
    Ok((fit, valid))
}

/// The variations of one policy's own parameters over `grid`, around `h`.
fn policy_variations(family: Family, h: Hyper, grid: &TuneGrid) -> Vec<Hyper> {
    let mut out = Vec::new();
    match family {
        Family::Pilot => {
            for &alpha in &grid.alphas {
                for &lambda in &grid.pilot_lambdas {
                    out.push(Hyper { alpha, lambda, ..h });
                }
            }
            // γ at the current α and λ (a coordinate of its own: the stages alternate).
            for &discount in grid.discounts.iter().filter(|&&g| g != h.discount) {
                out.push(Hyper { discount, ..h });
            }
        }
        Family::LinUcb => {
            for &alpha in &grid.alphas {
                for &lambda in &grid.lambdas {
                    out.push(Hyper { alpha, lambda, ..h });
                }
            }
        }
        Family::LinTs => {
            for &ts_scale in &grid.ts_scales {
                for &lambda in &grid.lambdas {
                    out.push(Hyper {
                        ts_scale,
                        lambda,
                        ..h
                    });
                }
            }
        }
        Family::EpsilonGreedy => {
            for &epsilon in &grid.epsilons {
                for &lambda in &grid.lambdas {
                    out.push(Hyper {
                        epsilon,
                        lambda,
                        ..h
                    });
                }
            }
        }
        Family::PriorOnly | Family::Random | Family::KnnFullInfo => out.push(h),
    }
    out
}

/// The variations of a cost policy's parameters around `h`.
fn cost_variations(kind: CostPolicyKind, h: Hyper, grid: &TuneGrid) -> Vec<Hyper> {
    match kind {
        CostPolicyKind::Pacing => grid
            .pacing_prices
            .iter()
            .flat_map(|&pacing_price| {
                grid.pacing_steps.iter().map(move |&pacing_step| Hyper {
                    pacing_price,
                    pacing_step,
                    ..h
                })
            })
            .collect(),
        CostPolicyKind::Threshold => grid
            .threshold_scales
            .iter()
            .map(|&threshold_scale| Hyper {
                threshold_scale,
                ..h
            })
            .collect(),
        // The published policy has no settings of its own.
        CostPolicyKind::Zcl => vec![h],
    }
}

/// The validation setting tuning replays.
struct Validation {
    problem: Problem,
    base: crate::ContextTable,
    priors: Vec<PriorSource>,
}

/// Tunes every family's settings on a fit / validation split of `learning_rows`.
///
/// `fit_learning_prior(fit_rows)` fits the prior PILOT starts from on the fit part (`None`:
/// no learning prior); `extra` priors are used as they are.
///
/// # Errors
/// A bad split, a failing prior fit, or the first failing episode.
pub fn tune(
    dataset: &RoutingDataset,
    embeddings: &Embeddings,
    learning_rows: &[usize],
    fit_learning_prior: Option<&FitPrior<'_>>,
    extra: &[ExtraPrior<'_>],
    config: &TuneConfig,
    progress: &(dyn Fn(&str, usize, usize) + Sync),
) -> Result<TuneReport> {
    config.start.check()?;
    let (fit_rows, valid_rows) = split_rows(
        dataset,
        learning_rows,
        config.fit_fraction,
        config.split_seed,
    )?;
    let problem = problem_from_rows(dataset, embeddings, &fit_rows, &valid_rows)?;
    let mut notes = vec![format!(
        "tuning split of {} learning rows: fit {} / validation {} (per task, seed {}); \
         {} of them left out for a null quality or cost, so fit {} / validation {} are \
         replayed; validation replayed with {} seeds at budgets {:?}",
        learning_rows.len(),
        fit_rows.len(),
        valid_rows.len(),
        config.split_seed,
        problem.dropped(),
        problem.learning().len(),
        problem.deployment().len(),
        config.seeds,
        config.budgets
    )];
    let mut priors = Vec::new();
    if let Some(fit) = fit_learning_prior {
        let prior = fit(&fit_rows)?;
        priors.push(prior_source(LEARNING_PRIOR, &prior, &problem)?);
    }
    for e in extra {
        priors.push(prior_source(&e.name, e.prior, &problem)?);
    }
    let base = crate::experiment::base_contexts(&priors, &problem, config.context_dim)?;
    let validation = Validation {
        problem,
        base,
        priors,
    };
    let slots: Vec<(String, Family)> = standard_candidates(&validation.priors, &config.start)
        .into_iter()
        .map(|c| (c.name, c.family))
        .collect();
    let mut params = config.start.clone();
    let mut rows = Vec::new();
    let pacing = config.cost_policies.contains(&CostPolicyKind::Pacing);
    let mut start_scores = Vec::new();
    if pacing {
        let stages: [(&str, bool); 3] = [("policy-1", true), ("pacing", false), ("policy-2", true)];
        for (stage, own) in stages {
            let found = run_stage(
                &validation,
                config,
                &slots,
                &params,
                CostPolicyKind::Pacing,
                stage,
                own,
                progress,
            )?;
            if stage == "policy-1" {
                start_scores = slots
                    .iter()
                    .map(|(name, _)| {
                        let start = params.get(name);
                        let score = found
                            .iter()
                            .find(|(n, h, _)| n == name && *h == start)
                            .map_or(f64::NAN, |(_, _, s)| *s);
                        (name.clone(), score)
                    })
                    .collect();
            }
            apply(&mut params, &mut rows, found, stage, "pacing", &slots);
        }
    }
    if config.cost_policies.contains(&CostPolicyKind::Threshold) {
        let found = run_stage(
            &validation,
            config,
            &slots,
            &params,
            CostPolicyKind::Threshold,
            "threshold",
            false,
            progress,
        )?;
        apply(
            &mut params,
            &mut rows,
            found,
            "threshold",
            "threshold",
            &slots,
        );
    }
    let gains = start_scores
        .into_iter()
        .map(|(name, before)| {
            let after = rows
                .iter()
                .filter(|r| r.policy == name && r.chosen && r.cost_policy == "pacing")
                .map(|r| r.score)
                .next_back()
                .unwrap_or(f64::NAN);
            (name, before, after)
        })
        .collect();
    notes.push(format!("{} candidate settings evaluated", rows.len()));
    Ok(TuneReport {
        params,
        rows,
        gains,
        notes,
    })
}

/// Evaluates one stage; returns `(policy, settings, score)` for every candidate.
#[allow(clippy::too_many_arguments)]
fn run_stage(
    validation: &Validation,
    config: &TuneConfig,
    slots: &[(String, Family)],
    params: &FamilyParams,
    kind: CostPolicyKind,
    stage: &str,
    own: bool,
    progress: &(dyn Fn(&str, usize, usize) + Sync),
) -> Result<Vec<(String, Hyper, f64)>> {
    let mut candidates = Vec::new();
    let mut owner = Vec::new();
    let standard = standard_candidates(&validation.priors, params);
    for (name, family) in slots {
        let Some(template) = standard.iter().find(|c| &c.name == name) else {
            continue;
        };
        let h = params.get(name);
        let variations = if own {
            policy_variations(*family, h, &config.grid)
        } else {
            cost_variations(kind, h, &config.grid)
        };
        for v in variations {
            candidates.push(Candidate {
                name: format!("{name} {}", v.describe(*family, kind.name())),
                family: *family,
                prior: template.prior,
                hyper: v,
            });
            owner.push((name.clone(), v));
        }
    }
    let experiment_config = ExperimentConfig {
        budgets: config.budgets.clone(),
        seeds: config.seeds,
        scenarios: vec![Scenario::Standard],
        cost_policies: vec![kind],
        threads: config.threads,
        knn_k: config.knn_k,
        params: params.clone(),
        reference_llm: config.reference_llm.clone(),
    };
    let experiment = Experiment::with_candidates(
        validation.problem.clone(),
        validation.base.clone(),
        validation.priors.clone(),
        candidates,
        experiment_config,
    )?;
    let grid = experiment.grid();
    let cells = grid.run(&|done, total| progress(stage, done, total))?;
    let n = validation.problem.deployment().len().max(1) as f64;
    let mut sums = vec![(0.0f64, 0usize); owner.len()];
    for cell in &cells {
        if let Some(s) = sums.get_mut(cell.policy) {
            s.0 += cell.outcome.quality / n;
            s.1 += 1;
        }
    }
    Ok(owner
        .into_iter()
        .zip(sums)
        .map(|((name, h), (sum, count))| (name, h, sum / count.max(1) as f64))
        .collect())
}

/// Records a stage's rows and sets each policy to its best candidate (the first among equals).
fn apply(
    params: &mut FamilyParams,
    rows: &mut Vec<TuneRow>,
    found: Vec<(String, Hyper, f64)>,
    stage: &str,
    cost: &str,
    slots: &[(String, Family)],
) {
    for (name, family) in slots {
        let mine: Vec<&(String, Hyper, f64)> = found.iter().filter(|(n, _, _)| n == name).collect();
        let best = mine
            .iter()
            .enumerate()
            .fold(None::<(usize, f64)>, |best, (i, (_, _, s))| match best {
                Some((_, b)) if *s <= b => best,
                _ => Some((i, *s)),
            })
            .map(|(i, _)| i);
        for (i, (_, h, score)) in mine.iter().enumerate() {
            rows.push(TuneRow {
                stage: stage.to_owned(),
                policy: name.clone(),
                cost_policy: cost.to_owned(),
                settings: h.describe(*family, cost),
                score: *score,
                chosen: Some(i) == best,
            });
        }
        if let Some(&&(_, h, _)) = best.and_then(|i| mine.get(i)) {
            params.set(name, h);
        }
    }
}

/// `tune.csv`: every candidate, one row each.
pub fn tune_csv(rows: &[TuneRow]) -> String {
    let mut out = String::from("stage,policy,cost_policy,settings,score,chosen\n");
    for r in rows {
        out.push_str(&format!(
            "{},{},{},{},{:.6},{}\n",
            r.stage, r.policy, r.cost_policy, r.settings, r.score, r.chosen
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_gets_its_own_grid_and_cost_grid() {
        let g = TuneGrid::default();
        let h = Hyper::UNTUNED;
        assert_eq!(
            policy_variations(Family::Pilot, h, &g).len(),
            g.alphas.len() * g.pilot_lambdas.len() + g.discounts.len() - 1
        );
        assert_eq!(
            policy_variations(Family::LinUcb, h, &g).len(),
            g.alphas.len() * g.lambdas.len()
        );
        assert_eq!(policy_variations(Family::Random, h, &g), vec![h]);
        let pacing = cost_variations(CostPolicyKind::Pacing, h, &g);
        assert_eq!(pacing.len(), g.pacing_prices.len() * g.pacing_steps.len());
        assert!(
            pacing
                .iter()
                .all(|v| v.alpha == h.alpha && v.lambda == h.lambda)
        );
    }

    fn synthetic(learning: usize, deployment: usize) -> (RoutingDataset, Embeddings, Vec<usize>) {
        let mut embedder = pilot_embed::HashingEmbedder::new(64).unwrap();
        let s = crate::synthetic::generate(
            &crate::synthetic::SyntheticConfig {
                learning,
                deployment,
                seed: 3,
            },
            &mut embedder,
        )
        .unwrap();
        crate::priors::synthetic_dataset(&s).unwrap()
    }

    #[test]
    fn split_is_per_task_disjoint_and_complete() {
        let (data, _, learning) = synthetic(300, 50);
        let (fit, valid) = split_rows(&data, &learning, 0.7, 5).unwrap();
        let mut all: Vec<usize> = fit.iter().chain(&valid).copied().collect();
        all.sort_unstable();
        assert_eq!(all, learning);
        for task in data.tasks() {
            let count =
                |rows: &[usize]| rows.iter().filter(|&&i| data.rows[i].task == task).count();
            let (f, v) = (count(&fit), count(&valid));
            let want = ((f + v) as f64 * 0.7).round() as usize;
            assert_eq!(f, want, "task {task}");
        }
        assert_eq!(split_rows(&data, &learning, 0.7, 5).unwrap().0, fit);
        assert_ne!(split_rows(&data, &learning, 0.7, 6).unwrap().0, fit);
        assert!(split_rows(&data, &learning, 1.0, 5).is_err());
        assert!(split_rows(&data, &learning, f64::NAN, 5).is_err());
    }

    #[test]
    fn tuning_never_reads_the_deployment_rows() {
        let (data, emb, learning) = synthetic(240, 60);
        let mut config = TuneConfig {
            seeds: 1,
            budgets: vec![0.25],
            threads: 1,
            grid: TuneGrid {
                alphas: vec![0.0, 1.0],
                pilot_lambdas: vec![1.0, 64.0],
                lambdas: vec![1.0],
                ts_scales: vec![0.1],
                epsilons: vec![0.1],
                pacing_prices: vec![0.1],
                pacing_steps: vec![0.05, 0.2],
                threshold_scales: vec![0.01, 1.0],
                discounts: vec![1.0],
            },
            ..TuneConfig::default()
        };
        config.cost_policies = vec![CostPolicyKind::Pacing, CostPolicyKind::Threshold];
        let params = pilot_prior::FitParams {
            dim: 4,
            embedder_id: "hash".into(),
            contrastive_epochs: 0,
            bt_max_epochs: 30,
            ..pilot_prior::FitParams::default()
        };
        let run = |data: &RoutingDataset| {
            let fit = |rows: &[usize]| {
                crate::priors::fit_prior(data, &emb, rows, &params, 0.2).map(|(p, _)| p)
            };
            tune(
                data,
                &emb,
                &learning,
                Some(&fit),
                &[],
                &config,
                &|_, _, _| {},
            )
            .unwrap()
        };
        let first = run(&data);
        // Scramble every deployment outcome: the tuning must not notice.
        let mut scrambled = data.clone();
        for row in scrambled.rows.iter_mut().filter(|r| r.split == "test") {
            for q in row.quality.iter_mut().flatten() {
                *q = 1.0 - *q;
            }
        }
        let second = run(&scrambled);
        assert_eq!(first.rows, second.rows);
        assert_eq!(first.params, second.params);
        // Every slot got one choice per stage, and PILOT was searched over its whole grid.
        let stages = ["policy-1", "pacing", "policy-2", "threshold"];
        for stage in stages {
            let chosen = first
                .rows
                .iter()
                .filter(|r| r.stage == stage && r.chosen)
                .count();
            assert_eq!(chosen, 7, "stage {stage}");
        }
        let pilot = first
            .rows
            .iter()
            .filter(|r| r.stage == "policy-1" && r.policy == "pilot");
        assert_eq!(pilot.count(), 4);
        assert!(
            first
                .rows
                .iter()
                .all(|r| r.score.is_finite() && r.score > 0.0)
        );
    }

    #[test]
    fn the_best_candidate_wins_and_ties_keep_the_first() {
        let slots = vec![("linucb".to_owned(), Family::LinUcb)];
        let a = Hyper {
            alpha: 0.5,
            ..Hyper::UNTUNED
        };
        let b = Hyper {
            alpha: 1.0,
            ..Hyper::UNTUNED
        };
        let c = Hyper {
            alpha: 2.0,
            ..Hyper::UNTUNED
        };
        let found = vec![
            ("linucb".to_owned(), a, 0.5),
            ("linucb".to_owned(), b, 0.7),
            ("linucb".to_owned(), c, 0.7),
        ];
        let mut params = FamilyParams::uniform(Hyper::UNTUNED);
        let mut rows = Vec::new();
        apply(&mut params, &mut rows, found, "policy-1", "pacing", &slots);
        assert_eq!(params.get("linucb"), b);
        assert_eq!(rows.iter().filter(|r| r.chosen).count(), 1);
        assert!(rows[1].chosen);
    }
}
