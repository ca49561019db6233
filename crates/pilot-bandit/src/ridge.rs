//! The ridge-regression state shared by LinUCB, PILOT, LinTS and ε-greedy, generic over storage.
//!
//! Each arm a keeps A⁻¹, b and θ̂ = A⁻¹b of a ridge regression of rewards on contexts. A fresh
//! arm starts at A = λI and b = λ·θ₀, so θ̂ = θ₀ (PILOT's preference prior) and the regression
//! shrinks toward θ₀ instead of toward zero; an arm without a prior has θ₀ = 0 (plain LinUCB).
//!
//! An update of arm a with context x and reward r is the recursive least-squares step
//! s = A⁻¹x, c = 1/(1 + xᵀs), A⁻¹ ← A⁻¹ − c·s·sᵀ (Sherman–Morrison), b ← b + r·x and
//! θ̂ ← θ̂ + c·s·(r − xᵀθ̂), which equals A⁻¹b after the update: O(d²) in all.
//!
//! Drift (discount γ < 1), applied to the updated arm just before each of its updates: A ← γA
//! and b ← γb (so A⁻¹ ← A⁻¹/γ and θ̂ is unchanged), then one prior pseudo-observation on
//! coordinate k = (updates mod d): A ← A + w·e_k·e_kᵀ and b ← b + w·θ₀_k·e_k with
//! w = (1 − γ)·λ·d, a rank-1 step like any other. Over d updates the pseudo-observations add
//! (1 − γ)·λ·I per update on average, which is exactly what the decay takes from the prior's λI,
//! so A stays near λI + Σ γ^age·x·xᵀ: old data fades with half-life ln 2 / (1 − γ) updates of
//! that arm while the prior is kept, and A⁻¹ stays bounded in directions no context visits.
//! Decaying per update of the arm (not per step of the pool) means an arm that is rarely played
//! keeps what it learned instead of drifting back to its prior while nobody watches it.
//!
//! Every update computes the new values in the scratch area, checks them and only then writes,
//! so an error leaves the arm exactly as it was.

use pilot_core::{ArmId, Detail, Error, ErrorKind, Real, Result, check_finite, check_len};

use crate::kernel;
use crate::packed;
use crate::params::{RidgeConfig, check_reward};
use crate::storage::{ArmMut, LinearArms, Pool, Scratch};

/// Largest context dimension accepted: keeps `d²` far from overflow and A⁻¹ of one arm under
/// 64 MiB in `f32`.
pub const MAX_DIM: usize = 4096;

/// Per-arm ridge regressions over a storage `S`, with their shared settings.
#[derive(Clone, Debug)]
pub struct Ridge<S, F: Real = f32> {
    config: RidgeConfig<F>,
    arms: S,
}

/// The estimate μ = θ̂·x and the width √(xᵀA⁻¹x) of one arm.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Estimate<F> {
    /// μ = θ̂·x.
    pub mean: F,
    /// √(xᵀA⁻¹x) ≥ 0.
    pub width: F,
}

fn check_dim(dim: usize) -> Result<()> {
    if dim == 0 || dim > MAX_DIM {
        return Err(Error::new(
            ErrorKind::DimensionMismatch,
            "dimension (must be in 1..=4096)",
        )
        .with_detail(Detail::Mismatch {
            expected: MAX_DIM,
            found: dim,
        }));
    }
    Ok(())
}

/// A prior must be finite and so must b = λ·θ₀ (a prior near `F::MAX` with λ > 1 overflows).
fn check_prior<F: Real>(prior: Option<&[F]>, dim: usize, lambda: F) -> Result<()> {
    if let Some(p) = prior {
        check_len("prior", p, dim)?;
        check_finite("prior", p)?;
        if let Some(&v) = p.iter().find(|&&v| !(lambda * v).is_finite()) {
            return Err(Error::non_finite("prior: λ·prior overflows", v.to_f64()));
        }
    }
    Ok(())
}

/// Puts an arm at its start: A⁻¹ = I/λ, b = λ·θ₀, θ̂ = θ₀. `prior` was checked.
fn init_arm<F: Real>(arm: ArmMut<'_, F>, lambda: F, prior: Option<&[F]>) {
    let d = arm.b.len();
    arm.a_inv.iter_mut().for_each(|v| *v = F::ZERO);
    let inv = F::ONE / lambda;
    for i in 0..d {
        if let Some(v) = arm.a_inv.get_mut(packed::diagonal(i)) {
            *v = inv;
        }
    }
    match prior {
        Some(p) => arm.prior.copy_from_slice(p),
        None => arm.prior.iter_mut().for_each(|v| *v = F::ZERO),
    }
    arm.theta.copy_from_slice(arm.prior);
    for (b, &p) in arm.b.iter_mut().zip(arm.prior.iter()) {
        *b = lambda * p;
    }
    *arm.updates = 0;
}

/// The vectors of an update in progress: s = A⁻¹x, u = √c·s, and the new θ̂ and b.
struct Staged<'a, F> {
    s: &'a mut [F],
    u: &'a mut [F],
    theta: &'a mut [F],
    b: &'a mut [F],
}

/// Why an update can find A⁻¹ no longer positive definite, and what to do about it.
///
/// Without a discount A grows with every update and A⁻¹'s eigenvalues shrink like 1/n, while
/// each rank-1 step adds rounding error of the size of A⁻¹'s largest entries; in `f32` the error
/// overtakes the smallest eigenvalue after roughly 10⁵–10⁶ updates of one arm (measured: d = 16,
/// the first refusal after 835 k updates). The update is refused and the arm keeps its state;
/// `f64` state or a discount γ < 1 (which keeps A⁻¹ bounded away from zero) avoids it.
const LOST_DEFINITENESS: &str = "update: A⁻¹ no longer positive definite (a context too large \
    for the scalar type, or f32 rounding after very many updates of this arm: use f64 state or \
    a discount < 1)";

/// μ = θ̂·x and the width √q from the quadratic form q = xᵀA⁻¹x (clamped at 0 against rounding).
fn estimate_from<F: Real>(theta: &[F], context: &[F], q: F) -> Estimate<F> {
    // A comparison rather than `max`: libm's fmax is a call, and NaN goes to 0 either way.
    let q = if q > F::ZERO { q } else { F::ZERO };
    Estimate {
        mean: kernel::dot(theta, context),
        width: q.sqrt(),
    }
}

/// Checks that A⁻¹ − u·uᵀ keeps a positive diagonal before it is written. A huge but finite
/// context (‖x‖ ≈ 10⁴ in `f32`) makes u_i² round to A⁻¹_ii, and the subtraction would leave a
/// zero or negative diagonal: a state no snapshot restores and no Cholesky factor exists for.
fn check_stays_definite<F: Real>(context: &'static str, m: &[F], u: &[F]) -> Result<()> {
    for (i, &ui) in u.iter().enumerate() {
        let diag = m.get(packed::diagonal(i)).copied().unwrap_or(F::ZERO) - ui * ui;
        if !(diag > F::ZERO) {
            return Err(Error::new(ErrorKind::NotPositiveDefinite, context)
                .with_detail(Detail::Value(diag.to_f64())));
        }
    }
    Ok(())
}

/// One rank-1 step on a staged copy (`m`, `theta`, `b` in scratch): adds weight `w` on
/// direction `x` with target `r`. Writes u = √c·s into `u` for the caller to apply to `m`.
fn stage_rank_one<F: Real>(
    context: &'static str,
    m: &[F],
    x: &[F],
    w: F,
    r: F,
    staged: &mut Staged<'_, F>,
) -> Result<()> {
    let Staged { s, u, theta, b } = staged;
    kernel::sym_mat_vec(m, x, s);
    let q = kernel::dot(x, s);
    let residual = r - kernel::dot(x, theta);
    let denom = F::ONE + w * q;
    check_finite(context, &[q, residual])?;
    // A positive definite A⁻¹ gives q ≥ 0; anything else means rounding has eaten its
    // smallest eigenvalues (see LOST_DEFINITENESS).
    if !(q >= F::ZERO && denom > F::ZERO) {
        return Err(
            Error::new(ErrorKind::NotPositiveDefinite, LOST_DEFINITENESS)
                .with_detail(Detail::Value(q.to_f64())),
        );
    }
    let c = w / denom;
    let root_c = c.sqrt();
    for (((ui, &si), t), (bi, &xi)) in u
        .iter_mut()
        .zip(s.iter())
        .zip(theta.iter_mut())
        .zip(b.iter_mut().zip(x))
    {
        *ui = root_c * si;
        *t += c * si * residual;
        *bi += w * r * xi;
    }
    check_finite(context, u)?;
    check_stays_definite(LOST_DEFINITENESS, m, u)?;
    check_finite(context, theta)?;
    check_finite(context, b)
}

/// [`stage_rank_one`] for the direction e_k, in O(d): s = A⁻¹e_k is column k of the symmetric
/// staged matrix `m` and xᵀs its diagonal entry.
fn stage_unit_step<F: Real>(
    m: &[F],
    k: usize,
    w: F,
    target: F,
    staged: &mut Staged<'_, F>,
) -> Result<()> {
    let Staged { s, u, theta, b } = staged;
    let d = theta.len();
    for (j, sj) in s.iter_mut().enumerate() {
        *sj = m.get(packed::index(k, j)).copied().unwrap_or(F::ZERO);
    }
    let column: &[F] = s;
    let (Some(&q), Some(&theta_k)) = (column.get(k), theta.get(k)) else {
        return Err(Error::unknown_arm("update: discount coordinate", k, d));
    };
    let residual = target - theta_k;
    let denom = F::ONE + w * q;
    check_finite("update: discount", &[q, residual])?;
    if !(q > F::ZERO && denom > F::ZERO) {
        return Err(
            Error::new(ErrorKind::NotPositiveDefinite, "update: discount")
                .with_detail(Detail::Value(q.to_f64())),
        );
    }
    let c = w / denom;
    let root_c = c.sqrt();
    for ((ui, &si), t) in u.iter_mut().zip(column).zip(theta.iter_mut()) {
        *ui = root_c * si;
        *t += c * si * residual;
    }
    if let Some(bk) = b.get_mut(k) {
        *bk += w * target;
    }
    check_finite("update: discount", u)?;
    check_stays_definite("update: discount", m, u)?;
    check_finite("update: discount", theta)
}

impl<S: LinearArms<F>, F: Real> Ridge<S, F> {
    /// `arm_count` arms of dimension `dim`, none with a prior (plain LinUCB).
    ///
    /// # Errors
    /// [`DimensionMismatch`](ErrorKind::DimensionMismatch) for `dim` outside `1..=MAX_DIM` or
    /// a shape a fixed storage cannot hold.
    pub fn new(config: RidgeConfig<F>, arm_count: usize, dim: usize) -> Result<Self> {
        check_dim(dim)?;
        let mut arms = S::with_shape(arm_count, dim)?;
        let lambda = config.lambda();
        for i in 0..arm_count {
            if let Some((arm, _)) = arms.arm_mut(i) {
                init_arm(arm, lambda, None);
            }
        }
        Ok(Self { config, arms })
    }

    /// One arm per entry of `priors`, each started at its prior (PILOT) or at zero for `None`.
    ///
    /// # Errors
    /// As [`new`](Ridge::new), plus [`DimensionMismatch`](ErrorKind::DimensionMismatch) /
    /// [`NonFinite`](ErrorKind::NonFinite) for a prior of the wrong length or with NaN/∞.
    pub fn with_priors(
        config: RidgeConfig<F>,
        priors: &[Option<&[F]>],
        dim: usize,
    ) -> Result<Self> {
        check_dim(dim)?;
        for p in priors {
            check_prior(*p, dim, config.lambda())?;
        }
        let mut arms = S::with_shape(priors.len(), dim)?;
        let lambda = config.lambda();
        for (i, p) in priors.iter().enumerate() {
            if let Some((arm, _)) = arms.arm_mut(i) {
                init_arm(arm, lambda, *p);
            }
        }
        Ok(Self { config, arms })
    }

    /// The shared settings.
    pub fn config(&self) -> &RidgeConfig<F> {
        &self.config
    }

    /// The storage, read-only.
    pub fn arms(&self) -> &S {
        &self.arms
    }

    /// Context dimension.
    pub fn dim(&self) -> usize {
        self.arms.dim()
    }

    /// Number of arms.
    pub fn arm_count(&self) -> usize {
        self.arms.arm_count()
    }

    /// θ̂ of `arm`.
    ///
    /// # Errors
    /// [`UnknownArm`](ErrorKind::UnknownArm).
    pub fn theta(&self, arm: ArmId) -> Result<&[F]> {
        let count = self.arm_count();
        self.arms
            .arm(arm.index())
            .map(|a| a.theta)
            .ok_or(Error::unknown_arm("theta", arm.index(), count))
    }

    /// A⁻¹ of `arm` as stored: its packed lower triangle, `d(d+1)/2` entries; entry (i, j) is
    /// at [`packed::index(i, j)`](crate::packed::index).
    ///
    /// # Errors
    /// [`UnknownArm`](ErrorKind::UnknownArm).
    pub fn a_inv(&self, arm: ArmId) -> Result<&[F]> {
        let count = self.arm_count();
        self.arms
            .arm(arm.index())
            .map(|a| a.a_inv)
            .ok_or(Error::unknown_arm("a_inv", arm.index(), count))
    }

    /// A⁻¹ of `arm` unpacked into `out` as a full `d × d` row-major matrix.
    ///
    /// # Errors
    /// [`UnknownArm`](ErrorKind::UnknownArm), [`DimensionMismatch`](ErrorKind::DimensionMismatch)
    /// when `out` is not `d²` long.
    pub fn a_inv_full(&self, arm: ArmId, out: &mut [F]) -> Result<()> {
        let d = self.dim();
        check_len("a_inv_full: out", out, d * d)?;
        let packed_a_inv = self.a_inv(arm)?;
        if packed::unpack(packed_a_inv, d, out) {
            Ok(())
        } else {
            Err(Error::dimension(
                "a_inv_full: packed A⁻¹",
                packed::len(d),
                packed_a_inv.len(),
            ))
        }
    }

    /// Checks a context for [`select`](pilot_core::Policy::select) / update.
    ///
    /// # Errors
    /// [`DimensionMismatch`](ErrorKind::DimensionMismatch), [`NonFinite`](ErrorKind::NonFinite).
    pub fn check_context(&self, context: &[F]) -> Result<()> {
        check_len("context", context, self.dim())?;
        check_finite("context", context)
    }

    /// Checks the context and the scores buffer of a select, and that the pool has arms.
    ///
    /// # Errors
    /// [`DimensionMismatch`](ErrorKind::DimensionMismatch), [`NonFinite`](ErrorKind::NonFinite),
    /// [`Empty`](ErrorKind::Empty).
    pub fn check_select<T>(&self, context: &[F], scores: &[T]) -> Result<()> {
        self.check_context(context)?;
        check_len("select: scores", scores, self.arm_count())?;
        if self.arm_count() == 0 {
            return Err(Error::new(ErrorKind::Empty, "select: pool has no arms"));
        }
        Ok(())
    }

    /// Arm `index` with the scratch area (for Thompson sampling's Cholesky factor).
    pub(crate) fn parts_mut(&mut self, index: usize) -> Option<(ArmMut<'_, F>, Scratch<'_, F>)> {
        self.arms.arm_mut(index)
    }

    /// μ and width of every arm for a checked context, handed to `each` in arm order.
    ///
    /// At small d the weights of xᵀA⁻¹x are staged once in the scratch area and each arm's
    /// width is one flat dot product ([`kernel::stages_weights`]); at large d each arm goes
    /// through the four-row kernel. Either way the bits equal [`estimate`](Ridge::estimate)'s.
    pub(crate) fn for_each_estimate(
        &mut self,
        context: &[F],
        mut each: impl FnMut(usize, Estimate<F>),
    ) {
        let d = context.len();
        let staged = kernel::stages_weights::<F>(d);
        let count = self.arms.arm_count();
        let Pool {
            a_inv,
            a_inv_stride,
            theta,
            scratch,
        } = self.arms.pool();
        if staged {
            kernel::quad_weights(context, scratch);
        }
        let weights: &[F] = scratch;
        let arms = a_inv
            .chunks(a_inv_stride.max(1))
            .zip(theta.chunks_exact(d.max(1)))
            .take(count);
        for (i, (a, th)) in arms.enumerate() {
            let a = a.get(..packed::len(d)).unwrap_or(a);
            let q = if staged {
                kernel::weighted_sum(a, weights)
            } else {
                kernel::sym_quad_form(a, context)
            };
            each(i, estimate_from(th, context, q));
        }
    }

    /// μ and width of arm `index` for a context that was checked.
    fn estimate_unchecked(&self, index: usize, context: &[F]) -> Estimate<F> {
        let Some(arm) = self.arms.arm(index) else {
            return estimate_from(&[], context, F::ZERO);
        };
        let q = if kernel::stages_weights::<F>(context.len()) {
            kernel::weighted_quad_form_unstaged(arm.a_inv, context)
        } else {
            kernel::sym_quad_form(arm.a_inv, context)
        };
        estimate_from(arm.theta, context, q)
    }

    /// μ and width of `arm` for `context`.
    ///
    /// # Errors
    /// As [`check_context`](Ridge::check_context), plus [`UnknownArm`](ErrorKind::UnknownArm).
    pub fn estimate(&self, arm: ArmId, context: &[F]) -> Result<Estimate<F>> {
        self.check_context(context)?;
        if arm.index() >= self.arm_count() {
            return Err(Error::unknown_arm(
                "estimate",
                arm.index(),
                self.arm_count(),
            ));
        }
        Ok(self.estimate_unchecked(arm.index(), context))
    }

    /// Learns reward `reward` of `arm` on `context`; on error nothing changes.
    ///
    /// # Errors
    /// [`UnknownArm`](ErrorKind::UnknownArm), [`DimensionMismatch`](ErrorKind::DimensionMismatch),
    /// [`NonFinite`](ErrorKind::NonFinite) (input, or an overflowing result),
    /// [`OutOfRange`](ErrorKind::OutOfRange) for a reward outside the configured range,
    /// [`NotPositiveDefinite`](ErrorKind::NotPositiveDefinite) if the state was damaged.
    pub fn update(&mut self, arm: ArmId, context: &[F], reward: F) -> Result<()> {
        let count = self.arm_count();
        if arm.index() >= count {
            return Err(Error::unknown_arm("update: arm", arm.index(), count));
        }
        self.check_context(context)?;
        check_reward(&self.config, reward)?;
        let (lambda, gamma) = (self.config.lambda(), self.config.discount());
        let Some((state, scratch)) = self.arms.arm_mut(arm.index()) else {
            return Err(Error::unknown_arm("update: arm", arm.index(), count));
        };
        let Scratch { matrix, vectors } = scratch;
        let [s, u, theta, b] = vectors;
        theta.copy_from_slice(state.theta);
        b.copy_from_slice(state.b);
        let mut staged = Staged { s, u, theta, b };
        let d = context.len();
        if gamma < F::ONE {
            // Stage A⁻¹/γ and the prior pseudo-observation in scratch, then the data step.
            for (m, &a) in matrix.iter_mut().zip(state.a_inv.iter()) {
                *m = a / gamma;
            }
            staged.b.iter_mut().for_each(|v| *v *= gamma);
            let w = (F::ONE - gamma) * lambda * F::from_f64(d as f64);
            let k = usize::try_from(*state.updates % d as u64).unwrap_or(0);
            let target = state.prior.get(k).copied().unwrap_or(F::ZERO);
            stage_unit_step(matrix, k, w, target, &mut staged)?;
            kernel::sub_outer(matrix, staged.u);
            stage_rank_one("update", matrix, context, F::ONE, reward, &mut staged)?;
            kernel::sub_outer(matrix, staged.u);
            check_finite("update", matrix)?;
            state.a_inv.copy_from_slice(matrix);
        } else {
            stage_rank_one("update", state.a_inv, context, F::ONE, reward, &mut staged)?;
            kernel::sub_outer(state.a_inv, staged.u);
        }
        state.theta.copy_from_slice(staged.theta);
        state.b.copy_from_slice(staged.b);
        *state.updates = state.updates.saturating_add(1);
        Ok(())
    }
}

impl<S: LinearArms<F>, F: Real> Ridge<S, F> {
    /// Moves the weight of `arm`'s prior by `delta`: A ← A + δ·I and b ← b + δ·θ₀, so the arm
    /// behaves as if started with prior weight λ' = λ_now + δ (its data kept). Done as d
    /// rank-1 steps on the unit directions (Sherman–Morrison, O(d³) in all) in the scratch
    /// area, checked before anything is written: on error the arm is exactly as it was.
    /// The caller keeps λ_now + δ > 0 (a shrink below zero weight is refused when A⁻¹'s
    /// diagonal would not stay positive).
    ///
    /// # Errors
    /// [`UnknownArm`](ErrorKind::UnknownArm), [`NonFinite`](ErrorKind::NonFinite) for a
    /// non-finite `delta` or result, [`NotPositiveDefinite`](ErrorKind::NotPositiveDefinite)
    /// when the shift would leave A not positive definite.
    pub fn shift_prior_weight(&mut self, arm: ArmId, delta: F) -> Result<()> {
        let count = self.arm_count();
        check_finite("shift_prior_weight: delta", &[delta])?;
        let Some((state, scratch)) = self.arms.arm_mut(arm.index()) else {
            return Err(Error::unknown_arm("shift_prior_weight", arm.index(), count));
        };
        let Scratch { matrix, vectors } = scratch;
        let [s, _, theta, b] = vectors;
        matrix.copy_from_slice(state.a_inv);
        theta.copy_from_slice(state.theta);
        b.copy_from_slice(state.b);
        let d = theta.len();
        for k in 0..d {
            // s = A⁻¹e_k (column k), q = its diagonal entry; A⁻¹ ← A⁻¹ − c·s·sᵀ with
            // c = δ / (1 + δ·q), θ̂ ← θ̂ + c·s·(θ₀_k − θ̂_k), b_k ← b_k + δ·θ₀_k.
            for (j, sj) in s.iter_mut().enumerate() {
                *sj = matrix.get(packed::index(k, j)).copied().unwrap_or(F::ZERO);
            }
            let q = s.get(k).copied().unwrap_or(F::ZERO);
            let target = state.prior.get(k).copied().unwrap_or(F::ZERO);
            let theta_k = theta.get(k).copied().unwrap_or(F::ZERO);
            let denom = F::ONE + delta * q;
            if !(q > F::ZERO && denom > F::ZERO) {
                return Err(Error::new(
                    ErrorKind::NotPositiveDefinite,
                    "shift_prior_weight: A would not stay positive definite",
                )
                .with_detail(Detail::Value(denom.to_f64())));
            }
            let c = delta / denom;
            let residual = target - theta_k;
            for (t, &sj) in theta.iter_mut().zip(s.iter()) {
                *t += c * sj * residual;
            }
            for i in 0..d {
                let si = s.get(i).copied().unwrap_or(F::ZERO);
                for j in 0..=i {
                    let sj = s.get(j).copied().unwrap_or(F::ZERO);
                    if let Some(m) = matrix.get_mut(packed::index(i, j)) {
                        *m -= c * si * sj;
                    }
                }
            }
            if let Some(bk) = b.get_mut(k) {
                *bk += delta * target;
            }
        }
        check_finite("shift_prior_weight", matrix)?;
        check_finite("shift_prior_weight", theta)?;
        check_finite("shift_prior_weight", b)?;
        if (0..d).any(|i| {
            matrix
                .get(packed::diagonal(i))
                .is_none_or(|&v| !(v > F::ZERO))
        }) {
            return Err(Error::new(
                ErrorKind::NotPositiveDefinite,
                "shift_prior_weight: A⁻¹ diagonal not positive",
            ));
        }
        state.a_inv.copy_from_slice(matrix);
        state.theta.copy_from_slice(theta);
        state.b.copy_from_slice(b);
        Ok(())
    }

    /// The prior θ₀ of `arm` (zeros for an arm started without one).
    ///
    /// # Errors
    /// [`UnknownArm`](ErrorKind::UnknownArm).
    pub fn prior(&self, arm: ArmId) -> Result<&[F]> {
        let count = self.arm_count();
        self.arms
            .arm(arm.index())
            .map(|a| a.prior)
            .ok_or(Error::unknown_arm("prior", arm.index(), count))
    }
}

/// Upper bound on the snapshot bytes of a ridge policy with `arm_count` arms of dimension `dim`
/// and `scalar_bytes`-byte scalars, envelope included.
///
/// Layout (postcard, in order): scalar width `u8`; the policy's own parameter, λ, reward min,
/// reward max and discount (5 scalars); dim and arm count (`u32` varints); then per arm the
/// update count (`u64` varint), θ₀ (d), A⁻¹ (its packed lower triangle, d(d+1)/2), b (d) and
/// θ̂ (d).
pub const fn snapshot_max_len(arm_count: usize, dim: usize, scalar_bytes: usize) -> usize {
    pilot_core::envelope::HEADER_LEN
        + 1
        + 5 * scalar_bytes
        + 2 * crate::codec::VARINT_U32_MAX
        + arm_count * (crate::codec::VARINT_U64_MAX + (packed::len(dim) + 3 * dim) * scalar_bytes)
}

impl<S: LinearArms<F>, F: Real> Ridge<S, F> {
    /// Upper bound on the snapshot bytes for the current pool.
    pub fn snapshot_len(&self) -> usize {
        snapshot_max_len(self.arm_count(), self.dim(), F::BYTES)
    }

    /// Writes the framed snapshot (with the policy's own parameter `extra`) into `out`.
    pub(crate) fn save(&self, out: &mut [u8], magic: [u8; 4], extra: F) -> Result<usize> {
        let mut w = crate::codec::Writer::new(out);
        let (min, max) = self.config.reward_range();
        w.put(&(F::BYTES as u8))?;
        for v in [
            extra,
            self.config.lambda(),
            min,
            max,
            self.config.discount(),
        ] {
            w.real(v)?;
        }
        w.put(&(self.dim() as u32))?;
        w.put(&(self.arm_count() as u32))?;
        for i in 0..self.arm_count() {
            let Some(arm) = self.arms.arm(i) else {
                return Err(Error::unknown_arm("snapshot: arm", i, self.arm_count()));
            };
            w.put(&arm.updates)?;
            w.reals(arm.prior)?;
            w.reals(arm.a_inv)?;
            w.reals(arm.b)?;
            w.reals(arm.theta)?;
        }
        w.seal(magic)
    }

    /// Reads and checks the head of a snapshot: returns the policy parameter, the ridge config
    /// and the arm count. Unless `resize`, the arm count must equal this pool's.
    fn read_head(
        &self,
        r: &mut crate::codec::Reader<'_>,
        resize: bool,
    ) -> Result<(F, RidgeConfig<F>, usize)> {
        crate::codec::check_width::<F>(r.take::<u8>("snapshot: scalar width")?)?;
        let extra = r.real("snapshot: policy parameter")?;
        let lambda = r.real("snapshot: lambda")?;
        let min = r.real("snapshot: reward min")?;
        let max = r.real("snapshot: reward max")?;
        let discount = r.real("snapshot: discount")?;
        let config = crate::params::RidgeParams::new(lambda, min, max, discount)
            .check()
            .map_err(|e| Error::new(ErrorKind::Corrupt, e.context()))?;
        let dim = r.u32_as_usize("snapshot: dim")?;
        if dim != self.dim() {
            return Err(Error::dimension("snapshot: dim", self.dim(), dim));
        }
        let count = r.u32_as_usize("snapshot: arm count")?;
        if !resize && count != self.arm_count() {
            return Err(Error::dimension(
                "snapshot: arm count (a pool of another size restores only through restore_resizing)",
                self.arm_count(),
                count,
            ));
        }
        self.arms.check_arm_count(count)?;
        Ok((extra, config, count))
    }

    /// Replaces the whole state with the snapshot in `bytes`, or changes nothing on error.
    ///
    /// Two passes over the bytes: the first checks everything (frame, widths, dimensions, arm
    /// count, finiteness, A⁻¹ with a positive diagonal) using only the scratch
    /// area; the second, which cannot fail on bytes the first accepted, writes. Returns the
    /// policy parameter for the caller to check before calling [`restore_commit`]. Unless
    /// `resize`, a snapshot of another arm count is a
    /// [`DimensionMismatch`](ErrorKind::DimensionMismatch).
    pub(crate) fn restore_check(
        &mut self,
        bytes: &[u8],
        magic: [u8; 4],
        resize: bool,
    ) -> Result<(F, RidgeConfig<F>)> {
        let mut r = crate::codec::Reader::open(bytes, magic)?;
        let (extra, config, count) = self.read_head(&mut r, resize)?;
        let d = self.dim();
        let matrix = self.arms.scratch().matrix;
        for _ in 0..count {
            r.take::<u64>("snapshot: update count")?;
            r.skip_reals::<F>("snapshot: prior", d)?;
            r.reals("snapshot: A⁻¹", matrix)?;
            if (0..d).any(|i| {
                matrix
                    .get(packed::diagonal(i))
                    .is_none_or(|&v| !(v > F::ZERO))
            }) {
                return Err(Error::new(
                    ErrorKind::Corrupt,
                    "snapshot: A⁻¹ diagonal not positive",
                ));
            }
            r.skip_reals::<F>("snapshot: b", d)?;
            r.skip_reals::<F>("snapshot: theta", d)?;
        }
        r.finish()?;
        Ok((extra, config))
    }

    /// The writing pass of a restore whose bytes passed [`restore_check`].
    pub(crate) fn restore_commit(
        &mut self,
        bytes: &[u8],
        magic: [u8; 4],
        resize: bool,
    ) -> Result<()> {
        let mut r = crate::codec::Reader::open(bytes, magic)?;
        let (_, config, count) = self.read_head(&mut r, resize)?;
        self.arms.set_arm_count(count)?;
        for i in 0..count {
            let Some((arm, _)) = self.arms.arm_mut(i) else {
                return Err(Error::unknown_arm("snapshot: arm", i, count));
            };
            *arm.updates = r.take("snapshot: update count")?;
            r.reals("snapshot: prior", arm.prior)?;
            r.reals("snapshot: A⁻¹", arm.a_inv)?;
            r.reals("snapshot: b", arm.b)?;
            r.reals("snapshot: theta", arm.theta)?;
        }
        self.config = config;
        Ok(())
    }
}

#[cfg(feature = "alloc")]
impl<F: Real> Ridge<crate::storage::VecArms<F>, F> {
    /// Adds an arm (a new LLM joins the pool) started at `prior`, or at zero for `None`; it
    /// takes the next index, `arm_count() - 1`, which is returned.
    ///
    /// # Errors
    /// [`DimensionMismatch`](ErrorKind::DimensionMismatch) / [`NonFinite`](ErrorKind::NonFinite)
    /// for a bad prior; nothing changes then.
    pub fn add_arm(&mut self, prior: Option<&[F]>) -> Result<ArmId> {
        check_prior(prior, self.dim(), self.config.lambda())?;
        let index = self.arms.push_arm();
        let lambda = self.config.lambda();
        if let Some((arm, _)) = self.arms.arm_mut(index) {
            init_arm(arm, lambda, prior);
        }
        Ok(ArmId::new(index))
    }

    /// Removes an arm; every later arm's index drops by one.
    ///
    /// # Errors
    /// [`UnknownArm`](ErrorKind::UnknownArm); nothing changes then.
    pub fn remove_arm(&mut self, arm: ArmId) -> Result<()> {
        self.arms.remove_arm(arm.index())
    }
}
