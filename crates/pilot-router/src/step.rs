//! The decision step without an allocator: score → budget filter → choose (with exploration and
//! its propensity) → hold. The [`Router`](crate::Router) wraps it with requests, arms and events;
//! firmware calls it directly on stack buffers.

use pilot_budget::{Fit, Guard};
use pilot_core::{
    ArmId, ArmScore, CostPolicy, Decision, Error, ErrorKind, Policy, Result, RngCore,
};

/// How the final arm is drawn from the candidates that survived the budget filter.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "alloc", derive(serde::Serialize, serde::Deserialize))]
pub enum Exploration {
    /// The guarded cost policy's choice, always: propensity 1.
    Argmax,
    /// With probability `1 − ε` the guarded choice, else a uniform candidate.
    EpsilonMix {
        /// ε in `[0, 1]`.
        epsilon: f64,
    },
    /// A candidate with probability ∝ `exp(score / temperature)` (the policy's ranking score).
    Softmax {
        /// Temperature, `> 0`.
        temperature: f64,
    },
}

impl Exploration {
    /// Checks the parameter.
    ///
    /// # Errors
    /// [`InvalidParameter`](ErrorKind::InvalidParameter) for ε outside `[0, 1]` or a
    /// temperature that is not finite and positive.
    pub fn check(self) -> Result<Self> {
        match self {
            Self::Argmax => {}
            Self::EpsilonMix { epsilon } => {
                if !(0.0..=1.0).contains(&epsilon) {
                    return Err(Error::invalid_parameter(
                        "Exploration: epsilon (0..=1)",
                        epsilon,
                    ));
                }
            }
            Self::Softmax { temperature } => {
                if !(temperature > 0.0) || !temperature.is_finite() {
                    return Err(Error::invalid_parameter(
                        "Exploration: temperature (finite, > 0)",
                        temperature,
                    ));
                }
            }
        }
        Ok(self)
    }
}

/// Why an arm was or was not called, per arm of one decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "alloc", derive(serde::Serialize, serde::Deserialize))]
pub enum Status {
    /// Called.
    Chosen,
    /// In the candidate set (it fits the budget) but not drawn.
    #[default]
    Candidate,
    /// Its worst-case cost does not fit in what is left (after what is kept for later calls).
    OverBudget,
    /// Disabled by an operator.
    Disabled,
}

/// Caller storage for one step: `K` entries each.
pub struct StepScratch<'a> {
    /// The policy's scores.
    pub scores: &'a mut [ArmScore<f32>],
    /// The same, widened for the cost policy.
    pub wide: &'a mut [ArmScore<f64>],
    /// Estimated costs as shown to the cost policy.
    pub shown: &'a mut [f64],
    /// Per-arm probability of being drawn (0 outside the candidate set).
    pub probability: &'a mut [f64],
    /// Per-arm status.
    pub status: &'a mut [Status],
}

/// The inputs of one step, `K` entries each.
#[derive(Clone, Copy)]
pub struct StepInput<'a> {
    /// The policy context (already projected).
    pub context: &'a [f32],
    /// Estimated cost of each arm (currency).
    pub estimate: &'a [f64],
    /// Worst-case cost of each arm (units of the guard).
    pub worst: &'a [u64],
    /// Arms that must not be called (disabled).
    pub excluded: &'a [bool],
}

/// What one step decided.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Step {
    /// The arm called, or `None` when no arm fits the budget.
    pub arm: Option<ArmId>,
    /// The cost policy's own proposal.
    pub proposed: Decision,
    /// The guarded choice before exploration.
    pub guarded: Option<ArmId>,
    /// Whether the guard replaced the cost policy's proposal.
    pub overridden: bool,
    /// Units held for the call (0 without one).
    pub hold: u64,
    /// Probability that this arm was drawn, given the context and candidate set (1 for the
    /// deterministic argmax and for "no arm").
    pub propensity: f64,
    /// Size of the candidate set.
    pub candidates: usize,
}

/// A uniform draw in `[0, 1)` with 53 random bits.
fn uniform(rng: &mut dyn RngCore) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Runs one decision: the policy scores, the guard filters and proposes, exploration draws,
/// and the drawn arm's worst case is held in the guard's ledger.
///
/// # Errors
/// [`DimensionMismatch`](ErrorKind::DimensionMismatch) when the slices do not have one entry
/// per arm; the policy's or cost policy's error. On error nothing is held.
pub fn decide<P, C>(
    policy: &mut P,
    guard: &mut Guard<C, f64>,
    input: StepInput<'_>,
    exploration: Exploration,
    rng: &mut dyn RngCore,
    scratch: StepScratch<'_>,
) -> Result<Step>
where
    P: Policy<f32> + ?Sized,
    C: CostPolicy<f64>,
{
    let k = policy.arm_count();
    for (what, len) in [
        ("decide: estimate (one per arm)", input.estimate.len()),
        ("decide: worst (one per arm)", input.worst.len()),
        ("decide: excluded (one per arm)", input.excluded.len()),
        ("decide: scratch scores", scratch.scores.len()),
        ("decide: scratch wide", scratch.wide.len()),
        ("decide: scratch shown", scratch.shown.len()),
        ("decide: scratch probability", scratch.probability.len()),
        ("decide: scratch status", scratch.status.len()),
    ] {
        if len != k {
            return Err(Error::dimension(what, k, len));
        }
    }
    policy.select(input.context, rng, scratch.scores)?;
    for (w, s) in scratch.wide.iter_mut().zip(scratch.scores.iter()) {
        *w = ArmScore {
            estimate: f64::from(s.estimate),
            width: f64::from(s.width),
            score: f64::from(s.score),
        };
    }
    scratch.shown.copy_from_slice(input.estimate);
    let g = guard.choose(scratch.wide, scratch.shown, input.worst, input.excluded)?;
    let level = g
        .arm
        .map(|a| guard.fit(input.worst[a.index()]))
        .unwrap_or(Fit::Ordinary);
    let mut candidates = 0usize;
    for a in 0..k {
        let fit = guard.fit(input.worst[a]);
        let member = match level {
            Fit::Ordinary => fit == Fit::Ordinary,
            _ => matches!(fit, Fit::Ordinary | Fit::Reserve),
        };
        scratch.status[a] = if input.excluded[a] {
            Status::Disabled
        } else if member && g.arm.is_some() {
            candidates += 1;
            Status::Candidate
        } else {
            Status::OverBudget
        };
        scratch.probability[a] = 0.0;
    }
    let Some(guarded) = g.arm else {
        return Ok(Step {
            arm: None,
            proposed: g.proposed,
            guarded: None,
            overridden: g.overridden,
            hold: 0,
            propensity: 1.0,
            candidates: 0,
        });
    };
    let chosen = match exploration {
        Exploration::Argmax => {
            scratch.probability[guarded.index()] = 1.0;
            guarded.index()
        }
        Exploration::EpsilonMix { epsilon } => {
            let share = epsilon / candidates as f64;
            for (p, s) in scratch.probability.iter_mut().zip(scratch.status.iter()) {
                if *s == Status::Candidate {
                    *p = share;
                }
            }
            scratch.probability[guarded.index()] += 1.0 - epsilon;
            draw(scratch.probability, rng, guarded.index())
        }
        Exploration::Softmax { temperature } => {
            let top = scratch
                .wide
                .iter()
                .zip(scratch.status.iter())
                .filter(|(_, s)| **s == Status::Candidate)
                .map(|(w, _)| w.score)
                .fold(f64::NEG_INFINITY, f64::max);
            let mut total = 0.0;
            for a in 0..k {
                if scratch.status[a] == Status::Candidate {
                    let p = libm::exp((scratch.wide[a].score - top) / temperature);
                    scratch.probability[a] = p;
                    total += p;
                }
            }
            if !(total > 0.0) || !total.is_finite() {
                return Err(Error::new(
                    ErrorKind::NonFinite,
                    "decide: softmax weights (scores are NaN)",
                ));
            }
            for p in scratch.probability.iter_mut() {
                *p /= total;
            }
            draw(scratch.probability, rng, guarded.index())
        }
    };
    let hold = input.worst[chosen];
    guard.hold(hold)?;
    scratch.status[chosen] = Status::Chosen;
    Ok(Step {
        arm: Some(ArmId::new(chosen)),
        proposed: g.proposed,
        guarded: Some(guarded),
        overridden: g.overridden,
        hold,
        propensity: scratch.probability[chosen],
        candidates,
    })
}

/// Draws an index with the given probabilities (rounding leftovers go to `fallback`).
fn draw(probability: &[f64], rng: &mut dyn RngCore, fallback: usize) -> usize {
    let u = uniform(rng);
    let mut acc = 0.0;
    for (a, &p) in probability.iter().enumerate() {
        if p > 0.0 {
            acc += p;
            if u < acc {
                return a;
            }
        }
    }
    fallback
}
