//! Reference policies that are not bandits: a read-out of precomputed per-arm predictions
//! (the full-information kNN router) and a frozen wrapper (a policy that never learns online,
//! e.g. the prior alone).

use pilot_core::{
    ArmId, ArmScore, Error, ErrorKind, GrowPool, Policy, Result, Reward, RngCore, Snapshot,
    argmax_score, check_finite,
};

/// Scores each arm by its LLM's entry of the context: the context *is* a supervised model's
/// per-LLM prediction.
///
/// With [`ContextTable::knn_predictions`](crate::ContextTable::knn_predictions) this is the
/// full-information kNN router: trained on every LLM's quality for the learning queries, it
/// ignores bandit feedback. The context has one prediction per LLM of the table; the pool may
/// start with some of them ([`over`](Self::over)) and grow into the others
/// ([`GrowPool::add_arm`]), since the predictions for them were made offline too.
#[derive(Clone, Debug)]
pub struct ReadOut {
    /// The context entry each arm reads, in arm order.
    columns: Vec<usize>,
    /// Context dimension: the LLMs the predictions cover.
    dim: usize,
}

impl ReadOut {
    /// A read-out over `arms` arms, arm `a` reading `context[a]` (context dimension = `arms`).
    pub fn new(arms: usize) -> Self {
        Self {
            columns: (0..arms).collect(),
            dim: arms,
        }
    }

    /// A read-out of `dim` predictions per context whose arms are the LLMs `columns`, in that
    /// order (arm `a` reads `context[columns[a]]`).
    ///
    /// # Errors
    /// [`InvalidParameter`](ErrorKind::InvalidParameter) for a column outside the context or
    /// listed twice.
    pub fn over(columns: &[usize], dim: usize) -> Result<Self> {
        for (i, &c) in columns.iter().enumerate() {
            if c >= dim || columns[..i].contains(&c) {
                return Err(Error::new(
                    ErrorKind::InvalidParameter,
                    "ReadOut::over: columns (distinct, each < dim)",
                ));
            }
        }
        Ok(Self {
            columns: columns.to_vec(),
            dim,
        })
    }
}

impl Policy<f32> for ReadOut {
    fn dim(&self) -> usize {
        self.dim
    }

    fn arm_count(&self) -> usize {
        self.columns.len()
    }

    fn select(
        &mut self,
        context: &[f32],
        _rng: &mut dyn RngCore,
        scores: &mut [ArmScore<f32>],
    ) -> Result<ArmId> {
        pilot_core::check_len("ReadOut::select: context", context, self.dim)?;
        pilot_core::check_len("ReadOut::select: scores", scores, self.columns.len())?;
        check_finite("ReadOut::select: context", context)?;
        for (s, &c) in scores.iter_mut().zip(&self.columns) {
            *s = ArmScore::certain(context[c]);
        }
        argmax_score(scores).ok_or(pilot_core::Error::new(
            pilot_core::ErrorKind::Empty,
            "ReadOut::select: no arms",
        ))
    }

    fn update(&mut self, arm: ArmId, context: &[f32], _reward: Reward<f32>) -> Result<()> {
        pilot_core::check_len("ReadOut::update: context", context, self.dim)?;
        if arm.index() >= self.columns.len() {
            return Err(pilot_core::Error::unknown_arm(
                "ReadOut::update: arm",
                arm.index(),
                self.columns.len(),
            ));
        }
        Ok(())
    }
}

/// A policy whose [`update`](Policy::update) only validates: what it knows at the start is
/// all it ever knows. Wrapping PILOT shows what online learning adds to the prior.
pub struct Frozen<P> {
    inner: P,
}

impl<P> Frozen<P> {
    /// Freezes `inner`.
    pub fn new(inner: P) -> Self {
        Self { inner }
    }
}

impl<P: Policy<f32>> Policy<f32> for Frozen<P> {
    fn dim(&self) -> usize {
        self.inner.dim()
    }

    fn arm_count(&self) -> usize {
        self.inner.arm_count()
    }

    fn select(
        &mut self,
        context: &[f32],
        rng: &mut dyn RngCore,
        scores: &mut [ArmScore<f32>],
    ) -> Result<ArmId> {
        self.inner.select(context, rng, scores)
    }

    fn update(&mut self, arm: ArmId, context: &[f32], _reward: Reward<f32>) -> Result<()> {
        pilot_core::check_len("Frozen::update: context", context, self.inner.dim())?;
        check_finite("Frozen::update: context", context)?;
        if arm.index() >= self.inner.arm_count() {
            return Err(pilot_core::Error::unknown_arm(
                "Frozen::update: arm",
                arm.index(),
                self.inner.arm_count(),
            ));
        }
        Ok(())
    }
}

impl GrowPool<f32> for ReadOut {
    /// The new arm reads the first LLM of the context not yet in the pool: its predictions
    /// were made offline with the others'. A read-out already over every LLM it predicts
    /// cannot grow.
    fn add_arm(&mut self, _prior: Option<&[f32]>) -> Result<ArmId> {
        let next = (0..self.dim)
            .find(|c| !self.columns.contains(c))
            .ok_or(Error::new(
                ErrorKind::Unsupported,
                "ReadOut::add_arm: the kNN router has no offline predictions for another LLM",
            ))?;
        self.columns.push(next);
        Ok(ArmId::new(self.columns.len() - 1))
    }
}

impl Snapshot for ReadOut {
    fn snapshot_len(&self) -> usize {
        pilot_core::envelope::HEADER_LEN + 8
    }

    fn save(&self, out: &mut [u8]) -> Result<usize> {
        let len = pilot_core::envelope::HEADER_LEN + 8;
        if out.len() < len {
            return Err(Error::new(ErrorKind::BufferTooSmall, "ReadOut::save"));
        }
        out[pilot_core::envelope::HEADER_LEN..len]
            .copy_from_slice(&(self.columns.len() as u64).to_le_bytes());
        pilot_core::envelope::seal(out, *b"PRDO", 1, 8)
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<()> {
        let payload = pilot_core::envelope::open(bytes, *b"PRDO", 1)?;
        let arms: [u8; 8] = payload
            .try_into()
            .map_err(|_| Error::new(ErrorKind::Corrupt, "ReadOut::restore: payload"))?;
        if u64::from_le_bytes(arms) != self.columns.len() as u64 {
            return Err(Error::new(
                ErrorKind::DimensionMismatch,
                "ReadOut::restore: arms",
            ));
        }
        Ok(())
    }
}

impl<P: GrowPool<f32>> GrowPool<f32> for Frozen<P> {
    fn add_arm(&mut self, prior: Option<&[f32]>) -> Result<ArmId> {
        self.inner.add_arm(prior)
    }
}

impl<P: Snapshot> Snapshot for Frozen<P> {
    fn snapshot_len(&self) -> usize {
        self.inner.snapshot_len()
    }

    fn save(&self, out: &mut [u8]) -> Result<usize> {
        self.inner.save(out)
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<()> {
        self.inner.restore(bytes)
    }
}

/// Pseudo-count of the shared level's starting value 0: how many rewards it takes to move it
/// halfway to their mean residual.
const SHARED_LEVEL_PRIOR: f32 = 8.0;

/// PILOT with one reward level shared by every LLM (an experiment of issue 16's domain shift).
///
/// Each reward r of arm k is modelled as θ_k·x + δ: δ is common to the pool and learned from
/// every arm's rewards (the running mean of the residuals r − θ_k·x, from a pseudo-count of
/// [`SHARED_LEVEL_PRIOR`] at 0), the arm learns r − δ. When the traffic is harder or easier
/// for every LLM than the prior says, δ absorbs the shift, and an arm is not ranked down for
/// a shift every other arm shares but has not been tried on yet. Adding δ to every score does
/// not change the ranking; it changes the levels the cost policy trades against prices. How a
/// residual splits between δ and the arm follows their weights: δ starts at a pseudo-count of
/// [`SHARED_LEVEL_PRIOR`] and learns from every arm's rewards, a PILOT arm holds its prior at
/// λ (64 tuned), so a shift seen on a few arms moves δ first. Not saved in snapshots: used by
/// the world runs, which never restart.
pub struct SharedLevel<P> {
    inner: P,
    level: f32,
    count: f32,
    scratch: Vec<ArmScore<f32>>,
}

impl<P: Policy<f32>> SharedLevel<P> {
    /// Wraps `inner` (its reward range must allow r − δ, e.g. [−1, 2] for rewards in [0, 1]).
    pub fn new(inner: P) -> Self {
        Self {
            inner,
            level: 0.0,
            count: 0.0,
            scratch: Vec::new(),
        }
    }
}

impl<P: Policy<f32>> Policy<f32> for SharedLevel<P> {
    fn dim(&self) -> usize {
        self.inner.dim()
    }

    fn arm_count(&self) -> usize {
        self.inner.arm_count()
    }

    fn select(
        &mut self,
        context: &[f32],
        rng: &mut dyn RngCore,
        scores: &mut [ArmScore<f32>],
    ) -> Result<ArmId> {
        let arm = self.inner.select(context, rng, scores)?;
        for s in scores.iter_mut() {
            s.estimate += self.level;
            s.score += self.level;
        }
        Ok(arm)
    }

    fn update(&mut self, arm: ArmId, context: &[f32], reward: Reward<f32>) -> Result<()> {
        self.scratch
            .resize(self.inner.arm_count(), ArmScore::default());
        // LinUCB draws nothing; any generator does for the prediction.
        let mut rng = crate::stream::rng_for(0, 0);
        self.inner.select(context, &mut rng, &mut self.scratch)?;
        let predicted = self
            .scratch
            .get(arm.index())
            .map(|s| s.estimate)
            .ok_or_else(|| {
                pilot_core::Error::unknown_arm(
                    "SharedLevel::update: arm",
                    arm.index(),
                    self.inner.arm_count(),
                )
            })?;
        let r = reward.get();
        let level =
            self.level + (r - self.level - predicted) / (SHARED_LEVEL_PRIOR + self.count + 1.0);
        self.inner.update(arm, context, Reward::new(r - level)?)?;
        self.level = level;
        self.count += 1.0;
        Ok(())
    }
}

impl<P: GrowPool<f32>> GrowPool<f32> for SharedLevel<P> {
    fn add_arm(&mut self, prior: Option<&[f32]>) -> Result<ArmId> {
        self.inner.add_arm(prior)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use pilot_bandit::{LinUcb, LinUcbVec};

    /// Two arms whose priors say 0.9 and 0.8 (a constant context) at PILOT's weight λ = 64,
    /// on traffic where both score 0.3 less.
    fn pair(range: (f32, f32)) -> LinUcbVec<f32> {
        let params = LinUcb::params()
            .alpha(0.0)
            .lambda(64.0)
            .reward_range(range.0, range.1)
            .check()
            .unwrap();
        LinUcbVec::with_priors(params, &[Some(&[0.9][..]), Some(&[0.8][..])], 1).unwrap()
    }

    #[test]
    fn a_shift_of_the_whole_pool_moves_the_shared_level_not_the_ranking() {
        let mut rng = crate::stream::rng_for(1, 1);
        let mut scores = [ArmScore::default(); 2];
        let mut plain = pair((0.0, 1.0));
        let mut shared = SharedLevel::new(pair((-1.0, 2.0)));
        // Only arm 0 is played, and it gets 0.6 (its prior says 0.9).
        for _ in 0..40 {
            plain
                .update(ArmId::new(0), &[1.0], Reward::new(0.6).unwrap())
                .unwrap();
            shared
                .update(ArmId::new(0), &[1.0], Reward::new(0.6).unwrap())
                .unwrap();
        }
        // Per-arm learning ranks the untried arm first: its stale prior (0.8) now beats the
        // played arm's corrected level.
        assert_eq!(
            plain.select(&[1.0], &mut rng, &mut scores).unwrap().index(),
            1
        );
        // The shared level took most of the shift (0.3) for the whole pool: the ranking of the
        // prior stands, and both levels came down.
        let best = shared.select(&[1.0], &mut rng, &mut scores).unwrap();
        assert_eq!(best.index(), 0);
        assert!(shared.level < -0.2, "{}", shared.level);
        assert!(scores[1].estimate < 0.6, "{:?}", scores[1]);
        assert!((scores[0].estimate - 0.6).abs() < 0.05, "{:?}", scores[0]);
    }
}
