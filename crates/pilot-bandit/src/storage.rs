//! Where the per-arm ridge state lives: one trait, a fixed-capacity form and a `Vec` form.
//!
//! The algorithms ([`Ridge`](crate::Ridge) and the policies on top) are written once against
//! [`LinearArms`]; the storage only hands out slices. Per arm it keeps A⁻¹ (symmetric, as its
//! packed lower triangle: [`packed`]), b, θ̂ = A⁻¹b, the prior θ₀ (zero for an
//! arm without one) and an update count, plus one shared scratch area (a packed matrix and four
//! vectors) so no algorithm needs an allocator or a large stack frame.
//!
//! Memory of [`VecArms`]: `K·(d(d+1)/2 + 3d)` scalars and `K` counters, plus `d(d+1)/2 + 4d`
//! scalars of scratch. [`FixedArms`] reserves a whole `D × D` block per matrix, because stable
//! Rust cannot size an array `D(D+1)/2` from a const generic, and uses its first `D(D+1)/2`
//! entries: `K·(D² + 3D)` + `D² + 4D` scalars. For `f32`, K = 8 and D = 16 that is
//! 9 792 + 1 280 bytes.

use pilot_core::{Error, Real, Result};

use crate::packed;

/// The first `D(D+1)/2` entries of a `D × D` block: where a fixed form keeps a packed matrix.
fn packed_part<F, const D: usize>(block: &mut [[F; D]; D]) -> &mut [F] {
    let flat = block.as_flattened_mut();
    let used = packed::len(D).min(flat.len());
    &mut flat[..used]
}

/// One arm's state, read-only.
#[derive(Debug)]
pub struct ArmRef<'a, F> {
    /// A⁻¹, packed: `d(d+1)/2` entries ([`packed`]).
    pub a_inv: &'a [F],
    /// b = λ·θ₀ + Σ r·x.
    pub b: &'a [F],
    /// θ̂ = A⁻¹b.
    pub theta: &'a [F],
    /// The prior θ₀ (zeros for an arm without one).
    pub prior: &'a [F],
    /// Updates learned so far.
    pub updates: u64,
}

/// One arm's state, writable.
#[derive(Debug)]
pub struct ArmMut<'a, F> {
    /// A⁻¹, packed: `d(d+1)/2` entries.
    pub a_inv: &'a mut [F],
    /// b.
    pub b: &'a mut [F],
    /// θ̂ = A⁻¹b.
    pub theta: &'a mut [F],
    /// The prior θ₀.
    pub prior: &'a mut [F],
    /// Updates learned so far.
    pub updates: &'a mut u64,
}

/// Shared working space, contents unspecified between calls.
#[derive(Debug)]
pub struct Scratch<'a, F> {
    /// A packed symmetric matrix, `d(d+1)/2` entries.
    pub matrix: &'a mut [F],
    /// Four vectors of length `d`.
    pub vectors: [&'a mut [F]; 4],
}

/// Every arm's A⁻¹ and θ̂ with the scratch area, for one pass over the whole pool (a select)
/// without slicing each arm out on its own.
#[derive(Debug)]
pub struct Pool<'a, F> {
    /// The arms' packed A⁻¹ one after another, arm i at `i * a_inv_stride`; each takes the
    /// first `d(d+1)/2` entries of its stride.
    pub a_inv: &'a [F],
    /// Distance between two arms' A⁻¹ in `a_inv` (at least `d(d+1)/2`).
    pub a_inv_stride: usize,
    /// The arms' θ̂ one after another, `d` each.
    pub theta: &'a [F],
    /// The scratch matrix, `d(d+1)/2` entries.
    pub scratch: &'a mut [F],
}

/// Per-arm ridge state behind slices: the one interface the algorithms use.
///
/// Implementations keep every slice at the lengths given by [`dim`](LinearArms::dim) (`d` for
/// vectors, `d(d+1)/2` for matrices); arm indices run `0..arm_count()`.
pub trait LinearArms<F: Real> {
    /// Context dimension d.
    fn dim(&self) -> usize;

    /// Number of arms.
    fn arm_count(&self) -> usize;

    /// Arm `index`, or `None` when out of range.
    fn arm(&self, index: usize) -> Option<ArmRef<'_, F>>;

    /// Arm `index` writable, together with the scratch area.
    fn arm_mut(&mut self, index: usize) -> Option<(ArmMut<'_, F>, Scratch<'_, F>)>;

    /// The scratch area alone.
    fn scratch(&mut self) -> Scratch<'_, F>;

    /// Every arm at once, read-only, with the scratch matrix.
    fn pool(&mut self) -> Pool<'_, F>;

    /// Whether [`set_arm_count`](LinearArms::set_arm_count) would accept `count`; checked before
    /// a restore changes anything.
    ///
    /// # Errors
    /// [`DimensionMismatch`](pilot_core::ErrorKind::DimensionMismatch) when this storage cannot
    /// hold `count` arms.
    fn check_arm_count(&self, count: usize) -> Result<()>;

    /// Makes room for exactly `count` arms (restoring a snapshot of a pool that grew or shrank).
    /// New arms have unspecified contents that the caller overwrites.
    ///
    /// # Errors
    /// As [`check_arm_count`](LinearArms::check_arm_count).
    fn set_arm_count(&mut self, count: usize) -> Result<()>;

    /// Storage with `arm_count` arms of dimension `dim`, contents unspecified (the caller
    /// initialises every arm).
    ///
    /// # Errors
    /// [`DimensionMismatch`](pilot_core::ErrorKind::DimensionMismatch) when a fixed form's
    /// `K`/`D` differ from the request.
    fn with_shape(arm_count: usize, dim: usize) -> Result<Self>
    where
        Self: Sized;
}

/// Fixed-capacity storage for exactly `K` arms of dimension `D`: no allocator.
///
/// The whole state is inline, so large `K·D²` belongs in a `static` or a `Box`, not on a small
/// stack (K = 11, D = 256 in `f32` is 2.9 MB, of which the algorithms touch the packed half).
#[derive(Clone, Debug)]
pub struct FixedArms<const K: usize, const D: usize, F: Real = f32> {
    a_inv: [[[F; D]; D]; K],
    b: [[F; D]; K],
    theta: [[F; D]; K],
    prior: [[F; D]; K],
    updates: [u64; K],
    scratch_matrix: [[F; D]; D],
    scratch_vectors: [[F; D]; 4],
}

impl<const K: usize, const D: usize, F: Real> FixedArms<K, D, F> {
    /// Storage with every value zero; the policies initialise each arm.
    pub fn zeroed() -> Self {
        Self {
            a_inv: [[[F::ZERO; D]; D]; K],
            b: [[F::ZERO; D]; K],
            theta: [[F::ZERO; D]; K],
            prior: [[F::ZERO; D]; K],
            updates: [0; K],
            scratch_matrix: [[F::ZERO; D]; D],
            scratch_vectors: [[F::ZERO; D]; 4],
        }
    }
}

impl<const K: usize, const D: usize, F: Real> LinearArms<F> for FixedArms<K, D, F> {
    fn dim(&self) -> usize {
        D
    }

    fn arm_count(&self) -> usize {
        K
    }

    fn arm(&self, index: usize) -> Option<ArmRef<'_, F>> {
        Some(ArmRef {
            a_inv: self
                .a_inv
                .get(index)?
                .as_flattened()
                .get(..packed::len(D))?,
            b: self.b.get(index)?,
            theta: self.theta.get(index)?,
            prior: self.prior.get(index)?,
            updates: *self.updates.get(index)?,
        })
    }

    fn arm_mut(&mut self, index: usize) -> Option<(ArmMut<'_, F>, Scratch<'_, F>)> {
        let [v0, v1, v2, v3] = &mut self.scratch_vectors;
        Some((
            ArmMut {
                a_inv: self
                    .a_inv
                    .get_mut(index)?
                    .as_flattened_mut()
                    .get_mut(..packed::len(D))?,
                b: self.b.get_mut(index)?,
                theta: self.theta.get_mut(index)?,
                prior: self.prior.get_mut(index)?,
                updates: self.updates.get_mut(index)?,
            },
            Scratch {
                matrix: packed_part(&mut self.scratch_matrix),
                vectors: [v0, v1, v2, v3],
            },
        ))
    }

    fn scratch(&mut self) -> Scratch<'_, F> {
        let [v0, v1, v2, v3] = &mut self.scratch_vectors;
        Scratch {
            matrix: packed_part(&mut self.scratch_matrix),
            vectors: [v0, v1, v2, v3],
        }
    }

    fn pool(&mut self) -> Pool<'_, F> {
        Pool {
            a_inv: self.a_inv.as_flattened().as_flattened(),
            a_inv_stride: D * D,
            theta: self.theta.as_flattened(),
            scratch: packed_part(&mut self.scratch_matrix),
        }
    }

    fn check_arm_count(&self, count: usize) -> Result<()> {
        if count == K {
            Ok(())
        } else {
            Err(Error::dimension("FixedArms: arm count", K, count))
        }
    }

    fn set_arm_count(&mut self, count: usize) -> Result<()> {
        self.check_arm_count(count)
    }

    fn with_shape(arm_count: usize, dim: usize) -> Result<Self> {
        if dim != D {
            return Err(Error::dimension("FixedArms: dimension", D, dim));
        }
        if arm_count != K {
            return Err(Error::dimension("FixedArms: arm count", K, arm_count));
        }
        Ok(Self::zeroed())
    }
}

#[cfg(feature = "alloc")]
pub use vec_form::VecArms;

#[cfg(feature = "alloc")]
mod vec_form {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    /// Runtime-sized storage: arms can be added and removed while running.
    ///
    /// Removing arm `i` shifts every later arm down by one (arm `i + 1` becomes arm `i`), as
    /// `Vec::remove` does; an added arm takes the next index, `arm_count() - 1`.
    #[derive(Clone, Debug)]
    pub struct VecArms<F> {
        dim: usize,
        a_inv: Vec<F>,
        b: Vec<F>,
        theta: Vec<F>,
        prior: Vec<F>,
        updates: Vec<u64>,
        scratch_matrix: Vec<F>,
        scratch_vectors: Vec<F>,
    }

    impl<F: Real> VecArms<F> {
        /// Empty storage for contexts of dimension `dim`.
        pub fn new(dim: usize) -> Self {
            Self {
                dim,
                a_inv: Vec::new(),
                b: Vec::new(),
                theta: Vec::new(),
                prior: Vec::new(),
                updates: Vec::new(),
                scratch_matrix: vec![F::ZERO; packed::len(dim)],
                scratch_vectors: vec![F::ZERO; 4 * dim],
            }
        }

        /// Appends one arm with unspecified (zero) contents and returns its index.
        pub(crate) fn push_arm(&mut self) -> usize {
            let d = self.dim;
            self.a_inv
                .resize(self.a_inv.len() + packed::len(d), F::ZERO);
            for v in [&mut self.b, &mut self.theta, &mut self.prior] {
                v.resize(v.len() + d, F::ZERO);
            }
            self.updates.push(0);
            self.updates.len() - 1
        }

        /// Removes arm `index`; later arms shift down by one.
        ///
        /// # Errors
        /// [`UnknownArm`](pilot_core::ErrorKind::UnknownArm) for an index out of range.
        pub fn remove_arm(&mut self, index: usize) -> Result<()> {
            let count = self.updates.len();
            if index >= count {
                return Err(Error::unknown_arm("VecArms::remove_arm", index, count));
            }
            let d = self.dim;
            let t = packed::len(d);
            self.a_inv.drain(index * t..(index + 1) * t);
            for v in [&mut self.b, &mut self.theta, &mut self.prior] {
                v.drain(index * d..(index + 1) * d);
            }
            self.updates.remove(index);
            Ok(())
        }
    }

    impl<F: Real> LinearArms<F> for VecArms<F> {
        fn dim(&self) -> usize {
            self.dim
        }

        fn arm_count(&self) -> usize {
            self.updates.len()
        }

        fn arm(&self, index: usize) -> Option<ArmRef<'_, F>> {
            let d = self.dim;
            let updates = *self.updates.get(index)?;
            let range = index * d..(index + 1) * d;
            let t = packed::len(d);
            Some(ArmRef {
                a_inv: self.a_inv.get(index * t..(index + 1) * t)?,
                b: self.b.get(range.clone())?,
                theta: self.theta.get(range.clone())?,
                prior: self.prior.get(range)?,
                updates,
            })
        }

        fn arm_mut(&mut self, index: usize) -> Option<(ArmMut<'_, F>, Scratch<'_, F>)> {
            let d = self.dim;
            let range = index * d..(index + 1) * d;
            let t = packed::len(d);
            let arm = ArmMut {
                a_inv: self.a_inv.get_mut(index * t..(index + 1) * t)?,
                b: self.b.get_mut(range.clone())?,
                theta: self.theta.get_mut(range.clone())?,
                prior: self.prior.get_mut(range)?,
                updates: self.updates.get_mut(index)?,
            };
            let (v0, rest) = self.scratch_vectors.split_at_mut(d);
            let (v1, rest) = rest.split_at_mut(d);
            let (v2, v3) = rest.split_at_mut(d);
            Some((
                arm,
                Scratch {
                    matrix: &mut self.scratch_matrix,
                    vectors: [v0, v1, v2, v3],
                },
            ))
        }

        fn scratch(&mut self) -> Scratch<'_, F> {
            let d = self.dim;
            let (v0, rest) = self.scratch_vectors.split_at_mut(d);
            let (v1, rest) = rest.split_at_mut(d);
            let (v2, v3) = rest.split_at_mut(d);
            Scratch {
                matrix: &mut self.scratch_matrix,
                vectors: [v0, v1, v2, v3],
            }
        }

        fn pool(&mut self) -> Pool<'_, F> {
            Pool {
                a_inv: &self.a_inv,
                a_inv_stride: packed::len(self.dim),
                theta: &self.theta,
                scratch: &mut self.scratch_matrix,
            }
        }

        fn check_arm_count(&self, _count: usize) -> Result<()> {
            Ok(())
        }

        fn set_arm_count(&mut self, count: usize) -> Result<()> {
            while self.updates.len() < count {
                self.push_arm();
            }
            let d = self.dim;
            self.a_inv.truncate(count * packed::len(d));
            for v in [&mut self.b, &mut self.theta, &mut self.prior] {
                v.truncate(count * d);
            }
            self.updates.truncate(count);
            Ok(())
        }

        fn with_shape(arm_count: usize, dim: usize) -> Result<Self> {
            let mut arms = Self::new(dim);
            arms.set_arm_count(arm_count)?;
            Ok(arms)
        }
    }
}
