//! PILOT that learns how far to trust its prior: a per-arm prior weight λ_k re-estimated from
//! how well the prior predicts that arm's observed rewards.
//!
//! PILOT starts every arm's ridge regression at its prior θ₀ with one weight λ (A = λI,
//! b = λθ₀). A λ right for a prior fitted on the same traffic holds a wrong prior (another
//! domain, a stand-in vector for a new LLM, an LLM that changed) for a long time. Here each arm
//! carries its own weight λ_k = λ / 2^level_k, chosen by a **two-model comparison on the
//! residuals**, prequentially (each reward is predicted before it is learned):
//!
//! - model P, "the prior predicts this arm": prediction θ₀·x;
//! - model M, "the arm's own running mean": the mean of its rewards so far (no context, no
//!   prior).
//!
//! From the second reward of an arm on, the squared errors of both are summed
//! (S_P = Σ (r − θ₀·x)², S_M = Σ (r − r̄)², over m compared rewards). With Gaussian errors of
//! unknown variance (profiled out), the log likelihood ratio of P against M is
//! (m/2)·ln(S_M / S_P); with prior odds π/(1 − π) the posterior probability of P is
//! w = σ(logit π + (m/2)·ln(S_M / S_P)). The prior's weight is λ·w, rounded down to a power of
//! two (level = ⌊−log₂ w⌋, at most [`TrustParams::max_level`]) so it changes rarely; each change
//! is an exact shift A ← A + δI, b ← b + δθ₀ of the arm's ridge state
//! ([`LinUcb::shift_prior_weight`]), which keeps its data.
//!
//! A prior that predicts an arm better than the arm's own average keeps its full weight (w → 1,
//! level 0: PILOT unchanged); one that predicts it worse loses it within a few dozen rewards,
//! and the arm then learns like plain LinUCB from a weak start at θ₀ (a wide confidence width,
//! so UCB explores it). An arm whose prior is only a stand-in (a new LLM started at the mean of
//! the others: [`PriorTrust::mark_fresh`], and every arm added through
//! [`GrowPool::add_arm`](pilot_core::GrowPool::add_arm)) starts at the small prior probability
//! [`TrustParams::fresh`], so at a small weight, and earns trust only by predicting well.
//!
//! The state is sums per arm ([`ArmTrust`]) plus the ridge state: folding the same events gives
//! bit-identical state, and no allocator is needed (the trust storage `T` is any
//! `AsMut<[ArmTrust<F>]>`: an array for a fixed pool, a `Vec` for one that grows).
//! Not combined with the ridge discount γ < 1 (whose prior refresh uses the nominal λ): the
//! constructor refuses it.

use pilot_core::{ArmId, ArmScore, Error, ErrorKind, Policy, Real, Result, Reward, RngCore};

use crate::kernel;
use crate::policies::LinUcb;
use crate::storage::LinearArms;

/// The trust statistics of one arm: sums over its observed rewards.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ArmTrust<F> {
    /// Rewards learned.
    pub count: u64,
    /// Σ r.
    pub reward_sum: F,
    /// Σ (r − θ₀·x)² over the compared rewards (every one after the first).
    pub prior_sq: F,
    /// Σ (r − r̄)² over the same rewards, r̄ the mean of the rewards before each.
    pub mean_sq: F,
    /// logit of the prior probability that the prior predicts this arm.
    pub start_log_odds: F,
    /// The arm's prior weight is λ / 2^level.
    pub level: u32,
}

impl<F: Real> ArmTrust<F> {
    /// No rewards yet, prior probability `p` (in (0, 1)) that the prior predicts the arm.
    pub fn start(p: F) -> Self {
        Self {
            count: 0,
            reward_sum: F::ZERO,
            prior_sq: F::ZERO,
            mean_sq: F::ZERO,
            start_log_odds: (p / (F::ONE - p)).ln(),
            level: 0,
        }
    }
}

/// Settings of the trust rule.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrustParams<F> {
    /// Prior probability that an arm's own prior vector predicts it (default 0.999: weight λ
    /// until the rewards say otherwise, about 7 nats of evidence against it).
    pub known: F,
    /// The same for an arm whose start is a stand-in (default 1/4096: the smallest weight,
    /// λ / 2^max_level, at the start).
    pub fresh: F,
    /// Largest level: the weight never goes below λ / 2^max_level (default 8: λ = 64 then
    /// floors at 1/4).
    pub max_level: u32,
}

impl<F: Real> Default for TrustParams<F> {
    fn default() -> Self {
        Self {
            known: F::from_f64(0.999),
            fresh: F::from_f64(1.0 / 4096.0),
            max_level: 8,
        }
    }
}

impl<F: Real> TrustParams<F> {
    /// Checks the settings.
    ///
    /// # Errors
    /// [`OutOfRange`](ErrorKind::OutOfRange) for a probability outside (0, 1) or a level
    /// above 30.
    pub fn check(self) -> Result<Self> {
        for (what, p) in [
            ("trust: known probability", self.known),
            ("trust: fresh probability", self.fresh),
        ] {
            if !(p > F::ZERO && p < F::ONE) {
                return Err(Error::new(ErrorKind::OutOfRange, what)
                    .with_detail(pilot_core::Detail::Value(p.to_f64())));
            }
        }
        if self.max_level > 30 {
            return Err(
                Error::new(ErrorKind::OutOfRange, "trust: max level (at most 30)")
                    .with_detail(pilot_core::Detail::Value(f64::from(self.max_level))),
            );
        }
        Ok(self)
    }

    /// The level the statistics `t` call for.
    pub fn level(&self, t: &ArmTrust<F>) -> u32 {
        let m = t.count.saturating_sub(1) as f64;
        // A floor on both sums keeps the ratio finite for a prior or a mean that is exact.
        let eps = 1e-6 * m.max(1.0);
        let ratio = (t.mean_sq.to_f64() + eps) / (t.prior_sq.to_f64() + eps);
        let log_odds = t.start_log_odds.to_f64() + 0.5 * m * libm::log(ratio);
        // −log₂ w = ln(1 + e^(−L)) / ln 2, computed without overflow.
        let softplus = if -log_odds > 30.0 {
            -log_odds
        } else {
            libm::log1p(libm::exp(-log_odds))
        };
        let x = softplus / core::f64::consts::LN_2 + 1e-9;
        if !(x < f64::from(self.max_level)) {
            self.max_level
        } else if x > 0.0 {
            x as u32
        } else {
            0
        }
    }
}

/// PILOT with a learned per-arm prior weight (see the module docs).
#[derive(Clone, Debug)]
pub struct PriorTrust<S, T, F: Real = f32> {
    inner: LinUcb<S, F>,
    trust: T,
    params: TrustParams<F>,
}

/// [`PriorTrust`] with `K` arms of dimension `D` inline: no allocator.
pub type PriorTrustFixed<const K: usize, const D: usize, F = f32> =
    PriorTrust<crate::storage::FixedArms<K, D, F>, [ArmTrust<F>; K], F>;
/// [`PriorTrust`] whose pool can grow.
#[cfg(feature = "alloc")]
pub type PriorTrustVec<F = f32> =
    PriorTrust<crate::storage::VecArms<F>, alloc::vec::Vec<ArmTrust<F>>, F>;

fn weight<F: Real>(lambda: F, level: u32) -> F {
    lambda / F::from_f64(libm::ldexp(1.0, level.min(1000) as i32))
}

impl<S: LinearArms<F>, T: AsRef<[ArmTrust<F>]> + AsMut<[ArmTrust<F>]>, F: Real>
    PriorTrust<S, T, F>
{
    /// Wraps a PILOT policy (a [`LinUcb`] started at its priors, no discount) with trust
    /// storage `trust` of one entry per arm; every arm starts as *known*
    /// ([`TrustParams::known`]), at weight λ.
    ///
    /// # Errors
    /// [`DimensionMismatch`](ErrorKind::DimensionMismatch) when `trust` does not have one entry
    /// per arm, [`Unsupported`](ErrorKind::Unsupported) for a policy with a discount < 1, the
    /// settings' errors.
    pub fn new(inner: LinUcb<S, F>, mut trust: T, params: TrustParams<F>) -> Result<Self> {
        let params = params.check()?;
        if inner.config().ridge().discount() < F::ONE {
            return Err(Error::new(
                ErrorKind::Unsupported,
                "prior trust with a ridge discount < 1 (its prior refresh uses the nominal λ)",
            ));
        }
        let arms = inner.arm_count();
        let slots = trust.as_mut();
        if slots.len() != arms {
            return Err(Error::dimension("prior trust: entries", arms, slots.len()));
        }
        let start = ArmTrust::start(params.known);
        for slot in slots.iter_mut() {
            *slot = start;
        }
        let mut out = Self {
            inner,
            trust,
            params,
        };
        for i in 0..arms {
            out.apply_level(ArmId::new(i), out.params.level(&start))?;
        }
        Ok(out)
    }

    /// The wrapped policy (its ridge state holds each arm's current weight).
    pub fn inner(&self) -> &LinUcb<S, F> {
        &self.inner
    }

    /// The trust statistics of every arm.
    pub fn trust(&self) -> &[ArmTrust<F>] {
        self.trust.as_ref()
    }

    /// The settings.
    pub fn params(&self) -> &TrustParams<F> {
        &self.params
    }

    /// The current prior weight λ_k of `arm`.
    ///
    /// # Errors
    /// [`UnknownArm`](ErrorKind::UnknownArm).
    pub fn prior_weight(&self, arm: ArmId) -> Result<F> {
        let t = self.entry(arm)?;
        Ok(weight(self.inner.config().ridge().lambda(), t.level))
    }

    fn entry(&self, arm: ArmId) -> Result<ArmTrust<F>> {
        let list = self.trust.as_ref();
        list.get(arm.index()).copied().ok_or(Error::unknown_arm(
            "prior trust",
            arm.index(),
            list.len(),
        ))
    }

    /// Moves `arm` to `level` (shifting its ridge state); on error nothing changes.
    fn apply_level(&mut self, arm: ArmId, level: u32) -> Result<()> {
        let old = self.entry(arm)?.level;
        if old == level {
            return Ok(());
        }
        let lambda = self.inner.config().ridge().lambda();
        let delta = weight(lambda, level) - weight(lambda, old);
        self.inner.shift_prior_weight(arm, delta)?;
        if let Some(t) = self.trust.as_mut().get_mut(arm.index()) {
            t.level = level;
        }
        Ok(())
    }

    /// Declares `arm`'s prior a stand-in (a new LLM started at the mean of the others): its
    /// statistics restart at the prior probability [`TrustParams::fresh`], so its weight drops
    /// to what that calls for.
    ///
    /// # Errors
    /// [`UnknownArm`](ErrorKind::UnknownArm); the ridge shift's errors (nothing changes then).
    pub fn mark_fresh(&mut self, arm: ArmId) -> Result<()> {
        let old = self.entry(arm)?;
        let fresh = ArmTrust {
            level: old.level,
            ..ArmTrust::start(self.params.fresh)
        };
        let level = self.params.level(&fresh);
        self.apply_level(arm, level)?;
        if let Some(t) = self.trust.as_mut().get_mut(arm.index()) {
            *t = ArmTrust { level, ..fresh };
        }
        Ok(())
    }
}

impl<S: LinearArms<F>, T: AsRef<[ArmTrust<F>]> + AsMut<[ArmTrust<F>]>, F: Real> Policy<F>
    for PriorTrust<S, T, F>
{
    fn dim(&self) -> usize {
        self.inner.dim()
    }

    fn arm_count(&self) -> usize {
        self.inner.arm_count()
    }

    fn select(
        &mut self,
        context: &[F],
        rng: &mut dyn RngCore,
        scores: &mut [ArmScore<F>],
    ) -> Result<ArmId> {
        self.inner.select(context, rng, scores)
    }

    /// Learns the reward (as PILOT), then updates the arm's trust statistics and, when they
    /// call for another level, shifts its prior weight. An error of the learning step changes
    /// nothing; a refused shift (numerically impossible) leaves the arm at its old weight with
    /// the statistics kept, and the next reward tries again.
    fn update(&mut self, arm: ArmId, context: &[F], reward: Reward<F>) -> Result<()> {
        let t = self.entry(arm)?;
        self.inner.ridge().check_context(context)?;
        let predicted = kernel::dot(self.inner.ridge().prior(arm)?, context);
        let r = reward.get();
        let mut next = t;
        if t.count > 0 {
            let mean = t.reward_sum / F::from_f64(t.count as f64);
            let (ep, em) = (r - predicted, r - mean);
            next.prior_sq += ep * ep;
            next.mean_sq += em * em;
        }
        next.count = t.count.saturating_add(1);
        next.reward_sum += r;
        if !(next.prior_sq.is_finite() && next.mean_sq.is_finite() && next.reward_sum.is_finite()) {
            return Err(Error::non_finite(
                "prior trust: residual sums",
                next.prior_sq.to_f64(),
            ));
        }
        self.inner.update(arm, context, reward)?;
        if let Some(slot) = self.trust.as_mut().get_mut(arm.index()) {
            *slot = next;
        }
        let level = self.params.level(&next);
        // A refused shift keeps the old level (the state stays consistent).
        let _ = self.apply_level(arm, level);
        Ok(())
    }
}

/// Magic number of the trust section of a [`PriorTrust`] snapshot.
const TRUST_MAGIC: [u8; 4] = *b"PTRU";

/// Bytes of one arm's trust entry at most: count (u64 varint), four scalars, level (u32 varint).
const fn entry_max_len(scalar_bytes: usize) -> usize {
    crate::codec::VARINT_U64_MAX + 4 * scalar_bytes + crate::codec::VARINT_U32_MAX
}

/// Length of the sealed envelope at the start of `bytes`, from its header.
fn sealed_len(bytes: &[u8]) -> Result<usize> {
    let header = pilot_core::envelope::HEADER_LEN;
    let len = bytes
        .get(8..12)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(u32::from_le_bytes)
        .ok_or(Error::new(
            ErrorKind::Corrupt,
            "prior trust snapshot: truncated policy section",
        ))?;
    Ok(header.saturating_add(len as usize))
}

/// A snapshot is the wrapped PILOT's own snapshot (its ridge state, each arm at its current
/// weight) followed by the trust section: the settings and every arm's [`ArmTrust`]. A restore
/// checks the trust section first, then restores the policy (which checks and commits on its
/// own), then writes the trust entries: on error nothing changes. The arm count must match.
impl<S: LinearArms<F>, T: AsRef<[ArmTrust<F>]> + AsMut<[ArmTrust<F>]>, F: Real> pilot_core::Snapshot
    for PriorTrust<S, T, F>
where
    LinUcb<S, F>: pilot_core::Snapshot,
{
    fn snapshot_len(&self) -> usize {
        self.inner.snapshot_len()
            + pilot_core::envelope::HEADER_LEN
            + 1
            + 2 * F::BYTES
            + 2 * crate::codec::VARINT_U32_MAX
            + self.arm_count() * entry_max_len(F::BYTES)
    }

    fn save(&self, out: &mut [u8]) -> Result<usize> {
        let n = self.inner.save(out)?;
        let rest = out.get_mut(n..).ok_or(Error::new(
            ErrorKind::BufferTooSmall,
            "prior trust snapshot: buffer",
        ))?;
        let mut w = crate::codec::Writer::new(rest);
        w.put(&(F::BYTES as u8))?;
        w.real(self.params.known)?;
        w.real(self.params.fresh)?;
        w.put(&self.params.max_level)?;
        let list = self.trust.as_ref();
        w.put(&(list.len() as u32))?;
        for t in list {
            w.put(&t.count)?;
            w.real(t.reward_sum)?;
            w.real(t.prior_sq)?;
            w.real(t.mean_sq)?;
            w.real(t.start_log_odds)?;
            w.put(&t.level)?;
        }
        Ok(n + w.seal(TRUST_MAGIC)?)
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<()> {
        let split = sealed_len(bytes)?;
        let (policy, tail) = (
            bytes.get(..split).unwrap_or(bytes),
            bytes.get(split..).unwrap_or(&[]),
        );
        let read = |commit: Option<&mut [ArmTrust<F>]>| -> Result<TrustParams<F>> {
            let mut r = crate::codec::Reader::open(tail, TRUST_MAGIC)?;
            crate::codec::check_width::<F>(r.take::<u8>("trust snapshot: scalar width")?)?;
            let params = TrustParams {
                known: r.real("trust snapshot: known")?,
                fresh: r.real("trust snapshot: fresh")?,
                max_level: r.take("trust snapshot: max level")?,
            }
            .check()
            .map_err(|e| Error::new(ErrorKind::Corrupt, e.context()))?;
            let count = r.u32_as_usize("trust snapshot: arm count")?;
            let mut slots = commit;
            let expected = slots.as_ref().map_or(count, |s| s.len());
            if count != expected {
                return Err(Error::dimension(
                    "trust snapshot: arm count",
                    expected,
                    count,
                ));
            }
            for i in 0..count {
                let t = ArmTrust {
                    count: r.take("trust snapshot: count")?,
                    reward_sum: r.real("trust snapshot: reward sum")?,
                    prior_sq: r.real("trust snapshot: prior errors")?,
                    mean_sq: r.real("trust snapshot: mean errors")?,
                    start_log_odds: r.real("trust snapshot: start odds")?,
                    level: r.take("trust snapshot: level")?,
                };
                if t.level > params.max_level || !(t.prior_sq >= F::ZERO && t.mean_sq >= F::ZERO) {
                    return Err(Error::new(ErrorKind::Corrupt, "trust snapshot: entry"));
                }
                if let Some(slot) = slots.as_mut().and_then(|s| s.get_mut(i)) {
                    *slot = t;
                }
            }
            r.finish()?;
            Ok(params)
        };
        let arms = self.arm_count();
        let params = read(None)?;
        // The count check against this pool, before anything changes.
        let mut r = crate::codec::Reader::open(tail, TRUST_MAGIC)?;
        r.take::<u8>("trust snapshot: scalar width")?;
        r.real::<F>("trust snapshot: known")?;
        r.real::<F>("trust snapshot: fresh")?;
        r.take::<u32>("trust snapshot: max level")?;
        let count = r.u32_as_usize("trust snapshot: arm count")?;
        if count != arms {
            return Err(Error::dimension("trust snapshot: arm count", arms, count));
        }
        self.inner.restore(policy)?;
        read(Some(self.trust.as_mut()))?;
        self.params = params;
        Ok(())
    }
}

#[cfg(feature = "alloc")]
impl<F: Real> pilot_core::GrowPool<F> for PriorTrustVec<F> {
    /// Adds the arm started at `prior` as a *fresh* arm: its vector comes from elsewhere (judge
    /// scores, the mean of the others), so it starts at the small weight
    /// [`TrustParams::fresh`] calls for and is explored.
    fn add_arm(&mut self, prior: Option<&[F]>) -> Result<ArmId> {
        let id = self.inner.add_arm(prior)?;
        self.trust.push(ArmTrust::start(self.params.known));
        if let Err(e) = self.mark_fresh(id) {
            self.trust.pop();
            self.inner.remove_arm(id)?;
            return Err(e);
        }
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LinUcbVec, PriorTrustVec};
    use alloc::vec;
    use alloc::vec::Vec;
    use pilot_core::GrowPool;

    const D: usize = 4;

    fn pilot(priors: &[Option<&[f32]>], lambda: f32) -> LinUcbVec<f32> {
        let params = LinUcb::params()
            .alpha(0.1)
            .lambda(lambda)
            .reward_range(0.0, 1.0)
            .check()
            .unwrap();
        LinUcbVec::with_priors(params, priors, D).unwrap()
    }

    fn trusting(priors: &[Option<&[f32]>], lambda: f32) -> PriorTrustVec<f32> {
        let inner = pilot(priors, lambda);
        let n = inner.arm_count();
        PriorTrust::new(inner, vec![ArmTrust::start(0.5); n], TrustParams::default()).unwrap()
    }

    /// A context: three uniform features in [0, 1) and a constant 1.
    fn context(rng: &mut rand_pcg::Pcg64) -> [f32; D] {
        let mut x = [1.0f32; D];
        for v in x.iter_mut().take(D - 1) {
            *v = (rng.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
        }
        x
    }

    /// A 0/1 reward with probability θ·x (clamped to [0, 1]).
    fn reward(theta: &[f32], x: &[f32], rng: &mut rand_pcg::Pcg64) -> f32 {
        let p = theta.iter().zip(x).map(|(a, b)| a * b).sum::<f32>();
        let u = (rng.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
        if u < p.clamp(0.0, 1.0) { 1.0 } else { 0.0 }
    }

    fn feed(policy: &mut impl Policy<f32>, arm: usize, truth: &[f32], steps: usize, seed: u64) {
        let mut rng = rand_pcg::Pcg64::new(seed as u128, 0x0a02_bdbf_7bb3_c0a7);
        for _ in 0..steps {
            let x = context(&mut rng);
            let r = reward(truth, &x, &mut rng);
            policy
                .update(ArmId::new(arm), &x, Reward::new(r).unwrap())
                .unwrap();
        }
    }

    const TRUTH: [f32; D] = [0.3, -0.2, 0.1, 0.5];

    #[test]
    fn a_prior_equal_to_the_truth_keeps_its_full_weight() {
        let mut p = trusting(&[Some(&TRUTH)], 64.0);
        feed(&mut p, 0, &TRUTH, 400, 1);
        assert_eq!(p.trust()[0].level, 0, "{:?}", p.trust()[0]);
        assert_eq!(p.prior_weight(ArmId::new(0)).unwrap(), 64.0);
    }

    #[test]
    fn a_wrong_prior_loses_its_weight() {
        let wrong = [-0.3, 0.2, -0.1, 0.9];
        let mut p = trusting(&[Some(&wrong)], 64.0);
        // A bias of 0.2 under Bernoulli noise: ~0.08 of log-odds per reward against the prior.
        feed(&mut p, 0, &TRUTH, 150, 2);
        let w = p.prior_weight(ArmId::new(0)).unwrap();
        assert!(w <= 2.0, "weight {w} after 150 rewards, {:?}", p.trust()[0]);
        // Learning then follows the data: the estimate moves well away from the prior.
        feed(&mut p, 0, &TRUTH, 200, 3);
        let theta = p.inner().ridge().theta(ArmId::new(0)).unwrap();
        let mean_at = |t: &[f32]| t.iter().sum::<f32>() - t[D - 1] * 0.5;
        assert!(
            (mean_at(theta) - mean_at(&TRUTH)).abs() < (mean_at(&wrong) - mean_at(&TRUTH)).abs(),
            "θ̂ {theta:?}"
        );
    }

    #[test]
    fn a_shift_equals_starting_at_the_other_weight() {
        // Data learned at weight 64, then shifted to 2, against data learned at weight 2.
        let prior: [f32; D] = [0.2, 0.1, -0.1, 0.4];
        let mut shifted = pilot(&[Some(&prior)], 64.0);
        let mut direct = pilot(&[Some(&prior)], 2.0);
        feed(&mut shifted, 0, &TRUTH, 50, 4);
        feed(&mut direct, 0, &TRUTH, 50, 4);
        shifted.shift_prior_weight(ArmId::new(0), -62.0).unwrap();
        let (a, b) = (shifted.ridge(), direct.ridge());
        let id = ArmId::new(0);
        for (x, y) in a.theta(id).unwrap().iter().zip(b.theta(id).unwrap()) {
            assert!((x - y).abs() < 1e-3, "θ̂ {x} vs {y}");
        }
        for (x, y) in a.a_inv(id).unwrap().iter().zip(b.a_inv(id).unwrap()) {
            assert!((x - y).abs() < 1e-3 * y.abs().max(1e-2), "A⁻¹ {x} vs {y}");
        }
        // A shift that would make A indefinite is refused and changes nothing.
        let before = shifted.clone();
        assert!(shifted.shift_prior_weight(id, -1e6).is_err());
        assert_eq!(
            shifted.ridge().a_inv(id).unwrap(),
            before.ridge().a_inv(id).unwrap()
        );
        assert_eq!(
            shifted.ridge().theta(id).unwrap(),
            before.ridge().theta(id).unwrap()
        );
    }

    #[test]
    fn folding_the_same_events_gives_bit_identical_state() {
        let wrong = [-0.3, 0.2, -0.1, 0.9];
        let run = || {
            let mut p = trusting(&[Some(&TRUTH), Some(&wrong), None], 64.0);
            p.mark_fresh(ArmId::new(2)).unwrap();
            for arm in 0..3 {
                feed(&mut p, arm, &TRUTH, 80, 10 + arm as u64);
            }
            p
        };
        let (a, b) = (run(), run());
        assert_eq!(a.trust(), b.trust());
        for arm in 0..3 {
            let id = ArmId::new(arm);
            let bits = |p: &PriorTrustVec<f32>| {
                let r = p.inner().ridge();
                let mut v: Vec<u32> = r.theta(id).unwrap().iter().map(|x| x.to_bits()).collect();
                v.extend(r.a_inv(id).unwrap().iter().map(|x| x.to_bits()));
                v
            };
            assert_eq!(bits(&a), bits(&b));
        }
    }

    #[test]
    fn a_fresh_or_added_arm_starts_at_a_small_weight_and_explores() {
        let mut p = trusting(&[Some(&TRUTH), Some(&TRUTH)], 64.0);
        p.mark_fresh(ArmId::new(1)).unwrap();
        assert_eq!(p.prior_weight(ArmId::new(1)).unwrap(), 0.25);
        let added = p.add_arm(Some(&TRUTH)).unwrap();
        assert_eq!(added.index(), 2);
        assert_eq!(p.prior_weight(added).unwrap(), 0.25);
        // Same prior mean, so the fresh arms win on their wider confidence width.
        let mut rng = rand_pcg::Pcg64::new(5, 0x0a02_bdbf_7bb3_c0a7);
        let x = context(&mut rng);
        let mut scores = [ArmScore::default(); 3];
        let chosen = p.select(&x, &mut rng, &mut scores).unwrap();
        assert_ne!(chosen.index(), 0, "{scores:?}");
        assert!(scores[2].width > 4.0 * scores[0].width, "{scores:?}");
    }

    #[test]
    fn at_full_trust_it_decides_as_pilot_does() {
        let priors: [Option<&[f32]>; 2] = [Some(&TRUTH), Some(&[0.2, 0.1, 0.0, 0.3])];
        let mut plain = pilot(&priors, 64.0);
        let mut trust = trusting(&priors, 64.0);
        let mut rng = rand_pcg::Pcg64::new(6, 0x0a02_bdbf_7bb3_c0a7);
        for _ in 0..200 {
            let x = context(&mut rng);
            let (mut s1, mut s2) = ([ArmScore::default(); 2], [ArmScore::default(); 2]);
            let a = plain.select(&x, &mut rng, &mut s1).unwrap();
            let b = trust.select(&x, &mut rng, &mut s2).unwrap();
            assert_eq!(a, b);
            assert_eq!(s1, s2);
            let r = Reward::new(reward(&TRUTH, &x, &mut rng)).unwrap();
            plain.update(a, &x, r).unwrap();
            trust.update(b, &x, r).unwrap();
            if trust.trust().iter().any(|t| t.level != 0) {
                break;
            }
        }
    }

    #[test]
    fn a_snapshot_restores_the_trust_and_a_bad_one_changes_nothing() {
        use pilot_core::Snapshot;
        let wrong = [-0.3, 0.2, -0.1, 0.9];
        let mut a = trusting(&[Some(&TRUTH), Some(&wrong)], 64.0);
        feed(&mut a, 1, &TRUTH, 150, 8);
        assert!(a.trust()[1].level > 0);
        let mut bytes = vec![0u8; a.snapshot_len()];
        let n = a.save(&mut bytes).unwrap();
        let mut b = trusting(&[Some(&TRUTH), Some(&TRUTH)], 64.0);
        b.restore(&bytes[..n]).unwrap();
        assert_eq!(a.trust(), b.trust());
        assert_eq!(
            a.inner().ridge().a_inv(ArmId::new(1)).unwrap(),
            b.inner().ridge().a_inv(ArmId::new(1)).unwrap()
        );
        // A damaged trust section (last byte) or a truncated one: refused, nothing changes.
        let fresh = trusting(&[Some(&TRUTH), Some(&TRUTH)], 64.0);
        for bad in [n - 1, n - 3] {
            let mut c = fresh.clone();
            let mut damaged = bytes[..n].to_vec();
            if bad == n - 1 {
                damaged[bad] ^= 0x55;
            } else {
                damaged.truncate(bad);
            }
            assert!(c.restore(&damaged).is_err());
            assert_eq!(c.trust(), fresh.trust());
            assert_eq!(
                c.inner().ridge().theta(ArmId::new(1)).unwrap(),
                fresh.inner().ridge().theta(ArmId::new(1)).unwrap()
            );
        }
    }

    #[test]
    fn bad_inputs_are_refused_and_change_nothing() {
        let mut p = trusting(&[Some(&TRUTH)], 64.0);
        let before = p.trust()[0];
        let x = [0.5, 0.5, 0.5, 1.0];
        assert!(
            p.update(ArmId::new(3), &x, Reward::new(1.0).unwrap())
                .is_err()
        );
        assert!(
            p.update(ArmId::new(0), &x[..2], Reward::new(1.0).unwrap())
                .is_err()
        );
        assert!(
            p.update(ArmId::new(0), &x, Reward::new(2.0).unwrap())
                .is_err()
        );
        assert_eq!(p.trust()[0], before);
        let discounted = LinUcb::params()
            .lambda(4.0)
            .discount(0.99)
            .reward_range(0.0, 1.0)
            .check()
            .unwrap();
        let inner = LinUcbVec::with_priors(discounted, &[Some(&TRUTH)], D).unwrap();
        assert!(
            PriorTrust::new(inner, vec![ArmTrust::start(0.5)], TrustParams::default()).is_err()
        );
        assert!(
            TrustParams {
                fresh: 1.0,
                ..TrustParams::<f32>::default()
            }
            .check()
            .is_err()
        );
    }
}
