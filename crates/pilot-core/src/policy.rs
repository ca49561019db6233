//! The routing-policy trait (score arms, learn from the chosen arm's reward) and snapshots.

use crate::{ArmId, ArmScore, Real, Result, Reward, RngCore};

/// A contextual bandit policy over a pool of arms (LLMs).
///
/// Object safe (`Box<dyn Policy>` holds a native policy or a plugin). Contract, checked for every
/// implementation by the conformance kit in `pilot-bandit` (feature `dev`):
///
/// - [`select`](Policy::select) writes one [`ArmScore`] per arm into `scores` (whose length must
///   be [`arm_count`](Policy::arm_count)) and returns the arm with the highest score, ties to the
///   lowest index. It draws randomness only from `rng`, so a run replays from a seed.
/// - [`update`](Policy::update) learns from the reward of the arm that was played (bandit
///   feedback: nothing is known of the other arms).
/// - Bad input (wrong dimension, NaN or infinite values, an unknown arm, a reward outside the
///   configured range) returns an error and leaves the learned state exactly as it was.
pub trait Policy<F: Real = f32> {
    /// Dimension of the contexts this policy takes.
    fn dim(&self) -> usize;

    /// Number of arms in the pool.
    fn arm_count(&self) -> usize;

    /// Scores every arm for `context` and returns the best one.
    ///
    /// # Errors
    /// [`DimensionMismatch`](crate::ErrorKind::DimensionMismatch) when `context.len() != dim()`
    /// or `scores.len() != arm_count()`, [`NonFinite`](crate::ErrorKind::NonFinite) for NaN or
    /// infinite context values, [`Empty`](crate::ErrorKind::Empty) for a pool with no arms.
    fn select(
        &mut self,
        context: &[F],
        rng: &mut dyn RngCore,
        scores: &mut [ArmScore<F>],
    ) -> Result<ArmId>;

    /// Learns from `reward`, observed after playing `arm` on `context`.
    ///
    /// # Errors
    /// As [`select`](Policy::select), plus [`UnknownArm`](crate::ErrorKind::UnknownArm) and
    /// [`OutOfRange`](crate::ErrorKind::OutOfRange) for a reward outside the configured range.
    fn update(&mut self, arm: ArmId, context: &[F], reward: Reward<F>) -> Result<()>;
}

/// Conveniences on top of [`Policy`], for every policy.
pub trait PolicyExt<F: Real>: Policy<F> {
    /// [`Policy::select`] into a stack array of `K` scores (`K` must equal the arm count).
    fn select_array<const K: usize>(
        &mut self,
        context: &[F],
        rng: &mut dyn RngCore,
    ) -> Result<(ArmId, [ArmScore<F>; K])> {
        let mut scores = [ArmScore::default(); K];
        let arm = self.select(context, rng, &mut scores)?;
        Ok((arm, scores))
    }

    /// [`Policy::update`] from a raw reward, validated first.
    fn observe(&mut self, arm: ArmId, context: &[F], reward: F) -> Result<()> {
        self.update(arm, context, Reward::new(reward)?)
    }

    /// [`Policy::select`] into a freshly allocated vector of scores.
    #[cfg(feature = "alloc")]
    fn select_vec(
        &mut self,
        context: &[F],
        rng: &mut dyn RngCore,
    ) -> Result<(ArmId, alloc::vec::Vec<ArmScore<F>>)> {
        let mut scores = alloc::vec![ArmScore::default(); self.arm_count()];
        let arm = self.select(context, rng, &mut scores)?;
        Ok((arm, scores))
    }
}

impl<F: Real, P: Policy<F> + ?Sized> PolicyExt<F> for P {}

impl<F: Real, P: Policy<F> + ?Sized> Policy<F> for &mut P {
    fn dim(&self) -> usize {
        (**self).dim()
    }
    fn arm_count(&self) -> usize {
        (**self).arm_count()
    }
    fn select(
        &mut self,
        context: &[F],
        rng: &mut dyn RngCore,
        scores: &mut [ArmScore<F>],
    ) -> Result<ArmId> {
        (**self).select(context, rng, scores)
    }
    fn update(&mut self, arm: ArmId, context: &[F], reward: Reward<F>) -> Result<()> {
        (**self).update(arm, context, reward)
    }
}

#[cfg(feature = "alloc")]
impl<F: Real, P: Policy<F> + ?Sized> Policy<F> for alloc::boxed::Box<P> {
    fn dim(&self) -> usize {
        (**self).dim()
    }
    fn arm_count(&self) -> usize {
        (**self).arm_count()
    }
    fn select(
        &mut self,
        context: &[F],
        rng: &mut dyn RngCore,
        scores: &mut [ArmScore<F>],
    ) -> Result<ArmId> {
        (**self).select(context, rng, scores)
    }
    fn update(&mut self, arm: ArmId, context: &[F], reward: Reward<F>) -> Result<()> {
        (**self).update(arm, context, reward)
    }
}

/// A policy whose pool can grow while it runs: a new LLM joins without a restart and without
/// touching what the other arms have learned.
///
/// An extension of [`Policy`] rather than a method of it, so that a policy which cannot grow
/// (a fixed-capacity array of arms, a plugin whose ABI has no such call) says so by not
/// implementing it, or by returning [`Unsupported`](crate::ErrorKind::Unsupported).
pub trait GrowPool<F: Real = f32>: Policy<F> {
    /// Adds one arm as index [`arm_count`](Policy::arm_count)` - 1` after the call, started at
    /// `prior` (a vector of dimension [`dim`](Policy::dim), for policies that learn one) or at
    /// the policy's neutral start for `None`. Returns its id.
    ///
    /// # Errors
    /// [`DimensionMismatch`](crate::ErrorKind::DimensionMismatch) or
    /// [`NonFinite`](crate::ErrorKind::NonFinite) for a bad prior,
    /// [`CapacityExceeded`](crate::ErrorKind::CapacityExceeded) for a full fixed-size pool,
    /// [`Unsupported`](crate::ErrorKind::Unsupported) when this policy cannot grow. The pool is
    /// unchanged on error.
    fn add_arm(&mut self, prior: Option<&[F]>) -> Result<ArmId>;
}

impl<F: Real, P: GrowPool<F> + ?Sized> GrowPool<F> for &mut P {
    fn add_arm(&mut self, prior: Option<&[F]>) -> Result<ArmId> {
        (**self).add_arm(prior)
    }
}

#[cfg(feature = "alloc")]
impl<F: Real, P: GrowPool<F> + ?Sized> GrowPool<F> for alloc::boxed::Box<P> {
    fn add_arm(&mut self, prior: Option<&[F]>) -> Result<ArmId> {
        (**self).add_arm(prior)
    }
}

/// Learned state that saves to bytes and restores exactly.
///
/// Bytes are framed by [`envelope`](crate::envelope) (magic, version, length, CRC-32), so
/// truncated, corrupt, foreign or wrong-version bytes are rejected. A failed
/// [`restore`](Snapshot::restore) leaves the live state untouched.
pub trait Snapshot {
    /// An upper bound on the bytes [`save`](Snapshot::save) writes for the current state.
    fn snapshot_len(&self) -> usize;

    /// Writes the state into `out`, returning the number of bytes written.
    ///
    /// # Errors
    /// [`BufferTooSmall`](crate::ErrorKind::BufferTooSmall) when `out` cannot hold it.
    fn save(&self, out: &mut [u8]) -> Result<usize>;

    /// Replaces the state with the one in `bytes`, or leaves it untouched on error.
    ///
    /// # Errors
    /// [`Truncated`](crate::ErrorKind::Truncated), [`Corrupt`](crate::ErrorKind::Corrupt),
    /// [`ChecksumMismatch`](crate::ErrorKind::ChecksumMismatch),
    /// [`VersionMismatch`](crate::ErrorKind::VersionMismatch),
    /// [`WrongFormat`](crate::ErrorKind::WrongFormat) or
    /// [`DimensionMismatch`](crate::ErrorKind::DimensionMismatch) when the saved state does not fit
    /// this policy's configuration: another context dimension or another arm count. A restore
    /// never changes the number of arms; a policy whose pool can grow offers that as a separate,
    /// explicit call (pilot-bandit's `restore_resizing`).
    fn restore(&mut self, bytes: &[u8]) -> Result<()>;

    /// Saves into a freshly allocated vector.
    #[cfg(feature = "alloc")]
    fn save_vec(&self) -> Result<alloc::vec::Vec<u8>> {
        let mut buf = alloc::vec![0u8; self.snapshot_len()];
        let n = self.save(&mut buf)?;
        buf.truncate(n);
        Ok(buf)
    }
}

impl<S: Snapshot + ?Sized> Snapshot for &mut S {
    fn snapshot_len(&self) -> usize {
        (**self).snapshot_len()
    }
    fn save(&self, out: &mut [u8]) -> Result<usize> {
        (**self).save(out)
    }
    fn restore(&mut self, bytes: &[u8]) -> Result<()> {
        (**self).restore(bytes)
    }
}

#[cfg(feature = "alloc")]
impl<S: Snapshot + ?Sized> Snapshot for alloc::boxed::Box<S> {
    fn snapshot_len(&self) -> usize {
        (**self).snapshot_len()
    }
    fn save(&self, out: &mut [u8]) -> Result<usize> {
        (**self).save(out)
    }
    fn restore(&mut self, bytes: &[u8]) -> Result<()> {
        (**self).restore(bytes)
    }
}
