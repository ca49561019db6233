//! Baselines without a model: uniform random choice and a fixed arm.
//!
//! Both validate input exactly like the learning policies (so they are drop-in replacements in
//! a replay) and learn nothing from feedback.

use pilot_core::{
    ArmId, ArmScore, Error, ErrorKind, Policy, Real, Result, Reward, RngCore, Snapshot,
    argmax_score, check_finite, check_len,
};

use crate::codec::{Reader, VARINT_U32_MAX, Writer, check_width};
use crate::params::{check_range, check_reward_range};
use crate::ridge::MAX_DIM;

/// Most arms a baseline's snapshot can describe.
const VARINT_U32_MAX_ARMS: usize = u32::MAX as usize;

/// Shape and reward range shared by the baselines.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Pool<F> {
    arms: usize,
    dim: usize,
    reward_min: F,
    reward_max: F,
}

impl<F: Real> Pool<F> {
    fn new(arms: usize, dim: usize) -> Result<Self> {
        if arms == 0 {
            return Err(Error::new(ErrorKind::Empty, "baseline: arm count"));
        }
        if dim == 0 || dim > MAX_DIM {
            return Err(Error::dimension(
                "baseline: dimension (1..=4096)",
                MAX_DIM,
                dim,
            ));
        }
        Ok(Self {
            arms,
            dim,
            reward_min: F::ZERO,
            reward_max: F::ONE,
        })
    }

    fn with_range(mut self, min: F, max: F) -> Result<Self> {
        check_range(min, max)?;
        self.reward_min = min;
        self.reward_max = max;
        Ok(self)
    }

    fn check_select(&self, context: &[F], scores: &[ArmScore<F>]) -> Result<()> {
        check_len("context", context, self.dim)?;
        check_finite("context", context)?;
        check_len("select: scores", scores, self.arms)
    }

    /// One more arm (the baselines keep no per-arm state, so a prior is only checked).
    fn grow(&mut self, prior: Option<&[F]>) -> Result<ArmId> {
        if let Some(p) = prior {
            check_len("add_arm: prior", p, self.dim)?;
            check_finite("add_arm: prior", p)?;
        }
        if self.arms >= VARINT_U32_MAX_ARMS {
            return Err(Error::new(
                ErrorKind::CapacityExceeded,
                "add_arm: arm count",
            ));
        }
        self.arms += 1;
        Ok(ArmId::new(self.arms - 1))
    }

    fn check_update(&self, arm: ArmId, context: &[F], reward: Reward<F>) -> Result<()> {
        if arm.index() >= self.arms {
            return Err(Error::unknown_arm("update: arm", arm.index(), self.arms));
        }
        check_len("context", context, self.dim)?;
        check_finite("context", context)?;
        check_reward_range(self.reward_min, self.reward_max, reward.get())
    }

    const SNAPSHOT_LEN: usize = pilot_core::envelope::HEADER_LEN + 1 + 2 * 8 + 3 * VARINT_U32_MAX;

    fn save(&self, out: &mut [u8], magic: [u8; 4], fixed: usize) -> Result<usize> {
        let mut w = Writer::new(out);
        w.put(&(F::BYTES as u8))?;
        w.real(self.reward_min)?;
        w.real(self.reward_max)?;
        w.put(&(self.dim as u32))?;
        w.put(&(self.arms as u32))?;
        w.put(&(fixed as u32))?;
        w.seal(magic)
    }

    /// The pool and fixed arm in `bytes`, checked against this pool's dimension and arm count.
    fn read(&self, bytes: &[u8], magic: [u8; 4]) -> Result<(Self, usize)> {
        let mut r = Reader::open(bytes, magic)?;
        check_width::<F>(r.take("snapshot: scalar width")?)?;
        let min = r.real("snapshot: reward min")?;
        let max = r.real("snapshot: reward max")?;
        let dim = r.u32_as_usize("snapshot: dim")?;
        if dim != self.dim {
            return Err(Error::dimension("snapshot: dim", self.dim, dim));
        }
        let arms = r.u32_as_usize("snapshot: arm count")?;
        if arms != self.arms {
            return Err(Error::dimension("snapshot: arm count", self.arms, arms));
        }
        let fixed = r.u32_as_usize("snapshot: fixed arm")?;
        r.finish()?;
        let pool = Self::new(arms, dim)
            .and_then(|p| p.with_range(min, max))
            .map_err(|e| Error::new(ErrorKind::Corrupt, e.context()))?;
        if fixed >= arms {
            return Err(Error::new(
                ErrorKind::Corrupt,
                "snapshot: fixed arm outside the pool",
            ));
        }
        Ok((pool, fixed))
    }
}

/// Picks an arm uniformly at random: each arm is scored by a fresh uniform draw in [0, 1)
/// (estimate and width zero), and the highest draw wins.
#[derive(Clone, Debug, PartialEq)]
pub struct UniformRandom<F: Real = f32> {
    pool: Pool<F>,
}

impl<F: Real> UniformRandom<F> {
    /// Magic number of this policy's snapshots.
    pub const MAGIC: [u8; 4] = *b"PUNI";
    /// Upper bound of the snapshot bytes.
    pub const SNAPSHOT_LEN: usize = Pool::<F>::SNAPSHOT_LEN;

    /// A pool of `arms` arms for contexts of dimension `dim`, rewards in [0, 1].
    ///
    /// # Errors
    /// [`Empty`](ErrorKind::Empty) for no arms, [`DimensionMismatch`](ErrorKind::DimensionMismatch)
    /// for `dim` outside `1..=4096`.
    pub fn new(arms: usize, dim: usize) -> Result<Self> {
        Ok(Self {
            pool: Pool::new(arms, dim)?,
        })
    }

    /// The same policy accepting rewards in `[min, max]`.
    ///
    /// # Errors
    /// [`InvalidParameter`](ErrorKind::InvalidParameter) for a range that is not finite with
    /// min < max.
    pub fn with_reward_range(self, min: F, max: F) -> Result<Self> {
        Ok(Self {
            pool: self.pool.with_range(min, max)?,
        })
    }
}

impl<F: Real> Policy<F> for UniformRandom<F> {
    fn dim(&self) -> usize {
        self.pool.dim
    }

    fn arm_count(&self) -> usize {
        self.pool.arms
    }

    fn select(
        &mut self,
        context: &[F],
        rng: &mut dyn RngCore,
        scores: &mut [ArmScore<F>],
    ) -> Result<ArmId> {
        self.pool.check_select(context, scores)?;
        for s in scores.iter_mut() {
            *s = ArmScore {
                estimate: F::ZERO,
                width: F::ZERO,
                score: crate::random::uniform(rng),
            };
        }
        argmax_score(scores).ok_or(Error::new(ErrorKind::Empty, "select"))
    }

    fn update(&mut self, arm: ArmId, context: &[F], reward: Reward<F>) -> Result<()> {
        self.pool.check_update(arm, context, reward)
    }
}

impl<F: Real> pilot_core::GrowPool<F> for UniformRandom<F> {
    fn add_arm(&mut self, prior: Option<&[F]>) -> Result<ArmId> {
        self.pool.grow(prior)
    }
}

impl<F: Real> pilot_core::GrowPool<F> for FixedArm<F> {
    /// The new arm is never played: a fixed-arm baseline keeps its arm.
    fn add_arm(&mut self, prior: Option<&[F]>) -> Result<ArmId> {
        self.pool.grow(prior)
    }
}

impl<F: Real> Snapshot for UniformRandom<F> {
    fn snapshot_len(&self) -> usize {
        Self::SNAPSHOT_LEN
    }

    fn save(&self, out: &mut [u8]) -> Result<usize> {
        self.pool.save(out, Self::MAGIC, 0)
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<()> {
        let (pool, _) = self.pool.read(bytes, Self::MAGIC)?;
        self.pool = pool;
        Ok(())
    }
}

/// Always plays the same arm: score 1 for it and 0 for the others (estimates and widths zero).
#[derive(Clone, Debug, PartialEq)]
pub struct FixedArm<F: Real = f32> {
    pool: Pool<F>,
    arm: usize,
}

impl<F: Real> FixedArm<F> {
    /// Magic number of this policy's snapshots.
    pub const MAGIC: [u8; 4] = *b"PFIX";
    /// Upper bound of the snapshot bytes.
    pub const SNAPSHOT_LEN: usize = Pool::<F>::SNAPSHOT_LEN;

    /// A pool of `arms` arms for contexts of dimension `dim` that always plays `arm`.
    ///
    /// # Errors
    /// As [`UniformRandom::new`], plus [`UnknownArm`](ErrorKind::UnknownArm) for `arm` outside
    /// the pool.
    pub fn new(arm: ArmId, arms: usize, dim: usize) -> Result<Self> {
        let pool = Pool::new(arms, dim)?;
        if arm.index() >= arms {
            return Err(Error::unknown_arm("FixedArm::new", arm.index(), arms));
        }
        Ok(Self {
            pool,
            arm: arm.index(),
        })
    }

    /// The same policy accepting rewards in `[min, max]`.
    ///
    /// # Errors
    /// [`InvalidParameter`](ErrorKind::InvalidParameter) for a bad range.
    pub fn with_reward_range(self, min: F, max: F) -> Result<Self> {
        Ok(Self {
            pool: self.pool.with_range(min, max)?,
            arm: self.arm,
        })
    }

    /// The arm this policy always plays.
    pub fn arm(&self) -> ArmId {
        ArmId::new(self.arm)
    }
}

impl<F: Real> Policy<F> for FixedArm<F> {
    fn dim(&self) -> usize {
        self.pool.dim
    }

    fn arm_count(&self) -> usize {
        self.pool.arms
    }

    fn select(
        &mut self,
        context: &[F],
        _rng: &mut dyn RngCore,
        scores: &mut [ArmScore<F>],
    ) -> Result<ArmId> {
        self.pool.check_select(context, scores)?;
        for (i, s) in scores.iter_mut().enumerate() {
            *s = ArmScore {
                estimate: F::ZERO,
                width: F::ZERO,
                score: if i == self.arm { F::ONE } else { F::ZERO },
            };
        }
        Ok(ArmId::new(self.arm))
    }

    fn update(&mut self, arm: ArmId, context: &[F], reward: Reward<F>) -> Result<()> {
        self.pool.check_update(arm, context, reward)
    }
}

impl<F: Real> Snapshot for FixedArm<F> {
    fn snapshot_len(&self) -> usize {
        Self::SNAPSHOT_LEN
    }

    fn save(&self, out: &mut [u8]) -> Result<usize> {
        self.pool.save(out, Self::MAGIC, self.arm)
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<()> {
        let (pool, arm) = self.pool.read(bytes, Self::MAGIC)?;
        self.pool = pool;
        self.arm = arm;
        Ok(())
    }
}
