//! Embedding-space math for PILOT router, `#![no_std]` and allocation-free.
//!
//! Kernels take slices (dimensions checked at run time, an error on mismatch) and write into
//! buffers the caller provides. Matrices are dense, row-major `&[F]` of `rows × cols`.
//! Every kernel is generic over [`Real`](pilot_core::Real), so `f32` and `f64` both work.
#![no_std]

pub mod linalg;

pub use linalg::{
    cholesky, cholesky_solve, cosine, dot, lower_mul, norm, normalize, project, quad_form,
    sherman_morrison,
};
