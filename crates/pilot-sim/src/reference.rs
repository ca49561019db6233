//! Reference policies that are not bandits: a read-out of precomputed per-arm predictions
//! (the full-information kNN router) and a frozen wrapper (a policy that never learns online,
//! e.g. the prior alone).

use pilot_core::{
    ArmId, ArmScore, Error, ErrorKind, GrowPool, Policy, Result, Reward, RngCore, Snapshot,
    argmax_score, check_finite,
};

/// Scores arm `a` by `context[a]`: the context *is* a supervised model's per-arm prediction.
///
/// With [`ContextTable::knn_predictions`](crate::ContextTable::knn_predictions) this is the
/// full-information kNN router: trained on every LLM's quality for the learning queries, it
/// ignores bandit feedback.
#[derive(Clone, Debug)]
pub struct ReadOut {
    arms: usize,
}

impl ReadOut {
    /// A read-out over `arms` arms (context dimension = `arms`).
    pub fn new(arms: usize) -> Self {
        Self { arms }
    }
}

impl Policy<f32> for ReadOut {
    fn dim(&self) -> usize {
        self.arms
    }

    fn arm_count(&self) -> usize {
        self.arms
    }

    fn select(
        &mut self,
        context: &[f32],
        _rng: &mut dyn RngCore,
        scores: &mut [ArmScore<f32>],
    ) -> Result<ArmId> {
        pilot_core::check_len("ReadOut::select: context", context, self.arms)?;
        pilot_core::check_len("ReadOut::select: scores", scores, self.arms)?;
        check_finite("ReadOut::select: context", context)?;
        for (s, &p) in scores.iter_mut().zip(context) {
            *s = ArmScore::certain(p);
        }
        argmax_score(scores).ok_or(pilot_core::Error::new(
            pilot_core::ErrorKind::Empty,
            "ReadOut::select: no arms",
        ))
    }

    fn update(&mut self, arm: ArmId, context: &[f32], _reward: Reward<f32>) -> Result<()> {
        pilot_core::check_len("ReadOut::update: context", context, self.arms)?;
        if arm.index() >= self.arms {
            return Err(pilot_core::Error::unknown_arm(
                "ReadOut::update: arm",
                arm.index(),
                self.arms,
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
    /// A read-out's contexts are one prediction per arm, made offline: a new LLM has none.
    fn add_arm(&mut self, _prior: Option<&[f32]>) -> Result<ArmId> {
        Err(Error::new(
            ErrorKind::Unsupported,
            "ReadOut::add_arm: the kNN router's predictions are made offline for a fixed pool",
        ))
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
            .copy_from_slice(&(self.arms as u64).to_le_bytes());
        pilot_core::envelope::seal(out, *b"PRDO", 1, 8)
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<()> {
        let payload = pilot_core::envelope::open(bytes, *b"PRDO", 1)?;
        let arms: [u8; 8] = payload
            .try_into()
            .map_err(|_| Error::new(ErrorKind::Corrupt, "ReadOut::restore: payload"))?;
        if u64::from_le_bytes(arms) != self.arms as u64 {
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
