//! Krylov solvers on operators applied to blocks of vectors.
//!
//! Every solver takes `m` right-hand sides at once: the block vectors are
//! row-major `n x m` arrays (row `i` holds the `m` entries of unknown `i`), so
//! one pass over the operator serves all columns, and each column keeps its
//! own scalars and stops on its own tolerance. Reductions use fixed row blocks,
//! so results do not depend on the thread count.
//!
//! With a sparse `A` and no callback watching the iterations, the columns are
//! solved one after another instead where that is faster ([`columns_pay`],
//! [`by_columns`]): for fewer than eight columns, and where one column's
//! vectors and a no larger `A` fit in cache but the whole block does not (the
//! block's passes would stream from memory what one column keeps in cache;
//! W20, 32 columns of 250,000 unknowns: 2.3 times as fast).

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

/// Checks `b` (`rows x m`) and `x0` (`cols x m`) for an operator of shape
/// `(rows, cols)`.
pub(crate) fn check_blocks<T>(
    (rows, cols): (usize, usize),
    b: &[T],
    m: usize,
    x0: Option<&[T]>,
) -> Result<()> {
    ensure!(
        m >= 1 && b.len() == rows * m,
        "b must hold nrows * m = {} values",
        rows * m
    );
    if let Some(x0) = x0 {
        ensure!(
            x0.len() == cols * m,
            "x0 must hold ncols * m = {} values",
            cols * m
        );
    }
    Ok(())
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

/// The cache a solve one column at a time should fit in: the last-level
/// cache of the machines we measure on (32 MiB here) rather than a value read
/// from this machine, so the choice, and the results, do not depend on where
/// the code runs.
pub const COLUMN_BUDGET: usize = 32 << 20;

/// Whether to solve the `m` right-hand sides one at a time: no callback (it
/// watches every column's iterations together), `A` and the preconditioner
/// sparse (their one-column products cost no more per column, see
/// [`Operator::stored_bytes`]), and either fewer than eight columns (the
/// block kernels step over eight columns of a row at a time; narrower blocks
/// ran two to three times slower per column than single columns) or a
/// column's working set (the operators and `vector_elems` entries of `T`)
/// within `budget` while the block's is not, the operators taking no more
/// bytes than a column's vectors (where they take more, the block's one pass
/// over them wins: LSQR on W19's matrix with 8 columns, 214 ms by blocks
/// against 308 ms by columns).
/// Returns, where they pay, the bytes of the operators and of one column's
/// vectors (see [`column_bytes`]).
pub fn columns_pay<T: Real>(
    a: &dyn Operator<T>,
    precond: Option<&dyn Operator<T>>,
    m: usize,
    vector_elems: usize,
    watched: bool,
    budget: usize,
) -> Option<(usize, usize)> {
    if m < 2 || watched {
        return None;
    }
    let (shared, column) = column_bytes(a, precond, vector_elems)?;
    let pays = m < 8
        || (shared <= column
            && shared.saturating_add(column) <= budget
            && shared.saturating_add(column.saturating_mul(m)) > budget);
    pays.then_some((shared, column))
}

/// The bytes of the sparse operators (`A` and `M`, see
/// [`Operator::stored_bytes`]) and of one column's `vector_elems` entries;
/// `None` unless both operators are sparse.
fn column_bytes<T: Real>(
    a: &dyn Operator<T>,
    precond: Option<&dyn Operator<T>>,
    vector_elems: usize,
) -> Option<(usize, usize)> {
    let mut shared = a.stored_bytes()?;
    if let Some(pm) = precond {
        shared = shared.saturating_add(pm.stored_bytes()?);
    }
    Some((
        shared,
        vector_elems.saturating_mul(std::mem::size_of::<T>()),
    ))
}

/// Below this many bytes for the operators and one column's vectors per
/// thread, the columns run side by side, one per thread: each then makes its
/// passes without waiting on the other threads at every step. Measured with
/// CG on two threads, four columns: 2-D Poisson 100 x 100, 10 against 20 ms;
/// 200 x 200 (3.4 MB), 74-77 against 94-102 ms; 300 x 300 and 400 x 400 the
/// same either way; 500 x 500 (21 MB), 15% slower side by side (the columns
/// then share the last-level cache).
pub const SIDE_BY_SIDE_BUDGET: usize = 4 << 20;

/// Runs `solve(b, m, x0, callback)` on the whole block, or column by column
/// where [`columns_pay`] (the solver's vectors take `vector_elems` entries),
/// side by side where they fit [`SIDE_BY_SIDE_BUDGET`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn blocks_or_columns<'c, T: Real>(
    a: &dyn Operator<T>,
    precond: Option<&dyn Operator<T>>,
    b: &[T],
    m: usize,
    x0: Option<&[T]>,
    vector_elems: usize,
    callback: Option<&mut Callback<'c, T>>,
    solve: impl Fn(&[T], usize, Option<&[T]>, Option<&mut Callback<'c, T>>) -> Result<Output<T>> + Sync,
) -> Result<Output<T>> {
    let watched = callback.is_some();
    if let Some((shared, column)) = columns_pay(a, precond, m, vector_elems, watched, COLUMN_BUDGET)
    {
        let threads = rayon::current_num_threads().min(m);
        let side_by_side = threads > 1
            && shared.saturating_add(column.saturating_mul(threads)) <= SIDE_BY_SIDE_BUDGET;
        return by_columns(a.shape(), b, m, x0, side_by_side, |b, x0| {
            solve(b, 1, x0, None)
        });
    }
    solve(b, m, x0, callback)
}

/// Solves the `m` columns of `b` (`rows x m`, row-major; `x0` of `cols x m`)
/// one at a time with `solve(b_column, x0_column)` and assembles one
/// [`Output`]: `x` by columns, the per-column fields, and a history as long as
/// the longest, each column's last norms repeated after it stopped (as a
/// block solve keeps them). `side_by_side`: the columns run in parallel (each
/// column's result does not depend on it: its kernels give the same bits on
/// any number of threads).
pub fn by_columns<T: Real>(
    (rows, cols): (usize, usize),
    b: &[T],
    m: usize,
    x0: Option<&[T]>,
    side_by_side: bool,
    solve: impl Fn(&[T], Option<&[T]>) -> Result<Output<T>> + Sync,
) -> Result<Output<T>> {
    check_blocks((rows, cols), b, m, x0)?;
    let column =
        |v: &[T], len: usize, c: usize| -> Vec<T> { (0..len).map(|i| v[i * m + c]).collect() };
    let mut x = vec![T::ZERO; cols * m];
    let one = |c: usize| {
        let x0c = x0.map(|x0| column(x0, cols, c));
        solve(&column(b, rows, c), x0c.as_deref())
    };
    let outs: Vec<Output<T>> = if side_by_side {
        use rayon::prelude::*;
        (0..m).into_par_iter().map(one).collect::<Result<_>>()?
    } else {
        (0..m).map(one).collect::<Result<_>>()?
    };
    for (c, out) in outs.iter().enumerate() {
        for (i, &v) in out.x.iter().enumerate() {
            x[i * m + c] = v;
        }
    }
    let steps = outs.iter().map(|o| o.history.len()).max().unwrap_or(0);
    let history = (0..steps)
        .map(|t| {
            outs.iter()
                .map(|o| {
                    o.history
                        .get(t)
                        .or(o.history.last())
                        .map_or(f64::NAN, |h| h[0])
                })
                .collect()
        })
        .collect();
    Ok(Output {
        x,
        converged: outs.iter().map(|o| o.converged[0]).collect(),
        iterations: outs.iter().map(|o| o.iterations[0]).collect(),
        residual_norm: outs.iter().map(|o| o.residual_norm[0]).collect(),
        history,
        stopped: outs.iter().any(|o| o.stopped),
        info: outs.iter().map(|o| o.info[0]).collect(),
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sparse::{Compressed, SparseRef};

    #[test]
    fn columns_pay_for_sparse_operators_narrow_blocks_and_cache_sized_columns() {
        // A permutation of size 1000 (not banded) in CSR: 1000 * (8 + 8) +
        // 1001 * 8 bytes; the identity by diagonals: 1000 values kept as f32.
        let n = 1000;
        let indptr: Vec<usize> = (0..=n).collect();
        let idx: Vec<usize> = (0..n).collect();
        let val = vec![1.0f64; n];
        let identity = SparseOperator::new(SparseRef::Csr(
            Compressed::new(n, n, &indptr, &idx, &val).unwrap(),
        ));
        assert_eq!(identity.stored_bytes(), Some(n * 4));
        let shuffled: Vec<usize> = (0..n).map(|i| (i * 7 + 3) % n).collect();
        let a = SparseOperator::new(SparseRef::Csr(
            Compressed::new(n, n, &indptr, &shuffled, &val).unwrap(),
        ));
        let stored = a.stored_bytes().unwrap();
        assert_eq!(stored, n * 16 + (n + 1) * 8);
        let dense_values = vec![0.0f64; n * n];
        let dense = DenseOperator(faer::MatRef::from_row_major_slice(&dense_values, n, n));
        let big = usize::MAX / 4;
        // One column, a callback, a dense matrix or preconditioner: the block.
        assert!(columns_pay(&a, None, 1, 4 * n, false, big).is_none());
        assert!(columns_pay(&a, None, 4, 4 * n, true, big).is_none());
        assert!(columns_pay(&dense, None, 4, 4 * n, false, big).is_none());
        assert!(columns_pay(&a, Some(&dense), 4, 4 * n, false, big).is_none());
        // Fewer than eight columns: one at a time, whatever the sizes.
        assert_eq!(
            columns_pay(&a, Some(&a), 7, 4 * n, false, 0),
            Some((2 * stored, 4 * n * 8))
        );
        // Eight or more: only where a column fits the budget and the block does not.
        let column = stored + 4 * n * 8;
        assert!(columns_pay(&a, None, 8, 4 * n, false, column).is_some());
        assert!(columns_pay(&a, None, 8, 4 * n, false, column - 1).is_none());
        let block = stored + 8 * 4 * n * 8;
        assert!(columns_pay(&a, None, 8, 4 * n, false, block).is_none());
        assert!(columns_pay(&a, None, 8, 4 * n, false, block - 1).is_some());
        // A matrix larger than a column's vectors keeps the block (its one
        // pass over the matrix serves every column).
        assert!(stored > 2 * n * 8);
        assert!(columns_pay(&a, None, 8, 2 * n, false, stored + 2 * n * 8).is_none());
        assert!(columns_pay(&a, None, 7, 2 * n, false, stored + 2 * n * 8).is_some());
    }
}
