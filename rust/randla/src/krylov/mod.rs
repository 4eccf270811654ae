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

use crate::ensure;
use crate::error::Result;
use crate::Real;

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

/// Checks a square system (`A`, `b` of `n x m`, optional `x0` and `M`) and
/// returns `n` and the starting iterate (`x0` or zeros).
pub(crate) fn square_start<T: Real>(
    a: &dyn Operator<T>,
    b: &[T],
    m: usize,
    x0: Option<&[T]>,
    precond: Option<&dyn Operator<T>>,
) -> Result<(usize, Vec<T>)> {
    let (n, ncols) = a.shape();
    ensure!(n == ncols, "A must be square, got shape ({n}, {ncols})");
    ensure!(
        m >= 1 && b.len() == n * m,
        "b must hold n * m = {} values",
        n * m
    );
    if let Some(pm) = precond {
        ensure!(
            pm.shape() == (n, n),
            "M has shape {:?}, expected ({n}, {n})",
            pm.shape()
        );
    }
    let x = match x0 {
        Some(x0) => {
            ensure!(x0.len() == n * m, "x0 must hold n * m = {} values", n * m);
            x0.to_vec()
        }
        None => vec![T::ZERO; n * m],
    };
    Ok((n, x))
}

/// `b - A x`, or `b` itself when there is no starting guess.
pub(crate) fn initial_residual<T: Real>(
    a: &dyn Operator<T>,
    b: &[T],
    x: &[T],
    m: usize,
    has_x0: bool,
) -> Result<Vec<T>> {
    let mut r = b.to_vec();
    if has_x0 {
        let (rows, cols) = a.shape();
        let mut ax = vec![T::ZERO; rows * m];
        a.apply(
            vectors::view(x, cols, m),
            vectors::view_mut(&mut ax, rows, m),
        )?;
        for (ri, axi) in r.iter_mut().zip(&ax) {
            *ri -= *axi;
        }
    }
    Ok(r)
}

/// The result of a square solver: columns that neither converged nor broke
/// down get scipy's `info` = iterations without convergence.
#[allow(clippy::too_many_arguments)]
pub(crate) fn square_output<T>(
    x: Vec<T>,
    converged: Vec<bool>,
    iterations: Vec<usize>,
    residual_norm: Vec<f64>,
    history: Vec<Vec<f64>>,
    stopped: bool,
    mut info: Vec<i64>,
) -> Output<T> {
    for c in 0..info.len() {
        if !converged[c] && info[c] == 0 {
            info[c] = iterations[c].max(1) as i64;
        }
    }
    Output {
        x,
        converged,
        iterations,
        residual_norm,
        history,
        stopped,
        info,
    }
}

/// Calls the callback, if any, with the state after `iteration`; `true` stops the solve.
pub(crate) fn report<T>(
    callback: &mut Option<&mut Callback<'_, T>>,
    iteration: usize,
    x: &[T],
    residual_norm: &[f64],
) -> Result<bool> {
    match callback.as_deref_mut() {
        Some(cb) => cb(&Progress {
            iteration,
            x,
            residual_norm,
        }),
        None => Ok(false),
    }
}

/// `dst = M src` (`n x m` blocks), or a copy of `src` without a preconditioner.
pub(crate) fn precondition<T: Real>(
    precond: Option<&dyn Operator<T>>,
    src: &[T],
    dst: &mut [T],
    n: usize,
    m: usize,
) -> Result<()> {
    match precond {
        Some(pm) => pm.apply(vectors::view(src, n, m), vectors::view_mut(dst, n, m)),
        None => {
            dst.copy_from_slice(src);
            Ok(())
        }
    }
}

pub(crate) use crate::epsilon;
