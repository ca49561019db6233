//! The estimators, their intervals and effective sample sizes, and what they refuse.

use pilot_core::RngCore;

use crate::model::RewardModel;
use crate::stats::{mean_var, normal_quantile, quantile_sorted};
use crate::{Log, Logged, OpeError, Result, Target};

/// An off-policy estimator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Estimator {
    /// Rejection replay (Li et al. 2011, generalised to non-uniform logs): accept a logged
    /// decision with probability π(a)·c/μ(a); the target learns from what it accepts.
    Replay,
    /// Inverse propensity scoring: mean of w·r, w = π(a)/μ(a).
    Ips,
    /// Self-normalised IPS: Σ w·r / Σ w.
    Snips,
    /// Direct method: mean of Σ_a π(a)·r̂(x, a) with a ridge reward model per LLM.
    Dm,
    /// Doubly robust: the direct method plus w·(r − r̂(x, a)).
    Dr,
    /// Switch-DR: doubly robust where w ≤ τ, the direct method alone where w > τ.
    SwitchDr,
}

impl Estimator {
    /// All of them, in table order.
    pub const ALL: [Self; 6] = [
        Self::Ips,
        Self::Snips,
        Self::Dm,
        Self::Dr,
        Self::SwitchDr,
        Self::Replay,
    ];

    /// Name on the command line and in tables.
    pub fn name(self) -> &'static str {
        match self {
            Self::Replay => "replay",
            Self::Ips => "ips",
            Self::Snips => "snips",
            Self::Dm => "dm",
            Self::Dr => "dr",
            Self::SwitchDr => "switch-dr",
        }
    }

    /// Parses a name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.name() == name)
    }

    fn uses_weights(self) -> bool {
        matches!(self, Self::Ips | Self::Snips | Self::Dr)
    }
}

/// How the confidence interval is computed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum IntervalMethod {
    /// Normal approximation from the estimator's variance (sample variance of its per-decision
    /// terms; the delta method for SNIPS). The direct method's ignores the model's own error.
    Variance,
    /// Percentile bootstrap over decisions, the reward model refitted on every resample.
    Bootstrap {
        /// Number of resamples (≥ 20).
        resamples: usize,
    },
}

/// Settings of an evaluation.
#[derive(Clone, Debug, PartialEq)]
pub struct OpeConfig {
    /// Estimators to run, in table order.
    pub estimators: Vec<Estimator>,
    /// Confidence level of the intervals, in `(0, 1)`.
    pub level: f64,
    /// How intervals are computed.
    pub interval: IntervalMethod,
    /// Clip importance weights at this value (IPS, SNIPS, DR); `None`: no clipping.
    pub clip: Option<f64>,
    /// Switch-DR's threshold τ on the weight.
    pub switch_tau: f64,
    /// Ridge weight of the reward model.
    pub ridge_lambda: f64,
    /// Folds of the cross-fitted reward model DR and switch-DR correct (≥ 2).
    pub folds: usize,
    /// Replay's acceptance scale c (accept with probability π·c/μ, at most 1). `None`: the
    /// smallest logged propensity, which keeps replay unbiased.
    pub replay_scale: Option<f64>,
}

impl Default for OpeConfig {
    fn default() -> Self {
        Self {
            estimators: Estimator::ALL.to_vec(),
            level: 0.95,
            interval: IntervalMethod::Variance,
            clip: None,
            switch_tau: 20.0,
            ridge_lambda: 1.0,
            folds: 5,
            replay_scale: None,
        }
    }
}

impl OpeConfig {
    fn check(&self) -> Result<()> {
        let bad = |m: String| Err(OpeError::Config(m));
        if !(self.level > 0.0 && self.level < 1.0) {
            return bad(format!("level {}: expected a value in (0, 1)", self.level));
        }
        if let Some(c) = self.clip
            && !(c > 0.0)
        {
            return bad(format!("clip {c}: expected a value > 0"));
        }
        if !(self.switch_tau > 0.0) {
            return bad(format!(
                "switch τ {}: expected a value > 0",
                self.switch_tau
            ));
        }
        if !(self.ridge_lambda > 0.0 && self.ridge_lambda.is_finite()) {
            return bad(format!(
                "ridge λ {}: expected a finite value > 0",
                self.ridge_lambda
            ));
        }
        if let Some(c) = self.replay_scale
            && !(c > 0.0 && c <= 1.0)
        {
            return bad(format!("replay scale {c}: expected a value in (0, 1]"));
        }
        if let IntervalMethod::Bootstrap { resamples } = self.interval
            && resamples < 20
        {
            return bad(format!(
                "{resamples} bootstrap resamples: expected at least 20"
            ));
        }
        if self.folds < 2 {
            return bad(format!("{} folds: expected at least 2", self.folds));
        }
        if self.estimators.is_empty() {
            return bad("no estimator chosen".into());
        }
        Ok(())
    }
}

/// Whether the target was scored frozen or learning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Case {
    /// Fixed for the whole log (its start state or a snapshot): IPS-style weights apply.
    Frozen,
    /// It learns from the decisions the replay accepts.
    Learning,
}

impl Case {
    /// `frozen` or `learning`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Frozen => "frozen",
            Self::Learning => "learning",
        }
    }
}

/// An estimate, or why there is none.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// A number.
    Estimate {
        /// Estimated mean reward per decision.
        value: f64,
        /// Lower end of the interval.
        low: f64,
        /// Upper end of the interval.
        high: f64,
        /// Effective sample size.
        ess: f64,
        /// Estimated mean spend per decision (currency).
        spend: f64,
        /// Its interval.
        spend_low: f64,
        /// Its interval.
        spend_high: f64,
    },
    /// No number: the reason.
    Refused(String),
}

/// One estimator's line of the table.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// The estimator.
    pub estimator: Estimator,
    /// Frozen or learning target.
    pub case: Case,
    /// Its estimate or refusal.
    pub verdict: Verdict,
}

/// The evaluation of one target on one log.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// Decisions evaluated (rewarded ones).
    pub decisions: usize,
    /// One row per estimator asked for.
    pub rows: Vec<Row>,
    /// Mean reward the logging policy obtained on these decisions.
    pub logged_reward: f64,
    /// Mean spend of the logging policy (settled costs; estimates where unsettled).
    pub logged_spend: f64,
    /// Share of the target's probability on LLMs the log could not have chosen (0: full
    /// overlap).
    pub unsupported: f64,
    /// Whether every logged decision had propensity 1 (an argmax router).
    pub deterministic_log: bool,
    /// The confidence level.
    pub level: f64,
    /// Things the reader should know (versions, clipping, small ESS, replay acceptance).
    pub notes: Vec<String>,
}

/// Per-decision quantities every estimator reads.
struct Prepared {
    /// π(a | x_i) per decision.
    pi: Vec<Vec<f64>>,
    /// The logged arm.
    chosen: Vec<usize>,
    /// Importance weight of the logged arm (unclipped).
    w: Vec<f64>,
    r: Vec<f64>,
    /// Real cost of the logged call (estimate when unsettled).
    c: Vec<f64>,
    /// Per-arm estimated costs.
    chat: Vec<Vec<f64>>,
    /// Per-arm mixed cost: real for the logged arm when settled, else estimated.
    cmix: Vec<Vec<f64>>,
}

/// Share of the target's probability, averaged over decisions, on arms whose logged
/// probability is 0.
pub fn unsupported_mass(log: &[Logged], pi: &[Vec<f64>]) -> f64 {
    if log.is_empty() {
        return 0.0;
    }
    let total: f64 = log
        .iter()
        .zip(pi)
        .map(|(d, p)| {
            d.arms
                .iter()
                .zip(p)
                .filter(|(c, _)| !(c.probability > 0.0))
                .map(|(_, &q)| q)
                .sum::<f64>()
        })
        .sum();
    total / log.len() as f64
}

/// Evaluates `target` (frozen) on `log`; the replay row runs `learner` when given (a learning
/// copy of the target, [`Case::Learning`]), else the frozen target. `rng` drives the bootstrap
/// and replay's acceptance draws.
///
/// # Errors
/// [`OpeError::Config`] for bad settings, [`OpeError::Target`] when the target cannot score a
/// logged context (dimension, pool size). A target that cannot be *estimated* (no overlap,
/// contexts of different maps, nothing rewarded) is not an error: its rows are
/// [`Verdict::Refused`] with the reason.
pub fn evaluate(
    log: &Log,
    target: &mut dyn Target,
    learner: Option<&mut dyn Target>,
    config: &OpeConfig,
    rng: &mut dyn RngCore,
) -> Result<Report> {
    config.check()?;
    let decisions = &log.decisions;
    let n = decisions.len();
    let mut report = Report {
        decisions: n,
        rows: Vec::new(),
        logged_reward: 0.0,
        logged_spend: 0.0,
        unsupported: 0.0,
        deterministic_log: false,
        level: config.level,
        notes: Vec::new(),
    };
    let replay_case = if learner.as_ref().is_some_and(|l| l.learns()) {
        Case::Learning
    } else {
        Case::Frozen
    };
    let case_of = |e: Estimator| {
        if e == Estimator::Replay {
            replay_case
        } else {
            Case::Frozen
        }
    };
    let refuse_all = |report: &mut Report, why: &str| {
        report.rows = config
            .estimators
            .iter()
            .map(|&e| Row {
                estimator: e,
                case: case_of(e),
                verdict: Verdict::Refused(why.to_owned()),
            })
            .collect();
    };
    if n == 0 {
        refuse_all(
            &mut report,
            "the log has no decision with both a chosen LLM and a reward",
        );
        return Ok(report);
    }
    if let Some(why) = mixed_contexts(log) {
        refuse_all(&mut report, &why);
        return Ok(report);
    }
    let pre = prepare(decisions, target)?;
    report.logged_reward = pre.r.iter().sum::<f64>() / n as f64;
    report.logged_spend = pre.c.iter().sum::<f64>() / n as f64;
    report.unsupported = unsupported_mass(decisions, &pre.pi);
    report.deterministic_log = decisions.iter().all(|d| {
        d.propensity >= 1.0 - 1e-12
            && d.arms
                .iter()
                .all(|c| c.probability == 0.0 || c.probability >= 1.0 - 1e-12)
    });
    if log.versions.len() > 1 {
        report.notes.push(format!(
            "the log has {} version events; the logging policy changed, which the logged \
             propensities account for",
            log.versions.len()
        ));
    }
    let counts = log.counts;
    if counts.no_reward + counts.released + counts.unserved > 0 {
        report.notes.push(format!(
            "left out: {} decisions without a reward, {} released calls, {} with nothing in \
             budget",
            counts.no_reward, counts.released, counts.unserved
        ));
    }
    if counts.unsettled > 0 {
        report.notes.push(format!(
            "{} rewarded decisions were never settled: their estimated cost stands in",
            counts.unsettled
        ));
    }
    let unsupported = report.unsupported > 1e-12;
    if unsupported && report.deterministic_log {
        let differs = decisions
            .iter()
            .zip(&pre.pi)
            .filter(|(d, p)| p[d.chosen] < 1.0 - 1e-12)
            .count();
        let why = format!(
            "no overlap: the log is deterministic (every propensity is 1, the router drew by \
                 argmax), so it shows nothing about LLMs it did not choose, and the target \
                 chooses differently on {differs} of {n} decisions ({:.1} % of its probability). \
                 Log with exploration (ε-mix or softmax) to evaluate other policies.",
            100.0 * report.unsupported
        );
        refuse_all(&mut report, &why);
        return Ok(report);
    }
    let no_overlap = format!(
        "no overlap: {:.2} % of the target's probability falls on LLMs the logging policy could \
         not have chosen there (logged probability 0), so weights are undefined",
        100.0 * report.unsupported
    );
    if unsupported {
        report.notes.push(format!(
            "{no_overlap}; dm and switch-dr rely on the reward model for them"
        ));
    }
    let arms = decisions.iter().map(|d| d.arms.len()).max().unwrap_or(0);
    let all: Vec<usize> = (0..n).collect();
    let model = RewardModel::fit(decisions, &all, arms, config.ridge_lambda);
    let rhat_full = predictions(decisions, &model);
    let rhat_cross =
        RewardModel::cross_fit(decisions, &all, arms, config.ridge_lambda, config.folds);
    let z = normal_quantile(0.5 + config.level / 2.0);
    let mut learner = learner;
    for &e in &config.estimators {
        let verdict = if unsupported && (e.uses_weights() || e == Estimator::Replay) {
            Verdict::Refused(no_overlap.clone())
        } else if e == Estimator::Replay {
            let t: &mut dyn Target = match learner.as_mut() {
                Some(l) => &mut **l,
                None => &mut *target,
            };
            replay(decisions, t, config, z, rng, &mut report.notes)?
        } else {
            let rhat = if e == Estimator::Dm {
                &rhat_full
            } else {
                &rhat_cross
            };
            let (value, spend, ess) = point(e, &all, &pre, rhat, config);
            let ((low, high), (spend_low, spend_high)) = match config.interval {
                IntervalMethod::Variance => variance_interval(e, &pre, rhat, config, z),
                IntervalMethod::Bootstrap { resamples } => {
                    bootstrap(e, decisions, &pre, config, resamples, rng)
                }
            };
            if ess < 30.0 {
                report.notes.push(format!(
                    "{}: effective sample size {ess:.1}: its interval is unreliable",
                    e.name()
                ));
            }
            Verdict::Estimate {
                value,
                low,
                high,
                ess,
                spend,
                spend_low,
                spend_high,
            }
        };
        report.rows.push(Row {
            estimator: e,
            case: case_of(e),
            verdict,
        });
    }
    let model_only: Vec<&str> = config
        .estimators
        .iter()
        .filter(|e| matches!(e, Estimator::Dm | Estimator::SwitchDr))
        .map(|e| e.name())
        .collect();
    if !model_only.is_empty() {
        report.notes.push(format!(
            "{}: the interval covers sampling noise only, not the reward model's own bias \
             (a linear model per LLM); prefer dr's interval",
            model_only.join(", ")
        ));
    }
    if let Some(c) = config.clip {
        report.notes.push(format!(
            "importance weights clipped at {c} (ips, snips, dr)"
        ));
    }
    Ok(report)
}

/// Why the decisions' contexts cannot be read by one target: they come from different priors
/// or embedders (`None`: one map throughout).
fn mixed_contexts(log: &Log) -> Option<String> {
    let mut maps: Vec<(String, String)> = Vec::new();
    for d in &log.decisions {
        let key = d.versions.and_then(|i| log.versions.get(i)).map_or_else(
            || (String::new(), String::new()),
            |v| (v.prior.clone(), v.embedder.clone()),
        );
        if !maps.contains(&key) {
            maps.push(key);
        }
    }
    let dims: Vec<usize> = {
        let mut d: Vec<usize> = log.decisions.iter().map(|d| d.context.len()).collect();
        d.sort_unstable();
        d.dedup();
        d
    };
    if dims.len() > 1 {
        return Some(format!(
            "the log's contexts have several dimensions ({dims:?}): they come from different \
             projections; evaluate each part of the log on its own"
        ));
    }
    if maps.len() > 1 {
        let list: Vec<String> = maps
            .iter()
            .map(|(p, e)| format!("prior '{p}' / embedder '{e}'"))
            .collect();
        return Some(format!(
            "the log's contexts come from {} different maps ({}): one target cannot read them \
             all; evaluate each part of the log on its own",
            maps.len(),
            list.join(", ")
        ));
    }
    None
}

fn prepare(decisions: &[Logged], target: &mut dyn Target) -> Result<Prepared> {
    let n = decisions.len();
    let mut pre = Prepared {
        pi: Vec::with_capacity(n),
        chosen: Vec::with_capacity(n),
        w: Vec::with_capacity(n),
        r: Vec::with_capacity(n),
        c: Vec::with_capacity(n),
        chat: Vec::with_capacity(n),
        cmix: Vec::with_capacity(n),
    };
    for d in decisions {
        let mut p = vec![0.0; d.arms.len()];
        target
            .probabilities(&d.context, &d.arms, &mut p)
            .map_err(|e| match e {
                OpeError::Target(m) => OpeError::Target(format!("decision seq {}: {m}", d.seq)),
                other => other,
            })?;
        pre.w.push(p[d.chosen] / d.propensity);
        pre.chosen.push(d.chosen);
        pre.pi.push(p);
        pre.r.push(d.reward.map_or(0.0, f64::from));
        pre.c.push(d.chosen_cost());
        let chat: Vec<f64> = d.arms.iter().map(|c| c.cost).collect();
        let mut cmix = chat.clone();
        if let Some(real) = d.cost {
            cmix[d.chosen] = real;
        }
        pre.chat.push(chat);
        pre.cmix.push(cmix);
    }
    Ok(pre)
}

fn predictions(decisions: &[Logged], model: &RewardModel) -> Vec<Vec<f64>> {
    decisions
        .iter()
        .map(|d| {
            (0..d.arms.len())
                .map(|a| model.predict(a, &d.context))
                .collect()
        })
        .collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Per-decision terms (reward, spend) of the additive estimators; the weight used.
fn terms(
    e: Estimator,
    i: usize,
    pre: &Prepared,
    rhat: &[Vec<f64>],
    config: &OpeConfig,
) -> (f64, f64, f64) {
    let chosen = pre.chosen[i];
    let raw = pre.w[i];
    let w = config.clip.map_or(raw, |c| raw.min(c));
    let (r, c) = (pre.r[i], pre.c[i]);
    let pi = &pre.pi[i];
    match e {
        Estimator::Ips | Estimator::Snips | Estimator::Replay => (w * r, w * c, w),
        Estimator::Dm => (dot(pi, &rhat[i]), dot(pi, &pre.cmix[i]), 1.0),
        Estimator::Dr => (
            dot(pi, &rhat[i]) + w * (r - rhat[i][chosen]),
            dot(pi, &pre.chat[i]) + w * (c - pre.chat[i][chosen]),
            w,
        ),
        Estimator::SwitchDr => {
            let ws = if raw <= config.switch_tau { raw } else { 0.0 };
            (
                dot(pi, &rhat[i]) + ws * (r - rhat[i][chosen]),
                dot(pi, &pre.chat[i]) + ws * (c - pre.chat[i][chosen]),
                ws,
            )
        }
    }
}

/// Point estimate (reward, spend) and ESS over `rows`.
fn point(
    e: Estimator,
    rows: &[usize],
    pre: &Prepared,
    rhat: &[Vec<f64>],
    config: &OpeConfig,
) -> (f64, f64, f64) {
    let n = rows.len().max(1) as f64;
    let (mut sr, mut sc, mut sw, mut sw2) = (0.0, 0.0, 0.0, 0.0);
    for &i in rows {
        let (r, c, w) = terms(e, i, pre, rhat, config);
        sr += r;
        sc += c;
        sw += w;
        sw2 += w * w;
    }
    let ess = if e == Estimator::Dm {
        rows.len() as f64
    } else if sw2 > 0.0 {
        sw * sw / sw2
    } else {
        0.0
    };
    if e == Estimator::Snips {
        if sw > 0.0 {
            (sr / sw, sc / sw, ess)
        } else {
            (f64::NAN, f64::NAN, ess)
        }
    } else {
        (sr / n, sc / n, ess)
    }
}

/// Normal interval from the per-decision terms (delta method for SNIPS).
fn variance_interval(
    e: Estimator,
    pre: &Prepared,
    rhat: &[Vec<f64>],
    config: &OpeConfig,
    z: f64,
) -> ((f64, f64), (f64, f64)) {
    let n = pre.r.len();
    let rows: Vec<(f64, f64, f64)> = (0..n).map(|i| terms(e, i, pre, rhat, config)).collect();
    let nf = n as f64;
    if e == Estimator::Snips {
        let sw: f64 = rows.iter().map(|t| t.2).sum();
        if !(sw > 0.0) {
            return ((f64::NAN, f64::NAN), (f64::NAN, f64::NAN));
        }
        let vr = rows.iter().map(|t| t.0).sum::<f64>() / sw;
        let vc = rows.iter().map(|t| t.1).sum::<f64>() / sw;
        // Var ≈ Σ w²(r − V)² / (Σ w)², with w·r in t.0 and w in t.2.
        let var = |v: f64, k: usize| {
            rows.iter()
                .map(|t| {
                    let wy = if k == 0 { t.0 } else { t.1 };
                    let d = wy - t.2 * v;
                    d * d
                })
                .sum::<f64>()
                / (sw * sw)
        };
        let (hr, hc) = (z * var(vr, 0).sqrt(), z * var(vc, 1).sqrt());
        return ((vr - hr, vr + hr), (vc - hc, vc + hc));
    }
    let r: Vec<f64> = rows.iter().map(|t| t.0).collect();
    let c: Vec<f64> = rows.iter().map(|t| t.1).collect();
    let (mr, vr) = mean_var(&r);
    let (mc, vc) = mean_var(&c);
    let (hr, hc) = (z * (vr / nf).sqrt(), z * (vc / nf).sqrt());
    ((mr - hr, mr + hr), (mc - hc, mc + hc))
}

/// A uniform draw in `[0, 1)`.
fn uniform(rng: &mut dyn RngCore) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Percentile bootstrap: resample decisions, refit the reward model, re-estimate.
fn bootstrap(
    e: Estimator,
    decisions: &[Logged],
    pre: &Prepared,
    config: &OpeConfig,
    resamples: usize,
    rng: &mut dyn RngCore,
) -> ((f64, f64), (f64, f64)) {
    let n = decisions.len();
    let arms = decisions.iter().map(|d| d.arms.len()).max().unwrap_or(0);
    let mut values = Vec::with_capacity(resamples);
    let mut spends = Vec::with_capacity(resamples);
    let mut rows = vec![0usize; n];
    for _ in 0..resamples {
        for r in rows.iter_mut() {
            *r = ((uniform(rng) * n as f64) as usize).min(n - 1);
        }
        let (v, s, _) = if e == Estimator::Dm {
            let model = RewardModel::fit(decisions, &rows, arms, config.ridge_lambda);
            point(e, &rows, pre, &predictions(decisions, &model), config)
        } else if matches!(e, Estimator::Dr | Estimator::SwitchDr) {
            let rhat =
                RewardModel::cross_fit(decisions, &rows, arms, config.ridge_lambda, config.folds);
            point(e, &rows, pre, &rhat, config)
        } else {
            point(e, &rows, pre, &[], config)
        };
        if v.is_finite() && s.is_finite() {
            values.push(v);
            spends.push(s);
        }
    }
    values.sort_by(f64::total_cmp);
    spends.sort_by(f64::total_cmp);
    let (lo, hi) = (0.5 - config.level / 2.0, 0.5 + config.level / 2.0);
    (
        (quantile_sorted(&values, lo), quantile_sorted(&values, hi)),
        (quantile_sorted(&spends, lo), quantile_sorted(&spends, hi)),
    )
}

/// Rejection replay: in log order, accept decision i with probability π(a_i)·c/μ(a_i) (π from
/// the target as it is at that point); the target learns from each accepted decision.
fn replay(
    decisions: &[Logged],
    target: &mut dyn Target,
    config: &OpeConfig,
    z: f64,
    rng: &mut dyn RngCore,
    notes: &mut Vec<String>,
) -> Result<Verdict> {
    let min_prop = decisions
        .iter()
        .map(|d| d.propensity)
        .fold(f64::INFINITY, f64::min);
    let scale = config.replay_scale.unwrap_or(min_prop);
    let mut rewards = Vec::new();
    let mut costs = Vec::new();
    let mut capped = 0usize;
    for d in decisions {
        let mut p = vec![0.0; d.arms.len()];
        target.probabilities(&d.context, &d.arms, &mut p)?;
        let lost: f64 = d
            .arms
            .iter()
            .zip(&p)
            .filter(|(c, _)| !(c.probability > 0.0))
            .map(|(_, &q)| q)
            .sum();
        if lost > 1e-12 {
            return Ok(Verdict::Refused(format!(
                "no overlap: at decision seq {} the learning target puts {:.1} % of its \
                 probability on LLMs the log could not have chosen",
                d.seq,
                100.0 * lost
            )));
        }
        let accept = p[d.chosen] * scale / d.propensity;
        if accept > 1.0 {
            capped += 1;
        }
        if uniform(rng) < accept {
            let r = d.reward.unwrap_or(0.0);
            rewards.push(f64::from(r));
            costs.push(d.chosen_cost());
            target.learn(d.chosen, &d.context, r)?;
        }
    }
    let m = rewards.len();
    notes.push(format!(
        "replay: accepted {m} of {} decisions at scale c = {scale:.4} (smallest logged \
                 propensity {min_prop:.4}){}",
        decisions.len(),
        if capped > 0 {
            format!(
                "; {capped} acceptance probabilities exceeded 1 and were capped: biased toward \
                 the logging policy"
            )
        } else {
            String::new()
        }
    ));
    if m == 0 {
        return Ok(Verdict::Refused(
            "replay accepted no decision (too little exploration in the log for this target)"
                .into(),
        ));
    }
    let (vr, varr) = mean_var(&rewards);
    let (vc, varc) = mean_var(&costs);
    let (hr, hc) = (z * (varr / m as f64).sqrt(), z * (varc / m as f64).sqrt());
    Ok(Verdict::Estimate {
        value: vr,
        low: vr - hr,
        high: vr + hr,
        ess: m as f64,
        spend: vc,
        spend_low: vc - hc,
        spend_high: vc + hc,
    })
}
