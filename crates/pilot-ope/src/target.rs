//! The target policy: its probabilities on a logged context under the logged candidate set.

use pilot_core::{ArmId, ArmScore, Policy, Reward, RngCore};
use pilot_router::{Candidate, Exploration};

use crate::{OpeError, Result};

/// A policy being evaluated.
pub trait Target {
    /// Writes π(a | context, candidates) for every arm into `out` (`out.len() == arms.len()`):
    /// 0 outside the candidate set (status `Chosen` or `Candidate`), summing to 1 over it.
    ///
    /// # Errors
    /// [`OpeError::Target`] when the target cannot score this context (wrong dimension, more
    /// arms than it knows, non-finite scores).
    fn probabilities(&mut self, context: &[f32], arms: &[Candidate], out: &mut [f64])
    -> Result<()>;

    /// Learns from `reward` for `arm` on `context` (the replay method calls it on accepted
    /// events; a frozen target ignores it).
    ///
    /// # Errors
    /// The policy's error.
    fn learn(&mut self, arm: usize, context: &[f32], reward: f32) -> Result<()>;

    /// Whether [`learn`](Self::learn) changes the target.
    fn learns(&self) -> bool;
}

/// A `pilot_core::Policy` with an exploration rule, restricted to the candidate set.
///
/// Its ranking value for arm `a` is the policy's score minus `cost_weight` × the candidate's
/// estimated cost. Argmax splits ties evenly (a LinUCB at its start state scores every arm the
/// same: uniform); ε-mix puts `1 − ε` on the argmax and `ε` evenly on the candidates; softmax is
/// ∝ `exp(value / temperature)`. The policy's scores must be deterministic (a Thompson sampler's
/// are not: its propensities are unknown, and it is refused).
pub struct PolicyTarget<P> {
    policy: P,
    exploration: Exploration,
    cost_weight: f64,
    learning: bool,
    scores: Vec<ArmScore<f32>>,
    again: Vec<ArmScore<f32>>,
    rng: SplitMix,
    checked: bool,
}

impl<P: Policy<f32>> PolicyTarget<P> {
    /// A frozen target (it never learns).
    ///
    /// # Errors
    /// [`OpeError::Config`] for a bad exploration parameter or cost weight.
    pub fn frozen(policy: P, exploration: Exploration) -> Result<Self> {
        let exploration = exploration
            .check()
            .map_err(|e| OpeError::Config(format!("target exploration: {e}")))?;
        let k = policy.arm_count();
        Ok(Self {
            policy,
            exploration,
            cost_weight: 0.0,
            learning: false,
            scores: vec![ArmScore::default(); k],
            again: vec![ArmScore::default(); k],
            rng: SplitMix(0x5EED),
            checked: false,
        })
    }

    /// A target that learns from what the replay method shows it.
    ///
    /// # Errors
    /// As [`frozen`](Self::frozen).
    pub fn learning(policy: P, exploration: Exploration) -> Result<Self> {
        let mut t = Self::frozen(policy, exploration)?;
        t.learning = true;
        Ok(t)
    }

    /// Ranks by score − `weight` × estimated cost (currency), a fixed price on spend.
    ///
    /// # Errors
    /// [`OpeError::Config`] for a negative or non-finite weight.
    pub fn with_cost_weight(mut self, weight: f64) -> Result<Self> {
        if !(weight >= 0.0 && weight.is_finite()) {
            return Err(OpeError::Config(format!(
                "cost weight {weight}: expected a finite value ≥ 0"
            )));
        }
        self.cost_weight = weight;
        Ok(self)
    }

    /// The wrapped policy.
    pub fn policy(&self) -> &P {
        &self.policy
    }

    /// The wrapped policy, to warm it up before evaluating it frozen.
    pub fn policy_mut(&mut self) -> &mut P {
        &mut self.policy
    }

    fn score(&mut self, context: &[f32], k: usize) -> Result<()> {
        let known = self.policy.arm_count();
        if k > known {
            return Err(OpeError::Target(format!(
                "the logged decision has {k} LLMs but the target knows {known}"
            )));
        }
        if context.len() != self.policy.dim() {
            return Err(OpeError::Target(format!(
                "the logged context has dimension {} but the target reads {} (the log was made \
                 with another prior or projection)",
                context.len(),
                self.policy.dim()
            )));
        }
        self.scores.resize(known, ArmScore::default());
        self.policy
            .select(context, &mut self.rng, &mut self.scores)
            .map_err(|e| OpeError::Target(format!("select: {e}")))?;
        if !self.checked {
            self.again.resize(known, ArmScore::default());
            let mut other = SplitMix(0xD1FF_E4E7);
            self.policy
                .select(context, &mut other, &mut self.again)
                .map_err(|e| OpeError::Target(format!("select: {e}")))?;
            if self.again != self.scores {
                return Err(OpeError::Target(
                    "its scores depend on its random draws (a sampling policy such as LinTS): \
                     its probabilities on a context are unknown, so it cannot be evaluated"
                        .into(),
                ));
            }
            self.checked = true;
        }
        Ok(())
    }
}

impl<P: Policy<f32>> Target for PolicyTarget<P> {
    fn probabilities(
        &mut self,
        context: &[f32],
        arms: &[Candidate],
        out: &mut [f64],
    ) -> Result<()> {
        let k = arms.len();
        if out.len() != k {
            return Err(OpeError::Target(format!(
                "probabilities: {} slots for {k} LLMs",
                out.len()
            )));
        }
        self.score(context, k)?;
        let member = |c: &Candidate| {
            matches!(
                c.status,
                pilot_router::Status::Chosen | pilot_router::Status::Candidate
            )
        };
        let value = |a: usize| f64::from(self.scores[a].score) - self.cost_weight * arms[a].cost;
        let n = arms.iter().filter(|c| member(c)).count();
        out.fill(0.0);
        if n == 0 {
            return Err(OpeError::Target("a decision with no candidate".into()));
        }
        let mut top = f64::NEG_INFINITY;
        for a in (0..k).filter(|&a| member(&arms[a])) {
            let v = value(a);
            if v.is_nan() {
                return Err(OpeError::Target(format!("NaN score for LLM {a}")));
            }
            top = top.max(v);
        }
        match self.exploration {
            Exploration::Argmax | Exploration::EpsilonMix { .. } => {
                let eps = match self.exploration {
                    Exploration::EpsilonMix { epsilon } => epsilon,
                    _ => 0.0,
                };
                let best: Vec<usize> = (0..k)
                    .filter(|&a| member(&arms[a]) && value(a) == top)
                    .collect();
                for a in (0..k).filter(|&a| member(&arms[a])) {
                    out[a] = eps / n as f64;
                }
                for &a in &best {
                    out[a] += (1.0 - eps) / best.len() as f64;
                }
            }
            Exploration::Softmax { temperature } => {
                let mut total = 0.0;
                for a in (0..k).filter(|&a| member(&arms[a])) {
                    let p = ((value(a) - top) / temperature).exp();
                    out[a] = p;
                    total += p;
                }
                if !(total > 0.0 && total.is_finite()) {
                    return Err(OpeError::Target("softmax weights are not finite".into()));
                }
                for p in out.iter_mut() {
                    *p /= total;
                }
            }
        }
        Ok(())
    }

    fn learn(&mut self, arm: usize, context: &[f32], reward: f32) -> Result<()> {
        if !self.learning {
            return Ok(());
        }
        let r = Reward::new(reward).map_err(|e| OpeError::Target(format!("reward: {e}")))?;
        self.policy
            .update(ArmId::new(arm), context, r)
            .map_err(|e| OpeError::Target(format!("update: {e}")))
    }

    fn learns(&self) -> bool {
        self.learning
    }
}

/// The target's own random source for `select` (deterministic policies never read it).
struct SplitMix(u64);

impl RngCore for SplitMix {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> core::result::Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}
