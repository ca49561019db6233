//! The ridge-regression policies: LinUCB (and PILOT, its prior-started form), linear Thompson
//! sampling and ε-greedy, each generic over the storage of its arms.

use pilot_core::{
    ArmId, ArmScore, Error, ErrorKind, Policy, Real, Result, Reward, RngCore, Snapshot,
    argmax_score, check_len,
};

use crate::kernel;
use crate::params::{
    EpsilonGreedyConfig, EpsilonGreedyParams, LinTsConfig, LinTsParams, LinUcbConfig, LinUcbParams,
};
use crate::random;
use crate::ridge::{Ridge, snapshot_max_len};
use crate::storage::{FixedArms, LinearArms};

fn best<F: Real>(scores: &[ArmScore<F>]) -> Result<ArmId> {
    argmax_score(scores).ok_or(Error::new(
        ErrorKind::NonFinite,
        "select: every score is NaN",
    ))
}

/// What the three ridge policies share: constructors, accessors, arm management, update and
/// snapshots. Each policy writes only its `select`.
macro_rules! ridge_policy {
    ($policy:ident, $params:ident, $config:ident, $field:ident, $magic:literal, $name:literal) => {
        impl<F: Real> $policy<(), F> {
            #[doc = concat!("Default ", $name, " hyperparameters, to adjust and `check()`.")]
            pub fn params() -> $params<F> {
                $params::default()
            }
        }

        impl<S: LinearArms<F>, F: Real> $policy<S, F> {
            /// Magic number of this policy's snapshots.
            pub const MAGIC: [u8; 4] = *$magic;

            /// `arm_count` arms of dimension `dim`, every arm started at zero.
            ///
            /// # Errors
            /// [`DimensionMismatch`](ErrorKind::DimensionMismatch) for `dim` outside
            /// `1..=MAX_DIM` or a shape a fixed storage cannot hold.
            pub fn new(config: $config<F>, arm_count: usize, dim: usize) -> Result<Self> {
                Ok(Self {
                    config,
                    ridge: Ridge::new(*config.ridge(), arm_count, dim)?,
                })
            }

            /// One arm per entry of `priors`: arm i starts at θ̂ = prior i with A = λI (PILOT),
            /// or at zero for `None`. The arguments come in [`new`](Self::new)'s order: the
            /// configuration, the arms (here their priors, so their count), the dimension.
            ///
            /// # Errors
            /// As [`new`](Self::new), plus [`DimensionMismatch`](ErrorKind::DimensionMismatch)
            /// or [`NonFinite`](ErrorKind::NonFinite) for a bad prior.
            pub fn with_priors(
                config: $config<F>,
                priors: &[Option<&[F]>],
                dim: usize,
            ) -> Result<Self> {
                Ok(Self {
                    config,
                    ridge: Ridge::with_priors(*config.ridge(), priors, dim)?,
                })
            }

            /// The checked hyperparameters.
            pub fn config(&self) -> &$config<F> {
                &self.config
            }

            /// The learned ridge state (θ̂, A⁻¹, estimates).
            pub fn ridge(&self) -> &Ridge<S, F> {
                &self.ridge
            }
        }

        #[cfg(feature = "alloc")]
        impl<F: Real> $policy<crate::storage::VecArms<F>, F> {
            /// Adds an arm started at `prior` (or zero) as index `arm_count() - 1`.
            ///
            /// # Errors
            /// [`DimensionMismatch`](ErrorKind::DimensionMismatch) /
            /// [`NonFinite`](ErrorKind::NonFinite) for a bad prior; nothing changes then.
            pub fn add_arm(&mut self, prior: Option<&[F]>) -> Result<ArmId> {
                self.ridge.add_arm(prior)
            }

            /// Removes an arm; every later arm's index drops by one.
            ///
            /// # Errors
            /// [`UnknownArm`](ErrorKind::UnknownArm); nothing changes then.
            pub fn remove_arm(&mut self, arm: ArmId) -> Result<()> {
                self.ridge.remove_arm(arm)
            }

            /// Restores a snapshot whatever its arm count: the pool grows or shrinks to the
            /// snapshot's (a pool saved after [`add_arm`](Self::add_arm) /
            /// [`remove_arm`](Self::remove_arm)). [`Snapshot::restore`] refuses a snapshot of
            /// another arm count; this is the explicit call that accepts one. Every other check
            /// is the same, and nothing changes on error.
            ///
            /// # Errors
            /// As [`Snapshot::restore`], except for the arm count.
            pub fn restore_resizing(&mut self, bytes: &[u8]) -> Result<()> {
                self.restore_sized(bytes, true)
            }
        }

        #[cfg(feature = "alloc")]
        impl<F: Real> pilot_core::GrowPool<F> for $policy<crate::storage::VecArms<F>, F> {
            fn add_arm(&mut self, prior: Option<&[F]>) -> Result<ArmId> {
                self.ridge.add_arm(prior)
            }
        }

        impl<const K: usize, const D: usize, F: Real> $policy<FixedArms<K, D, F>, F> {
            /// Exact upper bound of the snapshot bytes, for a buffer sized at compile time.
            pub const SNAPSHOT_LEN: usize = snapshot_max_len(K, D, F::BYTES);
        }

        impl<S: LinearArms<F>, F: Real> Snapshot for $policy<S, F> {
            fn snapshot_len(&self) -> usize {
                self.ridge.snapshot_len()
            }

            fn save(&self, out: &mut [u8]) -> Result<usize> {
                self.ridge.save(out, Self::MAGIC, self.config.$field())
            }

            /// Refuses a snapshot of another arm count with
            /// [`DimensionMismatch`](ErrorKind::DimensionMismatch), as it refuses another
            /// dimension; with the `alloc` storage, `restore_resizing` takes the pool's size
            /// from the snapshot instead.
            fn restore(&mut self, bytes: &[u8]) -> Result<()> {
                self.restore_sized(bytes, false)
            }
        }

        impl<S: LinearArms<F>, F: Real> $policy<S, F> {
            fn restore_sized(&mut self, bytes: &[u8], resize: bool) -> Result<()> {
                let (value, ridge) = self.ridge.restore_check(bytes, Self::MAGIC, resize)?;
                let config = $params::default()
                    .$field(value)
                    .ridge(ridge.params())
                    .check()
                    .map_err(|e| Error::new(ErrorKind::Corrupt, e.context()))?;
                self.ridge.restore_commit(bytes, Self::MAGIC, resize)?;
                self.config = config;
                Ok(())
            }
        }
    };
}

/// Disjoint LinUCB: per arm a ridge regression; the score is μ + α·√(xᵀA⁻¹x).
///
/// Started with [`with_priors`](LinUcb::with_priors) it is **PILOT**: each arm's regression
/// begins at its preference-prior vector with weight λ and shrinks toward it.
#[derive(Clone, Debug)]
pub struct LinUcb<S, F: Real = f32> {
    config: LinUcbConfig<F>,
    ridge: Ridge<S, F>,
}

/// LinUCB / PILOT with `K` arms of dimension `D` inline: no allocator.
pub type LinUcbFixed<const K: usize, const D: usize, F = f32> = LinUcb<FixedArms<K, D, F>, F>;
/// LinUCB / PILOT whose arms can be added and removed.
#[cfg(feature = "alloc")]
pub type LinUcbVec<F = f32> = LinUcb<crate::storage::VecArms<F>, F>;

ridge_policy!(LinUcb, LinUcbParams, LinUcbConfig, alpha, b"PLUC", "LinUCB");

impl<S: LinearArms<F>, F: Real> LinUcb<S, F> {
    /// Moves the weight of `arm`'s prior by `delta` ([`Ridge::shift_prior_weight`]): what
    /// [`PriorTrust`](crate::PriorTrust) uses to give each arm its own prior weight.
    ///
    /// # Errors
    /// As [`Ridge::shift_prior_weight`]; nothing changes on error.
    pub fn shift_prior_weight(&mut self, arm: ArmId, delta: F) -> Result<()> {
        self.ridge.shift_prior_weight(arm, delta)
    }
}

impl<S: LinearArms<F>, F: Real> Policy<F> for LinUcb<S, F> {
    fn dim(&self) -> usize {
        self.ridge.dim()
    }

    fn arm_count(&self) -> usize {
        self.ridge.arm_count()
    }

    fn select(
        &mut self,
        context: &[F],
        _rng: &mut dyn RngCore,
        scores: &mut [ArmScore<F>],
    ) -> Result<ArmId> {
        self.ridge.check_select(context, scores)?;
        let alpha = self.config.alpha();
        self.ridge.for_each_estimate(context, |i, e| {
            if let Some(out) = scores.get_mut(i) {
                *out = ArmScore {
                    estimate: e.mean,
                    width: e.width,
                    score: e.mean + alpha * e.width,
                };
            }
        });
        best(scores)
    }

    fn update(&mut self, arm: ArmId, context: &[F], reward: Reward<F>) -> Result<()> {
        self.ridge.update(arm, context, reward.get())
    }
}

/// Linear Thompson sampling: per arm a draw θ ~ N(θ̂, v²A⁻¹), scored by θ·x.
///
/// Only θ·x matters for the decision, and for a draw θ ~ N(θ̂, v²A⁻¹) it is exactly
/// N(θ̂·x, v²·xᵀA⁻¹x); `select` draws that scalar (one normal per arm, O(d²)) instead of a
/// d-dimensional θ through a Cholesky factor (O(d³) per arm). The full draw is available as
/// [`sample_parameters`](LinTs::sample_parameters); a test checks the two agree in distribution.
/// The reported width is the posterior standard deviation v·√(xᵀA⁻¹x).
#[derive(Clone, Debug)]
pub struct LinTs<S, F: Real = f32> {
    config: LinTsConfig<F>,
    ridge: Ridge<S, F>,
}

/// Linear Thompson sampling with `K` arms of dimension `D` inline.
pub type LinTsFixed<const K: usize, const D: usize, F = f32> = LinTs<FixedArms<K, D, F>, F>;
/// Linear Thompson sampling whose arms can be added and removed.
#[cfg(feature = "alloc")]
pub type LinTsVec<F = f32> = LinTs<crate::storage::VecArms<F>, F>;

ridge_policy!(
    LinTs,
    LinTsParams,
    LinTsConfig,
    scale,
    b"PLTS",
    "linear Thompson sampling"
);

impl<S: LinearArms<F>, F: Real> LinTs<S, F> {
    /// Draws a full parameter vector θ ~ N(θ̂, v²A⁻¹) of `arm` into `out`, through the
    /// Cholesky factor of A⁻¹ (factored in the scratch area, packed like A⁻¹). O(d³).
    ///
    /// # Errors
    /// [`UnknownArm`](ErrorKind::UnknownArm), [`DimensionMismatch`](ErrorKind::DimensionMismatch)
    /// for `out`, [`NotPositiveDefinite`](ErrorKind::NotPositiveDefinite) if A⁻¹ lost
    /// definiteness. The learned state never changes.
    pub fn sample_parameters(
        &mut self,
        arm: ArmId,
        rng: &mut dyn RngCore,
        out: &mut [F],
    ) -> Result<()> {
        let count = self.ridge.arm_count();
        let d = self.ridge.dim();
        check_len("sample_parameters: out", out, d)?;
        let scale = self.config.scale();
        let Some((state, scratch)) = self.ridge.parts_mut(arm.index()) else {
            return Err(Error::unknown_arm("sample_parameters", arm.index(), count));
        };
        let [z, ..] = scratch.vectors;
        let factor = scratch.matrix;
        factor.copy_from_slice(state.a_inv);
        kernel::cholesky_in_place(factor, d)?;
        random::fill_standard_normal(rng, z);
        kernel::lower_mul(factor, z, out);
        for (o, &t) in out.iter_mut().zip(state.theta.iter()) {
            *o = t + scale * *o;
        }
        Ok(())
    }
}

impl<S: LinearArms<F>, F: Real> Policy<F> for LinTs<S, F> {
    fn dim(&self) -> usize {
        self.ridge.dim()
    }

    fn arm_count(&self) -> usize {
        self.ridge.arm_count()
    }

    fn select(
        &mut self,
        context: &[F],
        rng: &mut dyn RngCore,
        scores: &mut [ArmScore<F>],
    ) -> Result<ArmId> {
        self.ridge.check_select(context, scores)?;
        let scale = self.config.scale();
        let mut spare: Option<f64> = None;
        self.ridge.for_each_estimate(context, |i, e| {
            let z = match spare.take() {
                Some(z) => z,
                None => {
                    let (a, b) = random::standard_normal_pair(rng);
                    spare = Some(b);
                    a
                }
            };
            let sd = scale * e.width;
            if let Some(out) = scores.get_mut(i) {
                *out = ArmScore {
                    estimate: e.mean,
                    width: sd,
                    score: e.mean + sd * F::from_f64(z),
                };
            }
        });
        best(scores)
    }

    fn update(&mut self, arm: ArmId, context: &[F], reward: Reward<F>) -> Result<()> {
        self.ridge.update(arm, context, reward.get())
    }
}

/// ε-greedy on the ridge estimates: with probability ε every arm is scored by a fresh uniform
/// draw (so the pick is uniform), otherwise by its estimate μ = θ̂·x.
///
/// Reported widths are √(xᵀA⁻¹x), for information; they never enter the score.
#[derive(Clone, Debug)]
pub struct EpsilonGreedy<S, F: Real = f32> {
    config: EpsilonGreedyConfig<F>,
    ridge: Ridge<S, F>,
}

/// ε-greedy with `K` arms of dimension `D` inline.
pub type EpsilonGreedyFixed<const K: usize, const D: usize, F = f32> =
    EpsilonGreedy<FixedArms<K, D, F>, F>;
/// ε-greedy whose arms can be added and removed.
#[cfg(feature = "alloc")]
pub type EpsilonGreedyVec<F = f32> = EpsilonGreedy<crate::storage::VecArms<F>, F>;

ridge_policy!(
    EpsilonGreedy,
    EpsilonGreedyParams,
    EpsilonGreedyConfig,
    epsilon,
    b"PEPS",
    "ε-greedy"
);

impl<S: LinearArms<F>, F: Real> Policy<F> for EpsilonGreedy<S, F> {
    fn dim(&self) -> usize {
        self.ridge.dim()
    }

    fn arm_count(&self) -> usize {
        self.ridge.arm_count()
    }

    fn select(
        &mut self,
        context: &[F],
        rng: &mut dyn RngCore,
        scores: &mut [ArmScore<F>],
    ) -> Result<ArmId> {
        self.ridge.check_select(context, scores)?;
        let explore = random::uniform::<F>(rng) < self.config.epsilon();
        self.ridge.for_each_estimate(context, |i, e| {
            let score = if explore {
                random::uniform(rng)
            } else {
                e.mean
            };
            if let Some(out) = scores.get_mut(i) {
                *out = ArmScore {
                    estimate: e.mean,
                    width: e.width,
                    score,
                };
            }
        });
        best(scores)
    }

    fn update(&mut self, arm: ArmId, context: &[F], reward: Reward<F>) -> Result<()> {
        self.ridge.update(arm, context, reward.get())
    }
}
