//! The line-up: one constructor per policy family at given settings, shared by the experiment
//! grid, the tuner and `pilot replay`, so a name means the same policy everywhere.

use pilot_bandit::{
    ArmTrust, EpsilonGreedy, EpsilonGreedyVec, LinTs, LinTsVec, LinUcb, LinUcbVec, PriorTrust,
    TrustParams, UniformRandom,
};
use pilot_core::ArmId;
use pilot_router::RoutingPolicy;

use crate::hyper::{Family, Hyper};
use crate::{Frozen, ReadOut, Result, SimError};

fn core(what: &'static str) -> impl Fn(pilot_core::Error) -> SimError {
    move |e| SimError::core(what, e)
}

/// A fresh policy of `family` for `arms` LLMs and contexts of dimension `dim`, rewards in
/// [0, 1], at settings `h`. PILOT and the prior alone start at `priors` (one vector of dimension
/// `dim` per arm); the kNN read-out takes `dim = arms`.
///
/// # Errors
/// [`SimError::Invalid`] when PILOT or the prior alone gets no priors; [`SimError::Core`]
/// naming the family for bad settings or shapes.
pub fn make_policy(
    family: Family,
    h: &Hyper,
    arms: usize,
    dim: usize,
    priors: Option<&[Vec<f32>]>,
) -> Result<Box<dyn RoutingPolicy>> {
    make_policy_fresh(family, h, arms, dim, priors, &[])
}

/// [`make_policy`], where the arms listed in `fresh` have a stand-in prior vector (an LLM the
/// prior has no data for, started at the mean of the others): PILOT with learned trust
/// ([`Hyper::trust`]) starts them at a small prior weight so they are explored; every other
/// policy ignores `fresh`.
///
/// # Errors
/// As [`make_policy`].
pub fn make_policy_fresh(
    family: Family,
    h: &Hyper,
    arms: usize,
    dim: usize,
    priors: Option<&[Vec<f32>]>,
    fresh: &[usize],
) -> Result<Box<dyn RoutingPolicy>> {
    let pool: Vec<usize> = (0..arms).collect();
    make_policy_over(family, h, &pool, dim, priors, fresh)
}

/// [`make_policy_fresh`] for a pool that starts with some LLMs of the problem: arm `a` is LLM
/// `pool[a]` (its prior vector `priors[pool[a]]`, its kNN prediction `context[pool[a]]`); the
/// others join later through [`GrowPool::add_arm`](pilot_core::GrowPool::add_arm) (which
/// starts PILOT with learned trust's new arm as a stand-in). `fresh` lists LLMs of the
/// problem; those not in `pool` are ignored.
///
/// # Errors
/// As [`make_policy_fresh`], plus an LLM of `pool` without a prior vector.
pub fn make_policy_over(
    family: Family,
    h: &Hyper,
    pool: &[usize],
    dim: usize,
    priors: Option<&[Vec<f32>]>,
    fresh: &[usize],
) -> Result<Box<dyn RoutingPolicy>> {
    let arms = pool.len();
    let priors: Option<Vec<Vec<f32>>> = match priors {
        Some(p) => Some(
            pool.iter()
                .map(|&llm| {
                    p.get(llm).cloned().ok_or_else(|| {
                        SimError::invalid(format!(
                            "policy '{}': no prior vector for LLM {llm} of {}",
                            family.name(),
                            p.len()
                        ))
                    })
                })
                .collect::<Result<_>>()?,
        ),
        None => None,
    };
    let priors = priors.as_deref();
    let fresh: Vec<usize> = pool
        .iter()
        .enumerate()
        .filter(|(_, llm)| fresh.contains(llm))
        .map(|(a, _)| a)
        .collect();
    let with_priors_in = |alpha: f32,
                          lambda: f32,
                          discount: f32,
                          range: (f32, f32),
                          what: &'static str|
     -> Result<LinUcbVec<f32>> {
        let priors = priors.ok_or_else(|| {
            SimError::invalid(format!(
                "policy '{}' needs a prior but none was given",
                family.name()
            ))
        })?;
        let params = LinUcb::params()
            .alpha(alpha)
            .lambda(lambda)
            .discount(discount)
            .reward_range(range.0, range.1)
            .check()
            .map_err(core(what))?;
        let refs: Vec<Option<&[f32]>> = priors.iter().map(|p| Some(p.as_slice())).collect();
        LinUcbVec::with_priors(params, &refs, dim).map_err(core(what))
    };
    let with_priors = |alpha: f32, lambda: f32, discount: f32, what: &'static str| {
        with_priors_in(alpha, lambda, discount, (0.0, 1.0), what)
    };
    Ok(match family {
        Family::Pilot if h.trust => {
            // With a shared level the arms learn rewards less it, which may leave [0, 1].
            let range = if h.shared_level {
                (-1.0, 2.0)
            } else {
                (0.0, 1.0)
            };
            let inner = with_priors_in(h.alpha, h.lambda, h.discount, range, "PILOT with trust")?;
            let slots = vec![ArmTrust::start(0.5); pilot_core::Policy::arm_count(&inner)];
            let mut p = PriorTrust::new(inner, slots, TrustParams::default())
                .map_err(core("PILOT with trust"))?;
            for &a in &fresh {
                p.mark_fresh(ArmId::new(a))
                    .map_err(core("PILOT with trust: a new LLM"))?;
            }
            if h.shared_level {
                Box::new(crate::reference::SharedLevel::new(p))
            } else {
                Box::new(p)
            }
        }
        Family::Pilot if h.shared_level => {
            let inner = with_priors_in(h.alpha, h.lambda, h.discount, (-1.0, 2.0), "PILOT")?;
            Box::new(crate::reference::SharedLevel::new(inner))
        }
        Family::Pilot => Box::new(with_priors(h.alpha, h.lambda, h.discount, "PILOT")?),
        // λ and α do not matter: the policy never updates and scores its prior mean.
        Family::PriorOnly => Box::new(Frozen::new(with_priors(0.0, 1.0, 1.0, "prior-only")?)),
        Family::LinUcb => {
            let params = LinUcb::params()
                .alpha(h.alpha)
                .lambda(h.lambda)
                .reward_range(0.0, 1.0)
                .check()
                .map_err(core("LinUCB hyperparameters"))?;
            Box::new(LinUcbVec::new(params, arms, dim).map_err(core("LinUCB"))?)
        }
        Family::LinTs => {
            let params = LinTs::params()
                .scale(h.ts_scale)
                .lambda(h.lambda)
                .reward_range(0.0, 1.0)
                .check()
                .map_err(core("LinTS hyperparameters"))?;
            Box::new(LinTsVec::new(params, arms, dim).map_err(core("LinTS"))?)
        }
        Family::EpsilonGreedy => {
            let params = EpsilonGreedy::params()
                .epsilon(h.epsilon)
                .lambda(h.lambda)
                .reward_range(0.0, 1.0)
                .check()
                .map_err(core("ε-greedy hyperparameters"))?;
            Box::new(EpsilonGreedyVec::new(params, arms, dim).map_err(core("ε-greedy"))?)
        }
        Family::Random => Box::new(UniformRandom::new(arms, dim).map_err(core("random"))?),
        Family::KnnFullInfo => Box::new(ReadOut::over(pool, dim).map_err(core("kNN read-out"))?),
    })
}
