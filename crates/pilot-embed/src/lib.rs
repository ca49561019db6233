//! Embedding-space math for PILOT router, `#![no_std]` and allocation-free.
#![no_std]
#![doc = include_str!("../README.md")]

pub mod fixed;
pub mod hashing;
pub mod linalg;
pub mod projection;

pub use hashing::HashingEmbedder;
pub use linalg::{
    cholesky, cholesky_solve, cosine, dot, lower_mul, norm, normalize, project, quad_form,
    sherman_morrison,
};
pub use projection::Projection;
