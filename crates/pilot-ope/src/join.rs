//! Joins the router's decisions with their settlements and feedback by request id.

use std::collections::HashMap;

use pilot_router::{Candidate, Event, Exploration, Record, Status, Versions};

use crate::{OpeError, Result};

/// One logged decision with its outcome: what the evaluation reads.
#[derive(Clone, Debug, PartialEq)]
pub struct Logged {
    /// Position of the decision in the log.
    pub seq: u64,
    /// The caller's request id.
    pub request: u64,
    /// The caller's time of the decision.
    pub at: u64,
    /// The policy context the decision was made on.
    pub context: Vec<f32>,
    /// One entry per arm of the pool at the time (status, logged probability, estimated cost).
    pub arms: Vec<Candidate>,
    /// The LLM called.
    pub chosen: usize,
    /// μ(chosen | context, candidates): the logging policy's probability of that call.
    pub propensity: f64,
    /// How the logging router drew.
    pub draw: Exploration,
    /// The real cost, when the call was settled.
    pub cost: Option<f64>,
    /// The reward (`None` until feedback arrives; such decisions are not evaluated).
    pub reward: Option<f32>,
    /// Index into [`Log::versions`] of the versions in force (`None` before any).
    pub versions: Option<usize>,
}

impl Logged {
    /// Whether arm `a` was in the candidate set (it fit the budget and was enabled).
    pub fn is_candidate(&self, a: usize) -> bool {
        self.arms
            .get(a)
            .is_some_and(|c| matches!(c.status, Status::Chosen | Status::Candidate))
    }

    /// The cost of the call actually made: the settled one, else its estimate.
    pub fn chosen_cost(&self) -> f64 {
        self.cost
            .unwrap_or_else(|| self.arms.get(self.chosen).map_or(0.0, |c| c.cost))
    }
}

/// What the join kept and left out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JoinCounts {
    /// Decision events read.
    pub decisions: usize,
    /// Decisions where no LLM fit the budget (nothing to evaluate).
    pub unserved: usize,
    /// Decisions whose call failed and was released (no outcome).
    pub released: usize,
    /// Decisions never given a reward (expired, or the log ends first).
    pub no_reward: usize,
    /// Rewarded decisions never settled (their spend uses the estimated cost).
    pub unsettled: usize,
    /// Settlements or feedback naming no open decision.
    pub orphans: usize,
}

/// A joined log.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Log {
    /// Rewarded decisions, in log order.
    pub decisions: Vec<Logged>,
    /// Every `Versions` event, in order.
    pub versions: Vec<Versions>,
    /// Names of the LLMs added while running (`ArmAdded`), in order: they take the indices after
    /// the starting pool's. The starting pool's names are not in the log.
    pub added_arms: Vec<String>,
    /// Pool size at the first decision, before any later `ArmAdded`.
    pub first_pool: usize,
    /// What was left out.
    pub counts: JoinCounts,
}

/// Joins records (as `Router::drain_events` returns them, or read back by [`read_log`]).
///
/// # Errors
/// [`OpeError::Log`] for a decision that contradicts itself (chosen arm out of range or not
/// marked chosen, a propensity outside `(0, 1]`, a NaN context), naming its sequence number.
pub fn join(records: &[Record]) -> Result<Log> {
    let mut log = Log::default();
    let mut open: HashMap<u64, usize> = HashMap::new();
    let mut all: Vec<Logged> = Vec::new();
    let mut released = vec![];
    let mut added_before_first = 0usize;
    for r in records {
        match &r.event {
            Event::Versions(v) => log.versions.push(v.clone()),
            Event::ArmAdded { name, .. } => {
                log.added_arms.push(name.clone());
                if log.counts.decisions == 0 {
                    added_before_first += 1;
                }
            }
            Event::Decision(d) => {
                if log.counts.decisions == 0 {
                    log.first_pool = d.arms.len().saturating_sub(added_before_first);
                }
                log.counts.decisions += 1;
                let Some(chosen) = d.chosen else {
                    log.counts.unserved += 1;
                    continue;
                };
                let chosen = chosen as usize;
                let bad = |what: &str| {
                    OpeError::Log(format!(
                        "decision at seq {} (request {}): {what}",
                        r.seq, d.request
                    ))
                };
                if chosen >= d.arms.len() {
                    return Err(bad("chosen LLM out of range"));
                }
                if d.arms[chosen].status != Status::Chosen {
                    return Err(bad("the chosen LLM is not marked chosen"));
                }
                if !(d.propensity > 0.0 && d.propensity <= 1.0 + 1e-9) {
                    return Err(bad(&format!("propensity {} outside (0, 1]", d.propensity)));
                }
                if d.context.iter().any(|v| !v.is_finite()) {
                    return Err(bad("non-finite context value"));
                }
                if d.arms
                    .iter()
                    .any(|c| !(c.probability >= 0.0) || !c.cost.is_finite())
                {
                    return Err(bad(
                        "an arm has a negative/NaN probability or a non-finite cost",
                    ));
                }
                open.insert(d.request, all.len());
                all.push(Logged {
                    seq: r.seq,
                    request: d.request,
                    at: r.at,
                    context: d.context.clone(),
                    arms: d.arms.clone(),
                    chosen,
                    propensity: d.propensity.min(1.0),
                    draw: d.draw,
                    cost: None,
                    reward: None,
                    versions: log.versions.len().checked_sub(1),
                });
                released.push(false);
            }
            Event::Settle { request, cost, .. } => match open.get(request) {
                Some(&i) => all[i].cost = Some(*cost),
                None => log.counts.orphans += 1,
            },
            Event::Feedback {
                request, reward, ..
            } => match open.get(request) {
                Some(&i) => all[i].reward = Some(*reward),
                None => log.counts.orphans += 1,
            },
            Event::Release { request } => {
                if let Some(i) = open.remove(request) {
                    released[i] = true;
                }
            }
            Event::Expire { request, .. } => {
                open.remove(request);
            }
            Event::ArmEnabled { .. }
            | Event::PriceChanged { .. }
            | Event::BudgetChanged { .. }
            | Event::NewPeriod { .. } => {}
        }
    }
    for (d, gone) in all.into_iter().zip(released) {
        if gone {
            log.counts.released += 1;
        } else if d.reward.is_none() {
            log.counts.no_reward += 1;
        } else {
            if d.cost.is_none() {
                log.counts.unsettled += 1;
            }
            log.decisions.push(d);
        }
    }
    Ok(log)
}

/// Reads JSON lines written with `pilot_router::log::to_line` (sequence numbers from the first
/// line's) and joins them.
///
/// # Errors
/// [`OpeError::Log`] for a damaged log (with the line and byte where it breaks) or as [`join`].
pub fn read_log(bytes: &[u8]) -> Result<Log> {
    let first_seq = first_seq(bytes);
    let (records, damage) = pilot_router::log::read(bytes, first_seq);
    if let Some(d) = damage {
        return Err(OpeError::Log(format!(
            "{d} ({} records before it are readable; cut the log there to evaluate them)",
            records.len()
        )));
    }
    join(&records)
}

/// The `seq` of the first line (a log may start after a snapshot), 0 when unreadable (the
/// reader then reports the damage).
fn first_seq(bytes: &[u8]) -> u64 {
    let end = bytes
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(bytes.len());
    serde_json::from_slice::<Record>(&bytes[..end]).map_or(0, |r| r.seq)
}
