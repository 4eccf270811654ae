//! Krylov solvers on operators applied to blocks of vectors.
//!
//! Every solver takes `m` right-hand sides at once: the block vectors are
//! row-major `n x m` arrays (row `i` holds the `m` entries of unknown `i`), so
//! one pass over the operator serves all columns, and each column keeps its
//! own scalars and stops on its own tolerance. Reductions use fixed row blocks,
//! so results do not depend on the thread count.

pub mod bicgstab;
pub mod cg;
pub mod gmres;
mod golub_kahan;
pub mod lsmr;
pub mod lsqr;
pub mod minres;
pub mod operator;
pub mod vectors;

pub use bicgstab::bicgstab;
pub use cg::cg;
pub use gmres::gmres;
pub use lsmr::lsmr;
pub use lsqr::{lsqr, LeastSquaresOptions};
pub use minres::minres;
pub use operator::{DenseOperator, Operator, SparseOperator};

use crate::error::Result;

/// Stopping rule and iteration limit, as scipy: `||b - A x|| <= max(rtol ||b||, atol)`.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    pub rtol: f64,
    pub atol: f64,
    pub maxiter: usize,
}

/// What a solve returns; per-column fields have one entry per right-hand side.
#[derive(Clone, Debug)]
pub struct Output<T> {
    /// `n x m`, row-major.
    pub x: Vec<T>,
    pub converged: Vec<bool>,
    pub iterations: Vec<usize>,
    pub residual_norm: Vec<f64>,
    /// Row `t` holds the residual norms after `t` iterations (row 0: the initial residual).
    pub history: Vec<Vec<f64>>,
    /// A callback asked to stop.
    pub stopped: bool,
    /// scipy's code: 0 converged, > 0 iterations without convergence, < 0 breakdown.
    pub info: Vec<i64>,
}

/// The state shown to a callback after each iteration.
pub struct Progress<'a, T> {
    /// Completed iterations, from 1.
    pub iteration: usize,
    /// The current iterate, `n x m` row-major.
    pub x: &'a [T],
    pub residual_norm: &'a [f64],
}

/// Called after each iteration; `Ok(true)` stops the solve.
pub type Callback<'c, T> = dyn FnMut(&Progress<'_, T>) -> Result<bool> + Send + 'c;
